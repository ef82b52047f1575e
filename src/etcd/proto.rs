//! The subset of etcd's v3 gRPC messages that atrest sends and receives, written
//! as `prost` structs so that building needs no `protoc`.
//!
//! Field numbers and names follow etcd's `api/etcdserverpb/rpc.proto` (messages
//! `ResponseHeader`, `RangeRequest`, `RangeResponse`, `PutRequest`, `PutResponse`,
//! `Compare`, `RequestOp`, `ResponseOp`, `TxnRequest`, `TxnResponse`,
//! `StatusRequest`, `StatusResponse`, `AuthenticateRequest`,
//! `AuthenticateResponse`) and `api/mvccpb/kv.proto` (`KeyValue`). Fields atrest
//! never reads are left out: protobuf decoders skip unknown fields, and an
//! absent field is the same on the wire as its zero value.
//!
//! Values (`KeyValue.value`, `PutRequest.value`) are [`bytes::Bytes`]: a value
//! decoded from a response shares the response's buffer instead of being
//! copied, and a request cloned for a retry shares its values.
//!
//! Messages that can carry values (`KeyValue`, `PutRequest`) have hand-written
//! `Debug` impls that print lengths, never bytes: a value may be a plaintext
//! Secret.

use std::fmt;

/// gRPC method paths (`/<package>.<service>/<method>`), from the `service`
/// blocks of `rpc.proto`.
pub mod path {
    /// `KV.Range`.
    pub const RANGE: &str = "/etcdserverpb.KV/Range";
    /// `KV.Put`.
    pub const PUT: &str = "/etcdserverpb.KV/Put";
    /// `KV.Txn`.
    pub const TXN: &str = "/etcdserverpb.KV/Txn";
    /// `Maintenance.Status`.
    pub const STATUS: &str = "/etcdserverpb.Maintenance/Status";
    /// `Auth.Authenticate`.
    pub const AUTHENTICATE: &str = "/etcdserverpb.Auth/Authenticate";
}

/// `etcdserverpb.ResponseHeader`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseHeader {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    #[prost(int64, tag = "3")]
    pub revision: i64,
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}

/// `mvccpb.KeyValue`.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct KeyValue {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    #[prost(int64, tag = "4")]
    pub version: i64,
    #[prost(bytes = "bytes", tag = "5")]
    pub value: bytes::Bytes,
    #[prost(int64, tag = "6")]
    pub lease: i64,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value_len", &self.value.len())
            .field("mod_revision", &self.mod_revision)
            .finish_non_exhaustive()
    }
}

/// `etcdserverpb.RangeRequest`. Sorting and the min/max revision filters
/// (fields 5, 6, 10–13) are not used.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    #[prost(int64, tag = "3")]
    pub limit: i64,
    #[prost(int64, tag = "4")]
    pub revision: i64,
    #[prost(bool, tag = "7")]
    pub serializable: bool,
    #[prost(bool, tag = "8")]
    pub keys_only: bool,
    #[prost(bool, tag = "9")]
    pub count_only: bool,
}

/// `etcdserverpb.RangeResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(message, repeated, tag = "2")]
    pub kvs: Vec<KeyValue>,
    #[prost(bool, tag = "3")]
    pub more: bool,
    #[prost(int64, tag = "4")]
    pub count: i64,
}

/// `etcdserverpb.PutRequest` (`prev_kv`, `ignore_value`, `ignore_lease` unused).
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: bytes::Bytes,
    #[prost(int64, tag = "3")]
    pub lease: i64,
}

impl fmt::Debug for PutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutRequest")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value_len", &self.value.len())
            .field("lease", &self.lease)
            .finish()
    }
}

/// `etcdserverpb.PutResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `Compare.CompareResult.EQUAL`.
pub const COMPARE_EQUAL: i32 = 0;
/// `Compare.CompareTarget.MOD`.
pub const COMPARE_TARGET_MOD: i32 = 2;

/// `etcdserverpb.Compare`; of the `target_union` only `mod_revision` is used.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Compare {
    #[prost(int32, tag = "1")]
    pub result: i32,
    #[prost(int32, tag = "2")]
    pub target: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
    #[prost(oneof = "CompareTarget", tags = "6")]
    pub target_union: Option<CompareTarget>,
}

/// `Compare.target_union`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum CompareTarget {
    /// `mod_revision = 6`.
    #[prost(int64, tag = "6")]
    ModRevision(i64),
}

/// `etcdserverpb.RequestOp` (no delete or nested txn).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestOp {
    #[prost(oneof = "Request", tags = "1, 2")]
    pub request: Option<Request>,
}

/// `RequestOp.request`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Request {
    /// `request_range = 1`.
    #[prost(message, tag = "1")]
    Range(RangeRequest),
    /// `request_put = 2`.
    #[prost(message, tag = "2")]
    Put(PutRequest),
}

/// `etcdserverpb.ResponseOp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseOp {
    #[prost(oneof = "Response", tags = "1, 2")]
    pub response: Option<Response>,
}

/// `ResponseOp.response`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Response {
    /// `response_range = 1`.
    #[prost(message, tag = "1")]
    Range(RangeResponse),
    /// `response_put = 2`.
    #[prost(message, tag = "2")]
    Put(PutResponse),
}

/// `etcdserverpb.TxnRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxnRequest {
    #[prost(message, repeated, tag = "1")]
    pub compare: Vec<Compare>,
    #[prost(message, repeated, tag = "2")]
    pub success: Vec<RequestOp>,
    #[prost(message, repeated, tag = "3")]
    pub failure: Vec<RequestOp>,
}

/// `etcdserverpb.TxnResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxnResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(bool, tag = "2")]
    pub succeeded: bool,
    #[prost(message, repeated, tag = "3")]
    pub responses: Vec<ResponseOp>,
}

/// `etcdserverpb.StatusRequest` (no fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {}

/// `etcdserverpb.StatusResponse`: the header, the server version and the leader.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(uint64, tag = "4")]
    pub leader: u64,
}

/// `etcdserverpb.AuthenticateRequest`.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct AuthenticateRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub password: String,
}

impl fmt::Debug for AuthenticateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateRequest")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `etcdserverpb.AuthenticateResponse`.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct AuthenticateResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(string, tag = "2")]
    pub token: String,
}

impl fmt::Debug for AuthenticateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateResponse")
            .field("token", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Bytes as etcd's Go client encodes them (field numbers from rpc.proto):
    /// a compare on mod_revision, a put with a lease, a keys-only get.
    #[test]
    fn txn_wire_bytes() {
        let txn = TxnRequest {
            compare: vec![Compare {
                result: COMPARE_EQUAL,
                target: COMPARE_TARGET_MOD,
                key: b"k".to_vec(),
                target_union: Some(CompareTarget::ModRevision(5)),
            }],
            success: vec![RequestOp {
                request: Some(Request::Put(PutRequest {
                    key: b"k".to_vec(),
                    value: bytes::Bytes::from_static(b"v"),
                    lease: 7,
                })),
            }],
            failure: vec![RequestOp {
                request: Some(Request::Range(RangeRequest {
                    key: b"k".to_vec(),
                    keys_only: true,
                    ..Default::default()
                })),
            }],
        };
        let want: Vec<u8> = vec![
            0x0a, 0x07, // compare, 7 bytes
            0x10, 0x02, // target MOD (result EQUAL is the default, not sent)
            0x1a, 0x01, b'k', // key
            0x30, 0x05, // mod_revision 5
            0x12, 0x0a, // success op, 10 bytes
            0x12, 0x08, // request_put, 8 bytes
            0x0a, 0x01, b'k', 0x12, 0x01, b'v', 0x18, 0x07, // key, value, lease
            0x1a, 0x07, // failure op, 7 bytes
            0x0a, 0x05, // request_range, 5 bytes
            0x0a, 0x01, b'k', 0x40, 0x01, // key, keys_only
        ];
        assert_eq!(txn.encode_to_vec(), want);
        assert_eq!(TxnRequest::decode(want.as_slice()).unwrap(), txn);
    }

    /// A range response as etcd sends it: the values are decoded without a
    /// copy, as slices of the response buffer.
    #[test]
    fn range_response_values_share_the_buffer() {
        let wire: Vec<u8> = vec![
            0x0a, 0x02, 0x18, 0x09, // header: revision 9
            0x12, 0x0e, // kvs, 14 bytes
            0x0a, 0x01, b'k', // key
            0x10, 0x03, 0x18, 0x08, 0x20, 0x02, // create 3, mod 8, version 2
            0x2a, 0x01, b'v', // value
            0x30, 0x07, // lease 7
            0x18, 0x01, // more
            0x20, 0x05, // count 5
        ];
        let buf = bytes::Bytes::from(wire);
        let r = RangeResponse::decode(buf.clone()).unwrap();
        assert_eq!(r.header.as_ref().map(|h| h.revision), Some(9));
        assert!(r.more);
        assert_eq!(r.count, 5);
        let kv = &r.kvs[0];
        assert_eq!(kv.key, b"k");
        assert_eq!(&kv.value[..], b"v");
        assert_eq!(
            (kv.create_revision, kv.mod_revision, kv.version, kv.lease),
            (3, 8, 2, 7)
        );
        let at = buf.as_ptr_range();
        assert!(at.contains(&kv.value.as_ptr()), "the value was copied");
        assert_eq!(r.encode_to_vec(), buf.to_vec());
    }

    #[test]
    fn debug_hides_values_and_passwords() {
        let kv = KeyValue {
            key: b"/registry/secrets/a/b".to_vec(),
            value: bytes::Bytes::from_static(b"topsecret"),
            ..Default::default()
        };
        assert!(!format!("{kv:?}").contains("topsecret"));
        let put = PutRequest {
            key: b"k".to_vec(),
            value: bytes::Bytes::from_static(b"topsecret"),
            lease: 0,
        };
        assert!(!format!("{put:?}").contains("topsecret"));
        let auth = AuthenticateRequest {
            name: "root".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
