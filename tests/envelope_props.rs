//! Property tests: every provider round-trips any value, and no input makes a
//! read panic, in either read mode.

use atrest::config::{KeyConfig, KeysConfig, ProviderConfig};
use atrest::key::SecretKey;
use atrest::transformer::{ReadMode, Transformer};
use proptest::prelude::*;

fn keys(name: &str, k: Vec<u8>) -> KeysConfig {
    KeysConfig {
        keys: vec![KeyConfig {
            name: name.to_string(),
            secret: SecretKey::new(k),
        }],
    }
}

fn provider(kind: u8, key: Vec<u8>) -> ProviderConfig {
    match kind % 3 {
        0 => ProviderConfig::AesCbc(keys("a", key)),
        1 => ProviderConfig::AesGcm(keys("g", key)),
        _ => ProviderConfig::Secretbox(keys("s", key)),
    }
}

fn all_providers() -> Transformer {
    Transformer::from_providers(&[
        ProviderConfig::AesCbc(keys("a", vec![1; 32])),
        ProviderConfig::AesGcm(keys("g", vec![2; 16])),
        ProviderConfig::Secretbox(keys("s", vec![3; 32])),
        ProviderConfig::Identity,
    ])
    .unwrap()
}

proptest! {
    #[test]
    fn round_trip(kind in 0u8..3, size in prop::sample::select(vec![16usize, 24, 32]),
                  plain in prop::collection::vec(any::<u8>(), 0..2048),
                  etcd_key in "/registry/secrets/[a-z]{1,8}/[a-z0-9-]{1,20}") {
        let size = if kind % 3 == 2 { 32 } else { size };
        let t = Transformer::from_providers(&[provider(kind, vec![0x5a; size])]).unwrap();
        let stored = t.write(&plain, etcd_key.as_bytes()).unwrap();
        let r = t.read(&stored, etcd_key.as_bytes(), ReadMode::Apiserver).unwrap();
        prop_assert_eq!(&*r.plaintext, &plain[..]);
        prop_assert!(!r.stale);
    }

    #[test]
    fn read_never_panics(data in prop::collection::vec(any::<u8>(), 0..512), prefix in 0usize..5) {
        let t = all_providers();
        let prefixes: [&[u8]; 5] = [b"", b"k8s:enc:aescbc:v1:a:", b"k8s:enc:aesgcm:v1:g:", b"k8s:enc:secretbox:v1:s:", b"k8s:enc:"];
        let mut stored = prefixes[prefix].to_vec();
        stored.extend_from_slice(&data);
        let key: &[u8] = b"/registry/secrets/a/b";
        let expected = atrest::kube::ExpectedObject::from_key(key, "/registry").unwrap();
        for mode in [ReadMode::Apiserver, ReadMode::Checked(expected)] {
            let _ = t.read(&stored, key, mode);
        }
    }

    #[test]
    fn tampering_is_detected_by_authenticated_providers(kind in 1u8..3, plain in prop::collection::vec(any::<u8>(), 1..256), flip in any::<prop::sample::Index>()) {
        let t = Transformer::from_providers(&[provider(kind, vec![9; 32])]).unwrap();
        let mut stored = t.write(&plain, b"/k").unwrap();
        let prefix_len = if kind == 1 { 20 } else { 23 };
        let i = prefix_len + flip.index(stored.len() - prefix_len);
        stored[i] ^= 1;
        prop_assert!(t.read(&stored, b"/k", ReadMode::Apiserver).is_err());
    }
}
