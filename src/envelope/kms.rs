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
const KMSV2_KEY_ID_FIELD: u64 = 2;

/// The `keyID` of a KMS v2 `EncryptedObject`, if the payload parses as one.
pub fn kms_v2_key_id(payload: &[u8]) -> Option<String> {
    let mut pos = 0usize;
    while pos < payload.len() {
        let tag = read_varint(payload, &mut pos)?;
        let field = tag >> 3;
        match tag & 7 {
            0 => {
                read_varint(payload, &mut pos)?;
            }
            1 => pos = pos.checked_add(8).filter(|&p| p <= payload.len())?,
            5 => pos = pos.checked_add(4).filter(|&p| p <= payload.len())?,
            2 => {
                let len = usize::try_from(read_varint(payload, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|&e| e <= payload.len())?;
                if field == KMSV2_KEY_ID_FIELD {
                    return String::from_utf8(payload[pos..end].to_vec()).ok();
                }
                pos = end;
            }
            _ => return None,
        }
    }
    None
}

/// The encrypted-DEK length of a KMS v1 payload, if the header is consistent.
pub fn kms_v1_dek_len(payload: &[u8]) -> Option<usize> {
    let len = usize::from(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
    (payload.len() >= 2 + len).then_some(len)
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
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
