//! The KMS plugin gRPC messages atrest sends and receives, written as `prost`
//! structs so that building needs no `protoc`.
//!
//! v2: kubernetes `staging/src/k8s.io/kms/apis/v2/api.proto` (package `v2`,
//! service `KeyManagementService`: `Status`, `Decrypt`, `Encrypt`).
//! v1: `staging/src/k8s.io/kms/apis/v1beta1/api.proto` (package `v1beta1`:
//! `Version`, `Decrypt`, `Encrypt`).
//!
//! `string` fields that carry a key ID atrest copies from a stored object are
//! declared `bytes` (the same on the wire) so the ID goes back to the plugin byte
//! for byte. Messages that carry key material print lengths only.

use std::fmt;

/// gRPC method paths (`/<package>.<service>/<method>`).
pub mod path {
    /// v2 `Status`.
    pub const V2_STATUS: &str = "/v2.KeyManagementService/Status";
    /// v2 `Decrypt`.
    pub const V2_DECRYPT: &str = "/v2.KeyManagementService/Decrypt";
    /// v2 `Encrypt`.
    pub const V2_ENCRYPT: &str = "/v2.KeyManagementService/Encrypt";
    /// v1beta1 `Version`.
    pub const V1_VERSION: &str = "/v1beta1.KeyManagementService/Version";
    /// v1beta1 `Decrypt`.
    pub const V1_DECRYPT: &str = "/v1beta1.KeyManagementService/Decrypt";
    /// v1beta1 `Encrypt`.
    pub const V1_ENCRYPT: &str = "/v1beta1.KeyManagementService/Encrypt";
}

/// v2 `StatusRequest` (empty).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {}

/// v2 `StatusResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    /// `v2` or `v2beta1`.
    #[prost(string, tag = "1")]
    pub version: String,
    /// `ok` when healthy.
    #[prost(string, tag = "2")]
    pub healthz: String,
    /// The KEK new writes use.
    #[prost(string, tag = "3")]
    pub key_id: String,
}

/// One entry of a `map<string, bytes>` (the wire form of a protobuf map).
#[derive(Clone, PartialEq, prost::Message)]
pub struct BytesEntry {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// v2 `DecryptRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DecryptRequest {
    /// The encrypted DEK or seed.
    #[prost(bytes = "vec", tag = "1")]
    pub ciphertext: Vec<u8>,
    /// A fresh UUID per call.
    #[prost(string, tag = "2")]
    pub uid: String,
    /// The stored object's keyID (a `string` upstream).
    #[prost(bytes = "vec", tag = "3")]
    pub key_id: Vec<u8>,
    /// The stored object's annotations (`map<string, bytes>`).
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<BytesEntry>,
}

/// v2 `DecryptResponse`: the DEK or seed.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct DecryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub plaintext: Vec<u8>,
}

/// v2 `EncryptRequest`: a new DEK or seed to wrap.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct EncryptRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub plaintext: Vec<u8>,
    #[prost(string, tag = "2")]
    pub uid: String,
}

/// v2 `EncryptResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EncryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub ciphertext: Vec<u8>,
    #[prost(string, tag = "2")]
    pub key_id: String,
    #[prost(message, repeated, tag = "3")]
    pub annotations: Vec<BytesEntry>,
}

/// v1beta1 `VersionRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionRequest {
    #[prost(string, tag = "1")]
    pub version: String,
}

/// v1beta1 `VersionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionResponse {
    /// `v1beta1`.
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(string, tag = "2")]
    pub runtime_name: String,
    #[prost(string, tag = "3")]
    pub runtime_version: String,
}

/// v1beta1 `DecryptRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct V1DecryptRequest {
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(bytes = "vec", tag = "2")]
    pub cipher: Vec<u8>,
}

/// v1beta1 `DecryptResponse`: the DEK.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct V1DecryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub plain: Vec<u8>,
}

/// v1beta1 `EncryptRequest`: a DEK to wrap.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct V1EncryptRequest {
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(bytes = "vec", tag = "2")]
    pub plain: Vec<u8>,
}

/// v1beta1 `EncryptResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct V1EncryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub cipher: Vec<u8>,
}

macro_rules! redacted_debug {
    ($t:ty, $field:ident) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field(concat!(stringify!($field), "_len"), &self.$field.len())
                    .finish_non_exhaustive()
            }
        }
    };
}

redacted_debug!(DecryptResponse, plaintext);
redacted_debug!(EncryptRequest, plaintext);
redacted_debug!(V1DecryptResponse, plain);
redacted_debug!(V1EncryptRequest, plain);

/// The key material atrest sends to be wrapped is wiped when the request is dropped.
macro_rules! zeroize_on_drop {
    ($t:ty, $field:ident) => {
        impl Drop for $t {
            fn drop(&mut self) {
                zeroize::Zeroize::zeroize(&mut self.$field);
            }
        }
    };
}

zeroize_on_drop!(EncryptRequest, plaintext);
zeroize_on_drop!(V1EncryptRequest, plain);
