//! Unary gRPC calls over a `tonic` channel with `prost` messages written by hand
//! (no generated stubs, so no `protoc` at build time). Shared by the etcd client
//! and, for the same reason, by any other gRPC peer atrest talks to.
//!
//! Wire format: gRPC over HTTP/2 (`PROTOCOL-HTTP2.md` of grpc/grpc): a POST to
//! `/<package>.<Service>/<Method>` with length-prefixed protobuf messages.

use std::error::Error as _;
use tonic::transport::Channel;

/// The text of an error and every error under it, joined with `: `, so that a
/// transport failure keeps its root cause ("tcp connect error: Connection
/// refused") when it becomes a [`tonic::Status`].
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        src = s.source();
    }
    text
}

/// Call the unary method `path` with `req`, accepting responses of up to
/// `max_message` bytes (and sending requests of up to the same size).
pub async fn unary<Req, Resp>(
    channel: Channel,
    path: &'static str,
    req: tonic::Request<Req>,
    max_message: usize,
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    grpc.ready().await.map_err(|e| {
        let text = match e.source() {
            Some(_) => error_chain(&e),
            None => e.to_string(),
        };
        tonic::Status::unavailable(text)
    })?;
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    grpc.unary(req, http::uri::PathAndQuery::from_static(path), codec)
        .await
        .map(tonic::Response::into_inner)
}
