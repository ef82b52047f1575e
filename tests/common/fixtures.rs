//! Fixtures the rotation tests share: EncryptionConfiguration text, the shape of a
//! config after an edit, kube objects as kube-apiserver stores them in protobuf
//! (`k8s\0` + runtime.Unknown, kubernetes
//! `staging/src/k8s.io/apimachinery/pkg/runtime/serializer/protobuf/protobuf.go`), and
//! checks on config files and their backups.

use atrest::config::EncryptionConfiguration;
use atrest::transformer::Transformer;
use std::fs;
use std::path::{Path, PathBuf};

pub const K1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
pub const K2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
pub const K3: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";

pub fn cfg_text(items: &[(&str, &str)]) -> String {
    let mut s =
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
            .to_string();
    for (res, providers) in items {
        s += &format!("  - resources: [{res}]\n    providers:\n{providers}");
    }
    s
}

pub fn cfg(items: &[(&str, &str)]) -> EncryptionConfiguration {
    EncryptionConfiguration::from_yaml_str(&cfg_text(items)).unwrap()
}

pub fn keyed(provider: &str, keys: &[(&str, &str)]) -> String {
    let mut s = format!("      - {provider}:\n          keys:\n");
    for (n, k) in keys {
        s += &format!("            - name: {n}\n              secret: {k}\n");
    }
    s
}

pub const ID: &str = "      - identity: {}\n";

/// Provider kinds and key names of item `i`, in order: `["aescbc:key2,key1", "identity"]`.
pub fn shape(c: &EncryptionConfiguration, i: usize) -> Vec<String> {
    c.resources[i]
        .providers
        .iter()
        .map(|p| match p.keys() {
            Some(ks) => format!(
                "{}:{}",
                p.kind_name(),
                ks.keys
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => p.kind_name().to_string(),
        })
        .collect()
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

pub fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    v.sort();
    v
}

/// Every base64 secret in a config file.
pub fn secrets_in(text: &str) -> Vec<String> {
    let c = EncryptionConfiguration::from_slice(text.as_bytes()).unwrap();
    let mut v = Vec::new();
    for item in &c.config.resources {
        for p in &item.providers {
            if let Some(ks) = p.keys() {
                v.extend(ks.keys.iter().map(|k| k.secret.to_base64().to_string()));
            }
        }
    }
    v
}

/// Protobuf field with a length-delimited value.
pub fn field(n: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![(n << 3) | 2];
    let mut len = bytes.len();
    while len >= 0x80 {
        v.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    v.push(len as u8);
    v.extend_from_slice(bytes);
    v
}

/// A `v1.Secret` as kube-apiserver stores it: `k8s\0` + runtime.Unknown.
pub fn stored_secret(ns: &str, name: &str, data: &[(&str, &[u8])]) -> Vec<u8> {
    let meta = [field(1, name.as_bytes()), field(3, ns.as_bytes())].concat();
    let mut secret = field(1, &meta);
    for (k, v) in data {
        secret.extend(field(2, &[field(1, k.as_bytes()), field(2, v)].concat()));
    }
    secret.extend(field(3, b"Opaque"));
    let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
    [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &secret)].concat()
}

/// A stored object for etcd key `key` (`/registry/<resource>/<ns>/<name>`), as
/// kube-apiserver writes it in protobuf.
pub fn object(key: &str) -> Vec<u8> {
    let parts: Vec<&str> = key.rsplitn(3, '/').collect();
    stored_secret(parts[1], parts[0], &[("v", b"x")])
}

/// `object(key)` sealed with `provider` key `name` (secret `secret`).
pub fn sealed(provider: &str, name: &str, secret: &str, key: &str) -> Vec<u8> {
    let c = cfg(&[("secrets", &keyed(provider, &[(name, secret)]))]);
    Transformer::from_providers(&c.resources[0].providers)
        .unwrap()
        .write(&object(key), key.as_bytes())
        .unwrap()
}
