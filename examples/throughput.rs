//! Single-value cipher throughput, printed as `name bytes MB/s` lines for
//! `benches/compare.sh` (MB = 10^6 bytes, as `openssl speed` reports).
//!
//! `cargo run --release --example throughput [seconds-per-case]`
//!
//! aes-256-cbc decrypt is `AesCbc::open` (CBC plus the PKCS#7 check, into a new
//! buffer); encrypt is `seal_with_iv_into` into a reused buffer; aes-256-gcm is
//! `AesGcm::seal_with_nonce_into` / `open` with a 28-byte etcd key as AAD.
//! Values of 1 MiB and more are decrypted on all cores (see `aescbc::PARALLEL_MIN`);
//! as rates are per CPU second, that shows as the per-core rate.

use atrest::envelope::aescbc::{AesCbc, Backend};
use atrest::envelope::aesgcm::AesGcm;
use atrest::key::SecretKey;
use std::hint::black_box;
use std::time::{Duration, Instant};

const AAD: &[u8] = b"/registry/secrets/default/db";

/// CPU time of the whole process in seconds (all threads), from Linux's
/// per-thread schedstat; `None` elsewhere. Like `openssl speed`, which divides
/// by CPU time, this keeps other load on a shared machine out of the figures.
fn cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// MB/s running `f` on `len`-byte values for about `secs` of wall time, over
/// CPU time when the OS reports it (else wall time), and which clock was used.
fn measure(len: usize, secs: f64, mut f: impl FnMut()) -> (f64, &'static str) {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(100) {
        f();
    }
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        f();
        n += 1;
    }
    let wall = start.elapsed().as_secs_f64();
    let bytes = n as f64 * len as f64;
    match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) if b > a => (bytes / (b - a) / 1e6, "cpu"),
        _ => (bytes / wall / 1e6, "wall"),
    }
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.5);
    let key = SecretKey::new((0..32).collect());
    let cbc = AesCbc::new(&key).expect("32-byte key");
    let portable = cbc.with_backend(Backend::Portable).expect("portable");
    let gcm = AesGcm::new(&key).expect("32-byte key");
    let (_, clock) = measure(16, 0.01, || {});
    println!(
        "# aescbc implementation: {:?}; MB/s per {clock} second",
        cbc.backend()
    );
    for len in [64usize << 10, 1 << 20] {
        let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut out = Vec::with_capacity(len + 64);
        let iv = [7u8; 16];

        let (r, _) = measure(len, secs, || {
            out.clear();
            cbc.seal_with_iv_into(&iv, black_box(&pt), &mut out);
        });
        println!("aes-256-cbc-encrypt {len} {r:.0}");
        let (r, _) = measure(len, secs, || {
            out.clear();
            portable.seal_with_iv_into(&iv, black_box(&pt), &mut out);
        });
        println!("aes-256-cbc-encrypt-portable {len} {r:.0}");
        let mut sealed = Vec::new();
        cbc.seal_with_iv_into(&iv, &pt, &mut sealed);
        let (r, _) = measure(len, secs, || {
            black_box(cbc.open(black_box(&sealed)).expect("open"));
        });
        println!("aes-256-cbc-decrypt {len} {r:.0}");
        let (r, _) = measure(len, secs, || {
            black_box(portable.open(black_box(&sealed)).expect("open"));
        });
        println!("aes-256-cbc-decrypt-portable {len} {r:.0}");

        let nonce = [9u8; 12];
        let (r, _) = measure(len, secs, || {
            out.clear();
            gcm.seal_with_nonce_into(&nonce, black_box(&pt), AAD, &mut out);
        });
        println!("aes-256-gcm-encrypt {len} {r:.0}");
        let mut sealed = Vec::new();
        gcm.seal_with_nonce_into(&nonce, &pt, AAD, &mut sealed);
        let (r, _) = measure(len, secs, || {
            black_box(gcm.open(black_box(&sealed), AAD).expect("open"));
        });
        println!("aes-256-gcm-decrypt {len} {r:.0}");
    }
}
