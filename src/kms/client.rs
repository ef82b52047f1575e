//! One KMS plugin connection: gRPC over a unix socket (`unix:///path` or the
//! abstract `unix:///@name`), with the provider's timeout on every call.
//!
//! Endpoint parsing follows kubernetes
//! `staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/grpc_service.go`
//! (`util.ParseEndpoint`): the URL path is the socket path, and a path starting
//! with `/@` names an abstract socket. Calls are made on the registry's own
//! runtime, so callers may be plain threads (rayon workers) or async tasks.

use super::KmsError;
use crate::grpc;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// The largest message atrest accepts from a plugin (upstream's client uses
/// gRPC's default of 4 MiB).
const MAX_MESSAGE: usize = 4 << 20;

/// Where a plugin listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketAddr {
    /// A socket file.
    Path(PathBuf),
    /// A Linux abstract socket (the name without the leading `@`).
    Abstract(Vec<u8>),
}

/// The socket of an endpoint, as upstream's `ParseEndpoint` finds it: the
/// decoded path of the URL as Go's `url.Parse` reads it (`unix:///path`,
/// `unix:/path`, any authority ignored), a path starting with `/@` naming an
/// abstract socket.
pub fn parse_endpoint(endpoint: &str) -> Result<SocketAddr, String> {
    use std::os::unix::ffi::OsStringExt;
    let url = crate::gourl::parse(endpoint)?;
    if url.scheme != "unix" {
        return Err(format!(
            "unsupported scheme {:?}: only unix endpoints are supported",
            url.scheme
        ));
    }
    if let Some(name) = url.path.strip_prefix(b"/@") {
        if name.is_empty() {
            return Err("the abstract socket name is empty".into());
        }
        return Ok(SocketAddr::Abstract(name.to_vec()));
    }
    if url.path.is_empty() || url.path == b"/" {
        return Err("the socket path is empty".into());
    }
    Ok(SocketAddr::Path(PathBuf::from(
        std::ffi::OsString::from_vec(url.path),
    )))
}

/// Connect a tokio unix stream to `addr`.
pub async fn connect_unix(addr: &SocketAddr) -> std::io::Result<tokio::net::UnixStream> {
    match addr {
        SocketAddr::Path(p) => tokio::net::UnixStream::connect(p).await,
        SocketAddr::Abstract(name) => {
            #[cfg(target_os = "linux")]
            {
                use std::os::linux::net::SocketAddrExt;
                let a = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                let s = std::os::unix::net::UnixStream::connect_addr(&a)?;
                s.set_nonblocking(true)?;
                tokio::net::UnixStream::from_std(s)
            }
            #[cfg(not(target_os = "linux"))]
            {
                let _ = name;
                Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "abstract unix sockets exist only on Linux",
                ))
            }
        }
    }
}

/// The runtime the plugin calls run on. Shut down in the background when
/// dropped, so that dropping it from inside another runtime does not panic.
pub(crate) struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    pub(crate) fn new() -> std::io::Result<Runtime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("atrest-kms")
            .enable_all()
            .build()?;
        Ok(Runtime(Some(rt)))
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(|r| r.handle())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A channel to one plugin.
pub struct Client {
    plugin: String,
    endpoint: String,
    timeout: Duration,
    channel: Channel,
    rt: Arc<Runtime>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("plugin", &self.plugin)
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A lazily connected channel to the plugin `plugin` at `endpoint`.
    pub(crate) fn new(
        plugin: &str,
        endpoint: &str,
        timeout: Duration,
        rt: Arc<Runtime>,
    ) -> Result<Client, KmsError> {
        let addr = parse_endpoint(endpoint).map_err(|detail| KmsError::BadEndpoint {
            plugin: plugin.to_string(),
            endpoint: endpoint.to_string(),
            detail,
        })?;
        let handle = rt.handle().ok_or_else(|| KmsError::Unreachable {
            plugin: plugin.to_string(),
            endpoint: endpoint.to_string(),
            detail: "the runtime is shut down".into(),
        })?;
        // The authority kube-apiserver uses; the connector ignores the URI.
        let channel = {
            let _guard = handle.enter();
            Endpoint::from_static("http://localhost").connect_with_connector_lazy(
                tower::service_fn(move |_: http::Uri| {
                    let addr = addr.clone();
                    async move { connect_unix(&addr).await.map(TokioIo::new) }
                }),
            )
        };
        Ok(Client {
            plugin: plugin.to_string(),
            endpoint: endpoint.to_string(),
            timeout,
            channel,
            rt,
        })
    }

    /// The endpoint as configured.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The plugin (provider) name.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Call `method` (`path`) with `req`, within the timeout.
    pub fn call<Req, Resp>(
        &self,
        method: &'static str,
        path: &'static str,
        req: Req,
    ) -> Result<Resp, KmsError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let channel = self.channel.clone();
        let timeout = self.timeout;
        let fut = async move {
            tokio::time::timeout(
                timeout,
                grpc::unary::<Req, Resp>(channel, path, tonic::Request::new(req), MAX_MESSAGE),
            )
            .await
        };
        match self.block_on(fut) {
            Some(Ok(Ok(resp))) => Ok(resp),
            Some(Ok(Err(status))) => Err(self.status_error(method, &status)),
            Some(Err(_elapsed)) => Err(KmsError::Timeout {
                plugin: self.plugin.clone(),
                endpoint: self.endpoint.clone(),
                method,
                timeout: format!("{:?}", self.timeout),
            }),
            None => Err(KmsError::Unreachable {
                plugin: self.plugin.clone(),
                endpoint: self.endpoint.clone(),
                detail: "the call was cancelled".into(),
            }),
        }
    }

    /// Run `fut` on the plugin runtime and wait for it from any thread, async or not.
    fn block_on<F>(&self, fut: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.handle()?.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().ok()
    }

    fn status_error(&self, method: &'static str, s: &tonic::Status) -> KmsError {
        let (plugin, endpoint) = (self.plugin.clone(), self.endpoint.clone());
        match s.code() {
            // Raised by the channel when the socket cannot be connected, and by
            // a server that is going away.
            tonic::Code::Unavailable => KmsError::Unreachable {
                plugin,
                endpoint,
                detail: s.message().to_string(),
            },
            tonic::Code::DeadlineExceeded => KmsError::Timeout {
                plugin,
                endpoint,
                method,
                timeout: format!("{:?}", self.timeout),
            },
            code => KmsError::Refused {
                plugin,
                endpoint,
                method,
                code: format!("{code:?}"),
                message: s.message().to_string(),
            },
        }
    }
}

/// A random (version 4) UUID, as kube-apiserver sends with every plugin call.
pub fn new_uid() -> String {
    let mut b = [0u8; 16];
    // A UID only correlates logs; should the RNG fail, a fixed one still works.
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("unix:///run/kms/plugin.sock"),
            Ok(SocketAddr::Path("/run/kms/plugin.sock".into()))
        );
        assert_eq!(
            parse_endpoint("unix:///@kms-provider.sock"),
            Ok(SocketAddr::Abstract(b"kms-provider.sock".to_vec()))
        );
        for bad in [
            "unix://",
            "unix:///",
            "unix:///@",
            "tcp://127.0.0.1:1",
            "/run/x.sock",
            "unix:relative.sock",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    /// kube-apiserver dials the *path* of the endpoint as Go's `url.Parse` gives
    /// it (`ParseEndpoint` in upstream `staging/src/k8s.io/kms/pkg/util/util.go`,
    /// called by `envelope/kmsv2/grpc_service.go`): the scheme is case-insensitive,
    /// an authority is parsed but not used, a query or fragment is not part of
    /// the path, and percent escapes are decoded. A config endpoint kube-apiserver
    /// connects through must reach the same socket here.
    #[test]
    fn endpoints_resolve_to_the_path_go_dials() {
        let path = |p: &str| Ok(SocketAddr::Path(p.into()));
        assert_eq!(parse_endpoint("unix:/run/kms.sock"), path("/run/kms.sock"));
        assert_eq!(
            parse_endpoint("UNIX:///run/kms.sock"),
            path("/run/kms.sock")
        );
        assert_eq!(
            parse_endpoint("unix://localhost/run/kms.sock"),
            path("/run/kms.sock")
        );
        assert_eq!(
            parse_endpoint("unix:///run/kms%20plugin.sock"),
            path("/run/kms plugin.sock")
        );
        assert_eq!(
            parse_endpoint("unix:///run/kms.sock?x=1"),
            path("/run/kms.sock")
        );
        assert_eq!(
            parse_endpoint("unix:///run/kms.sock#f"),
            path("/run/kms.sock")
        );
        assert_eq!(
            parse_endpoint("unix:///%40kms"),
            Ok(SocketAddr::Abstract(b"kms".to_vec()))
        );
        // url.Parse refuses these: kube-apiserver does not start with them.
        for bad in ["unix:///run/kms%zz.sock", "unix://host:port/run/kms.sock"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uids_are_v4_and_fresh() {
        let (a, b) = (new_uid(), new_uid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn unreachable_socket_names_the_endpoint() {
        let rt = Arc::new(Runtime::new().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let ep = format!("unix://{}/none.sock", dir.path().display());
        let c = Client::new("vault", &ep, Duration::from_secs(2), rt).unwrap();
        let e = c
            .call::<_, super::super::proto::StatusResponse>(
                "Status",
                super::super::proto::path::V2_STATUS,
                super::super::proto::StatusRequest {},
            )
            .unwrap_err();
        assert!(matches!(e, KmsError::Unreachable { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&ep) && text.contains("vault"), "{text}");
        assert!(text.contains("--kms-endpoint"), "{text}");
    }
}
