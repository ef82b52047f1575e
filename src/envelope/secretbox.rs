//! The `secretbox` provider: NaCl secretbox (XSalsa20-Poly1305), 32-byte key.
//!
//! Layout after `k8s:enc:secretbox:v1:<key name>:` is `nonce (24) ‖ tag (16) ‖ ciphertext`
//! (the nonce, then Go's `secretbox.Seal` output), as written by kubernetes
//! `staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/secretbox/secretbox.go`.
//! No additional data is authenticated.

use super::{random_bytes, DecryptError, KeySizeError, RandomError};
use crate::key::SecretKey;
use crypto_secretbox::aead::generic_array::GenericArray;
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;

/// secretbox nonce size.
pub const NONCE_SIZE: usize = 24;
/// Poly1305 tag size (NaCl's `secretbox.Overhead`).
pub const TAG_SIZE: usize = 16;
/// The only key size secretbox accepts.
pub const KEY_SIZE: usize = 32;

/// One secretbox key.
#[derive(Clone)]
pub struct Secretbox {
    cipher: XSalsa20Poly1305,
}

impl std::fmt::Debug for Secretbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secretbox(..)")
    }
}

impl Secretbox {
    /// Take a 32-byte key.
    pub fn new(key: &SecretKey) -> Result<Self, KeySizeError> {
        let k = key.expose();
        if k.len() != KEY_SIZE {
            return Err(KeySizeError {
                provider: "secretbox",
                expected: "32",
                actual: k.len(),
            });
        }
        Ok(Secretbox {
            cipher: XSalsa20Poly1305::new(GenericArray::from_slice(k)),
        })
    }

    /// Length of `nonce ‖ tag ‖ ciphertext` for a plaintext of `len` bytes.
    pub fn sealed_len(len: usize) -> usize {
        NONCE_SIZE + TAG_SIZE + len
    }

    /// Append `nonce ‖ tag ‖ ciphertext` to `out`, with a fresh random nonce.
    pub fn seal_into(&self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), RandomError> {
        let mut nonce = [0u8; NONCE_SIZE];
        random_bytes(&mut nonce)?;
        self.seal_with_nonce_into(&nonce, plaintext, out);
        Ok(())
    }

    /// Append using the given nonce (known-answer tests and benchmarks only).
    pub fn seal_with_nonce_into(
        &self,
        nonce: &[u8; NONCE_SIZE],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) {
        out.reserve(Self::sealed_len(plaintext.len()));
        out.extend_from_slice(nonce);
        let tag_start = out.len();
        out.extend_from_slice(&[0u8; TAG_SIZE]);
        let ct_start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self.cipher.encrypt_in_place_detached(
            GenericArray::from_slice(nonce),
            b"",
            &mut out[ct_start..],
        );
        match tag {
            Ok(tag) => out[tag_start..ct_start].copy_from_slice(&tag),
            Err(_) => unreachable!("XSalsa20 has a 256 GiB message limit"),
        }
    }

    /// Decrypt and authenticate `nonce ‖ tag ‖ ciphertext`.
    pub fn open(&self, payload: &[u8]) -> Result<Vec<u8>, DecryptError> {
        if payload.len() < NONCE_SIZE + TAG_SIZE {
            return Err(DecryptError::TooShort {
                len: payload.len(),
                min: NONCE_SIZE + TAG_SIZE,
            });
        }
        let (nonce, rest) = payload.split_at(NONCE_SIZE);
        let (tag, ct) = rest.split_at(TAG_SIZE);
        let mut out = ct.to_vec();
        self.cipher
            .decrypt_in_place_detached(
                GenericArray::from_slice(nonce),
                b"",
                &mut out,
                GenericArray::from_slice(tag),
            )
            .map_err(|_| DecryptError::AuthenticationFailed)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let c = Secretbox::new(&SecretKey::new(vec![9u8; 32])).unwrap();
        for len in [0usize, 1, 64, 5000] {
            let pt = vec![0x11u8; len];
            let mut out = Vec::new();
            c.seal_into(&pt, &mut out).unwrap();
            assert_eq!(out.len(), Secretbox::sealed_len(len));
            assert_eq!(c.open(&out).unwrap(), pt);
            out[NONCE_SIZE] ^= 0x80;
            assert_eq!(c.open(&out), Err(DecryptError::AuthenticationFailed));
        }
        assert!(matches!(
            c.open(&[0u8; 39]),
            Err(DecryptError::TooShort { .. })
        ));
        assert!(Secretbox::new(&SecretKey::new(vec![0u8; 16])).is_err());
    }

    /// The NaCl reference vector (crypto_secretbox_xsalsa20poly1305 test, "box"
    /// example from the NaCl distribution and Go's `nacl/secretbox` tests): checks
    /// that the stored layout is tag-then-ciphertext as Go's Seal writes it.
    #[test]
    fn nacl_reference_vector() {
        let key = hex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389");
        let nonce: [u8; 24] = hex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
            .try_into()
            .unwrap();
        let msg = hex(concat!(
            "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c6129",
            "6cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde",
            "048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705"
        ));
        let expect = hex(concat!(
            "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186a",
            "c0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae",
            "90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74",
            "e355a5"
        ));
        let c = Secretbox::new(&SecretKey::new(key)).unwrap();
        let mut out = Vec::new();
        c.seal_with_nonce_into(&nonce, &msg, &mut out);
        assert_eq!(&out[NONCE_SIZE..], &expect[..]);
        assert_eq!(c.open(&out).unwrap(), msg);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
