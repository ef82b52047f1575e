//! Envelope throughput: every provider through the transformer, the raw aescbc
//! cipher for the per-operation overhead, aescbc and aesgcm implementations side
//! by side, KMS data reads once the DEK is cached, and reads that have to skip
//! keys.
//!
//! `cargo bench --bench envelope -- --warm-up-time 1 --measurement-time 2`
//!
//! Times are CPU time of the whole process (all threads) where Linux reports it,
//! so other load on a shared machine does not inflate them; set
//! `ATREST_BENCH_WALL=1` for wall-clock time.

use atrest::config::{KeyConfig, KeysConfig, ProviderConfig};
use atrest::envelope::aescbc::{AesCbc, Backend};
use atrest::envelope::aesgcm::{AesGcm, Backend as GcmBackend};
use atrest::envelope::kms::{encode_v2, split_v1, DataKey, DekSourceType, EncryptedObject};
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

/// 16 KiB AES-256-GCM reads: the raw cipher on ring and on the portable crate,
/// an aesgcm value through the transformer, and the KMS data step once the
/// plugin's DEK or seed is cached (v2 parse + open for both source types, v1).
fn gcm(c: &mut Bench) {
    const LEN: usize = 16 << 10;
    let key = SecretKey::new(vec![1; 32]);
    let pt = object(LEN);
    let mut g = c.benchmark_group("aesgcm-decrypt-16KiB");
    g.throughput(Throughput::Bytes(LEN as u64));
    for backend in [GcmBackend::Portable, GcmBackend::Ring] {
        let Some(cipher) = AesGcm::with_backend(&key, backend).expect("valid key") else {
            continue;
        };
        let mut sealed = Vec::new();
        cipher.seal_into(&pt, ETCD_KEY, &mut sealed).expect("seal");
        g.bench_function(format!("{backend:?}"), |b| {
            b.iter(|| cipher.open(black_box(&sealed), ETCD_KEY).expect("open"))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("gcm-read-16KiB");
    g.throughput(Throughput::Bytes(LEN as u64));
    let t = Transformer::from_providers(&[ProviderConfig::AesGcm(keys(&[("k", 1)]))])
        .expect("valid key");
    let stored = t.write(&pt, ETCD_KEY).expect("write");
    g.bench_function("aesgcm-transformer", |b| {
        b.iter(|| {
            t.read(black_box(&stored), ETCD_KEY, ReadMode::Apiserver)
                .expect("read")
        })
    });
    let none = Default::default();
    let dek = DataKey::v2(DekSourceType::AesGcmKey, key.clone()).expect("valid DEK");
    let mut data = Vec::new();
    AesGcm::new(&key)
        .expect("valid key")
        .seal_into(&pt, ETCD_KEY, &mut data)
        .expect("seal");
    let v2 = encode_v2(&data, b"1", &[1; 64], &none, DekSourceType::AesGcmKey);
    g.bench_function("kms-v2-aes-gcm-key", |b| {
        b.iter(|| {
            let obj = EncryptedObject::parse(black_box(&v2)).expect("parse");
            obj.open(&dek, ETCD_KEY).expect("open")
        })
    });
    let data = DataKey::seal_with_seed(&key, &pt, ETCD_KEY).expect("seal");
    let seed =
        DataKey::v2(DekSourceType::HkdfSha256XNonceAesGcmSeed, key.clone()).expect("valid seed");
    let v2 = encode_v2(
        &data,
        b"1",
        &[1; 64],
        &none,
        DekSourceType::HkdfSha256XNonceAesGcmSeed,
    );
    g.bench_function("kms-v2-hkdf-seed", |b| {
        b.iter(|| {
            let obj = EncryptedObject::parse(black_box(&v2)).expect("parse");
            obj.open(&seed, ETCD_KEY).expect("open")
        })
    });
    let v1_key = DataKey::v1(key.clone()).expect("valid DEK");
    let mut v1 = vec![0u8, 64];
    v1.extend_from_slice(&[1; 64]);
    AesGcm::new(&key)
        .expect("valid key")
        .seal_into(&pt, ETCD_KEY, &mut v1)
        .expect("seal");
    g.bench_function("kms-v1", |b| {
        b.iter(|| {
            let (_, data) = split_v1(black_box(&v1)).expect("split");
            v1_key.open_with_fallback(data, ETCD_KEY).expect("open")
        })
    });
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
    targets = transformer, overhead, backends, gcm, chain
}
criterion_main!(benches);
