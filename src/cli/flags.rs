//! Flag values shared by several commands: `--resource`, `--threads` and the
//! provider of a new key.

use atrest::etcd_key::{clean_prefix, GroupResource};
use atrest::rotation::KeyedProvider;
use clap::ValueEnum;

/// Provider of a new key (`generate --provider`, `rotate prepare --provider`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyProvider {
    /// AES-256-CBC with PKCS#7 padding.
    Aescbc,
    /// AES-256-GCM (rotate keys well before 2^32 writes).
    Aesgcm,
    /// XSalsa20-Poly1305.
    Secretbox,
}

impl From<KeyProvider> for KeyedProvider {
    fn from(p: KeyProvider) -> KeyedProvider {
        match p {
            KeyProvider::Aescbc => KeyedProvider::AesCbc,
            KeyProvider::Aesgcm => KeyedProvider::AesGcm,
            KeyProvider::Secretbox => KeyedProvider::Secretbox,
        }
    }
}

/// `--etcd-prefix`, read as kube-apiserver reads it ([`clean_prefix`]).
pub fn etcd_prefix(value: &str) -> Result<String, std::convert::Infallible> {
    Ok(clean_prefix(value))
}

/// Parse `--resource` values.
pub fn resource_filter(list: &[String]) -> Option<Vec<GroupResource>> {
    let v: Vec<GroupResource> = list
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(GroupResource::parse)
        .collect();
    (!v.is_empty()).then_some(v)
}

/// `--threads`: 0 means one per CPU.
pub fn threads(n: usize) -> usize {
    if n == 0 {
        atrest::source::default_threads()
    } else {
        n
    }
}
