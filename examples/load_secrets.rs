//! Load many Secrets into an etcd fast (benchmarks): transactions of `--batch`
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
fn secret(ns: &str, name: &str, size: usize, seed: usize) -> Vec<u8> {
    let mut data = String::with_capacity(size);
    let mut x = seed as u64 ^ 0x9e37_79b9_7f4a_7c15;
    while data.len() < size.saturating_sub(120) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.push_str(&format!("{x:016x}"));
    }
    format!(
        "{{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\"}},\"data\":{{\"v\":\"{data}\"}},\"type\":\"Opaque\"}}"
    )
    .into_bytes()
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
