//! The `aescbc` provider: AES-CBC with PKCS#7 padding and no MAC.
//!
//! Layout after `k8s:enc:aescbc:v1:<key name>:` is `IV (16) ‖ ciphertext`, as
//! written by kubernetes `staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/aes/aes_cbc.go`
//! (formerly `aes.go`). Reads follow upstream's checks exactly: at least one IV,
//! whole blocks, last byte `p` with `0 < p <= len`, the last `p` bytes all equal
//! to `p`. Upstream does not cap `p` at the block size, so neither do we. The one
//! deliberate difference: an IV with no ciphertext is an error here, where
//! upstream indexes an empty slice and panics.

use super::{random_bytes, DecryptError, KeySizeError, RandomError};
use crate::key::SecretKey;
use aes::cipher::block_padding::{NoPadding, Pkcs7};
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use aes::{Aes128, Aes192, Aes256};

/// AES block size, which is also the IV size.
pub const BLOCK_SIZE: usize = 16;

#[derive(Clone)]
enum Cipher {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

/// One aescbc key with its AES key schedule computed once.
#[derive(Clone)]
pub struct AesCbc {
    cipher: Cipher,
}

impl std::fmt::Debug for AesCbc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesCbc(..)")
    }
}

impl AesCbc {
    /// Expand a 16, 24 or 32-byte key.
    pub fn new(key: &SecretKey) -> Result<Self, KeySizeError> {
        let k = key.expose();
        let cipher = match k.len() {
            16 => Cipher::A128(Aes128::new(GenericArray::from_slice(k))),
            24 => Cipher::A192(Aes192::new(GenericArray::from_slice(k))),
            32 => Cipher::A256(Aes256::new(GenericArray::from_slice(k))),
            n => {
                return Err(KeySizeError {
                    provider: "aescbc",
                    expected: "16, 24 or 32",
                    actual: n,
                })
            }
        };
        Ok(AesCbc { cipher })
    }

    /// Length of `IV ‖ ciphertext` for a plaintext of `len` bytes (1..=16 pad bytes).
    pub fn sealed_len(len: usize) -> usize {
        BLOCK_SIZE + (len / BLOCK_SIZE + 1) * BLOCK_SIZE
    }

    /// Append `IV ‖ ciphertext` for `plaintext` to `out`, with a fresh random IV.
    pub fn seal_into(&self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), RandomError> {
        let mut iv = [0u8; BLOCK_SIZE];
        random_bytes(&mut iv)?;
        self.seal_with_iv_into(&iv, plaintext, out);
        Ok(())
    }

    /// Append `IV ‖ ciphertext` using the given IV. Only for known-answer tests
    /// and benchmarks: reusing an IV leaks equal prefixes of plaintexts.
    pub fn seal_with_iv_into(&self, iv: &[u8; BLOCK_SIZE], plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(Self::sealed_len(plaintext.len()));
        out.extend_from_slice(iv);
        let ct_start = out.len();
        out.extend_from_slice(plaintext);
        let pad = BLOCK_SIZE - plaintext.len() % BLOCK_SIZE;
        out.resize(ct_start + plaintext.len() + pad, 0);
        let buf = &mut out[ct_start..];
        let iv = GenericArray::from_slice(iv);
        // The buffer has exactly the room PKCS#7 needs, so padding cannot fail.
        let res = match &self.cipher {
            Cipher::A128(c) => cbc::Encryptor::<Aes128>::inner_iv_init(c.clone(), iv)
                .encrypt_padded_mut::<Pkcs7>(buf, plaintext.len())
                .map(|_| ()),
            Cipher::A192(c) => cbc::Encryptor::<Aes192>::inner_iv_init(c.clone(), iv)
                .encrypt_padded_mut::<Pkcs7>(buf, plaintext.len())
                .map(|_| ()),
            Cipher::A256(c) => cbc::Encryptor::<Aes256>::inner_iv_init(c.clone(), iv)
                .encrypt_padded_mut::<Pkcs7>(buf, plaintext.len())
                .map(|_| ()),
        };
        debug_assert!(res.is_ok());
        debug_assert_eq!(out.len() - start, Self::sealed_len(plaintext.len()));
    }

    /// Decrypt `IV ‖ ciphertext` with upstream's exact padding rules.
    pub fn open(&self, payload: &[u8]) -> Result<Vec<u8>, DecryptError> {
        if payload.len() < BLOCK_SIZE {
            return Err(DecryptError::TooShort {
                len: payload.len(),
                min: BLOCK_SIZE,
            });
        }
        let (iv, ct) = payload.split_at(BLOCK_SIZE);
        if ct.is_empty() {
            return Err(DecryptError::EmptyCiphertext);
        }
        if ct.len() % BLOCK_SIZE != 0 {
            return Err(DecryptError::NotBlockMultiple { len: ct.len() });
        }
        let mut out = vec![0u8; ct.len()];
        self.decrypt_blocks(iv, ct, &mut out);
        let plain_len = check_padding(&out)?;
        out.truncate(plain_len);
        Ok(out)
    }

    /// Raw CBC decryption of whole blocks, `ct` into `out` (same length).
    fn decrypt_blocks(&self, iv: &[u8], ct: &[u8], out: &mut [u8]) {
        let iv = GenericArray::from_slice(iv);
        // Lengths are equal whole blocks (checked by the caller), so this cannot fail.
        let res = match &self.cipher {
            Cipher::A128(c) => cbc::Decryptor::<Aes128>::inner_iv_init(c.clone(), iv)
                .decrypt_padded_b2b_mut::<NoPadding>(ct, out)
                .map(|_| ()),
            Cipher::A192(c) => cbc::Decryptor::<Aes192>::inner_iv_init(c.clone(), iv)
                .decrypt_padded_b2b_mut::<NoPadding>(ct, out)
                .map(|_| ()),
            Cipher::A256(c) => cbc::Decryptor::<Aes256>::inner_iv_init(c.clone(), iv)
                .decrypt_padded_b2b_mut::<NoPadding>(ct, out)
                .map(|_| ()),
        };
        debug_assert!(res.is_ok());
    }
}

/// Upstream's PKCS#7 check: returns the plaintext length without the padding.
/// `p` above 16 is accepted when the bytes match, as upstream does.
pub fn check_padding(decrypted: &[u8]) -> Result<usize, DecryptError> {
    let Some(&p) = decrypted.last() else {
        return Err(DecryptError::InvalidPkcs7Data);
    };
    let p = usize::from(p);
    if p == 0 || p > decrypted.len() {
        return Err(DecryptError::InvalidPkcs7Data);
    }
    let size = decrypted.len() - p;
    if decrypted[size..].iter().any(|&b| usize::from(b) != p) {
        return Err(DecryptError::InvalidPadding);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> SecretKey {
        SecretKey::new((0..n as u8).collect())
    }

    #[test]
    fn round_trip_every_key_size_and_length() {
        for n in [16, 24, 32] {
            let c = AesCbc::new(&key(n)).unwrap();
            for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 1000] {
                let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut out = Vec::new();
                c.seal_into(&pt, &mut out).unwrap();
                assert_eq!(out.len(), AesCbc::sealed_len(len));
                assert_eq!(c.open(&out).unwrap(), pt);
            }
        }
    }

    #[test]
    fn rejects_bad_key_sizes() {
        for n in [0, 1, 15, 17, 31, 33, 64] {
            let e = AesCbc::new(&key(n)).unwrap_err();
            assert_eq!(e.actual, n);
        }
    }

    #[test]
    fn read_rules() {
        let c = AesCbc::new(&key(32)).unwrap();
        assert!(matches!(
            c.open(&[0u8; 15]),
            Err(DecryptError::TooShort { len: 15, min: 16 })
        ));
        assert_eq!(c.open(&[0u8; 16]), Err(DecryptError::EmptyCiphertext));
        assert_eq!(
            c.open(&[0u8; 16 + 17]),
            Err(DecryptError::NotBlockMultiple { len: 17 })
        );
    }

    #[test]
    fn padding_rules_match_upstream() {
        assert_eq!(
            check_padding(&[b'a'; 15].iter().copied().chain([1]).collect::<Vec<_>>()),
            Ok(15)
        );
        assert_eq!(check_padding(&[16u8; 16]), Ok(0));
        assert_eq!(
            check_padding(&[0u8; 16]),
            Err(DecryptError::InvalidPkcs7Data)
        );
        let mut b = vec![7u8; 32];
        b[31] = 33;
        assert_eq!(check_padding(&b), Err(DecryptError::InvalidPkcs7Data));
        // p > 16 is accepted when all p bytes match (upstream has no block-size cap).
        let mut b = vec![1u8; 48];
        b[16..].fill(32);
        assert_eq!(check_padding(&b), Ok(16));
        let mut b = vec![3u8; 16];
        b[14] = 2;
        assert_eq!(check_padding(&b), Err(DecryptError::InvalidPadding));
        assert_eq!(check_padding(&[]), Err(DecryptError::InvalidPkcs7Data));
    }

    /// NIST SP 800-38A F.2.5/F.2.6 (CBC-AES256), first two blocks, with a PKCS#7
    /// block appended: checks the raw CBC chain against a published vector.
    #[test]
    fn nist_sp800_38a_cbc_aes256() {
        let k = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let pt = hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let c = AesCbc::new(&SecretKey::new(k)).unwrap();
        let mut out = Vec::new();
        c.seal_with_iv_into(&iv, &pt, &mut out);
        assert_eq!(
            &out[16..48],
            &hex("f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d")[..]
        );
        assert_eq!(c.open(&out).unwrap(), pt);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
