//! Encryption keys: secret bytes in zeroizing storage, and their public fingerprints.
//!
//! A key's bytes are reachable only through [`SecretKey::expose`], so every use of key
//! material is visible in review. `Debug` prints the fingerprint, never the bytes.
//! The fingerprint is HMAC-SHA256 keyed by the key over [`FINGERPRINT_LABEL`], first
//! 8 bytes in hex: admins compare it across control-plane nodes without revealing keys.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// Fixed label MACed by every key to make its fingerprint.
pub const FINGERPRINT_LABEL: &[u8] = b"atrest key fingerprint v1";

/// Go's `base64.StdEncoding`: standard alphabet, padding required, and bits
/// after the last byte ignored (Go checks them only in `.Strict()` mode).
const GO_STD_ENCODING: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Secret key bytes, wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Zeroizing<Vec<u8>>);

/// Why a key's `secret:` field could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyDecodeError {
    /// The text is not standard base64 (the error never repeats the text itself).
    #[error("secret is not valid base64 (standard alphabet, with padding): {0}")]
    Base64(String),
}

impl SecretKey {
    /// Wrap raw key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretKey(Zeroizing::new(bytes))
    }

    /// Decode the base64 `secret:` of an EncryptionConfiguration key.
    ///
    /// kube-apiserver uses Go's `base64.StdEncoding.DecodeString`, which requires
    /// canonical padding but, not being `.Strict()`, ignores non-zero bits after
    /// the last byte; we do the same.
    pub fn from_base64(text: &str) -> Result<Self, KeyDecodeError> {
        // Go's decoder skips '\r' and '\n' anywhere in the input, and nothing else.
        // Both buffers are sized once up front and never grow: a growing Vec
        // would leave reallocated copies of the key in freed memory.
        let mut clean: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(text.len()));
        clean.extend(text.bytes().filter(|&b| b != b'\r' && b != b'\n'));
        let mut out = Zeroizing::new(vec![0u8; clean.len().div_ceil(4) * 3]);
        let n = GO_STD_ENCODING
            .decode_slice(&*clean, &mut out[..])
            .map_err(|e| match e {
                base64::DecodeSliceError::DecodeError(e) => {
                    KeyDecodeError::Base64(describe_b64_error(&e))
                }
                // Cannot happen: the buffer holds the largest possible output.
                base64::DecodeSliceError::OutputSliceTooSmall => {
                    KeyDecodeError::Base64("decoded key larger than expected".to_string())
                }
            })?;
        // Shortening keeps the allocation: nothing is copied.
        out.truncate(n);
        Ok(SecretKey(out))
    }

    /// A fresh key of `len` bytes from the operating system's RNG.
    pub fn generate(len: usize) -> Result<Self, getrandom::Error> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        getrandom::fill(&mut bytes)?;
        Ok(SecretKey(bytes))
    }

    /// Key length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty key (never valid for any provider).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret bytes. Every caller of this is a place key material is used.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The base64 text for a config file, in a zeroizing string.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*self.0))
    }

    /// Public fingerprint: HMAC-SHA256(key, FINGERPRINT_LABEL), first 8 bytes, hex.
    pub fn fingerprint(&self) -> Fingerprint {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(FINGERPRINT_LABEL);
        let tag = mac.finalize().into_bytes();
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&tag[..8]);
        Fingerprint(fp)
    }
}

fn describe_b64_error(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(off, _) => format!("invalid character at offset {off}"),
        base64::DecodeError::InvalidLength(n) => format!("invalid length {n}"),
        base64::DecodeError::InvalidLastSymbol(off, _) => {
            format!("invalid last symbol at offset {off}")
        }
        base64::DecodeError::InvalidPadding => "invalid padding".to_string(),
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretKey({} bytes, fingerprint {})",
            self.len(),
            self.fingerprint()
        )
    }
}

/// First 8 bytes of HMAC-SHA256(key, label), shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 8]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let k = SecretKey::new(b"ABCDEFGHIJKLMNOP".to_vec());
        let s = format!("{k:?}");
        assert!(!s.contains("ABCDEFGH"), "{s}");
        assert!(!s.contains("65, 66"), "{s}");
        assert!(s.contains(&k.fingerprint().to_string()));
    }

    #[test]
    fn fingerprint_is_stable_and_key_dependent() {
        let a = SecretKey::new(vec![1u8; 32]);
        let b = SecretKey::new(vec![2u8; 32]);
        assert_eq!(a.fingerprint(), SecretKey::new(vec![1u8; 32]).fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().to_string().len(), 16);
    }

    #[test]
    fn base64_decoding_is_strict() {
        assert_eq!(SecretKey::from_base64("AAAA").map(|k| k.len()), Ok(3));
        assert!(SecretKey::from_base64("AAA").is_err());
        assert_eq!(SecretKey::from_base64("AA\r\nAA").map(|k| k.len()), Ok(3));
        assert!(SecretKey::from_base64(" AAAA").is_err());
        assert!(SecretKey::from_base64("not base64!").is_err());
        let err = SecretKey::from_base64("c2VjcmV0!!")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn generated_keys_differ() {
        let a = SecretKey::generate(32).unwrap();
        let b = SecretKey::generate(32).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a.expose(), b.expose());
    }
}
