//! Any bytes read as a stored value, through a chain with every provider kind:
//! classification and both read modes must never panic, and a successful read
//! must agree with what the prefix says.
#![no_main]

use atrest::config::{KeyConfig, KeysConfig, KmsConfig, ProviderConfig};
use atrest::envelope::{looks_like_object, Envelope, ProviderKind};
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

fn chain() -> &'static Transformer {
    static T: OnceLock<Transformer> = OnceLock::new();
    T.get_or_init(|| {
        let keys = |p: &str| KeysConfig {
            keys: vec![
                key(&format!("{p}16"), 1, 16),
                key(&format!("{p}24"), 2, 24),
                key(&format!("{p}32"), 3, 32),
                // Same name as the first key, other bytes: both must be tried.
                key(&format!("{p}16"), 4, 16),
            ],
        };
        Transformer::from_providers(&[
            ProviderConfig::AesCbc(keys("c")),
            ProviderConfig::AesGcm(keys("g")),
            ProviderConfig::Secretbox(KeysConfig {
                keys: vec![key("s", 5, 32), key("s:x", 6, 32)],
            }),
            ProviderConfig::Kms(KmsConfig {
                name: "v1plugin".into(),
                ..Default::default()
            }),
            ProviderConfig::Kms(KmsConfig {
                api_version: Some("v2".into()),
                name: "v2plugin".into(),
                ..Default::default()
            }),
            ProviderConfig::Identity,
        ])
        .expect("fixed test keys have valid sizes")
    })
}

fuzz_target!(|data: &[u8]| {
    let env = Envelope::parse(data);
    let _ = env.key_name_str();
    let t = chain();
    let etcd_key: &[u8] = b"/registry/secrets/default/db";
    for mode in [ReadMode::Apiserver, ReadMode::Checked] {
        match t.read(data, etcd_key, mode) {
            Ok(r) => {
                assert_eq!(r.looks_like_object, looks_like_object(&r.plaintext));
                // Checked mode vets decryptions; identity reads are taken as is.
                if mode == ReadMode::Checked && r.by.provider != ProviderKind::Identity {
                    assert!(r.looks_like_object);
                }
                if !data.starts_with(b"k8s:enc:") {
                    assert_eq!(&*r.plaintext, data, "plaintext is read as is");
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
