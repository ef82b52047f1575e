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
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::aescbc_x86;

/// AES block size, which is also the IV size.
pub const BLOCK_SIZE: usize = 16;

/// Values at least this long are decrypted in chunks on the rayon pool.
pub const PARALLEL_MIN: usize = 1 << 20;
/// Chunk size for parallel decryption (a whole number of blocks).
const PARALLEL_CHUNK: usize = 256 << 10;

#[derive(Clone)]
enum Cipher {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

/// Which implementation an [`AesCbc`] runs. Chosen once per key from the CPU's
/// features; tests and benchmarks can ask for another with [`AesCbc::with_backend`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The `aes`/`cbc` crates (runtime AES-NI detection inside; any architecture).
    Portable,
    /// Hand AES-NI encryption, round keys in registers; decryption as
    /// `Portable` (x86_64).
    AesNi,
    /// VAES/AVX2 decryption, 16 blocks in flight; AES-NI encryption (x86_64).
    Vaes,
}

enum Accel {
    None,
    #[cfg(target_arch = "x86_64")]
    X86(Box<aescbc_x86::RoundKeys>),
}

impl Clone for Accel {
    fn clone(&self) -> Self {
        match self {
            Accel::None => Accel::None,
            // Copied heap to heap: no copy of the schedule on the stack.
            #[cfg(target_arch = "x86_64")]
            Accel::X86(rk) => Accel::X86(rk.boxed_copy()),
        }
    }
}

/// One aescbc key with its AES key schedules computed once.
#[derive(Clone)]
pub struct AesCbc {
    cipher: Cipher,
    accel: Accel,
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
        // The CPU's features are detected once per key, here.
        #[cfg(target_arch = "x86_64")]
        let accel = match aescbc_x86::Level::detect().and_then(|l| aescbc_x86::RoundKeys::new(k, l))
        {
            // Expanded in place on the heap (see `RoundKeys`).
            Some(rk) => Accel::X86(rk),
            None => Accel::None,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let accel = Accel::None;
        Ok(AesCbc { cipher, accel })
    }

    /// The implementation this key runs.
    #[doc(hidden)]
    pub fn backend(&self) -> Backend {
        match &self.accel {
            Accel::None => Backend::Portable,
            #[cfg(target_arch = "x86_64")]
            Accel::X86(rk) => match rk.level() {
                aescbc_x86::Level::AesNi => Backend::AesNi,
                aescbc_x86::Level::Vaes => Backend::Vaes,
            },
        }
    }

    /// The same key on another implementation, or `None` when this CPU cannot
    /// run it. For tests and benchmarks that compare implementations.
    #[doc(hidden)]
    pub fn with_backend(&self, backend: Backend) -> Option<AesCbc> {
        let accel = match backend {
            Backend::Portable => Accel::None,
            #[cfg(target_arch = "x86_64")]
            Backend::AesNi | Backend::Vaes => {
                let level = if backend == Backend::Vaes {
                    aescbc_x86::Level::Vaes
                } else {
                    aescbc_x86::Level::AesNi
                };
                match &self.accel {
                    Accel::X86(rk) => Accel::X86(rk.with_level(level)?),
                    Accel::None => return None,
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => return None,
        };
        Some(AesCbc {
            cipher: self.cipher.clone(),
            accel,
        })
    }

    /// [`AesCbc::open`] on the portable implementation, whatever the CPU.
    #[doc(hidden)]
    pub fn open_portable(&self, payload: &[u8]) -> Result<Vec<u8>, DecryptError> {
        AesCbc {
            cipher: self.cipher.clone(),
            accel: Accel::None,
        }
        .open(payload)
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
        let pad = BLOCK_SIZE - plaintext.len() % BLOCK_SIZE;
        #[cfg(target_arch = "x86_64")]
        if let Accel::X86(rk) = &self.accel {
            // Encrypt straight from `plaintext` into the spare capacity: no copy
            // pass and no zeroing pass over `out`.
            let full = plaintext.len() - plaintext.len() % BLOCK_SIZE;
            let mut last = [pad as u8; BLOCK_SIZE];
            last[..BLOCK_SIZE - pad].copy_from_slice(&plaintext[full..]);
            let written = rk.encrypt_to(iv, &plaintext[..full], &last, out.spare_capacity_mut());
            if written == full + BLOCK_SIZE {
                // SAFETY: `encrypt_to` initialised the first `written` bytes of the
                // spare capacity (it writes all of them or none).
                unsafe { out.set_len(out.len() + written) };
                debug_assert_eq!(out.len() - start, Self::sealed_len(plaintext.len()));
                return;
            }
        }
        let ct_start = out.len();
        out.extend_from_slice(plaintext);
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
        let mut iv_block = [0u8; BLOCK_SIZE];
        iv_block.copy_from_slice(iv);
        if ct.is_empty() {
            return Err(DecryptError::EmptyCiphertext);
        }
        if ct.len() % BLOCK_SIZE != 0 {
            return Err(DecryptError::NotBlockMultiple { len: ct.len() });
        }
        let mut out = self.decrypt_to_vec(&iv_block, ct);
        let plain_len = check_padding(&out)?;
        out.truncate(plain_len);
        Ok(out)
    }

    /// CBC decryption of whole blocks into a new buffer. The VAES path writes
    /// into uninitialised capacity, sparing a zeroing pass.
    fn decrypt_to_vec(&self, iv: &[u8; BLOCK_SIZE], ct: &[u8]) -> Vec<u8> {
        #[cfg(target_arch = "x86_64")]
        if let Accel::X86(rk) = &self.accel {
            if rk.level() == aescbc_x86::Level::Vaes {
                let mut out = Vec::with_capacity(ct.len());
                let spare = &mut out.spare_capacity_mut()[..ct.len()];
                let done = std::sync::atomic::AtomicBool::new(true);
                in_chunks(iv, ct, spare, |iv, c, o| {
                    if !rk.decrypt_uninit(iv, c, o) {
                        done.store(false, std::sync::atomic::Ordering::Relaxed);
                    }
                });
                if done.into_inner() {
                    // SAFETY: every chunk was decrypted in full (`decrypt_uninit`
                    // returned true for each), writing all `ct.len()` bytes, a
                    // whole number of blocks (checked by the caller).
                    unsafe { out.set_len(ct.len()) };
                    return out;
                }
            }
        }
        let mut out = vec![0u8; ct.len()];
        self.decrypt_blocks(iv, ct, &mut out);
        out
    }

    /// Raw CBC decryption of whole blocks, `ct` into `out` (same length, whole
    /// blocks: checked by the caller).
    fn decrypt_blocks(&self, iv: &[u8; BLOCK_SIZE], ct: &[u8], out: &mut [u8]) {
        debug_assert_eq!(ct.len(), out.len());
        debug_assert_eq!(ct.len() % BLOCK_SIZE, 0);
        in_chunks(iv, ct, out, |iv, c, o| self.decrypt_serial(iv, c, o));
    }

    /// [`AesCbc::decrypt_blocks`] on the current thread.
    fn decrypt_serial(&self, iv: &[u8; BLOCK_SIZE], ct: &[u8], out: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if let Accel::X86(rk) = &self.accel {
            if rk.decrypt(iv, ct, out) {
                return;
            }
        }
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

/// Run a CBC decryption `f(iv, ct, out)` over `ct`/`out` (same length, whole
/// blocks). Values of [`PARALLEL_MIN`] bytes or more are split into chunks on the
/// rayon pool: each chunk's IV is the ciphertext block before it.
fn in_chunks<T: Send>(
    iv: &[u8; BLOCK_SIZE],
    ct: &[u8],
    out: &mut [T],
    f: impl Fn(&[u8; BLOCK_SIZE], &[u8], &mut [T]) + Sync,
) {
    if ct.len() < PARALLEL_MIN || rayon::current_num_threads() < 2 {
        return f(iv, ct, out);
    }
    out.par_chunks_mut(PARALLEL_CHUNK)
        .enumerate()
        .for_each(|(i, o)| {
            let start = i * PARALLEL_CHUNK;
            let end = (start + o.len()).min(ct.len());
            let chunk_iv = match start.checked_sub(BLOCK_SIZE) {
                Some(p) => {
                    let mut b = [0u8; BLOCK_SIZE];
                    b.copy_from_slice(&ct[p..start]);
                    b
                }
                None => *iv,
            };
            f(&chunk_iv, &ct[start.min(end)..end], o);
        });
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

    /// Every implementation this CPU can run, the portable one first.
    fn all_backends(c: &AesCbc) -> Vec<AesCbc> {
        [Backend::Portable, Backend::AesNi, Backend::Vaes]
            .into_iter()
            .filter_map(|b| c.with_backend(b))
            .collect()
    }

    /// Deterministic test data (xorshift64*), so failures reproduce.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn fast_path_is_chosen_when_the_cpu_has_it() {
        let c = AesCbc::new(&key(32)).unwrap();
        let want = if std::arch::is_x86_feature_detected!("vaes")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("aes")
        {
            Backend::Vaes
        } else if std::arch::is_x86_feature_detected!("aes") {
            Backend::AesNi
        } else {
            Backend::Portable
        };
        assert_eq!(c.backend(), want);
        assert_eq!(
            all_backends(&c).len(),
            1 + (want != Backend::Portable) as usize + (want == Backend::Vaes) as usize
        );
        assert_eq!(
            c.with_backend(Backend::Portable).unwrap().backend(),
            Backend::Portable
        );
    }

    /// NIST SP 800-38A F.2.1–F.2.6: all four blocks, every key size, both
    /// directions, on every implementation.
    #[test]
    fn nist_sp800_38a_cbc_all_key_sizes_all_backends() {
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let pt = hex(concat!(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
        ));
        let cases = [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2\
                 73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7",
            ),
            (
                "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
                "4f021db243bc633d7178183a9fa071e8b4d9ada9ad7dedf4e5e738763f69145a\
                 571b242012fb7ae07fa9baac3df102e008b0e27988598881d920a9e64f5615cd",
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
                 39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
            ),
        ];
        for (k, ct) in cases {
            let want = hex(&ct.replace(' ', ""));
            let base = AesCbc::new(&SecretKey::new(hex(k))).unwrap();
            for c in all_backends(&base) {
                let mut sealed = Vec::new();
                c.seal_with_iv_into(&iv, &pt, &mut sealed);
                assert_eq!(&sealed[16..80], &want[..], "encrypt {k} {:?}", c.backend());
                let mut out = vec![0u8; 64];
                c.decrypt_blocks(&iv, &want, &mut out);
                assert_eq!(out, pt, "decrypt {k} {:?}", c.backend());
                assert_eq!(c.open(&sealed).unwrap(), pt);
            }
        }
    }

    /// Fast paths and the portable path agree on random data of 1..=300 blocks.
    #[test]
    fn backends_agree_on_random_data() {
        for (ki, n) in [16usize, 24, 32].into_iter().enumerate() {
            let base = AesCbc::new(&SecretKey::new(noise(ki as u64 + 7, n))).unwrap();
            let backends = all_backends(&base);
            for blocks in 1..=300usize {
                let data = noise((n * 1000 + blocks) as u64, 16 + blocks * 16);
                let iv: [u8; 16] = data[..16].try_into().unwrap();
                let ct = &data[16..];
                let mut want = vec![0u8; ct.len()];
                backends[0].decrypt_serial(&iv, ct, &mut want);
                for c in &backends[1..] {
                    let mut got = vec![0u8; ct.len()];
                    c.decrypt_serial(&iv, ct, &mut got);
                    assert_eq!(
                        got,
                        want,
                        "decrypt key {n} blocks {blocks} {:?}",
                        c.backend()
                    );
                }
                // Encryption: same IV, same plaintext, same bytes.
                let pt = &ct[..ct.len() - (blocks % 16)];
                let mut want = Vec::new();
                backends[0].seal_with_iv_into(&iv, pt, &mut want);
                for c in &backends[1..] {
                    let mut got = Vec::new();
                    c.seal_with_iv_into(&iv, pt, &mut got);
                    assert_eq!(
                        got,
                        want,
                        "encrypt key {n} len {} {:?}",
                        pt.len(),
                        c.backend()
                    );
                    assert_eq!(c.open(&got).unwrap(), pt);
                    assert_eq!(c.open_portable(&got).unwrap(), pt);
                }
            }
        }
    }

    /// Values above the parallel threshold are split into chunks; the result must
    /// equal a serial decryption, including lengths that end mid-chunk.
    #[test]
    fn parallel_decryption_matches_serial() {
        let base = AesCbc::new(&key(32)).unwrap();
        for c in all_backends(&base) {
            for len in [
                PARALLEL_MIN,
                PARALLEL_MIN + 16,
                3 * PARALLEL_CHUNK + PARALLEL_MIN + 48,
            ] {
                let data = noise(len as u64, 16 + len);
                let iv: [u8; 16] = data[..16].try_into().unwrap();
                let ct = &data[16..];
                let mut serial = vec![0u8; len];
                base.with_backend(Backend::Portable)
                    .unwrap()
                    .decrypt_serial(&iv, ct, &mut serial);
                let mut par = vec![0u8; len];
                c.decrypt_blocks(&iv, ct, &mut par);
                assert!(par == serial, "len {len} {:?}", c.backend());
                assert!(
                    c.decrypt_to_vec(&iv, ct) == serial,
                    "len {len} {:?}",
                    c.backend()
                );
            }
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
