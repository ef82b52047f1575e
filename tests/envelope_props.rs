//! Property tests: every provider round-trips any value, and no input makes a
//! read panic, in either read mode. AES-GCM's two implementations (ring for
//! 128/256-bit keys, the portable crate for all sizes) write the same bytes and
//! reject the same forgeries.

use atrest::config::{KeyConfig, KeysConfig, ProviderConfig};
use atrest::envelope::aesgcm::{AesGcm, Backend};
use atrest::envelope::DecryptError;
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

    #[test]
    fn gcm_backends_agree(size in prop::sample::select(vec![16usize, 24, 32]),
                          key in prop::collection::vec(any::<u8>(), 32),
                          nonce in any::<[u8; 12]>(),
                          plain in prop::collection::vec(any::<u8>(), 0..5000),
                          aad in prop::collection::vec(any::<u8>(), 0..80)) {
        let key = SecretKey::new(key[..size].to_vec());
        let portable = AesGcm::with_backend(&key, Backend::Portable).unwrap().unwrap();
        let ring = AesGcm::with_backend(&key, Backend::Ring).unwrap();
        let default = AesGcm::new(&key).unwrap();
        let mut want = Vec::new();
        portable.seal_with_nonce_into(&nonce, &plain, &aad, &mut want);
        prop_assert_eq!(want.len(), AesGcm::sealed_len(plain.len()));
        prop_assert_eq!(&want[..12], &nonce[..]);
        match ring {
            // ring has no 192-bit AES-GCM: the portable crate serves those keys.
            None => {
                prop_assert_eq!(size, 24);
                prop_assert_eq!(default.backend(), Backend::Portable);
            }
            Some(ring) => {
                prop_assert_eq!(default.backend(), Backend::Ring);
                let mut got = Vec::new();
                ring.seal_with_nonce_into(&nonce, &plain, &aad, &mut got);
                prop_assert_eq!(&got, &want);
                prop_assert_eq!(ring.open(&want, &aad).unwrap(), plain.clone());
            }
        }
        let mut got = Vec::new();
        default.seal_with_nonce_into(&nonce, &plain, &aad, &mut got);
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(portable.open(&got, &aad).unwrap(), plain.clone());
        prop_assert_eq!(default.open(&want, &aad).unwrap(), plain);
    }

    #[test]
    fn gcm_forgeries_fail_cleanly(size in prop::sample::select(vec![16usize, 24, 32]),
                                  plain in prop::collection::vec(any::<u8>(), 0..3000),
                                  flip in any::<prop::sample::Index>(),
                                  bit in 0u8..8,
                                  cut in any::<prop::sample::Index>(),
                                  other in 1u8..=255) {
        let key = SecretKey::new((0..size as u8).collect());
        let wrong_key = SecretKey::new((0..size as u8).map(|b| b ^ other).collect());
        let aad = b"/registry/secrets/default/db";
        let mut sealed = Vec::new();
        AesGcm::new(&key).unwrap().seal_into(&plain, aad, &mut sealed).unwrap();
        for backend in [Backend::Portable, Backend::Ring] {
            let Some(c) = AesGcm::with_backend(&key, backend).unwrap() else { continue };
            prop_assert_eq!(c.open(&sealed, aad).unwrap(), plain.clone());
            // One flipped bit anywhere: nonce, ciphertext or tag.
            let mut bad = sealed.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 1 << bit;
            prop_assert_eq!(c.open(&bad, aad), Err(DecryptError::AuthenticationFailed));
            // Another etcd key as AAD, including a prefix of the right one.
            prop_assert_eq!(c.open(&sealed, b"/registry/secrets/default/dc"), Err(DecryptError::AuthenticationFailed));
            prop_assert_eq!(c.open(&sealed, &aad[..aad.len() - 1]), Err(DecryptError::AuthenticationFailed));
            // Truncated: too short for nonce and tag, or a tag that is not the tag.
            let n = cut.index(sealed.len());
            let err = c.open(&sealed[..n], aad).unwrap_err();
            if n < 28 {
                prop_assert_eq!(err, DecryptError::TooShort { len: n, min: 28 });
            } else {
                prop_assert_eq!(err, DecryptError::AuthenticationFailed);
            }
            // Another key of the same size, on either implementation.
            for wb in [Backend::Portable, Backend::Ring] {
                if let Some(w) = AesGcm::with_backend(&wrong_key, wb).unwrap() {
                    prop_assert_eq!(w.open(&sealed, aad), Err(DecryptError::AuthenticationFailed));
                }
            }
        }
    }
}
