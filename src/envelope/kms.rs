//! KMS provider values: the stored formats of KMS v1 and v2, and their data
//! encryption once the plugin has returned the DEK (or seed).
//!
//! KMS v1 (`k8s:enc:kms:v1:<plugin>:`) stores `u16 BE len(encrypted DEK) ‖ encrypted
//! DEK ‖ data`, the data AES-GCM with the etcd key as AAD, or AES-CBC when an
//! apiserver older than 1.25 wrote it (kubernetes
//! `staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/envelope/envelope.go`).
//!
//! KMS v2 (`k8s:enc:kms:v2:<plugin>:`) stores a protobuf `EncryptedObject`
//! (`.../envelope/kmsv2/v2/api.proto`): encryptedData=1, keyID=2,
//! encryptedDEKSource=3, annotations=4, encryptedDEKSourceType=5. It is checked as
//! `ValidateEncryptedObject` in `.../envelope/kmsv2/envelope.go` checks it. The data
//! is AES-GCM with the etcd key as AAD; for source type `AES_GCM_KEY` the plugin's
//! plaintext is the AES key, for `HKDF_SHA256_XNONCE_AES_GCM_SEED` it is a seed and
//! each value carries a 32-byte `info` from which its key is derived by
//! HKDF-Expand (SHA-256, no Extract) (`.../encrypt/aes/aes_extended_nonce.go`).

use super::aescbc::AesCbc;
use super::aesgcm::AesGcm;
use super::{random_bytes, DecryptError, RandomError};
use crate::key::SecretKey;
use crate::wire::{put_bytes, put_tag, put_varint, Reader, WireError, WireValue, LEN, VARINT};
use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use zeroize::{Zeroize, Zeroizing};

/// `EncryptedObject` field numbers (`kmsv2/v2/api.proto`).
const FIELD_ENCRYPTED_DATA: u32 = 1;
const FIELD_KEY_ID: u32 = 2;
const FIELD_ENCRYPTED_DEK_SOURCE: u32 = 3;
const FIELD_ANNOTATIONS: u32 = 4;
const FIELD_ENCRYPTED_DEK_SOURCE_TYPE: u32 = 5;

/// Limits of `kmsv2/envelope.go`: `KeyIDMaxSize`, `encryptedDEKSourceMaxSize`,
/// `annotationsMaxSize`.
pub(crate) const KEY_ID_MAX_SIZE: usize = 1024;
/// Largest encrypted DEK source upstream accepts.
pub(crate) const ENCRYPTED_DEK_SOURCE_MAX_SIZE: usize = 1024;
/// Largest total size of annotation keys and values.
pub(crate) const ANNOTATIONS_MAX_SIZE: usize = 32 * 1024;

/// `infoSizeExtendedNonceGCM` and `MinSeedSizeExtendedNonceGCM` of
/// `aes_extended_nonce.go`: the per-value HKDF info, and the seed size.
pub(crate) const SEED_INFO_SIZE: usize = 32;
/// Minimum (and written) seed size.
pub(crate) const SEED_SIZE: usize = 32;
/// `derivedKeySizeExtendedNonceGCM`: an AES-256 key.
const DERIVED_KEY_SIZE: usize = 32;

/// KMS v1 `encryptedDEK` length prefix (`envelope.go`).
const V1_DEK_LEN_SIZE: usize = 2;

/// How the plugin's plaintext becomes the data key (`EncryptedDEKSourceType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DekSourceType {
    /// 0: the plaintext is the AES-GCM key (written by 1.27 and 1.28).
    AesGcmKey,
    /// 1: the plaintext is a seed; each value's key is HKDF-Expand(seed, info)
    /// (written since 1.29).
    HkdfSha256XNonceAesGcmSeed,
}

impl DekSourceType {
    /// The protobuf enum value.
    pub fn number(self) -> u64 {
        match self {
            DekSourceType::AesGcmKey => 0,
            DekSourceType::HkdfSha256XNonceAesGcmSeed => 1,
        }
    }

    /// The upstream enum name.
    pub fn name(self) -> &'static str {
        match self {
            DekSourceType::AesGcmKey => "AES_GCM_KEY",
            DekSourceType::HkdfSha256XNonceAesGcmSeed => "HKDF_SHA256_XNONCE_AES_GCM_SEED",
        }
    }
}

/// Why a stored KMS value is not a valid envelope. Texts follow upstream's
/// (`ValidateEncryptedObject`), which kube-apiserver logs for such an object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KmsFormatError {
    /// The v2 payload is not a protobuf `EncryptedObject`.
    #[error("not a KMS v2 EncryptedObject: {0}")]
    Protobuf(String),
    /// Unknown `encryptedDEKSourceType`.
    #[error("unknown encryptedDEKSourceType: {0}")]
    UnknownSourceType(u64),
    /// `encryptedData` is empty.
    #[error("encrypted data is empty")]
    EmptyData,
    /// `encryptedDEKSource` is empty.
    #[error("failed to validate encrypted DEK source: encrypted DEK source is empty")]
    EmptyDekSource,
    /// `encryptedDEKSource` is larger than 1 kB.
    #[error("failed to validate encrypted DEK source: encrypted DEK source is {0} bytes, which exceeds the max size of 1024")]
    DekSourceTooLong(usize),
    /// `keyID` is empty.
    #[error("failed to validate key id: keyID is empty")]
    EmptyKeyId,
    /// `keyID` is larger than 1 kB.
    #[error("failed to validate key id: keyID is {0} bytes, which exceeds the max size of 1024")]
    KeyIdTooLong(usize),
    /// An annotation key is not a fully qualified domain name.
    #[error("failed to validate annotations: annotation key {0:?} is not a fully qualified domain name (at least two labels, lower case)")]
    AnnotationKey(String),
    /// Annotations larger than 32 kB.
    #[error("failed to validate annotations: total size of annotations is {0}, which exceeds the max size of 32768")]
    AnnotationsTooLarge(usize),
    /// v1: the DEK length prefix says more than there is.
    #[error(
        "invalid data encountered by envelope transformer: length longer than available bytes"
    )]
    V1Length,
    /// The plugin's plaintext is not a usable key or seed.
    #[error("the plugin returned a {len}-byte {what}; {expected}")]
    BadDek {
        /// "DEK" or "seed".
        what: &'static str,
        /// Length returned.
        len: usize,
        /// What upstream accepts.
        expected: &'static str,
    },
}

/// A parsed and validated KMS v2 `EncryptedObject`, borrowing the stored value.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedObject<'a> {
    /// The ciphertext of the object (for source type 1, prefixed by its info).
    pub encrypted_data: &'a [u8],
    /// The KEK's key ID, as the plugin reported it at write time.
    pub key_id: &'a [u8],
    /// The DEK or seed, encrypted by the plugin.
    pub encrypted_dek_source: &'a [u8],
    /// Plugin annotations, by key (protobuf map: the last entry of a key wins).
    pub annotations: BTreeMap<&'a [u8], &'a [u8]>,
    /// How the decrypted source becomes the data key.
    pub source_type: DekSourceType,
}

impl std::fmt::Debug for EncryptedObject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedObject")
            .field("key_id", &String::from_utf8_lossy(self.key_id))
            .field("source_type", &self.source_type)
            .field("encrypted_data_len", &self.encrypted_data.len())
            .finish_non_exhaustive()
    }
}

impl<'a> EncryptedObject<'a> {
    /// Decode and validate a KMS v2 payload (the bytes after the prefix).
    ///
    /// Decoded as protobuf-go's `proto.Unmarshal` decodes it upstream: a varint
    /// with bits past 64 and a `string` that is not UTF-8 are errors; a field it
    /// cannot use (unknown number, a known number with another wire type, a
    /// group) is skipped; the last occurrence of a field wins.
    pub fn parse(payload: &'a [u8]) -> Result<EncryptedObject<'a>, KmsFormatError> {
        let pb = |e: WireError| KmsFormatError::Protobuf(e.to_string());
        let mut reader = Reader::with_base(payload, 0, "EncryptedObject").rejecting_overflow();
        let (mut data, mut key_id, mut source): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
        let mut source_type = 0u64;
        let mut annotations = BTreeMap::new();
        while let Some(field) = reader.next_field_skipping_groups().map_err(pb)? {
            match (field.number, field.value) {
                (FIELD_ENCRYPTED_DATA, WireValue::Bytes(b)) => data = b,
                (FIELD_KEY_ID, WireValue::Bytes(b)) => key_id = utf8_string("keyID", b)?,
                (FIELD_ENCRYPTED_DEK_SOURCE, WireValue::Bytes(b)) => source = b,
                (FIELD_ANNOTATIONS, WireValue::Bytes(b)) => {
                    let (k, v) = annotation_entry(b, field.value_offset)?;
                    annotations.insert(k, v);
                }
                // An enum is an int32 on the wire: Go keeps the low 32 bits.
                (FIELD_ENCRYPTED_DEK_SOURCE_TYPE, WireValue::Varint(v)) => {
                    source_type = u64::from(v as u32)
                }
                _ => {}
            }
        }
        let source_type = match source_type {
            0 => DekSourceType::AesGcmKey,
            1 => DekSourceType::HkdfSha256XNonceAesGcmSeed,
            n => return Err(KmsFormatError::UnknownSourceType(n)),
        };
        let obj = EncryptedObject {
            encrypted_data: data,
            key_id,
            encrypted_dek_source: source,
            annotations,
            source_type,
        };
        obj.validate()?;
        Ok(obj)
    }

    /// Upstream's checks after the source type (`ValidateEncryptedObject`).
    fn validate(&self) -> Result<(), KmsFormatError> {
        if self.encrypted_data.is_empty() {
            return Err(KmsFormatError::EmptyData);
        }
        validate_dek_source(self.encrypted_dek_source)?;
        validate_key_id(self.key_id)?;
        validate_annotations(self.annotations.iter().map(|(k, v)| (*k, *v)))
    }

    /// The key ID as text (lossy for a non-UTF-8 ID).
    pub fn key_id_str(&self) -> String {
        String::from_utf8_lossy(self.key_id).into_owned()
    }

    /// What identifies the decrypted DEK/seed for caching: upstream's
    /// `generateCacheKey` (source type, source, keyID, sorted annotations).
    pub fn cache_key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.encrypted_dek_source.len() + self.key_id.len());
        self.cache_key_parts(|b| {
            out.extend_from_slice(b);
            true
        });
        out
    }

    /// Whether [`EncryptedObject::cache_key`] equals `key`, without building it
    /// (the per-object check of a cache hit).
    pub fn cache_key_eq(&self, key: &[u8]) -> bool {
        let mut rest = key;
        self.cache_key_parts(|b| match rest.strip_prefix(b) {
            Some(r) => {
                rest = r;
                true
            }
            None => false,
        }) && rest.is_empty()
    }

    /// The cache key in pieces, each handed to `f` until it returns false;
    /// whether every piece was handed over.
    fn cache_key_parts(&self, mut f: impl FnMut(&[u8]) -> bool) -> bool {
        if !(f(&(self.source_type.number() as u32).to_be_bytes())
            && u16_prefixed(&mut f, self.encrypted_dek_source)
            && u16_prefixed(&mut f, self.key_id))
        {
            return false;
        }
        if self.annotations.is_empty() {
            return true;
        }
        f(&(self.annotations.len() as u32).to_be_bytes())
            && self
                .annotations
                .iter()
                .all(|(k, v)| u16_prefixed(&mut f, k) && u16_prefixed(&mut f, v))
    }

    /// Decrypt the object's data with the plugin's plaintext `dek_source`.
    pub fn open(&self, dek_source: &DataKey, etcd_key: &[u8]) -> Result<Vec<u8>, DecryptError> {
        dek_source.open(self.encrypted_data, etcd_key)
    }
}

/// A proto3 `string` field's bytes, which protobuf-go requires to be UTF-8.
fn utf8_string<'b>(field: &'static str, b: &'b [u8]) -> Result<&'b [u8], KmsFormatError> {
    match std::str::from_utf8(b) {
        Ok(_) => Ok(b),
        Err(_) => Err(KmsFormatError::Protobuf(format!(
            "EncryptedObject: string field {field} contains invalid UTF-8"
        ))),
    }
}

/// One `map<string, bytes>` annotations entry (`value_offset`: where its bytes
/// start in the payload), decoded as protobuf-go decodes map entries: key = 1,
/// value = 2, other fields and wrong wire types skipped, absent parts empty.
fn annotation_entry(entry: &[u8], value_offset: usize) -> Result<(&[u8], &[u8]), KmsFormatError> {
    let pb = |e: WireError| KmsFormatError::Protobuf(e.to_string());
    let mut r = Reader::with_base(entry, value_offset, "EncryptedObject.AnnotationsEntry")
        .rejecting_overflow();
    let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
    while let Some(f) = r.next_field_skipping_groups().map_err(pb)? {
        match (f.number, f.value) {
            (1, WireValue::Bytes(b)) => key = utf8_string("annotations key", b)?,
            (2, WireValue::Bytes(b)) => value = b,
            _ => {}
        }
    }
    Ok((key, value))
}

fn u16_prefixed(f: &mut impl FnMut(&[u8]) -> bool, b: &[u8]) -> bool {
    // Every length was validated to fit (≤ 32 kB).
    f(&(b.len().min(usize::from(u16::MAX)) as u16).to_be_bytes()) && f(b)
}

fn validate_dek_source(source: &[u8]) -> Result<(), KmsFormatError> {
    if source.is_empty() {
        return Err(KmsFormatError::EmptyDekSource);
    }
    if source.len() > ENCRYPTED_DEK_SOURCE_MAX_SIZE {
        return Err(KmsFormatError::DekSourceTooLong(source.len()));
    }
    Ok(())
}

/// `ValidateKeyID` of `kmsv2/envelope.go` (also applied to `Status` and
/// `Encrypt` answers).
pub(crate) fn validate_key_id(key_id: &[u8]) -> Result<(), KmsFormatError> {
    if key_id.is_empty() {
        return Err(KmsFormatError::EmptyKeyId);
    }
    if key_id.len() > KEY_ID_MAX_SIZE {
        return Err(KmsFormatError::KeyIdTooLong(key_id.len()));
    }
    Ok(())
}

/// `validateAnnotations`: every key a fully qualified domain name
/// (apimachinery `IsFullyQualifiedDomainName`), keys and values ≤ 32 kB in total.
pub(crate) fn validate_annotations<'b>(
    annotations: impl Iterator<Item = (&'b [u8], &'b [u8])>,
) -> Result<(), KmsFormatError> {
    let mut total = 0usize;
    for (k, v) in annotations {
        if !is_fqdn(k) {
            return Err(KmsFormatError::AnnotationKey(
                String::from_utf8_lossy(k).into_owned(),
            ));
        }
        total = total.saturating_add(k.len()).saturating_add(v.len());
    }
    if total > ANNOTATIONS_MAX_SIZE {
        return Err(KmsFormatError::AnnotationsTooLarge(total));
    }
    Ok(())
}

/// apimachinery `validation.IsFullyQualifiedDomainName`: at least two labels,
/// a DNS-1123 subdomain (lower-case alphanumerics, `-` and `.`, each label
/// starting and ending alphanumeric, ≤ 253 bytes), a trailing `.` allowed.
fn is_fqdn(name: &[u8]) -> bool {
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    // Checked for every object read: one pass, no allocation.
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (mut labels, mut len, mut prev) = (1usize, 0usize, b'.');
    for &b in name {
        if b == b'.' {
            // A label ends: not empty, not ending with `-`.
            if !alnum(prev) {
                return false;
            }
            labels += 1;
            len = 0;
        } else {
            // A label starts alphanumeric; `-` only inside.
            if !(alnum(b) || (b == b'-' && len > 0)) {
                return false;
            }
            len += 1;
            if len > 63 {
                return false;
            }
        }
        prev = b;
    }
    labels >= 2 && alnum(prev)
}

/// The plugin's plaintext, ready to decrypt data: an AES-GCM key (v2 source
/// type 0), a seed (v2 source type 1), or a v1 DEK (GCM, then CBC).
#[derive(Clone)]
pub enum DataKey {
    /// v2 `AES_GCM_KEY`.
    Gcm(Box<AesGcm>),
    /// v2 `HKDF_SHA256_XNONCE_AES_GCM_SEED`.
    Seed(Seed),
    /// v1: the DEK for GCM, or CBC for values written before 1.25.
    V1 {
        /// GCM with the DEK.
        gcm: Box<AesGcm>,
        /// CBC with the DEK.
        cbc: Box<AesCbc>,
    },
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataKey::Gcm(_) => "DataKey::Gcm(..)",
            DataKey::Seed(_) => "DataKey::Seed(..)",
            DataKey::V1 { .. } => "DataKey::V1(..)",
        })
    }
}

impl DataKey {
    /// The data key for a v2 object of `source_type` from the plugin's plaintext.
    pub fn v2(source_type: DekSourceType, plain: SecretKey) -> Result<DataKey, KmsFormatError> {
        match source_type {
            DekSourceType::AesGcmKey => AesGcm::new(&plain)
                .map(|g| DataKey::Gcm(Box::new(g)))
                .map_err(|e| KmsFormatError::BadDek {
                    what: "DEK",
                    len: e.actual,
                    expected: "AES-GCM needs 16, 24 or 32 bytes",
                }),
            DekSourceType::HkdfSha256XNonceAesGcmSeed => {
                if plain.len() < SEED_SIZE {
                    return Err(KmsFormatError::BadDek {
                        what: "seed",
                        len: plain.len(),
                        expected: "a seed needs at least 32 bytes",
                    });
                }
                Ok(DataKey::Seed(Seed::new(plain)))
            }
        }
    }

    /// The data key for a v1 value from the plugin's plaintext DEK.
    pub fn v1(plain: SecretKey) -> Result<DataKey, KmsFormatError> {
        let bad = |e: super::KeySizeError| KmsFormatError::BadDek {
            what: "DEK",
            len: e.actual,
            expected: "AES needs 16, 24 or 32 bytes",
        };
        Ok(DataKey::V1 {
            gcm: Box::new(AesGcm::new(&plain).map_err(bad)?),
            cbc: Box::new(AesCbc::new(&plain).map_err(bad)?),
        })
    }

    /// Decrypt `data` stored at `etcd_key`. For v1, `Ok((plain, true))` means the
    /// CBC fallback read it: upstream then reports the value as stale.
    pub fn open_with_fallback(
        &self,
        data: &[u8],
        etcd_key: &[u8],
    ) -> Result<(Vec<u8>, bool), DecryptError> {
        match self {
            DataKey::Gcm(g) => g.open(data, etcd_key).map(|p| (p, false)),
            DataKey::Seed(seed) => {
                if data.len() < SEED_INFO_SIZE {
                    return Err(DecryptError::TooShort {
                        len: data.len(),
                        min: SEED_INFO_SIZE,
                    });
                }
                let (info, rest) = data.split_at(SEED_INFO_SIZE);
                let key = seed.expand(info)?;
                AesGcm::open_once(key.as_slice(), rest, etcd_key).map(|p| (p, false))
            }
            // Upstream tries GCM, then CBC (a prefix transformer with two empty
            // prefixes): a read by the second is stale.
            DataKey::V1 { gcm, cbc } => match gcm.open(data, etcd_key) {
                Ok(p) => Ok((p, false)),
                Err(gcm_err) => cbc.open(data).map(|p| (p, true)).map_err(|_| gcm_err),
            },
        }
    }

    /// Decrypt `data` stored at `etcd_key`.
    pub fn open(&self, data: &[u8], etcd_key: &[u8]) -> Result<Vec<u8>, DecryptError> {
        self.open_with_fallback(data, etcd_key).map(|(p, _)| p)
    }

    /// Encrypt as kube-apiserver 1.29+ does with a seed: `info(32) ‖ nonce(12) ‖
    /// ciphertext ‖ tag`, a fresh random info per value. Only seeds write.
    pub fn seal_with_seed(
        seed: &SecretKey,
        plaintext: &[u8],
        etcd_key: &[u8],
    ) -> Result<Vec<u8>, RandomError> {
        let mut info = [0u8; SEED_INFO_SIZE];
        random_bytes(&mut info)?;
        let key = Seed::new(seed.clone())
            .expand(&info)
            .map_err(|e| RandomError(e.to_string()))?;
        let gcm = AesGcm::from_key_bytes(key.as_slice()).map_err(|e| RandomError(e.to_string()))?;
        let mut out = Vec::with_capacity(SEED_INFO_SIZE + AesGcm::sealed_len(plaintext.len()));
        out.extend_from_slice(&info);
        gcm.seal_into(plaintext, etcd_key, &mut out)?;
        Ok(out)
    }
}

/// A KMS v2 seed, with HKDF's HMAC-SHA256 state for it computed once: each
/// value's key is HKDF-Expand(SHA-256, PRK = seed, info), one output block,
/// i.e. HMAC(seed, info ‖ 0x01) (`sha256KDFExpandOnly` in
/// `aes_extended_nonce.go`); keyed once, it costs two SHA-256 blocks per value.
pub struct Seed {
    seed: SecretKey,
    /// ring's HMAC key: the inner and outer pad states, inline (no heap).
    prk: MaybeUninit<ring::hkdf::Prk>,
}

impl Seed {
    fn new(seed: SecretKey) -> Seed {
        let prk = ring::hkdf::Prk::new_less_safe(ring::hkdf::HKDF_SHA256, seed.expose());
        Seed {
            seed,
            prk: MaybeUninit::new(prk),
        }
    }

    /// The AES-256 key of the value whose HKDF info is `info`.
    fn expand(&self, info: &[u8]) -> Result<Zeroizing<[u8; DERIVED_KEY_SIZE]>, DecryptError> {
        let mut okm = Zeroizing::new([0u8; DERIVED_KEY_SIZE]);
        let infos = [info];
        // SAFETY: initialised in `new`; wiped only in `drop`.
        let prk = unsafe { self.prk.assume_init_ref() };
        prk.expand(&infos, DerivedKeyLen)
            .and_then(|okm_out| okm_out.fill(okm.as_mut_slice()))
            .map_err(|_| DecryptError::AuthenticationFailed)?;
        Ok(okm)
    }
}

impl Clone for Seed {
    fn clone(&self) -> Seed {
        Seed::new(self.seed.clone())
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        // `Prk` has no `Drop` and owns no heap memory (two inline SHA-256
        // states): wiping its bytes in place is all its end needs.
        self.prk.zeroize();
    }
}

/// HKDF output length for ring: one AES-256 key.
struct DerivedKeyLen;

impl ring::hkdf::KeyType for DerivedKeyLen {
    fn len(&self) -> usize {
        DERIVED_KEY_SIZE
    }
}

/// A KMS v1 payload split into the encrypted DEK and the data.
pub fn split_v1(payload: &[u8]) -> Result<(&[u8], &[u8]), KmsFormatError> {
    let len = kms_v1_dek_len(payload).ok_or(KmsFormatError::V1Length)?;
    let rest = &payload[V1_DEK_LEN_SIZE..];
    Ok(rest.split_at(len))
}

/// The `keyID` of a KMS v2 `EncryptedObject`, if the payload parses as one
/// (without validation: audit shows it even for an object that fails it).
pub(crate) fn kms_v2_key_id(payload: &[u8]) -> Option<&str> {
    let mut reader = Reader::with_base(payload, 0, "EncryptedObject").rejecting_overflow();
    let mut found = None;
    while let Ok(Some(field)) = reader.next_field_skipping_groups() {
        if let (FIELD_KEY_ID, WireValue::Bytes(id)) = (field.number, field.value) {
            found = Some(std::str::from_utf8(id).ok()?);
        }
    }
    found
}

/// The encrypted-DEK length of a KMS v1 payload, if the header is consistent.
pub(crate) fn kms_v1_dek_len(payload: &[u8]) -> Option<usize> {
    let len = usize::from(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
    (payload.len() >= V1_DEK_LEN_SIZE + len).then_some(len)
}

/// Encode a KMS v2 `EncryptedObject` as the Go protobuf marshaller does
/// (fields in number order, map entries sorted by key, zero values omitted).
pub fn encode_v2(
    encrypted_data: &[u8],
    key_id: &[u8],
    encrypted_dek_source: &[u8],
    annotations: &BTreeMap<Vec<u8>, Vec<u8>>,
    source_type: DekSourceType,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(encrypted_data.len() + encrypted_dek_source.len() + 64);
    put_bytes(&mut out, FIELD_ENCRYPTED_DATA, encrypted_data);
    put_bytes(&mut out, FIELD_KEY_ID, key_id);
    put_bytes(&mut out, FIELD_ENCRYPTED_DEK_SOURCE, encrypted_dek_source);
    for (k, v) in annotations {
        let mut entry = Vec::with_capacity(k.len() + v.len() + 8);
        put_bytes(&mut entry, 1, k);
        put_bytes(&mut entry, 2, v);
        put_tag(&mut out, FIELD_ANNOTATIONS, LEN);
        put_varint(&mut out, entry.len() as u64);
        out.extend_from_slice(&entry);
    }
    if source_type.number() != 0 {
        put_tag(&mut out, FIELD_ENCRYPTED_DEK_SOURCE_TYPE, VARINT);
        put_varint(&mut out, source_type.number());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EK: &[u8] = b"/registry/secrets/ns/a";

    fn annotations() -> BTreeMap<Vec<u8>, Vec<u8>> {
        BTreeMap::from([(b"kek.example.com".to_vec(), b"v".to_vec())])
    }

    #[test]
    fn finds_kms_v2_key_id() {
        // encryptedData=1 "abc", keyID=2 "key-7", encryptedDEKSourceType=5 (1)
        let msg = b"\x0a\x03abc\x12\x05key-7\x28\x01";
        assert_eq!(kms_v2_key_id(msg), Some("key-7"));
        assert_eq!(kms_v2_key_id(b"\x0a\x03ab"), None);
        assert_eq!(kms_v2_key_id(b""), None);
        assert_eq!(kms_v2_key_id(&[0xff; 20]), None);
    }

    #[test]
    fn kms_v1_header() {
        assert_eq!(kms_v1_dek_len(b"\x00\x02abrest"), Some(2));
        assert_eq!(kms_v1_dek_len(b"\x01\x00ab"), None);
        assert_eq!(kms_v1_dek_len(b"\x00"), None);
        assert_eq!(
            split_v1(b"\x00\x02abrest").unwrap(),
            (&b"ab"[..], &b"rest"[..])
        );
        assert_eq!(split_v1(b"\x00\x09ab"), Err(KmsFormatError::V1Length));
    }

    #[test]
    fn encode_parse_round_trip_and_seed_open() {
        let seed = SecretKey::new(vec![7; 32]);
        let data = DataKey::seal_with_seed(&seed, b"k8s\x00obj", EK).unwrap();
        let enc = encode_v2(
            &data,
            b"1",
            b"wrapped",
            &annotations(),
            DekSourceType::HkdfSha256XNonceAesGcmSeed,
        );
        let obj = EncryptedObject::parse(&enc).unwrap();
        assert_eq!(obj.key_id, b"1");
        assert_eq!(obj.source_type, DekSourceType::HkdfSha256XNonceAesGcmSeed);
        let dk = DataKey::v2(obj.source_type, seed).unwrap();
        assert_eq!(obj.open(&dk, EK).unwrap(), b"k8s\x00obj");
        assert_eq!(
            obj.open(&dk, b"/registry/secrets/ns/b"),
            Err(DecryptError::AuthenticationFailed),
            "the etcd key is the AAD"
        );
        let wrong = DataKey::v2(obj.source_type, SecretKey::new(vec![8; 32])).unwrap();
        assert!(obj.open(&wrong, EK).is_err());
    }

    #[test]
    fn aes_gcm_key_source() {
        let dek = SecretKey::new(vec![3; 32]);
        let mut data = Vec::new();
        AesGcm::new(&dek)
            .unwrap()
            .seal_into(b"{}", EK, &mut data)
            .unwrap();
        let enc = encode_v2(
            &data,
            b"k",
            b"w",
            &BTreeMap::new(),
            DekSourceType::AesGcmKey,
        );
        let obj = EncryptedObject::parse(&enc).unwrap();
        assert_eq!(obj.source_type, DekSourceType::AesGcmKey);
        let dk = DataKey::v2(obj.source_type, dek).unwrap();
        assert_eq!(obj.open(&dk, EK).unwrap(), b"{}");
        assert!(matches!(
            DataKey::v2(DekSourceType::AesGcmKey, SecretKey::new(vec![1; 10])),
            Err(KmsFormatError::BadDek { len: 10, .. })
        ));
        assert!(matches!(
            DataKey::v2(
                DekSourceType::HkdfSha256XNonceAesGcmSeed,
                SecretKey::new(vec![1; 16])
            ),
            Err(KmsFormatError::BadDek { len: 16, .. })
        ));
    }

    #[test]
    fn validation_as_upstream() {
        let ok = |data: &[u8], id: &[u8], src: &[u8], ann: &BTreeMap<Vec<u8>, Vec<u8>>| {
            EncryptedObject::parse(&encode_v2(data, id, src, ann, DekSourceType::AesGcmKey))
                .map(|_| ())
        };
        let none = BTreeMap::new();
        assert_eq!(ok(b"d", b"1", b"s", &none), Ok(()));
        assert_eq!(ok(b"", b"1", b"s", &none), Err(KmsFormatError::EmptyData));
        assert_eq!(ok(b"d", b"", b"s", &none), Err(KmsFormatError::EmptyKeyId));
        assert_eq!(
            ok(b"d", b"1", b"", &none),
            Err(KmsFormatError::EmptyDekSource)
        );
        assert_eq!(
            ok(b"d", &[b'x'; 1025], b"s", &none),
            Err(KmsFormatError::KeyIdTooLong(1025))
        );
        assert_eq!(ok(b"d", &[b'x'; 1024], b"s", &none), Ok(()));
        assert_eq!(
            ok(b"d", b"1", &[1; 1025], &none),
            Err(KmsFormatError::DekSourceTooLong(1025))
        );
        for bad in [
            &b"nodot"[..],
            b"Upper.example.com",
            b"-a.example.com",
            b"a..b",
        ] {
            let ann = BTreeMap::from([(bad.to_vec(), b"v".to_vec())]);
            assert!(
                matches!(
                    ok(b"d", b"1", b"s", &ann),
                    Err(KmsFormatError::AnnotationKey(_))
                ),
                "{bad:?}"
            );
        }
        let big = BTreeMap::from([(b"a.example.com".to_vec(), vec![0; 32 * 1024])]);
        assert!(matches!(
            ok(b"d", b"1", b"s", &big),
            Err(KmsFormatError::AnnotationsTooLarge(_))
        ));
        // Unknown source type 2.
        let mut enc = encode_v2(b"d", b"1", b"s", &none, DekSourceType::AesGcmKey);
        enc.extend_from_slice(b"\x28\x02");
        assert_eq!(
            EncryptedObject::parse(&enc),
            Err(KmsFormatError::UnknownSourceType(2))
        );
        assert!(matches!(
            EncryptedObject::parse(b"\x0a\x09ab"),
            Err(KmsFormatError::Protobuf(_))
        ));
    }

    #[test]
    fn cache_key_distinguishes_every_input() {
        let a = encode_v2(b"d", b"1", b"s", &annotations(), DekSourceType::AesGcmKey);
        let b = encode_v2(b"e", b"1", b"s", &annotations(), DekSourceType::AesGcmKey);
        let c = encode_v2(b"d", b"2", b"s", &annotations(), DekSourceType::AesGcmKey);
        let d = encode_v2(b"d", b"1", b"s", &BTreeMap::new(), DekSourceType::AesGcmKey);
        let key = |v: &[u8]| EncryptedObject::parse(v).unwrap().cache_key();
        assert_eq!(
            key(&a),
            key(&b),
            "the data is not part of the DEK's identity"
        );
        assert_ne!(key(&a), key(&c));
        assert_ne!(key(&a), key(&d));
        let e = encode_v2(
            b"d",
            b"1",
            b"s",
            &annotations(),
            DekSourceType::HkdfSha256XNonceAesGcmSeed,
        );
        let f = encode_v2(b"d", b"1", b"t", &annotations(), DekSourceType::AesGcmKey);
        let ann2 = BTreeMap::from([(b"kek.example.com".to_vec(), b"w".to_vec())]);
        let g = encode_v2(b"d", b"1", b"s", &ann2, DekSourceType::AesGcmKey);
        let all = [&a, &c, &d, &e, &f, &g];
        for (i, x) in all.iter().enumerate() {
            let ox = EncryptedObject::parse(x).unwrap();
            for (j, y) in all.iter().enumerate() {
                let ky = key(y);
                assert_eq!(ox.cache_key_eq(&ky), i == j, "{i} vs {j}");
                assert_eq!(ox.cache_key() == ky, i == j, "{i} vs {j}");
            }
            // Neither a prefix nor an extension of its key matches.
            let kx = ox.cache_key();
            assert!(!ox.cache_key_eq(&kx[..kx.len() - 1]));
            assert!(!ox.cache_key_eq(&[kx.as_slice(), b"x"].concat()));
        }
    }

    /// The one-pass FQDN check agrees with the rule spelled out label by label
    /// (apimachinery `IsFullyQualifiedDomainName`), on every short name over
    /// an alphabet of the interesting bytes.
    #[test]
    fn fqdn_check_matches_the_rule() {
        fn by_labels(name: &[u8]) -> bool {
            let name = name.strip_suffix(b".").unwrap_or(name);
            let labels: Vec<&[u8]> = name.split(|&b| b == b'.').collect();
            let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            !name.is_empty()
                && name.len() <= 253
                && labels.len() >= 2
                && labels.iter().all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.first().is_some_and(alnum)
                        && l.last().is_some_and(alnum)
                        && l.iter().all(|b| alnum(b) || *b == b'-')
                })
        }
        let alphabet = b"a9.-A_";
        let mut names: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..6 {
            let longer: Vec<Vec<u8>> = names
                .iter()
                .flat_map(|n| alphabet.iter().map(move |c| [n.as_slice(), &[*c]].concat()))
                .collect();
            names.extend(longer.into_iter().filter(|n| n.len() <= 6));
            names.sort();
            names.dedup();
        }
        let label63 = vec![b'a'; 63];
        let label64 = vec![b'a'; 64];
        names.push([label63.as_slice(), b".com"].concat());
        names.push([label64.as_slice(), b".com"].concat());
        names.push([b"a.".repeat(126).as_slice(), b"b"].concat());
        names.push([b"a.".repeat(127).as_slice(), b"b"].concat());
        for n in &names {
            assert_eq!(is_fqdn(n), by_labels(n), "{:?}", String::from_utf8_lossy(n));
        }
    }

    /// The seed's precomputed HMAC state gives the key the plain HKDF-Expand
    /// of RFC 5869 gives (upstream `sha256KDFExpandOnly`), for seeds shorter
    /// and longer than SHA-256's block.
    #[test]
    fn seed_expand_is_hkdf_expand() {
        for len in [32usize, 48, 64, 65, 100] {
            let raw: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let seed = Seed::new(SecretKey::new(raw.clone()));
            for info in [[0u8; 32], [0xa5; 32], std::array::from_fn(|i| i as u8)] {
                let mut want = [0u8; 32];
                hkdf::Hkdf::<sha2::Sha256>::from_prk(&raw)
                    .unwrap()
                    .expand(&info, &mut want)
                    .unwrap();
                assert_eq!(*seed.expand(&info).unwrap(), want, "seed {len} bytes");
                assert_eq!(*seed.clone().expand(&info).unwrap(), want);
            }
        }
    }

    #[test]
    fn v1_gcm_then_cbc() {
        let dek = SecretKey::new(vec![5; 32]);
        let dk = DataKey::v1(dek.clone()).unwrap();
        let mut gcm = Vec::new();
        AesGcm::new(&dek)
            .unwrap()
            .seal_into(b"k8s\x00x", EK, &mut gcm)
            .unwrap();
        assert_eq!(
            dk.open_with_fallback(&gcm, EK).unwrap(),
            (b"k8s\x00x".to_vec(), false)
        );
        let mut cbc = Vec::new();
        AesCbc::new(&dek)
            .unwrap()
            .seal_into(b"k8s\x00y", &mut cbc)
            .unwrap();
        assert_eq!(
            dk.open_with_fallback(&cbc, EK).unwrap(),
            (b"k8s\x00y".to_vec(), true)
        );
    }
}
