//! Envelope throughput: every provider through the transformer, the raw aescbc
//! cipher for the per-operation overhead, aescbc implementations side by side,
//! and reads that have to skip keys.
//!
//! `cargo bench --bench envelope -- --warm-up-time 1 --measurement-time 2`
//!
//! Times are CPU time of the whole process (all threads) where Linux reports it,
//! so other load on a shared machine does not inflate them; set
//! `ATREST_BENCH_WALL=1` for wall-clock time.

use atrest::config::{KeyConfig, KeysConfig, ProviderConfig};
use atrest::envelope::aescbc::{AesCbc, Backend};
use atrest::key::SecretKey;
use atrest::transformer::{ReadMode, Transformer};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};

type Bench = Criterion<CpuTime>;

/// Process CPU time in nanoseconds (sum of every thread's schedstat), falling
/// back to wall time where that is not available or not wanted.
struct CpuTime {
    cpu: bool,
}

impl CpuTime {
    fn new() -> CpuTime {
        CpuTime {
            cpu: std::env::var_os("ATREST_BENCH_WALL").is_none() && cpu_ns().is_some(),
        }
    }
}

fn cpu_ns() -> Option<u64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns)
}

impl Measurement for CpuTime {
    type Intermediate = (Option<u64>, Instant);
    type Value = f64;

    fn start(&self) -> Self::Intermediate {
        (if self.cpu { cpu_ns() } else { None }, Instant::now())
    }
    fn end(&self, (cpu, wall): Self::Intermediate) -> f64 {
        match (cpu, cpu.and_then(|_| cpu_ns())) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64,
            _ => wall.elapsed().as_nanos() as f64,
        }
    }
    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }
    fn zero(&self) -> f64 {
        0.0
    }
    fn to_f64(&self, v: &f64) -> f64 {
        *v
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

const SIZES: [(usize, &str); 5] = [
    (256, "256B"),
    (1 << 10, "1KiB"),
    (4 << 10, "4KiB"),
    (64 << 10, "64KiB"),
    (1 << 20, "1MiB"),
];
const ETCD_KEY: &[u8] = b"/registry/secrets/default/db";

fn key(name: &str, byte: u8) -> KeyConfig {
    KeyConfig {
        name: name.to_string(),
        secret: SecretKey::new(vec![byte; 32]),
    }
}

fn keys(list: &[(&str, u8)]) -> KeysConfig {
    KeysConfig {
        keys: list.iter().map(|(n, b)| key(n, *b)).collect(),
    }
}

/// A stored Secret's bytes: the protobuf magic, then filler.
fn object(len: usize) -> Vec<u8> {
    let mut v = b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret".to_vec();
    v.resize(len, 0x5a);
    v
}

fn providers() -> Vec<(&'static str, Transformer)> {
    let build = |p: ProviderConfig| Transformer::from_providers(&[p]).expect("valid key");
    vec![
        ("aescbc", build(ProviderConfig::AesCbc(keys(&[("k", 1)])))),
        ("aesgcm", build(ProviderConfig::AesGcm(keys(&[("k", 1)])))),
        (
            "secretbox",
            build(ProviderConfig::Secretbox(keys(&[("k", 1)]))),
        ),
    ]
}

fn transformer(c: &mut Bench) {
    for (name, t) in providers() {
        let mut g = c.benchmark_group(format!("write/{name}"));
        for (len, label) in SIZES {
            let pt = object(len);
            g.throughput(Throughput::Bytes(len as u64));
            g.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| t.write(black_box(&pt), ETCD_KEY).expect("write"))
            });
        }
        g.finish();
        let mut g = c.benchmark_group(format!("read/{name}"));
        for (len, label) in SIZES {
            let stored = t.write(&object(len), ETCD_KEY).expect("write");
            g.throughput(Throughput::Bytes(len as u64));
            g.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| {
                    t.read(black_box(&stored), ETCD_KEY, ReadMode::Apiserver)
                        .expect("read")
                })
            });
        }
        g.finish();
    }
}

/// 1 KiB aescbc: the raw cipher (IV ‖ ciphertext, no prefix) against a full
/// transformer read of the same value.
fn overhead(c: &mut Bench) {
    let t = Transformer::from_providers(&[ProviderConfig::AesCbc(keys(&[("k", 1)]))])
        .expect("valid key");
    let cipher = AesCbc::new(&SecretKey::new(vec![1; 32])).expect("valid key");
    let stored = t.write(&object(1 << 10), ETCD_KEY).expect("write");
    let payload = &stored[b"k8s:enc:aescbc:v1:k:".len()..];
    let mut g = c.benchmark_group("overhead/aescbc-1KiB");
    g.throughput(Throughput::Bytes(1 << 10));
    g.bench_function("raw-open", |b| {
        b.iter(|| cipher.open(black_box(payload)).expect("open"))
    });
    g.bench_function("transformer-read", |b| {
        b.iter(|| {
            t.read(black_box(&stored), ETCD_KEY, ReadMode::Apiserver)
                .expect("read")
        })
    });
    g.finish();
}

/// aescbc at 64 KiB on each implementation this CPU can run: decryption
/// portable vs VAES, encryption portable vs AES-NI.
fn backends(c: &mut Bench) {
    let base = AesCbc::new(&SecretKey::new(vec![1; 32])).expect("valid key");
    let mut sealed = Vec::new();
    base.seal_into(&object(64 << 10), &mut sealed)
        .expect("seal");
    let mut g = c.benchmark_group("aescbc-decrypt-64KiB");
    g.throughput(Throughput::Bytes(64 << 10));
    for backend in [Backend::Portable, Backend::Vaes] {
        let Some(cipher) = base.with_backend(backend) else {
            continue;
        };
        g.bench_function(format!("{backend:?}"), |b| {
            b.iter(|| cipher.open(black_box(&sealed)).expect("open"))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("aescbc-encrypt-64KiB");
    g.throughput(Throughput::Bytes(64 << 10));
    let pt = object(64 << 10);
    for backend in [Backend::Portable, Backend::AesNi] {
        let Some(cipher) = base.with_backend(backend) else {
            continue;
        };
        let mut out = Vec::with_capacity(AesCbc::sealed_len(pt.len()));
        g.bench_function(format!("{backend:?}"), |b| {
            b.iter(|| {
                out.clear();
                cipher.seal_with_iv_into(&[7; 16], black_box(&pt), &mut out);
            })
        });
    }
    g.finish();
}

/// A 1 KiB value under the third aescbc key: the read skips two keys whose
/// names do not match, and in the second chain a whole other provider first.
fn chain(c: &mut Bench) {
    let writer = Transformer::from_providers(&[ProviderConfig::AesCbc(keys(&[("k3", 3)]))])
        .expect("valid key");
    let stored = writer.write(&object(1 << 10), ETCD_KEY).expect("write");
    let three = ProviderConfig::AesCbc(keys(&[("k1", 1), ("k2", 2), ("k3", 3)]));
    let chains = [
        ("aescbc-third-key", vec![three.clone()]),
        (
            "aesgcm-then-aescbc-third-key",
            vec![ProviderConfig::AesGcm(keys(&[("g", 9)])), three],
        ),
    ];
    let mut g = c.benchmark_group("chain-read-1KiB");
    g.throughput(Throughput::Bytes(1 << 10));
    for (name, providers) in chains {
        let t = Transformer::from_providers(&providers).expect("valid keys");
        g.bench_function(name, |b| {
            b.iter(|| {
                t.read(black_box(&stored), ETCD_KEY, ReadMode::Apiserver)
                    .expect("read")
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .with_measurement(CpuTime::new())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = transformer, overhead, backends, chain
}
criterion_main!(benches);
