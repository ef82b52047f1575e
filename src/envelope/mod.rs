//! Stored-value envelopes: the byte formats kube-apiserver writes to etcd.
//!
//! A stored value is either plaintext (the `identity` provider, no prefix) or
//! `k8s:enc:<provider>:v1:<key name>:` followed by the provider's ciphertext
//! (`k8s:enc:kms:v2:<plugin name>:` for KMS v2). The prefixes are those of
//! kubernetes `staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go`;
//! each provider's ciphertext layout is documented in its own module.
//!
//! This module classifies a stored value without any key ([`Envelope::parse`]);
//! decryption with keys lives in the provider modules and in [`crate::transformer`].

pub mod aescbc;
#[cfg(target_arch = "x86_64")]
mod aescbc_x86;
pub mod aesgcm;
pub mod identity;
pub mod kms;
pub mod secretbox;

use std::fmt;

/// Every encrypted value starts with this (`identity` refuses to read such data).
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";
/// `aescbc` provider prefix, before the key name.
pub const AESCBC_PREFIX: &[u8] = b"k8s:enc:aescbc:v1:";
/// `aesgcm` provider prefix, before the key name.
pub const AESGCM_PREFIX: &[u8] = b"k8s:enc:aesgcm:v1:";
/// `secretbox` provider prefix, before the key name.
pub const SECRETBOX_PREFIX: &[u8] = b"k8s:enc:secretbox:v1:";
/// KMS v1 provider prefix, before the plugin name.
pub const KMS_V1_PREFIX: &[u8] = b"k8s:enc:kms:v1:";
/// KMS v2 provider prefix, before the plugin name.
pub const KMS_V2_PREFIX: &[u8] = b"k8s:enc:kms:v2:";

/// Object magics that a correct decryption yields (see [`looks_like_object`]).
/// `k8s\0`: apimachinery `pkg/runtime/serializer/protobuf/protobuf.go`.
pub const PROTOBUF_MAGIC: &[u8] = b"k8s\x00";
/// CBOR self-describe tag 55799, used by the CBOR storage serializer.
pub const CBOR_MAGIC: &[u8] = &[0xd9, 0xd9, 0xf7];

/// True when `plaintext` starts like an object kube-apiserver stores: the protobuf
/// magic `k8s\0`, a JSON object `{`, or the CBOR self-describe tag.
///
/// Checked-mode reads use this to reject a wrong aescbc key, which passes the
/// padding check about one time in 256 (aescbc has no MAC).
pub fn looks_like_object(plaintext: &[u8]) -> bool {
    plaintext.starts_with(PROTOBUF_MAGIC)
        || plaintext.first() == Some(&b'{')
        || plaintext.starts_with(CBOR_MAGIC)
}

/// The provider a stored value names in its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKind {
    /// No prefix: stored as plaintext.
    Identity,
    /// `k8s:enc:aescbc:v1:`
    AesCbc,
    /// `k8s:enc:aesgcm:v1:`
    AesGcm,
    /// `k8s:enc:secretbox:v1:`
    Secretbox,
    /// `k8s:enc:kms:v1:`
    Kms,
    /// `k8s:enc:kms:v2:`
    KmsV2,
    /// Starts with `k8s:enc:` but names a provider kube-apiserver does not have.
    Unknown,
}

impl ProviderKind {
    /// The name used in reports and JSON output.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Identity => "identity",
            ProviderKind::AesCbc => "aescbc",
            ProviderKind::AesGcm => "aesgcm",
            ProviderKind::Secretbox => "secretbox",
            ProviderKind::Kms => "kms",
            ProviderKind::KmsV2 => "kms-v2",
            ProviderKind::Unknown => "unknown",
        }
    }

    /// The prefix before the key name, or `None` for identity/unknown.
    pub fn prefix(self) -> Option<&'static [u8]> {
        match self {
            ProviderKind::AesCbc => Some(AESCBC_PREFIX),
            ProviderKind::AesGcm => Some(AESGCM_PREFIX),
            ProviderKind::Secretbox => Some(SECRETBOX_PREFIX),
            ProviderKind::Kms => Some(KMS_V1_PREFIX),
            ProviderKind::KmsV2 => Some(KMS_V2_PREFIX),
            ProviderKind::Identity | ProviderKind::Unknown => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a stored value says about itself, read without any key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The provider named by the prefix.
    pub provider: ProviderKind,
    /// The key (or KMS plugin) name between the provider prefix and the next `:`.
    /// `None` for identity, and for a value whose name is not terminated by `:`.
    pub key_name: Option<&'a [u8]>,
    /// The bytes after the full prefix (the whole value for identity).
    pub payload: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Classify a stored value by its prefix. Never fails: anything without the
    /// `k8s:enc:` prefix is identity (plaintext), and an unrecognised provider is
    /// [`ProviderKind::Unknown`].
    ///
    /// Key names are cut at the first `:` after the provider prefix. kube-apiserver
    /// instead matches each configured name as a prefix, so a configured name that
    /// itself contains `:` is found by [`crate::transformer`], not here.
    pub fn parse(stored: &'a [u8]) -> Envelope<'a> {
        if !stored.starts_with(ENCRYPTED_PREFIX) {
            return Envelope {
                provider: ProviderKind::Identity,
                key_name: None,
                payload: stored,
            };
        }
        let kinds = [
            ProviderKind::AesCbc,
            ProviderKind::AesGcm,
            ProviderKind::Secretbox,
            ProviderKind::Kms,
            ProviderKind::KmsV2,
        ];
        for kind in kinds {
            let Some(prefix) = kind.prefix() else {
                continue;
            };
            if let Some(rest) = stored.strip_prefix(prefix) {
                return match rest.iter().position(|&b| b == b':') {
                    Some(end) => Envelope {
                        provider: kind,
                        key_name: Some(&rest[..end]),
                        payload: &rest[end + 1..],
                    },
                    None => Envelope {
                        provider: kind,
                        key_name: None,
                        payload: rest,
                    },
                };
            }
        }
        Envelope {
            provider: ProviderKind::Unknown,
            key_name: None,
            payload: &stored[ENCRYPTED_PREFIX.len()..],
        }
    }

    /// The key name as text (lossy for non-UTF-8 names).
    pub fn key_name_str(&self) -> Option<String> {
        self.key_name
            .map(|n| String::from_utf8_lossy(n).into_owned())
    }
}

/// Why one provider key could not read a value. Texts follow kube-apiserver's
/// (`pkg/storage/value/encrypt/...`) so messages match what admins see in its logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// Payload shorter than the IV/nonce (and tag).
    #[error(
        "the stored data was shorter than the required size ({len} bytes, need at least {min})"
    )]
    TooShort {
        /// Payload length after the prefix.
        len: usize,
        /// Minimum the provider needs.
        min: usize,
    },
    /// aescbc: an IV with no ciphertext after it (upstream panics here).
    #[error("the stored data has an IV but no ciphertext")]
    EmptyCiphertext,
    /// aescbc: ciphertext not a whole number of 16-byte blocks.
    #[error("the stored data is not a multiple of the block size ({len} bytes after the IV)")]
    NotBlockMultiple {
        /// Ciphertext length after the IV.
        len: usize,
    },
    /// aescbc: last byte 0 or larger than the plaintext.
    #[error("invalid PKCS7 data (empty or not padded)")]
    InvalidPkcs7Data,
    /// aescbc: the padding bytes do not all equal the pad length.
    #[error("invalid padding on input")]
    InvalidPadding,
    /// aesgcm / secretbox: authentication failed (wrong key, wrong etcd key as AAD, or tampering).
    #[error("message authentication failed (wrong key, value moved to another etcd key, or corrupted data)")]
    AuthenticationFailed,
    /// identity asked to read a value with the `k8s:enc:` prefix.
    #[error("identity transformer tried to read encrypted data")]
    IdentityReadEncrypted,
    /// KMS values need the KMS plugin, which atrest does not call.
    #[error("{0} values are decrypted by the KMS plugin; atrest cannot decrypt them")]
    KmsUnsupported(&'static str),
}

/// A key of the wrong size for its provider (the error never contains key bytes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{provider} needs a key of {expected} bytes, got {actual} bytes")]
pub struct KeySizeError {
    /// Provider name.
    pub provider: &'static str,
    /// Accepted sizes, e.g. "16, 24 or 32".
    pub expected: &'static str,
    /// The key's length.
    pub actual: usize,
}

/// Fill `buf` from the operating system's RNG (IVs and nonces).
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|e| RandomError(e.to_string()))
}

/// The operating system's RNG failed; nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_prefix() {
        type Case<'a> = (&'a [u8], ProviderKind, Option<&'a [u8]>, &'a [u8]);
        let cases: &[Case] = &[
            (b"k8s\x00abc", ProviderKind::Identity, None, b"k8s\x00abc"),
            (
                b"k8s:enc:aescbc:v1:key1:xyz",
                ProviderKind::AesCbc,
                Some(b"key1"),
                b"xyz",
            ),
            (
                b"k8s:enc:aesgcm:v1:k:",
                ProviderKind::AesGcm,
                Some(b"k"),
                b"",
            ),
            (
                b"k8s:enc:secretbox:v1:s:\x00",
                ProviderKind::Secretbox,
                Some(b"s"),
                b"\x00",
            ),
            (
                b"k8s:enc:kms:v1:plug:d",
                ProviderKind::Kms,
                Some(b"plug"),
                b"d",
            ),
            (
                b"k8s:enc:kms:v2:plug:d",
                ProviderKind::KmsV2,
                Some(b"plug"),
                b"d",
            ),
            (
                b"k8s:enc:aescbc:v1:nocolon",
                ProviderKind::AesCbc,
                None,
                b"nocolon",
            ),
            (
                b"k8s:enc:rot13:v1:x:y",
                ProviderKind::Unknown,
                None,
                b"rot13:v1:x:y",
            ),
            (b"", ProviderKind::Identity, None, b""),
        ];
        for (stored, kind, name, payload) in cases {
            let e = Envelope::parse(stored);
            assert_eq!(e.provider, *kind, "{stored:?}");
            assert_eq!(e.key_name, *name, "{stored:?}");
            assert_eq!(e.payload, *payload, "{stored:?}");
        }
    }

    #[test]
    fn object_magics() {
        assert!(looks_like_object(b"k8s\x00\x0a"));
        assert!(looks_like_object(b"{\"kind\":\"Secret\"}"));
        assert!(looks_like_object(&[0xd9, 0xd9, 0xf7, 0xa1]));
        assert!(!looks_like_object(b"k8s"));
        assert!(!looks_like_object(b""));
        assert!(!looks_like_object(b"\x8a\x11garbage"));
    }
}
