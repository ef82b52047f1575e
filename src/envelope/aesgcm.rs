//! The `aesgcm` provider: AES-GCM with a random 12-byte nonce and the etcd key as AAD.
//!
//! Layout after `k8s:enc:aesgcm:v1:<key name>:` is `nonce (12) ‖ ciphertext ‖ tag (16)`,
//! as written by kubernetes `staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/aes/aes.go`
//! (`NewGCMTransformer`). The additional authenticated data is the full etcd key
//! (e.g. `/registry/secrets/default/db`), so a value copied to another key fails.

use super::{random_bytes, DecryptError, KeySizeError, RandomError};
use crate::key::SecretKey;
use aes::Aes192;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm as GcmMode};

/// GCM nonce size used by kube-apiserver.
pub const NONCE_SIZE: usize = 12;
/// GCM tag size.
pub const TAG_SIZE: usize = 16;

type Aes192Gcm = GcmMode<Aes192, U12>;

#[derive(Clone)]
enum Cipher {
    A128(Aes128Gcm),
    A192(Aes192Gcm),
    A256(Aes256Gcm),
}

/// One aesgcm key with its key schedule computed once.
#[derive(Clone)]
pub struct AesGcm {
    cipher: Cipher,
}

impl std::fmt::Debug for AesGcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesGcm(..)")
    }
}

macro_rules! with_cipher {
    ($self:expr, $c:ident => $e:expr) => {
        match &$self.cipher {
            Cipher::A128($c) => $e,
            Cipher::A192($c) => $e,
            Cipher::A256($c) => $e,
        }
    };
}

impl AesGcm {
    /// Expand a 16, 24 or 32-byte key.
    pub fn new(key: &SecretKey) -> Result<Self, KeySizeError> {
        let k = key.expose();
        let cipher = match k.len() {
            16 => Cipher::A128(Aes128Gcm::new(GenericArray::from_slice(k))),
            24 => Cipher::A192(Aes192Gcm::new(GenericArray::from_slice(k))),
            32 => Cipher::A256(Aes256Gcm::new(GenericArray::from_slice(k))),
            n => {
                return Err(KeySizeError {
                    provider: "aesgcm",
                    expected: "16, 24 or 32",
                    actual: n,
                })
            }
        };
        Ok(AesGcm { cipher })
    }

    /// Length of `nonce ‖ ciphertext ‖ tag` for a plaintext of `len` bytes.
    pub fn sealed_len(len: usize) -> usize {
        NONCE_SIZE + len + TAG_SIZE
    }

    /// Append `nonce ‖ ciphertext ‖ tag` to `out`, with a fresh random nonce.
    pub fn seal_into(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RandomError> {
        let mut nonce = [0u8; NONCE_SIZE];
        random_bytes(&mut nonce)?;
        self.seal_with_nonce_into(&nonce, plaintext, aad, out);
        Ok(())
    }

    /// Append using the given nonce. Only for known-answer tests and benchmarks:
    /// a repeated GCM nonce under one key breaks confidentiality and integrity.
    pub fn seal_with_nonce_into(
        &self,
        nonce: &[u8; NONCE_SIZE],
        plaintext: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) {
        out.reserve(Self::sealed_len(plaintext.len()));
        out.extend_from_slice(nonce);
        let ct_start = out.len();
        out.extend_from_slice(plaintext);
        let n = GenericArray::from_slice(nonce);
        let buf = &mut out[ct_start..];
        // In-place GCM encryption fails only for plaintexts over 64 GiB.
        let tag = with_cipher!(self, c => c.encrypt_in_place_detached(n, aad, buf));
        match tag {
            Ok(tag) => out.extend_from_slice(&tag),
            Err(_) => unreachable!("GCM plaintext limit is 64 GiB"),
        }
    }

    /// Decrypt and authenticate `nonce ‖ ciphertext ‖ tag` with `aad` (the etcd key).
    pub fn open(&self, payload: &[u8], aad: &[u8]) -> Result<Vec<u8>, DecryptError> {
        // Upstream checks only the nonce length before calling Open; a payload
        // without a whole tag then fails authentication. Report both as too short.
        if payload.len() < NONCE_SIZE + TAG_SIZE {
            return Err(DecryptError::TooShort {
                len: payload.len(),
                min: NONCE_SIZE + TAG_SIZE,
            });
        }
        let (nonce, rest) = payload.split_at(NONCE_SIZE);
        let (ct, tag) = rest.split_at(rest.len() - TAG_SIZE);
        let mut out = ct.to_vec();
        let n = GenericArray::from_slice(nonce);
        let t = GenericArray::from_slice(tag);
        with_cipher!(self, c => c.decrypt_in_place_detached(n, aad, &mut out, t))
            .map_err(|_| DecryptError::AuthenticationFailed)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_aad_binding() {
        for n in [16usize, 24, 32] {
            let c = AesGcm::new(&SecretKey::new(vec![7u8; n])).unwrap();
            for len in [0usize, 1, 16, 1000] {
                let pt = vec![0x5au8; len];
                let mut out = Vec::new();
                c.seal_into(&pt, b"/registry/secrets/a/b", &mut out)
                    .unwrap();
                assert_eq!(out.len(), AesGcm::sealed_len(len));
                assert_eq!(c.open(&out, b"/registry/secrets/a/b").unwrap(), pt);
                assert_eq!(
                    c.open(&out, b"/registry/secrets/a/c"),
                    Err(DecryptError::AuthenticationFailed)
                );
            }
        }
    }

    /// Recorded output of upstream's NewGCMTransformer, from
    /// `pkg/storage/value/encrypt/aes/aes_test.go` (TestGCMLegacyDataCompatibility).
    #[test]
    fn upstream_legacy_gcm_vector() {
        let c = AesGcm::new(&SecretKey::new(b"snorlax_awesomes".to_vec())).unwrap();
        let stored: &[u8] = b"\x9f'\xc8\xfc\xea\x8aX\xc4g\xd8\xe47\xdb\xf2\xd8YU\xf9\xb4\xbd\x91/N\xf9g\xd7\x88\xa0\xcb\x07y}\xac\n?\n\x08E`\\\xa8Z\xc8V+J\xe1";
        assert_eq!(c.open(stored, b"bamboo").unwrap(), b"pandas are the best");
    }

    #[test]
    fn short_and_tampered() {
        let c = AesGcm::new(&SecretKey::new(vec![1u8; 32])).unwrap();
        assert!(matches!(
            c.open(&[0u8; 27], b""),
            Err(DecryptError::TooShort { .. })
        ));
        let mut out = Vec::new();
        c.seal_into(b"hello", b"k", &mut out).unwrap();
        let last = out.len() - 1;
        out[last] ^= 1;
        assert_eq!(c.open(&out, b"k"), Err(DecryptError::AuthenticationFailed));
    }
}
