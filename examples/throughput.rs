//! Single-value cipher throughput, printed as `name bytes MB/s` lines for
//! `benches/compare.sh` (MB = 10^6 bytes, as `openssl speed` reports).
//!
//! `cargo run --release --example throughput [seconds-per-case]`
//!
//! aes-256-cbc decrypt is `AesCbc::open` (CBC plus the PKCS#7 check, into a new
//! buffer); encrypt is `seal_with_iv_into` into a reused buffer; aes-256-gcm is
//! `AesGcm::seal_with_nonce_into` / `open` with a 28-byte etcd key as AAD, on
//! ring (the default for 256-bit keys) and on the portable crate. A KMS read is
//! the data step once the plugin's DEK or seed is cached: v2 is
//! `EncryptedObject::parse` + `open` (source type `AES_GCM_KEY`, and the seed
//! type, which derives a key per value), v1 is `split_v1` + `open_with_fallback`.
//! aescbc values of 1 MiB and more are decrypted on all cores (see
//! `aescbc::PARALLEL_MIN`); as rates are per CPU second, that shows as the
//! per-core rate.

use atrest::envelope::aescbc::{AesCbc, Backend};
use atrest::envelope::aesgcm::{AesGcm, Backend as GcmBackend};
use atrest::envelope::kms::{encode_v2, split_v1, DataKey, DekSourceType, EncryptedObject};
use atrest::key::SecretKey;
use std::collections::BTreeMap;
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
    let gcm_portable = AesGcm::with_backend(&key, GcmBackend::Portable)
        .expect("32-byte key")
        .expect("portable takes every size");
    let (_, clock) = measure(16, 0.01, || {});
    println!(
        "# aescbc implementation: {:?}; aesgcm: {:?}; MB/s per {clock} second",
        cbc.backend(),
        gcm.backend()
    );
    for len in [16usize << 10, 64 << 10, 1 << 20] {
        let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut out = Vec::with_capacity(len + 64);

        if len >= 64 << 10 {
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
        }

        let nonce = [9u8; 12];
        for (name, g) in [("", &gcm), ("-portable", &gcm_portable)] {
            let (r, _) = measure(len, secs, || {
                out.clear();
                g.seal_with_nonce_into(&nonce, black_box(&pt), AAD, &mut out);
            });
            println!("aes-256-gcm-encrypt{name} {len} {r:.0}");
            let mut sealed = Vec::new();
            g.seal_with_nonce_into(&nonce, &pt, AAD, &mut sealed);
            let (r, _) = measure(len, secs, || {
                black_box(g.open(black_box(&sealed), AAD).expect("open"));
            });
            println!("aes-256-gcm-decrypt{name} {len} {r:.0}");
        }

        // KMS: a 32-byte DEK or seed, as the plugin would return it.
        let none = BTreeMap::new();
        let dek = DataKey::v2(DekSourceType::AesGcmKey, key.clone()).expect("32-byte DEK");
        let mut data = Vec::new();
        gcm.seal_into(&pt, AAD, &mut data).expect("random nonce");
        let v2 = encode_v2(&data, b"1", &[1; 64], &none, DekSourceType::AesGcmKey);
        let (r, _) = measure(len, secs, || {
            let obj = EncryptedObject::parse(black_box(&v2)).expect("parse");
            black_box(obj.open(&dek, AAD).expect("open"));
        });
        println!("kms-v2-read {len} {r:.0}");
        let seed = DataKey::v2(DekSourceType::HkdfSha256XNonceAesGcmSeed, key.clone())
            .expect("32-byte seed");
        let data = DataKey::seal_with_seed(&key, &pt, AAD).expect("random info");
        let v2 = encode_v2(
            &data,
            b"1",
            &[1; 64],
            &none,
            DekSourceType::HkdfSha256XNonceAesGcmSeed,
        );
        let (r, _) = measure(len, secs, || {
            let obj = EncryptedObject::parse(black_box(&v2)).expect("parse");
            black_box(obj.open(&seed, AAD).expect("open"));
        });
        println!("kms-v2-seed-read {len} {r:.0}");
        let v1_key = DataKey::v1(key.clone()).expect("32-byte DEK");
        let mut v1 = vec![0u8, 64];
        v1.extend_from_slice(&[1; 64]);
        gcm.seal_into(&pt, AAD, &mut v1).expect("random nonce");
        let (r, _) = measure(len, secs, || {
            let (_, data) = split_v1(black_box(&v1)).expect("split");
            black_box(v1_key.open_with_fallback(data, AAD).expect("open"));
        });
        println!("kms-v1-read {len} {r:.0}");
    }
}
