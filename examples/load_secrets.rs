//! Load many Secrets into an etcd fast (benchmarks): protobuf `v1.Secret`s as
//! kube-apiserver stores them, in transactions of `--batch`
//! puts, `--in-flight` at a time, values of about `--size` bytes, stored in
//! plaintext or encrypted with the first key of `--config`. Prints the write rate.
//! Writing again over the same keys replaces their values, as a rewrite does.
//!
//!   cargo run --release --example load_secrets -- --endpoints 127.0.0.1:2379 \
//!       --count 100000 --size 2048 --batch 100 --in-flight 4 --config old.yaml
//!
//! With `--read N`, it writes nothing and reads every key under the prefix
//! instead, in pages of N keys with 4 pages in flight (as `atrest audit` reads
//! them) without decrypting or decoding anything: etcd's raw read rate through
//! atrest's client.

use atrest::config::EncryptionConfiguration;
use atrest::etcd::{ConnectOptions, Etcd};
use atrest::etcd_key::GroupResource;
use atrest::transformer::Transformers;
use std::time::Instant;

struct Args {
    endpoints: String,
    count: usize,
    size: usize,
    batch: usize,
    in_flight: usize,
    config: Option<String>,
    prefix: String,
    read: Option<usize>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        endpoints: "127.0.0.1:2379".into(),
        count: 100_000,
        size: 2048,
        batch: 100,
        in_flight: 4,
        config: None,
        prefix: "/registry/secrets".into(),
        read: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--endpoints" => a.endpoints = v.clone(),
            "--count" => a.count = num()?,
            "--size" => a.size = num()?,
            "--batch" => a.batch = num()?,
            "--in-flight" => a.in_flight = num()?,
            "--config" => a.config = Some(v.clone()),
            "--prefix" => a.prefix = v.clone(),
            "--read" => a.read = Some(num()?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

/// A Secret in the JSON form kube-apiserver stores, about `size` bytes.
/// A protobuf field with a length-delimited value.
fn field(out: &mut Vec<u8>, n: u8, bytes: &[u8]) {
    varint(out, (u64::from(n) << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A `v1.Secret` of about `size` bytes as kube-apiserver stores it: `k8s\0` and a
/// `runtime.Unknown` whose `raw` is the Secret (kubernetes
/// `staging/src/k8s.io/apimachinery/pkg/runtime/serializer/protobuf/protobuf.go`,
/// field numbers from `k8s.io/api/core/v1/generated.proto`), with the metadata a
/// Secret made by `kubectl create` has: name, namespace, uid, creation time and one
/// managed-fields entry.
fn secret(ns: &str, name: &str, size: usize, seed: usize) -> Vec<u8> {
    let mut x = seed as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut data = Vec::with_capacity(size);
    while data.len() < size.saturating_sub(330) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let uid = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        x as u32,
        (x >> 32) as u16,
        seed & 0xfff,
        (seed >> 12) & 0xfff,
        seed
    );
    let mut time = Vec::new(); // metav1.Time{seconds}
    time.push(1 << 3);
    varint(&mut time, 1_764_000_000 + seed as u64);
    let mut managed = Vec::new(); // metav1.ManagedFieldsEntry
    field(&mut managed, 1, b"kubectl-create");
    field(&mut managed, 2, b"Update");
    field(&mut managed, 3, b"v1");
    field(&mut managed, 4, &time);
    field(&mut managed, 6, b"FieldsV1");
    let mut fields = Vec::new(); // metav1.FieldsV1{raw}
    field(
        &mut fields,
        1,
        br#"{"f:data":{".":{},"f:v":{}},"f:type":{}}"#,
    );
    field(&mut managed, 7, &fields);
    let mut meta = Vec::new(); // metav1.ObjectMeta
    field(&mut meta, 1, name.as_bytes());
    field(&mut meta, 3, ns.as_bytes());
    field(&mut meta, 5, uid.as_bytes());
    field(&mut meta, 8, &time);
    field(&mut meta, 17, &managed);
    let mut entry = Vec::new(); // map<string, bytes> entry
    field(&mut entry, 1, b"v");
    field(&mut entry, 2, &data);
    let mut secret = Vec::new(); // v1.Secret
    field(&mut secret, 1, &meta);
    field(&mut secret, 2, &entry);
    field(&mut secret, 3, b"Opaque");
    let mut type_meta = Vec::new();
    field(&mut type_meta, 1, b"v1");
    field(&mut type_meta, 2, b"Secret");
    let mut out = b"k8s\0".to_vec();
    field(&mut out, 1, &type_meta);
    field(&mut out, 2, &secret);
    field(&mut out, 3, b""); // contentEncoding
    field(&mut out, 4, b""); // contentType
    out
}

#[tokio::main(worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = parse()?;
    let ts = match &a.config {
        Some(p) => Some(Transformers::new(
            &EncryptionConfiguration::load(p.as_ref())?.config,
        )?),
        None => None,
    };
    let t = ts
        .as_ref()
        .map(|ts| ts.for_resource(&GroupResource::new("", "secrets")).0);
    let opts = ConnectOptions {
        endpoints: a.endpoints.split(',').map(str::to_string).collect(),
        ..Default::default()
    };
    let (etcd, _) = Etcd::connect(&opts).await?;
    if let Some(page_size) = a.read {
        return read_all(&etcd, &a.prefix, page_size).await;
    }
    // Values first, so that only etcd is timed.
    let mut batches: Vec<Vec<(Vec<u8>, Vec<u8>)>> = Vec::new();
    let mut bytes = 0usize;
    for i in 0..a.count {
        let (ns, name) = (format!("ns{}", i % 50), format!("secret-{i:07}"));
        let key = format!("{}/{ns}/{name}", a.prefix).into_bytes();
        let plain = secret(&ns, &name, a.size, i);
        let value = match &t {
            Some(t) => t.write(&plain, &key)?,
            None => plain,
        };
        bytes += value.len();
        if batches.last().is_none_or(|b| b.len() >= a.batch) {
            batches.push(Vec::with_capacity(a.batch));
        }
        if let Some(b) = batches.last_mut() {
            b.push((key, value));
        }
    }
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for b in batches {
        while set.len() >= a.in_flight.max(1) {
            if let Some(r) = set.join_next().await {
                r??;
            }
        }
        let e = etcd.clone();
        set.spawn(async move { e.put_many(&b).await });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "wrote {} values ({:.1} MiB) in {:.2} s: {:.0} objects/s (batch {}, {} in flight)",
        a.count,
        bytes as f64 / (1 << 20) as f64,
        secs,
        a.count as f64 / secs,
        a.batch,
        a.in_flight
    );
    Ok(())
}

/// Read every key under `prefix`/ at the latest revision; print the rate.
async fn read_all(
    etcd: &Etcd,
    prefix: &str,
    page_size: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let revision = etcd.revision().await?;
    let mut pages = etcd.prefetch(
        format!("{prefix}/").into_bytes(),
        format!("{prefix}0").into_bytes(),
        atrest::etcd::ReadAt::Fixed(revision),
        page_size,
        4,
        None,
    );
    let (mut count, mut bytes) = (0usize, 0usize);
    while let Some(page) = pages.recv().await {
        for kv in page?.kvs {
            count += 1;
            bytes += kv.value.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "read {count} values ({:.1} MiB) in {secs:.2} s: {:.0} objects/s (pages of {page_size}, 4 in flight)",
        bytes as f64 / (1 << 20) as f64,
        count as f64 / secs,
    );
    Ok(())
}
