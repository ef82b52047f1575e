//! AES-CBC on x86_64 with AES-NI, and with VAES for decryption.
//!
//! CBC decryption is parallel: plaintext block `i` is `D(C[i]) ^ C[i-1]`, so many
//! blocks can be in the AES pipeline at once. The VAES path decrypts two blocks
//! per 256-bit register and keeps eight registers (16 blocks) in flight. (A
//! hand 8-block AES-NI loop measured slower than the `aes` crate's, so CPUs
//! without VAES decrypt with the crate.) Encryption is serial (each block needs
//! the previous ciphertext), so it runs one block at a time with the round keys
//! held in registers: faster than the crate's, which reloads them.
//!
//! The key schedule is FIPS-197 section 5.2, with `SubWord` computed by
//! `AESENCLAST` (no lookup tables); decryption uses the equivalent inverse cipher
//! (section 5.3.5, `AESIMC` on the middle round keys). Round keys live in
//! [`RoundKeys`], which is wiped on drop. Callers pick a path with [`Level::detect`]
//! and must only call a path the CPU supports.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;
use zeroize::Zeroize;

const BLOCK: usize = 16;
const MAX_ROUNDS: usize = 14;

/// Which x86 instruction set a key uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// AES-NI: hand encryption only.
    AesNi,
    /// VAES + AVX2 (256-bit) decryption, AES-NI encryption.
    Vaes,
}

impl Level {
    /// The best level this CPU supports, if any.
    pub(crate) fn detect() -> Option<Level> {
        if !std::arch::is_x86_feature_detected!("aes")
            || !std::arch::is_x86_feature_detected!("sse2")
        {
            return None;
        }
        if std::arch::is_x86_feature_detected!("vaes")
            && std::arch::is_x86_feature_detected!("avx2")
        {
            Some(Level::Vaes)
        } else {
            Some(Level::AesNi)
        }
    }

    /// Whether the CPU supports this level.
    pub(crate) fn supported(self) -> bool {
        matches!(
            (Level::detect(), self),
            (Some(Level::Vaes), _) | (Some(Level::AesNi), Level::AesNi)
        )
    }
}

/// Expanded AES round keys for both directions, wiped on drop. Never printed.
///
/// Only ever made on the heap ([`RoundKeys::new`] returns a `Box` filled in
/// place, and there is no `Clone`): a value moved out of a stack frame would
/// leave an unwiped copy of the schedule behind.
pub(crate) struct RoundKeys {
    /// 10, 12 or 14.
    rounds: usize,
    /// Encryption round keys `0..=rounds`.
    enc: [[u8; BLOCK]; MAX_ROUNDS + 1],
    /// Equivalent-inverse-cipher round keys `0..=rounds`, in the order used.
    dec: [[u8; BLOCK]; MAX_ROUNDS + 1],
    /// The instruction set chosen for this key.
    level: Level,
}

impl Drop for RoundKeys {
    fn drop(&mut self) {
        self.enc.zeroize();
        self.dec.zeroize();
    }
}

impl RoundKeys {
    /// Expand a 16, 24 or 32-byte key for `level`. Returns `None` for another
    /// key size or when the CPU does not support `level`.
    pub(crate) fn new(key: &[u8], level: Level) -> Option<Box<RoundKeys>> {
        if !matches!(key.len(), 16 | 24 | 32) || !level.supported() {
            return None;
        }
        let mut rk = Self::zeroed(key.len() / 4 + 6, level);
        // SAFETY: `level.supported()` above checked that the CPU has AES-NI and SSE2.
        unsafe { expand(key, &mut rk) };
        Some(rk)
    }

    /// All-zero keys on the heap, to be filled in place.
    fn zeroed(rounds: usize, level: Level) -> Box<RoundKeys> {
        Box::new(RoundKeys {
            rounds,
            enc: [[0; BLOCK]; MAX_ROUNDS + 1],
            dec: [[0; BLOCK]; MAX_ROUNDS + 1],
            level,
        })
    }

    /// A copy on the heap, made in place.
    pub(crate) fn boxed_copy(&self) -> Box<RoundKeys> {
        let mut rk = Self::zeroed(self.rounds, self.level);
        rk.enc.copy_from_slice(&self.enc);
        rk.dec.copy_from_slice(&self.dec);
        rk
    }

    /// The same round keys run at another level, if the CPU supports it.
    pub(crate) fn with_level(&self, level: Level) -> Option<Box<RoundKeys>> {
        if !level.supported() {
            return None;
        }
        let mut rk = self.boxed_copy();
        rk.level = level;
        Some(rk)
    }

    pub(crate) fn level(&self) -> Level {
        self.level
    }

    /// CBC-decrypt the whole blocks of `ct` into `out` (the shorter length,
    /// rounded down to whole blocks, is processed) with VAES. Returns false,
    /// doing nothing, at the AES-NI level: there the `aes` crate's 8-block
    /// decryption measured faster than a hand loop, so the caller uses it.
    pub(crate) fn decrypt(&self, iv: &[u8; BLOCK], ct: &[u8], out: &mut [u8]) -> bool {
        let n = ct.len().min(out.len()) / BLOCK;
        // SAFETY: `out` is writable for n whole blocks.
        unsafe { self.decrypt_raw(iv, ct, out.as_mut_ptr(), n) }
    }

    /// [`RoundKeys::decrypt`] into uninitialised memory; when it returns true,
    /// the first `min(ct.len(), out.len()) / 16 * 16` bytes of `out` are written.
    pub(crate) fn decrypt_uninit(
        &self,
        iv: &[u8; BLOCK],
        ct: &[u8],
        out: &mut [MaybeUninit<u8>],
    ) -> bool {
        let n = ct.len().min(out.len()) / BLOCK;
        // SAFETY: `out` is writable for n whole blocks; bytes are only written.
        unsafe { self.decrypt_raw(iv, ct, out.as_mut_ptr().cast(), n) }
    }

    /// Safety: `out` is writable for `n * 16` bytes and `n * 16 <= ct.len()`.
    unsafe fn decrypt_raw(&self, iv: &[u8; BLOCK], ct: &[u8], out: *mut u8, n: usize) -> bool {
        if self.level != Level::Vaes {
            return false;
        }
        // SAFETY: `new`/`with_level` only build Vaes keys when the CPU has AES-NI,
        // AVX2 and VAES; the bounds are the caller's.
        match self.rounds {
            10 => decrypt_vaes::<10>(self, iv, ct.as_ptr(), out, n),
            12 => decrypt_vaes::<12>(self, iv, ct.as_ptr(), out, n),
            _ => decrypt_vaes::<14>(self, iv, ct.as_ptr(), out, n),
        }
        true
    }

    /// CBC-encrypt the whole blocks of `src`, then the block `last`, into the
    /// start of `dst`. Returns the bytes written (`src.len() / 16 * 16 + 16`),
    /// or 0, writing nothing, when `dst` is shorter than that.
    pub(crate) fn encrypt_to(
        &self,
        iv: &[u8; BLOCK],
        src: &[u8],
        last: &[u8; BLOCK],
        dst: &mut [MaybeUninit<u8>],
    ) -> usize {
        let n = src.len() / BLOCK;
        let total = (n + 1) * BLOCK;
        if dst.len() < total {
            return 0;
        }
        let d = dst.as_mut_ptr().cast::<u8>();
        // SAFETY: `new`/`with_level` only build keys for a level the CPU supports,
        // and both levels include AES-NI and SSE2. `src` has n
        // whole blocks, `last` one, and `dst` room for n + 1 blocks, checked above.
        unsafe {
            let prev = match self.rounds {
                10 => encrypt_aesni::<10>(self, iv, src.as_ptr(), d, n),
                12 => encrypt_aesni::<12>(self, iv, src.as_ptr(), d, n),
                _ => encrypt_aesni::<14>(self, iv, src.as_ptr(), d, n),
            };
            let d = d.add(n * BLOCK);
            match self.rounds {
                10 => encrypt_aesni::<10>(self, &prev, last.as_ptr(), d, 1),
                12 => encrypt_aesni::<12>(self, &prev, last.as_ptr(), d, 1),
                _ => encrypt_aesni::<14>(self, &prev, last.as_ptr(), d, 1),
            };
        }
        total
    }
}

/// FIPS-197 `SubWord`: with the word in all four columns, ShiftRows moves nothing,
/// so `AESENCLAST` with a zero round key is exactly SubBytes on each byte.
#[target_feature(enable = "aes,sse2")]
unsafe fn sub_word(w: u32) -> u32 {
    let x = _mm_aesenclast_si128(_mm_set1_epi32(w as i32), _mm_setzero_si128());
    _mm_cvtsi128_si32(x) as u32
}

/// FIPS-197 key expansion into `rk.enc`, then the equivalent inverse cipher's keys.
#[target_feature(enable = "aes,sse2")]
unsafe fn expand(key: &[u8], rk: &mut RoundKeys) {
    const RCON: [u32; 10] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];
    let nk = key.len() / 4;
    let nr = rk.rounds;
    let total = 4 * (nr + 1);
    // Words in little-endian byte order: byte 0 of the word is the low byte.
    let mut w = [0u32; 4 * (MAX_ROUNDS + 1)];
    for (i, c) in key.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    for i in nk..total {
        let mut t = w[i - 1];
        if i % nk == 0 {
            // RotWord moves byte 0 to the end: a right rotation of the LE word.
            t = sub_word(t.rotate_right(8)) ^ RCON[i / nk - 1];
        } else if nk > 6 && i % nk == 4 {
            t = sub_word(t);
        }
        w[i] = w[i - nk] ^ t;
    }
    for (r, chunk) in w[..total].chunks_exact(4).enumerate() {
        for (j, word) in chunk.iter().enumerate() {
            rk.enc[r][4 * j..4 * j + 4].copy_from_slice(&word.to_le_bytes());
        }
    }
    w.zeroize();
    rk.dec[0] = rk.enc[nr];
    for i in 1..nr {
        let k = _mm_loadu_si128(rk.enc[nr - i].as_ptr().cast());
        _mm_storeu_si128(rk.dec[i].as_mut_ptr().cast(), _mm_aesimc_si128(k));
    }
    rk.dec[nr] = rk.enc[0];
}

/// Overwrite round keys copied into locals (registers spilled to the stack)
/// before the frame is left; volatile so the stores are not optimised away.
#[inline(always)]
unsafe fn wipe_regs<T: Copy>(regs: &mut [T]) {
    for r in regs.iter_mut() {
        // SAFETY: `r` is a valid, aligned place; all-zero bytes are a valid
        // value of the SIMD register types this is used with.
        core::ptr::write_volatile(r, core::mem::zeroed());
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

#[inline(always)]
unsafe fn load128(p: *const u8) -> __m128i {
    _mm_loadu_si128(p.cast())
}

/// VAES CBC decryption: block 0 with AES-NI, then 16 blocks per iteration in
/// eight 256-bit registers, then pairs, then a last odd block.
#[target_feature(enable = "aes,avx2,vaes")]
///
/// Safety: the CPU has AES-NI, AVX2 and VAES; `cp` is readable and `op`
/// writable for `n * 16` bytes, and they do not overlap.
unsafe fn decrypt_vaes<const NR: usize>(
    rk: &RoundKeys,
    iv: &[u8; BLOCK],
    cp: *const u8,
    op: *mut u8,
    n: usize,
) {
    if n == 0 {
        return;
    }
    let mut k = [_mm256_setzero_si256(); MAX_ROUNDS + 1];
    let mut k1 = [_mm_setzero_si128(); MAX_ROUNDS + 1];
    for ((wide, narrow), key) in k.iter_mut().zip(k1.iter_mut()).zip(&rk.dec[..=NR]) {
        *narrow = load128(key.as_ptr());
        *wide = _mm256_broadcastsi128_si256(*narrow);
    }
    // SAFETY (pointer arithmetic below): every block index used is < n, within
    // the caller's bounds; the "previous block" of block i >= 1 is ciphertext
    // block i - 1 (read from `cp`, never from `op`), and block 0 uses the IV.
    let one = |i: usize, prev: __m128i| {
        let mut x = _mm_xor_si128(load128(cp.add(i * BLOCK)), k1[0]);
        for key in &k1[1..NR] {
            x = _mm_aesdec_si128(x, *key);
        }
        x = _mm_aesdeclast_si128(x, k1[NR]);
        _mm_storeu_si128(op.add(i * BLOCK).cast(), _mm_xor_si128(x, prev));
    };
    one(0, load128(iv.as_ptr()));
    let mut i = 1;
    while i + 16 <= n {
        let mut b = [_mm256_setzero_si256(); 8];
        for (j, x) in b.iter_mut().enumerate() {
            *x = _mm256_xor_si256(_mm256_loadu_si256(cp.add((i + 2 * j) * BLOCK).cast()), k[0]);
        }
        for key in &k[1..NR] {
            for x in b.iter_mut() {
                *x = _mm256_aesdec_epi128(*x, *key);
            }
        }
        for (j, x) in b.iter().enumerate() {
            let prev = _mm256_loadu_si256(cp.add((i + 2 * j - 1) * BLOCK).cast());
            let p = _mm256_aesdeclast_epi128(*x, _mm256_xor_si256(k[NR], prev));
            _mm256_storeu_si256(op.add((i + 2 * j) * BLOCK).cast(), p);
        }
        i += 16;
    }
    while i + 2 <= n {
        let mut x = _mm256_xor_si256(_mm256_loadu_si256(cp.add(i * BLOCK).cast()), k[0]);
        for key in &k[1..NR] {
            x = _mm256_aesdec_epi128(x, *key);
        }
        let prev = _mm256_loadu_si256(cp.add((i - 1) * BLOCK).cast());
        let p = _mm256_aesdeclast_epi128(x, _mm256_xor_si256(k[NR], prev));
        _mm256_storeu_si256(op.add(i * BLOCK).cast(), p);
        i += 2;
    }
    if i < n {
        one(i, load128(cp.add((i - 1) * BLOCK)));
    }
    wipe_regs(&mut k);
    wipe_regs(&mut k1);
}

/// AES-NI CBC encryption of `n` blocks from `src` to `dst`, round keys in
/// registers. Returns the last ciphertext block (the IV for what follows).
///
/// Safety: the CPU has AES-NI; `src` is readable and `dst` writable for
/// `n * 16` bytes (they may be the same buffer, block for block).
#[target_feature(enable = "aes,sse2")]
unsafe fn encrypt_aesni<const NR: usize>(
    rk: &RoundKeys,
    iv: &[u8; BLOCK],
    src: *const u8,
    dst: *mut u8,
    n: usize,
) -> [u8; BLOCK] {
    let mut k = [_mm_setzero_si128(); MAX_ROUNDS + 1];
    for (reg, key) in k.iter_mut().zip(&rk.enc[..=NR]) {
        *reg = load128(key.as_ptr());
    }
    let mut prev = load128(iv.as_ptr());
    for i in 0..n {
        // SAFETY: i < n, within the caller's bounds.
        let (s, d) = (src.add(i * BLOCK), dst.add(i * BLOCK));
        // (block ^ k0) is off the dependency chain; only `^ prev` is on it.
        let mut x = _mm_xor_si128(_mm_xor_si128(load128(s), k[0]), prev);
        for key in &k[1..NR] {
            x = _mm_aesenc_si128(x, *key);
        }
        x = _mm_aesenclast_si128(x, k[NR]);
        _mm_storeu_si128(d.cast(), x);
        prev = x;
    }
    wipe_regs(&mut k);
    let mut out = [0u8; BLOCK];
    _mm_storeu_si128(out.as_mut_ptr().cast(), prev);
    out
}
