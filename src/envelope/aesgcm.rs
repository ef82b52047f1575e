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
use std::mem::{ManuallyDrop, MaybeUninit};
use zeroize::Zeroize;

/// GCM nonce size used by kube-apiserver.
pub const NONCE_SIZE: usize = 12;
/// GCM tag size.
pub const TAG_SIZE: usize = 16;

type Aes192Gcm = GcmMode<Aes192, U12>;

/// Which implementation an [`AesGcm`] runs. [`AesGcm::new`] picks `Ring` for
/// 128 and 256-bit keys and `Portable` for 192-bit keys, which ring lacks; tests
/// and benchmarks can ask for one with [`AesGcm::with_backend`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The RustCrypto `aes-gcm` crate: every key size, any architecture.
    Portable,
    /// ring's assembly AES-GCM (VAES/AVX2 or AES-NI/PCLMULQDQ, chosen by ring at
    /// run time; a constant-time fallback elsewhere): 128 and 256-bit keys.
    Ring,
}

/// ring's expanded key (AES round keys and GHASH key powers), on the heap and
/// wiped when dropped.
///
/// ring does not wipe its keys: `LessSafeKey` has no `Drop`. It holds only
/// inline arrays (no heap pointers), so once dropped in place its bytes are
/// zeroed here before the allocation is freed. Not wiped: the copy ring builds
/// on the stack in `UnboundKey::new` before it is moved into the box (ring
/// cannot build in place), and ring's per-call stack temporaries (counter
/// blocks, GHASH state), as with the portable path.
struct RingKey(ManuallyDrop<Box<ring::aead::LessSafeKey>>);

impl RingKey {
    fn new(key: &[u8]) -> Option<RingKey> {
        let alg = match key.len() {
            16 => &ring::aead::AES_128_GCM,
            32 => &ring::aead::AES_256_GCM,
            _ => return None,
        };
        let unbound = ring::aead::UnboundKey::new(alg, key).ok()?;
        Some(RingKey(ManuallyDrop::new(Box::new(
            ring::aead::LessSafeKey::new(unbound),
        ))))
    }
}

impl Clone for RingKey {
    fn clone(&self) -> Self {
        RingKey(ManuallyDrop::new(Box::clone(&self.0)))
    }
}

impl Drop for RingKey {
    fn drop(&mut self) {
        // SAFETY: `self.0` is not used again. The box's value is dropped in
        // place (a no-op today: `LessSafeKey` owns no resources), then its memory,
        // viewed as `MaybeUninit` (valid for any bytes), is zeroed and freed with
        // the same layout, without running a destructor twice.
        unsafe {
            let boxed = ManuallyDrop::take(&mut self.0);
            let raw = Box::into_raw(boxed);
            std::ptr::drop_in_place(raw);
            let mut mem: Box<MaybeUninit<ring::aead::LessSafeKey>> = Box::from_raw(raw.cast());
            mem.zeroize();
        }
    }
}

#[derive(Clone)]
enum Cipher {
    Ring(RingKey),
    A128(Aes128Gcm),
    A192(Aes192Gcm),
    A256(Aes256Gcm),
}

/// One aesgcm key with its key schedule computed once.
///
/// 128 and 256-bit keys run on ring's assembly, 192-bit keys on the RustCrypto
/// `aes-gcm` crate; both produce the same bytes (tests prove it). Every copy of
/// the expanded key that lives as long as this value is wiped on drop: the
/// portable ciphers through the crate's `zeroize` feature, ring's through
/// `RingKey`.
#[derive(Clone)]
pub struct AesGcm {
    cipher: Cipher,
}

impl std::fmt::Debug for AesGcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesGcm(..)")
    }
}

fn check_size(k: &[u8]) -> Result<(), KeySizeError> {
    if matches!(k.len(), 16 | 24 | 32) {
        Ok(())
    } else {
        Err(KeySizeError {
            provider: "aesgcm",
            expected: "16, 24 or 32",
            actual: k.len(),
        })
    }
}

/// The RustCrypto cipher for a key whose size `check_size` accepted.
fn portable(k: &[u8]) -> Cipher {
    match k.len() {
        16 => Cipher::A128(Aes128Gcm::new(GenericArray::from_slice(k))),
        24 => Cipher::A192(Aes192Gcm::new(GenericArray::from_slice(k))),
        _ => Cipher::A256(Aes256Gcm::new(GenericArray::from_slice(k))),
    }
}

macro_rules! with_portable {
    ($cipher:expr, $c:ident => $e:expr) => {
        match $cipher {
            Cipher::A128($c) => Some($e),
            Cipher::A192($c) => Some($e),
            Cipher::A256($c) => Some($e),
            Cipher::Ring(_) => None,
        }
    };
}

impl AesGcm {
    /// Expand a 16, 24 or 32-byte key.
    pub fn new(key: &SecretKey) -> Result<Self, KeySizeError> {
        Self::from_key_bytes(key.expose())
    }

    /// Expand a 16, 24 or 32-byte key held by the caller in a zeroizing buffer
    /// (the HKDF-derived keys of KMS v2 seeds): ring for 16 and 32 bytes, the
    /// portable crate for 24.
    pub(crate) fn from_key_bytes(k: &[u8]) -> Result<Self, KeySizeError> {
        check_size(k)?;
        let cipher = RingKey::new(k)
            .map(Cipher::Ring)
            .unwrap_or_else(|| portable(k));
        Ok(AesGcm { cipher })
    }

    /// Expand `key` for the given implementation; `Ok(None)` when that
    /// implementation does not take this key size. For tests and benchmarks
    /// that compare implementations.
    #[doc(hidden)]
    pub fn with_backend(key: &SecretKey, backend: Backend) -> Result<Option<Self>, KeySizeError> {
        let k = key.expose();
        check_size(k)?;
        let cipher = match backend {
            Backend::Ring => match RingKey::new(k) {
                Some(r) => Cipher::Ring(r),
                None => return Ok(None),
            },
            Backend::Portable => portable(k),
        };
        Ok(Some(AesGcm { cipher }))
    }

    /// The implementation this key runs on.
    #[doc(hidden)]
    pub fn backend(&self) -> Backend {
        match self.cipher {
            Cipher::Ring(_) => Backend::Ring,
            _ => Backend::Portable,
        }
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
        let buf = &mut out[ct_start..];
        // In-place GCM encryption fails only for plaintexts over 64 GiB.
        let tag: Option<[u8; TAG_SIZE]> = match &self.cipher {
            Cipher::Ring(r) => {
                r.0.seal_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key(*nonce),
                    ring::aead::Aad::from(aad),
                    buf,
                )
                .ok()
                .and_then(|t| t.as_ref().try_into().ok())
            }
            portable => with_portable!(portable, c => c
                .encrypt_in_place_detached(GenericArray::from_slice(nonce), aad, buf)
                .map(|t| t.into()))
            .and_then(Result::ok),
        };
        match tag {
            Some(tag) => out.extend_from_slice(&tag),
            None => unreachable!("GCM plaintext limit is 64 GiB"),
        }
    }

    /// Decrypt and authenticate `nonce ‖ ciphertext ‖ tag` with `aad` (the etcd key).
    pub fn open(&self, payload: &[u8], aad: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let (nonce, ct, tag) = split_payload(payload)?;
        match &self.cipher {
            Cipher::Ring(r) => ring_open(&r.0, nonce, ct, tag, aad),
            portable => {
                let mut out = ct.to_vec();
                let ok = with_portable!(portable, c => c.decrypt_in_place_detached(
                    GenericArray::from_slice(nonce),
                    aad,
                    &mut out,
                    GenericArray::from_slice(tag),
                ))
                .is_some_and(|r| r.is_ok());
                if ok {
                    Ok(out)
                } else {
                    Err(DecryptError::AuthenticationFailed)
                }
            }
        }
    }

    /// Decrypt `payload` with a key used for this one value (a KMS v2 key
    /// derived from a seed), held by the caller in a zeroizing buffer: ring's
    /// expanded key is built on the stack and wiped right after, without the
    /// heap box of a long-lived key; a 24-byte key takes the portable path.
    pub(crate) fn open_once(
        key: &[u8],
        payload: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let alg = match key.len() {
            16 => &ring::aead::AES_128_GCM,
            32 => &ring::aead::AES_256_GCM,
            _ => {
                return AesGcm::from_key_bytes(key)
                    .map_err(|_| DecryptError::AuthenticationFailed)?
                    .open(payload, aad)
            }
        };
        let (nonce, ct, tag) = split_payload(payload)?;
        let unbound = ring::aead::UnboundKey::new(alg, key)
            .map_err(|_| DecryptError::AuthenticationFailed)?;
        let mut expanded = MaybeUninit::new(ring::aead::LessSafeKey::new(unbound));
        // SAFETY: initialised just above; wiped only below, after its last use.
        let out = ring_open(unsafe { expanded.assume_init_ref() }, nonce, ct, tag, aad);
        // `LessSafeKey` has no `Drop` and owns no heap memory (see `RingKey`):
        // wiping its bytes in place is all its end needs.
        expanded.zeroize();
        out
    }
}

/// A GCM payload's parts: nonce, ciphertext, tag.
type Parts<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// `nonce ‖ ciphertext ‖ tag`, split.
fn split_payload(payload: &[u8]) -> Result<Parts<'_>, DecryptError> {
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
    Ok((nonce, ct, tag))
}

/// Decrypt with ring: it decrypts, then checks the tag, and zeroes the output
/// on a mismatch.
fn ring_open(
    key: &ring::aead::LessSafeKey,
    nonce: &[u8],
    ct: &[u8],
    tag: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, DecryptError> {
    let mut out = ct.to_vec();
    ring::aead::Nonce::try_assume_unique_for_key(nonce)
        .and_then(|n| {
            let t = ring::aead::Tag::try_from(tag)?;
            key.open_in_place_separate_tag(n, ring::aead::Aad::from(aad), t, &mut out, 0..)
                .map(|_| ())
        })
        .map_err(|_| DecryptError::AuthenticationFailed)?;
    Ok(out)
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

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Test cases 4, 10 and 16 (a 60-byte plaintext, 20 bytes of AAD, one per
    /// key size) of McGrew and Viega, "The Galois/Counter Mode of Operation
    /// (GCM)", the specification NIST SP 800-38D adopted.
    #[test]
    fn gcm_spec_vectors_on_every_backend() {
        let key = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
        let nonce: [u8; NONCE_SIZE] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let cases = [
            (16, "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091", "5bc94fbc3221a5db94fae95ae7121a47"),
            (24, "3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710", "2519498e80f1478f37ba55bd6d27618c"),
            (32, "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662", "76fc6ece0f4e1768cddf8853bb2d551b"),
        ];
        for (size, ct, tag) in cases {
            let k = SecretKey::new(hex(&key[..size * 2]));
            let mut want = nonce.to_vec();
            want.extend(hex(ct));
            want.extend(hex(tag));
            let mut ran = 0;
            for backend in [Backend::Portable, Backend::Ring] {
                let Some(c) = AesGcm::with_backend(&k, backend).unwrap() else {
                    continue;
                };
                ran += 1;
                let mut out = Vec::new();
                c.seal_with_nonce_into(&nonce, &pt, &aad, &mut out);
                assert_eq!(out, want, "{size}-byte key on {backend:?}");
                assert_eq!(c.open(&want, &aad).unwrap(), pt, "{backend:?}");
            }
            // ring takes 128 and 256-bit keys only.
            assert_eq!(ran, if size == 24 { 1 } else { 2 }, "{size}");
        }
    }

    #[test]
    fn default_backend_by_key_size() {
        for (n, want) in [
            (16, Backend::Ring),
            (24, Backend::Portable),
            (32, Backend::Ring),
        ] {
            let c = AesGcm::new(&SecretKey::new(vec![3u8; n])).unwrap();
            assert_eq!(c.backend(), want, "{n}");
            assert_eq!(
                AesGcm::from_key_bytes(&[3u8; 32][..n]).unwrap().backend(),
                want
            );
            // A clone is an independent key with the same schedule.
            let d = c.clone();
            drop(c);
            let mut out = Vec::new();
            d.seal_into(b"x", b"k", &mut out).unwrap();
            assert_eq!(d.open(&out, b"k").unwrap(), b"x");
        }
        for n in [0usize, 15, 17, 31, 33, 64] {
            let e = AesGcm::new(&SecretKey::new(vec![0; n])).unwrap_err();
            assert_eq!(e.actual, n);
            let e = AesGcm::with_backend(&SecretKey::new(vec![0; n]), Backend::Ring).unwrap_err();
            assert_eq!(e.actual, n);
        }
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
        for backend in [Backend::Portable, Backend::Ring] {
            let c = AesGcm::with_backend(&SecretKey::new(vec![1u8; 32]), backend)
                .unwrap()
                .unwrap();
            assert_eq!(c.open(&out, b"k").unwrap(), b"hello");
            for i in 0..out.len() {
                let mut bad = out.clone();
                bad[i] ^= 0x80;
                assert_eq!(
                    c.open(&bad, b"k"),
                    Err(DecryptError::AuthenticationFailed),
                    "{backend:?} byte {i}"
                );
            }
            assert!(matches!(
                c.open(&out[..27], b"k"),
                Err(DecryptError::TooShort { len: 27, min: 28 })
            ));
        }
    }
}
