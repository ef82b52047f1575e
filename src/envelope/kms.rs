//! KMS provider values: recognised and described, not decrypted.
//!
//! KMS v1 (`k8s:enc:kms:v1:<plugin>:`) stores `u16 BE len(encrypted DEK) ‖ encrypted
//! DEK ‖ data` (kubernetes `pkg/storage/value/encrypt/envelope/envelope.go`).
//! KMS v2 (`k8s:enc:kms:v2:<plugin>:`) stores a protobuf `EncryptedObject`
//! (`pkg/storage/value/encrypt/envelope/kmsv2/v2/api.proto`): encryptedData=1,
//! keyID=2, encryptedDEKSource=3, annotations=4, encryptedDEKSourceType=5.
//! Decrypting either needs the KMS plugin; atrest reports provider, plugin name and,
//! for v2, the key ID the plugin would be asked for.

/// KMS v2 `EncryptedObject.keyID` field number.
const KMSV2_KEY_ID_FIELD: u32 = 2;

/// The `keyID` of a KMS v2 `EncryptedObject`, if the payload parses as one.
/// Uses the crate's protobuf wire reader ([`crate::kube`]'s), which bounds every
/// length and never panics.
pub fn kms_v2_key_id(payload: &[u8]) -> Option<String> {
    let mut reader = crate::kube::wire::Reader::with_base(payload, 0, "EncryptedObject");
    while let Ok(Some(field)) = reader.next_field() {
        if field.number == KMSV2_KEY_ID_FIELD {
            let id = field.bytes().ok()?;
            return String::from_utf8(id.to_vec()).ok();
        }
    }
    None
}

/// The encrypted-DEK length of a KMS v1 payload, if the header is consistent.
pub fn kms_v1_dek_len(payload: &[u8]) -> Option<usize> {
    let len = usize::from(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
    (payload.len() >= 2 + len).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_kms_v2_key_id() {
        // encryptedData=1 "abc", keyID=2 "key-7", encryptedDEKSourceType=5 (1)
        let msg = b"\x0a\x03abc\x12\x05key-7\x28\x01";
        assert_eq!(kms_v2_key_id(msg).as_deref(), Some("key-7"));
        assert_eq!(kms_v2_key_id(b"\x0a\x03ab"), None);
        assert_eq!(kms_v2_key_id(b""), None);
        assert_eq!(kms_v2_key_id(&[0xff; 20]), None);
    }

    #[test]
    fn kms_v1_header() {
        assert_eq!(kms_v1_dek_len(b"\x00\x02abrest"), Some(2));
        assert_eq!(kms_v1_dek_len(b"\x01\x00ab"), None);
        assert_eq!(kms_v1_dek_len(b"\x00"), None);
    }
}
