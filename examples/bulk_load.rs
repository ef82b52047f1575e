//! Load many Secrets into an etcd for benchmarks, as kube-apiserver would store
//! them: protobuf `v1.Secret` objects encrypted with the write key of a config.
//!
//! Writes go through etcd's JSON gateway (`POST /v3/kv/txn`, 100 puts per
//! transaction) over a plain loopback HTTP connection, so no extra client is needed.
//!
//!   cargo run --release --example bulk_load -- --endpoint http://127.0.0.1:24000 \
//!       --config enc.yaml --count 100000 --size 2048 [--plaintext]
//!
//! A config whose write provider is kms writes through its plugin, as
//! kube-apiserver does (KMS v2: one seed per run).

use atrest::config::EncryptionConfiguration;
use atrest::etcd_key::GroupResource;
use atrest::transformer::Transformers;
use base64::Engine;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field(out: &mut Vec<u8>, num: u64, data: &[u8]) {
    varint(out, num << 3 | 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// `k8s\0` + runtime.Unknown{typeMeta{v1, Secret}, raw = v1.Secret}.
fn secret(ns: &str, name: &str, payload: &[u8]) -> Vec<u8> {
    let mut meta = Vec::new();
    field(&mut meta, 1, name.as_bytes());
    field(&mut meta, 3, ns.as_bytes());
    field(&mut meta, 5, format!("uid-{ns}-{name}").as_bytes());
    let mut ts = Vec::new();
    varint(&mut ts, 8);
    varint(&mut ts, 1_764_400_000);
    field(&mut meta, 8, &ts);
    let mut raw = Vec::new();
    field(&mut raw, 1, &meta);
    let mut entry = Vec::new();
    field(&mut entry, 1, b"password");
    field(&mut entry, 2, payload);
    field(&mut raw, 2, &entry);
    field(&mut raw, 3, b"Opaque");
    let mut type_meta = Vec::new();
    field(&mut type_meta, 1, b"v1");
    field(&mut type_meta, 2, b"Secret");
    let mut out = b"k8s\x00".to_vec();
    field(&mut out, 1, &type_meta);
    field(&mut out, 2, &raw);
    field(&mut out, 3, b"");
    field(&mut out, 4, b"");
    out
}

fn post(conn: &mut BufReader<TcpStream>, host: &str, body: &[u8]) -> Result<(), String> {
    let req = format!(
        "POST /v3/kv/txn HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let s = conn.get_mut();
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut status = String::new();
    conn.read_line(&mut status).map_err(|e| e.to_string())?;
    let mut len = 0usize;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).map_err(|e| e.to_string())?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut resp = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            conn.read_line(&mut size_line).map_err(|e| e.to_string())?;
            let n = usize::from_str_radix(size_line.trim(), 16).map_err(|e| e.to_string())?;
            let mut chunk = vec![0u8; n + 2];
            conn.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            resp.extend_from_slice(&chunk[..n]);
            if n == 0 {
                break;
            }
        }
    } else {
        resp.resize(len, 0);
        conn.read_exact(&mut resp).map_err(|e| e.to_string())?;
    }
    if !status.contains(" 200") {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&resp)));
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let endpoint = get("--endpoint").expect("--endpoint http://HOST:PORT");
    let count: usize = get("--count").map_or(100_000, |v| v.parse().expect("--count N"));
    let size: usize = get("--size").map_or(2048, |v| v.parse().expect("--size BYTES"));
    let namespaces: usize = get("--namespaces").map_or(50, |v| v.parse().expect("--namespaces N"));
    let plaintext = args.iter().any(|a| a == "--plaintext");
    let ts = get("--config").map(|p| {
        let loaded = EncryptionConfiguration::load(std::path::Path::new(&p)).expect("config");
        // KMS providers write through their plugins (the config's endpoints).
        let plugins = atrest::kms::Plugins::from_config(&loaded.config, &[])
            .expect("kms providers")
            .map(std::sync::Arc::new);
        Transformers::with_kms(&loaded.config, plugins).expect("keys")
    });
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let stream = TcpStream::connect(&host).expect("connect to etcd");
    stream.set_nodelay(true).ok();
    let mut conn = BufReader::new(stream);
    let b64 = base64::engine::general_purpose::STANDARD;
    let gr = GroupResource::new("", "secrets");
    let mut rng_state = 0x9e37_79b9_7f4a_7c15u64;
    let start = std::time::Instant::now();
    for batch in (0..count).collect::<Vec<_>>().chunks(100) {
        let mut puts = Vec::with_capacity(batch.len());
        for &i in batch {
            let ns = format!("ns-{:03}", i % namespaces);
            let name = format!("secret-{i:07}");
            let key = format!("/registry/secrets/{ns}/{name}");
            // Incompressible, deterministic payload: base64 of xorshift output.
            let mut raw = vec![0u8; size * 3 / 4];
            for b in raw.iter_mut() {
                rng_state ^= rng_state << 13;
                rng_state ^= rng_state >> 7;
                rng_state ^= rng_state << 17;
                *b = rng_state as u8;
            }
            let obj = secret(&ns, &name, b64.encode(&raw).as_bytes());
            let value = match (&ts, plaintext) {
                (Some(ts), false) => ts
                    .for_resource(&gr)
                    .0
                    .write(&obj, key.as_bytes())
                    .expect("encrypt"),
                _ => obj,
            };
            puts.push(serde_json::json!({"requestPut": {"key": b64.encode(&key), "value": b64.encode(&value)}}));
        }
        let body = serde_json::to_vec(&serde_json::json!({"success": puts})).expect("json");
        if let Err(e) = post(&mut conn, &host, &body) {
            eprintln!("etcd txn failed: {e}");
            std::process::exit(1);
        }
    }
    eprintln!(
        "loaded {count} Secrets of ~{size} bytes in {:.1}s",
        start.elapsed().as_secs_f64()
    );
}
