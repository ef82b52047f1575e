//! The `identity` provider: values stored as plaintext, with no prefix.
//!
//! Upstream: `pkg/storage/value/transformer.go` (`identityTransformer`), which
//! refuses to read data that starts with `k8s:enc:` so that a config listing
//! `identity` first can still fall through to the encrypting providers after it.

use super::{DecryptError, ENCRYPTED_PREFIX};

/// Read a value as plaintext: refuses anything with the `k8s:enc:` prefix.
pub fn read(stored: &[u8]) -> Result<&[u8], DecryptError> {
    if stored.starts_with(ENCRYPTED_PREFIX) {
        return Err(DecryptError::IdentityReadEncrypted);
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_encrypted_data() {
        assert_eq!(read(b"k8s\x00x"), Ok(&b"k8s\x00x"[..]));
        assert_eq!(
            read(b"k8s:enc:aescbc:v1:k:x"),
            Err(DecryptError::IdentityReadEncrypted)
        );
        assert_eq!(read(b""), Ok(&b""[..]));
    }
}
