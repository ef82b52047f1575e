//! Write then read: any plaintext at any etcd key, with any provider and key
//! size, reads back to the same bytes through a chain that holds every key.
//!
//! Input layout: byte 0 picks the writer, byte 1 is the etcd key length, then
//! the etcd key, then the plaintext.
#![no_main]

use atrest::config::{KeyConfig, KeysConfig, ProviderConfig};
use atrest::envelope::looks_like_object;
use atrest::key::SecretKey;
use atrest::transformer::{ReadMode, Transformer};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key(name: &str, byte: u8, len: usize) -> KeyConfig {
    KeyConfig {
        name: name.to_string(),
        secret: SecretKey::new(vec![byte; len]),
    }
}

fn writers() -> &'static [ProviderConfig] {
    static W: OnceLock<Vec<ProviderConfig>> = OnceLock::new();
    W.get_or_init(|| {
        let one = |k: KeyConfig| KeysConfig { keys: vec![k] };
        vec![
            ProviderConfig::AesCbc(one(key("c16", 1, 16))),
            ProviderConfig::AesCbc(one(key("c24", 2, 24))),
            ProviderConfig::AesCbc(one(key("c32", 3, 32))),
            ProviderConfig::AesGcm(one(key("g16", 4, 16))),
            ProviderConfig::AesGcm(one(key("g24", 5, 24))),
            ProviderConfig::AesGcm(one(key("g32", 6, 32))),
            ProviderConfig::Secretbox(one(key("s", 7, 32))),
            ProviderConfig::Identity,
        ]
    })
}

struct Chains {
    writers: Vec<Transformer>,
    reader: Transformer,
}

fn chains() -> &'static Chains {
    static C: OnceLock<Chains> = OnceLock::new();
    C.get_or_init(|| {
        let w = writers();
        let writers = w
            .iter()
            .map(|p| Transformer::from_providers(std::slice::from_ref(p)))
            .collect::<Result<Vec<_>, _>>()
            .expect("fixed test keys have valid sizes");
        // The reader lists every key after a decoy of each kind, so most reads
        // are stale and have to skip keys first.
        let mut providers = vec![
            ProviderConfig::AesCbc(KeysConfig {
                keys: vec![key("decoy", 9, 32)],
            }),
            ProviderConfig::AesGcm(KeysConfig {
                keys: vec![key("decoy", 9, 32)],
            }),
        ];
        providers.extend(w.iter().cloned());
        let reader = Transformer::from_providers(&providers).expect("valid sizes");
        Chains { writers, reader }
    })
}

fuzz_target!(|data: &[u8]| {
    let [choice, key_len, rest @ ..] = data else {
        return;
    };
    let c = chains();
    let writer = &c.writers[usize::from(*choice) % c.writers.len()];
    let split = usize::from(*key_len).min(rest.len());
    let (etcd_key, plaintext) = rest.split_at(split);
    let stored = writer.write(plaintext, etcd_key).expect("write");
    let identity = stored == plaintext;
    if identity && plaintext.starts_with(b"k8s:enc:") {
        // kube-apiserver's identity refuses to read such data back; so do we.
        assert!(writer.read(&stored, etcd_key, ReadMode::Apiserver).is_err());
        return;
    }
    for reader in [writer, &c.reader] {
        let r = reader
            .read(&stored, etcd_key, ReadMode::Apiserver)
            .expect("a value we wrote must read back");
        assert_eq!(&*r.plaintext, plaintext);
        match reader.read(&stored, etcd_key, ReadMode::Checked) {
            Ok(r) => assert_eq!(&*r.plaintext, plaintext),
            Err(e) => assert!(!looks_like_object(plaintext), "checked read failed: {e}"),
        }
    }
});
