//! Live etcd access over the v3 gRPC API: connecting with TLS and auth, reading
//! the keyspace in pages at one revision, and compare-and-swap writes in batches.
//!
//! The client is `tonic` (HTTP/2, rustls) with the messages of `proto` written by
//! hand, so building atrest needs no `protoc`. One channel per endpoint; requests
//! go to one endpoint at a time and move to the next when it fails (as etcd's Go
//! client pins an endpoint and fails over). With `--user`, a token from
//! `Auth.Authenticate` rides on every request in the `token` metadata key and is
//! renewed when the server calls it invalid (etcd's simple tokens expire after
//! five minutes idle; `server/auth/simple_token.go`).
//!
//! Upstream: etcd `api/etcdserverpb/rpc.proto` (`Range`, `Txn`). Limits that shape
//! this module (etcd `server/embed/config.go`): a request may carry at most
//! `--max-txn-ops` (default 128) operations and `--max-request-bytes` (default
//! 1.5 MiB); the client rejects responses over its decoding limit, so reads are
//! paginated and the page shrinks when a page of large values would not fit.
//!
//! Every operation that can safely be repeated is retried on transient failures
//! (a member down, a leader election): reads always, and compare-and-swap
//! transactions too, since a transaction whose reply was lost either committed
//! (its compares fail on the retry, and the caller re-reads) or did not.

pub(crate) mod proto;

use crate::grpc;
use proto::path;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use zeroize::Zeroizing;

/// The largest response the client accepts (etcd's own default limit for a
/// request is 1.5 MiB, but a page of values can be larger).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

/// Payload bytes (keys and values) per write transaction: below etcd's default
/// `--max-request-bytes` of 1.5 MiB with room for the compares and framing.
pub const MAX_TXN_BYTES: usize = 1 << 20;

/// How to reach an etcd cluster.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Client URLs (`https://10.0.0.1:2379`); a URL without a scheme uses
    /// https when TLS files are given and http otherwise.
    pub endpoints: Vec<String>,
    /// CA bundle that signed the servers' certificates.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM), with [`ConnectOptions::key`].
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    pub key: Option<PathBuf>,
    /// etcd user name for password authentication.
    pub user: Option<String>,
    /// The user's password (never printed).
    pub password: Option<String>,
    /// Time allowed to open a connection.
    pub dial_timeout: Duration,
    /// Time allowed for one request (a page, a transaction).
    pub command_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            endpoints: Vec::new(),
            ca_cert: None,
            cert: None,
            key: None,
            user: None,
            password: None,
            dial_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("endpoints", &self.endpoints)
            .field("ca_cert", &self.ca_cert)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dial_timeout", &self.dial_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

impl ConnectOptions {
    fn tls_wanted(&self) -> bool {
        self.ca_cert.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// The endpoints as the user gave them, comma-separated (for reports).
    pub fn endpoints_string(&self) -> String {
        self.endpoints.join(",")
    }
}

/// What kind of thing failed when talking to etcd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// TLS handshake or certificate problem.
    Tls,
    /// Authentication or permission refused.
    Auth,
    /// No answer in time.
    Timeout,
    /// Connection refused, reset, or no route.
    Unreachable,
    /// The cluster answered but cannot serve now (no leader, too many requests).
    Unavailable,
    /// The requested revision was compacted away.
    Compacted,
    /// Anything else the server or client reported.
    Other,
}

impl FailureKind {
    /// Short name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Tls => "TLS handshake failed",
            FailureKind::Auth => "authentication failed",
            FailureKind::Timeout => "timed out",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Compacted => "revision compacted",
            FailureKind::Other => "request failed",
        }
    }

    /// Whether repeating the request may succeed.
    pub fn transient(self) -> bool {
        matches!(
            self,
            FailureKind::Timeout | FailureKind::Unreachable | FailureKind::Unavailable
        )
    }

    fn advice(self) -> &'static str {
        match self {
            FailureKind::Tls => "check --cacert (the CA that signed the server certificate), --cert and --key (a client certificate the server trusts), and that the endpoint uses https",
            FailureKind::Auth => "check --user/--password, or the client certificate's user and its roles",
            FailureKind::Timeout => "the member did not answer in time; check that it is healthy, or raise --dial-timeout/--command-timeout",
            FailureKind::Unreachable => "check the address and port, and that etcd is running and listening there",
            FailureKind::Unavailable => "the cluster cannot serve requests now (no leader?); check `etcdctl endpoint status`",
            FailureKind::Compacted => "etcd compacted that revision away; run again (it reads the latest revision)",
            FailureKind::Other => "",
        }
    }
}

/// One endpoint that could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{endpoint}: {}: {detail}{}", .kind.name(), advice_suffix(*.kind))]
pub struct EndpointError {
    /// The endpoint URL.
    pub endpoint: String,
    /// What failed.
    pub kind: FailureKind,
    /// The client's or server's words.
    pub detail: String,
}

fn advice_suffix(kind: FailureKind) -> String {
    match kind.advice() {
        "" => String::new(),
        a => format!(" ({a})"),
    }
}

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No endpoint was given.
    #[error("no etcd endpoints: pass --endpoints (or set ETCDCTL_ENDPOINTS)")]
    NoEndpoints,
    /// An option cannot be used (bad URL, http with TLS files, key without cert).
    #[error("{0}")]
    Invalid(String),
    /// A TLS file could not be read.
    #[error("cannot read {what} {}: {source}", .path.display())]
    ReadFile {
        /// Which file (CA certificate, client certificate, client key).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Every endpoint failed.
    #[error("cannot reach etcd: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Endpoints(Vec<EndpointError>),
}

impl ConnectError {
    /// The kind of the first endpoint failure, if any.
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            ConnectError::Endpoints(v) => v.first().map(|e| e.kind),
            _ => None,
        }
    }
}

/// A request to the cluster that failed (after retries where they are safe).
#[derive(Clone, Debug, thiserror::Error)]
#[error("etcd {op} at {endpoints}: {}: {detail}{}", .kind.name(), advice_suffix(*.kind))]
pub struct EtcdError {
    /// What was being done (`range`, `txn`, `get`, `status`).
    pub op: &'static str,
    /// The endpoints in use.
    pub endpoints: String,
    /// What failed.
    pub kind: FailureKind,
    /// The client's or server's words.
    pub detail: String,
}

/// Classify a failed call by what failed (gRPC status codes, and the words of
/// the transport error under them).
pub(crate) fn classify_error(st: &tonic::Status) -> (FailureKind, String) {
    use std::error::Error as _;
    // The words to show: the status message and its root cause.
    let head = st.message().to_string();
    let code = format!("{:?}", st.code());
    let mut src = st.source();
    let mut chain = Vec::new();
    while let Some(s) = src {
        chain.push(s.to_string());
        src = s.source();
    }
    let mut detail = head.clone();
    if let Some(root) = chain.last() {
        if !detail.contains(root.as_str()) {
            detail = format!("{detail}: {root}");
        }
    }
    if detail.is_empty() {
        detail = code.clone();
    }
    let text = format!("{code} {head} {}", chain.join(" "));
    let lower = text.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    let kind = if code == "DeadlineExceeded" {
        FailureKind::Timeout
    } else if code == "Unauthenticated" || code == "PermissionDenied" {
        FailureKind::Auth
    } else if has(&[
        "certificate",
        "unknownissuer",
        "unknown issuer",
        "tls",
        "handshake",
        "alert",
        "invalidcertificate",
        "bad certificate",
        "badcertificate",
        "ssl",
    ]) {
        FailureKind::Tls
    } else if has(&[
        "authentication failed",
        "invalid auth token",
        "permission denied",
        "user name is empty",
        "user name not found",
        "unauthenticated",
        "auth: ",
    ]) {
        FailureKind::Auth
    } else if has(&["compacted"]) {
        FailureKind::Compacted
    } else if has(&["timed out", "timeout", "deadline"]) {
        FailureKind::Timeout
    } else if has(&[
        "connection refused",
        "tcp connect error",
        "dns error",
        "connection reset",
        "broken pipe",
        "no route",
        "network is unreachable",
        "error trying to connect",
        "connection closed",
        "transport error",
        "operation was canceled",
    ]) {
        FailureKind::Unreachable
    } else if has(&[
        "leader changed",
        "no leader",
        "too many requests",
        "unavailable",
        "not capable",
        "stopped",
    ]) {
        FailureKind::Unavailable
    } else {
        FailureKind::Other
    };
    (kind, detail)
}

/// One key as read from etcd.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The etcd key.
    pub key: Vec<u8>,
    /// The stored value (a slice of the response it came in, not a copy).
    pub value: bytes::Bytes,
    /// Revision of the key's creation (since its last delete).
    pub create_revision: i64,
    /// Revision of the last write of the key.
    pub mod_revision: i64,
    /// Writes since the key's creation.
    pub version: i64,
    /// Lease the key is attached to (0: none).
    pub lease: i64,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be plaintext Secrets: never print them.
        f.debug_struct("KeyValue")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value_len", &self.value.len())
            .field("mod_revision", &self.mod_revision)
            .field("lease", &self.lease)
            .finish()
    }
}

impl From<proto::KeyValue> for KeyValue {
    fn from(kv: proto::KeyValue) -> Self {
        KeyValue {
            key: kv.key,
            value: kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

/// One page of a range read.
#[derive(Debug)]
pub struct Page {
    /// The revision the page was read at.
    pub revision: i64,
    /// The keys, in key order.
    pub kvs: Vec<KeyValue>,
}

/// One compare-and-swap write: put `value` at `key` only if the key's
/// mod_revision is still `expect_mod_revision`, keeping `lease`.
#[derive(Clone)]
pub struct CasWrite {
    /// The etcd key.
    pub key: Vec<u8>,
    /// The new value (shared, not copied, by the transaction and its retries).
    pub value: bytes::Bytes,
    /// The mod_revision the value was computed from.
    pub expect_mod_revision: i64,
    /// The key's lease (0: none).
    pub lease: i64,
}

impl fmt::Debug for CasWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CasWrite")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value_len", &self.value.len())
            .field("expect_mod_revision", &self.expect_mod_revision)
            .field("lease", &self.lease)
            .finish()
    }
}

impl CasWrite {
    /// Bytes this write adds to a transaction request (key twice: compare and put).
    pub fn request_bytes(&self) -> usize {
        2 * self.key.len() + self.value.len() + 32
    }
}

/// The outcome of a batch of compare-and-swap writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every write was applied, at this revision.
    Committed {
        /// The revision of the transaction.
        revision: i64,
    },
    /// Nothing was applied: these writes (indices into the batch) found their key
    /// changed (`Some(mod_revision)`) or deleted (`None`).
    Conflicts(Vec<(usize, Option<i64>)>),
}

/// A connection to an etcd cluster.
#[derive(Clone)]
pub struct Etcd {
    inner: Arc<Inner>,
}

struct Member {
    url: String,
    channel: Channel,
}

struct Inner {
    /// The endpoints that answered at connect time, in the order given.
    members: Vec<Member>,
    /// The member requests go to; moves on when it fails.
    current: AtomicUsize,
    /// Every endpoint given, comma-separated (for messages).
    endpoints: String,
    command_timeout: Duration,
    auth: Option<Credentials>,
    /// The auth token, and how many times it was renewed.
    token: RwLock<Option<tonic::metadata::AsciiMetadataValue>>,
    token_generation: AtomicU64,
    renewing: tokio::sync::Mutex<()>,
}

/// etcd user and password (the password is wiped on drop).
#[derive(Clone)]
struct Credentials {
    user: String,
    password: Zeroizing<String>,
}

impl fmt::Debug for Etcd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.inner.endpoints)
            .finish()
    }
}

/// Normalise one endpoint: add the scheme, refuse http with TLS files.
fn endpoint_url(ep: &str, tls: bool) -> Result<String, ConnectError> {
    let ep = ep.trim().trim_end_matches('/');
    if ep.is_empty() {
        return Err(ConnectError::Invalid(
            "empty endpoint in --endpoints".into(),
        ));
    }
    if let Some(rest) = ep.strip_prefix("http://") {
        if tls {
            return Err(ConnectError::Invalid(format!(
                "{ep}: TLS files were given but the endpoint is http://; use https://{rest}"
            )));
        }
        return Ok(ep.to_string());
    }
    if ep.starts_with("https://") {
        return Ok(ep.to_string());
    }
    if ep.contains("://") {
        return Err(ConnectError::Invalid(format!(
            "{ep}: unsupported scheme; use http:// or https://"
        )));
    }
    Ok(format!("{}://{ep}", if tls { "https" } else { "http" }))
}

fn read_file(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|source| ConnectError::ReadFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The user and password to authenticate with, from `--user` (`NAME` or
/// `NAME:PASSWORD`, as etcdctl takes it) and `--password`.
fn credentials(o: &ConnectOptions) -> Result<Option<Credentials>, ConnectError> {
    let Some(user) = &o.user else {
        if o.password.is_some() {
            return Err(ConnectError::Invalid(
                "--password was given without --user".into(),
            ));
        }
        return Ok(None);
    };
    let (name, password) = match (user.split_once(':'), &o.password) {
        (_, Some(pw)) => (user.clone(), pw.clone()),
        (Some((n, p)), None) => (n.to_string(), p.to_string()),
        (None, None) => {
            return Err(ConnectError::Invalid(format!(
                "--user {user} needs a password: pass --password, ETCDCTL_PASSWORD, or --user NAME:PASSWORD"
            )))
        }
    };
    Ok(Some(Credentials {
        user: name,
        password: Zeroizing::new(password),
    }))
}

/// rustls settings from `--cacert`, `--cert` and `--key`; `None` without TLS files.
fn tls_config(o: &ConnectOptions) -> Result<Option<ClientTlsConfig>, ConnectError> {
    if !o.tls_wanted() {
        return Ok(None);
    }
    let mut tls = ClientTlsConfig::new();
    if let Some(ca) = &o.ca_cert {
        tls = tls.ca_certificate(Certificate::from_pem(read_file("CA certificate", ca)?));
    }
    match (&o.cert, &o.key) {
        (Some(c), Some(k)) => {
            let cert = read_file("client certificate", c)?;
            let key = Zeroizing::new(read_file("client key", k)?);
            tls = tls.identity(Identity::from_pem(cert, key.as_slice()));
        }
        (None, None) => {}
        _ => {
            return Err(ConnectError::Invalid(
                "--cert and --key go together: give both or neither".into(),
            ))
        }
    }
    if o.ca_cert.is_none() {
        return Err(ConnectError::Invalid(
            "TLS needs --cacert (the CA that signed the server certificates)".into(),
        ));
    }
    Ok(Some(tls))
}

/// The channel settings for one endpoint URL.
fn endpoint(
    url: &str,
    o: &ConnectOptions,
    tls: Option<&ClientTlsConfig>,
) -> Result<Endpoint, ConnectError> {
    let mut e = Endpoint::from_shared(url.to_string())
        .map_err(|err| ConnectError::Invalid(format!("{url}: not a valid endpoint URL: {err}")))?
        .connect_timeout(o.dial_timeout)
        .tcp_nodelay(true)
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(o.dial_timeout)
        .keep_alive_while_idle(true)
        .initial_stream_window_size(16 << 20)
        .initial_connection_window_size(64 << 20);
    match tls {
        Some(t) => {
            e = e.tls_config(t.clone()).map_err(|err| {
                ConnectError::Invalid(format!("{url}: TLS settings: {}", grpc::error_chain(&err)))
            })?;
        }
        None if url.starts_with("https://") => {
            return Err(ConnectError::Invalid(format!(
            "{url}: an https endpoint needs --cacert (the CA that signed the server certificates)"
        )))
        }
        None => {}
    }
    Ok(e)
}

/// The metadata key etcd reads the auth token from
/// (`server/etcdserver/api/v3rpc/interceptor.go`, `rpctypes.TokenFieldNameGRPC`).
const TOKEN_KEY: &str = "token";

/// Whether the server refused a request's token as expired or unknown
/// (`rpctypes.ErrGRPCInvalidAuthToken`, "etcdserver: invalid auth token").
fn invalid_token(st: &tonic::Status) -> bool {
    st.message().contains("invalid auth token")
}

/// Get a token for `c` from the member behind `channel`.
async fn authenticate(
    channel: Channel,
    c: &Credentials,
) -> Result<tonic::metadata::AsciiMetadataValue, tonic::Status> {
    let req = proto::AuthenticateRequest {
        name: c.user.clone(),
        password: c.password.as_str().to_owned(),
    };
    let resp: proto::AuthenticateResponse = grpc::unary(
        channel,
        path::AUTHENTICATE,
        tonic::Request::new(req),
        MAX_RESPONSE_BYTES,
    )
    .await?;
    let mut token = tonic::metadata::AsciiMetadataValue::try_from(resp.token.as_str())
        .map_err(|_| tonic::Status::unauthenticated("etcd returned a token that is not ASCII"))?;
    token.set_sensitive(true);
    Ok(token)
}

/// A connected, authenticated and answering member.
struct Probed {
    channel: Channel,
    token: Option<tonic::metadata::AsciiMetadataValue>,
}

async fn probe(
    url: String,
    endpoint: Endpoint,
    auth: Option<Credentials>,
    timeout: Duration,
    tls: bool,
) -> Result<Probed, EndpointError> {
    let fail = |kind, detail: String| EndpointError {
        endpoint: url.clone(),
        kind,
        detail,
    };
    let attempt = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| tonic::Status::unavailable(grpc::error_chain(&e)))?;
        let token = match &auth {
            Some(c) => Some(authenticate(channel.clone(), c).await?),
            None => None,
        };
        let mut req = tonic::Request::new(proto::StatusRequest {});
        if let Some(t) = &token {
            req.metadata_mut().insert(TOKEN_KEY, t.clone());
        }
        let _: proto::StatusResponse =
            grpc::unary(channel.clone(), path::STATUS, req, MAX_RESPONSE_BYTES).await?;
        Ok::<_, tonic::Status>(Probed { channel, token })
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => {
            let (mut kind, mut detail) = classify_error(&e);
            // TLS 1.3: a server that rejects the client certificate closes the
            // connection after the handshake, which the client sees as a closed
            // connection, not as a certificate error.
            let lower = detail.to_ascii_lowercase();
            if tls
                && kind == FailureKind::Unreachable
                && !lower.contains("connect error")
                && !lower.contains("refused")
            {
                kind = FailureKind::Tls;
                detail.push_str(
                    "; the server closed the connection after the TLS handshake: it probably does not accept the client certificate",
                );
            }
            Err(fail(kind, detail))
        }
        Err(_) => Err(fail(
            FailureKind::Timeout,
            format!("no answer within {timeout:?}"),
        )),
    }
}

fn header_revision(h: &Option<proto::ResponseHeader>) -> i64 {
    h.as_ref().map_or(0, |h| h.revision)
}

impl Etcd {
    /// Connect: every endpoint is tried on its own first (so a failure names the
    /// endpoint and what failed); requests then go to those that answered, one at
    /// a time, moving on when one fails. Returns the connection and the endpoints
    /// that did not answer.
    pub async fn connect(o: &ConnectOptions) -> Result<(Etcd, Vec<EndpointError>), ConnectError> {
        let tls = o.tls_wanted();
        let urls: Vec<String> = o
            .endpoints
            .iter()
            .flat_map(|e| e.split(','))
            .filter(|e| !e.trim().is_empty())
            .map(|e| endpoint_url(e, tls))
            .collect::<Result<_, _>>()?;
        if urls.is_empty() {
            return Err(ConnectError::NoEndpoints);
        }
        let auth = credentials(o)?;
        let tls_settings = tls_config(o)?;
        let endpoints: Vec<Endpoint> = urls
            .iter()
            .map(|u| endpoint(u, o, tls_settings.as_ref()))
            .collect::<Result<_, _>>()?;
        let budget = o.dial_timeout + o.command_timeout.min(Duration::from_secs(10));
        let mut set = tokio::task::JoinSet::new();
        for (i, (u, e)) in urls.iter().zip(endpoints).enumerate() {
            let (u, a) = (u.clone(), auth.clone());
            set.spawn(async move { (i, probe(u, e, a, budget, tls).await) });
        }
        let mut results = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(x) => results.push(x),
                Err(e) => {
                    return Err(ConnectError::Invalid(format!(
                        "connection task failed: {e}"
                    )))
                }
            }
        }
        results.sort_by_key(|(i, _)| *i);
        let mut members = Vec::new();
        let mut token = None;
        let mut bad = Vec::new();
        for (i, r) in results {
            match r {
                Ok(p) => {
                    if token.is_none() {
                        token = p.token;
                    }
                    members.push(Member {
                        url: urls[i].clone(),
                        channel: p.channel,
                    });
                }
                Err(e) => bad.push(e),
            }
        }
        if members.is_empty() {
            return Err(ConnectError::Endpoints(bad));
        }
        Ok((
            Etcd {
                inner: Arc::new(Inner {
                    members,
                    current: AtomicUsize::new(0),
                    endpoints: urls.join(","),
                    command_timeout: o.command_timeout,
                    auth,
                    token: RwLock::new(token),
                    token_generation: AtomicU64::new(0),
                    renewing: tokio::sync::Mutex::new(()),
                }),
            },
            bad,
        ))
    }

    /// The endpoints, comma-separated.
    pub fn endpoints(&self) -> &str {
        &self.inner.endpoints
    }

    /// The endpoint requests go to now.
    pub fn current_endpoint(&self) -> &str {
        let i = self.inner.current.load(Ordering::Relaxed) % self.inner.members.len();
        &self.inner.members[i].url
    }

    fn err(&self, op: &'static str, e: &tonic::Status) -> EtcdError {
        let (kind, detail) = classify_error(e);
        EtcdError {
            op,
            endpoints: self.inner.endpoints.clone(),
            kind,
            detail,
        }
    }

    /// Authenticate again on member `idx`, unless another request already did
    /// since the token of `generation` was refused.
    async fn renew_token(&self, generation: u64, idx: usize) -> Result<(), EtcdError> {
        let inner = &self.inner;
        let _one_at_a_time = inner.renewing.lock().await;
        if inner.token_generation.load(Ordering::Acquire) != generation {
            return Ok(());
        }
        let Some(c) = &inner.auth else {
            return Ok(());
        };
        let fresh = tokio::time::timeout(
            inner.command_timeout,
            authenticate(inner.members[idx].channel.clone(), c),
        )
        .await
        .map_err(|_| EtcdError {
            op: "authenticate",
            endpoints: inner.endpoints.clone(),
            kind: FailureKind::Timeout,
            detail: format!("no answer within {:?}", inner.command_timeout),
        })?
        .map_err(|st| self.err("authenticate", &st))?;
        *inner.token.write().unwrap_or_else(|p| p.into_inner()) = Some(fresh);
        inner.token_generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Send `req` to `method` until it succeeds, fails for good, or the retry
    /// budget (about three command timeouts, at least 30 s) is spent. A transient
    /// failure moves requests to the next endpoint; a refused token is renewed.
    async fn call<Req, Resp>(
        &self,
        op: &'static str,
        method: &'static str,
        req: &Req,
    ) -> Result<Resp, EtcdError>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let inner = &self.inner;
        let n = inner.members.len();
        let deadline =
            tokio::time::Instant::now() + (inner.command_timeout * 3).max(Duration::from_secs(30));
        let mut delay = Duration::from_millis(50);
        let mut renewals = 0;
        loop {
            let idx = inner.current.load(Ordering::Relaxed) % n;
            let generation = inner.token_generation.load(Ordering::Acquire);
            let token = inner
                .token
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let mut request = tonic::Request::new(req.clone());
            if let Some(t) = token {
                request.metadata_mut().insert(TOKEN_KEY, t);
            }
            let channel = inner.members[idx].channel.clone();
            let res = tokio::time::timeout(
                inner.command_timeout,
                grpc::unary::<Req, Resp>(channel, method, request, MAX_RESPONSE_BYTES),
            )
            .await;
            let e = match res {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(st)) if inner.auth.is_some() && invalid_token(&st) && renewals < 2 => {
                    renewals += 1;
                    self.renew_token(generation, idx).await?;
                    continue;
                }
                Ok(Err(st)) => self.err(op, &st),
                Err(_) => EtcdError {
                    op,
                    endpoints: inner.endpoints.clone(),
                    kind: FailureKind::Timeout,
                    detail: format!(
                        "{}: no answer within {:?}",
                        inner.members[idx].url, inner.command_timeout
                    ),
                },
            };
            if !e.kind.transient() || tokio::time::Instant::now() + delay > deadline {
                return Err(e);
            }
            if n > 1 {
                let _ = inner.current.compare_exchange(
                    idx,
                    (idx + 1) % n,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    async fn range(
        &self,
        op: &'static str,
        req: &proto::RangeRequest,
    ) -> Result<proto::RangeResponse, EtcdError> {
        self.call(op, path::RANGE, req).await
    }

    /// The cluster's current revision.
    pub async fn revision(&self) -> Result<i64, EtcdError> {
        let resp = self
            .range(
                "range",
                &proto::RangeRequest {
                    key: b"\0".to_vec(),
                    count_only: true,
                    limit: 1,
                    ..Default::default()
                },
            )
            .await?;
        Ok(header_revision(&resp.header))
    }

    /// Number of keys in `[start, end)` at `revision` (0: latest).
    pub async fn count(&self, start: &[u8], end: &[u8], revision: i64) -> Result<u64, EtcdError> {
        let resp = self
            .range(
                "range",
                &proto::RangeRequest {
                    key: start.to_vec(),
                    range_end: end.to_vec(),
                    count_only: true,
                    revision,
                    ..Default::default()
                },
            )
            .await?;
        Ok(resp.count.max(0) as u64)
    }

    /// Read one key (latest revision); `None` when it does not exist.
    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, EtcdError> {
        let resp = self
            .range(
                "get",
                &proto::RangeRequest {
                    key: key.to_vec(),
                    ..Default::default()
                },
            )
            .await?;
        Ok(resp.kvs.into_iter().next().map(KeyValue::from))
    }

    /// Read `[start, end)` in pages of up to `page_size` keys. With
    /// `ReadAt::Fixed`, every page is read at one revision (the first page's,
    /// or the one given), which makes the pages one consistent view.
    pub fn pages(&self, start: Vec<u8>, end: Vec<u8>, at: ReadAt, page_size: usize) -> Pages {
        Pages {
            tiles: Tiles::new(self.clone(), start, end, at, page_size),
            current: None,
        }
    }

    /// Like [`Etcd::pages`], read ahead by background tasks: up to `ahead` tiles
    /// of `page_size` keys are read at the same time (so that etcd answers on
    /// all its cores while the caller works on a page) and handed over in key
    /// order, at most `ahead` pages buffered.
    ///
    /// Without `bounds`, the tiles are found by keys-only scans on a task of
    /// their own that runs ahead of the reads; the first scan covers only the
    /// first few tiles, so that the reads start early. With `bounds` (as a
    /// previous read of the range found them: the first key of each page but
    /// the first) the tiles start there and nothing is scanned. Any bounds give
    /// every key of the range once (bounds out of order or outside the range
    /// are ignored); bounds a page apart give one request per tile.
    pub fn prefetch(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        at: ReadAt,
        page_size: usize,
        ahead: usize,
        bounds: Option<Vec<Vec<u8>>>,
    ) -> tokio::sync::mpsc::Receiver<Result<Page, EtcdError>> {
        let ahead = ahead.max(1);
        let page_size = page_size.clamp(1, 100_000) as i64;
        let (tx, rx) = tokio::sync::mpsc::channel(ahead);
        let etcd = self.clone();
        tokio::spawn(async move {
            if let Err(e) = read_tiles(&etcd, start, end, at, page_size, ahead, bounds, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    /// Apply a batch of compare-and-swap writes in one transaction: all or
    /// nothing. When any key changed, nothing is written and the conflicting
    /// writes are named (the failure branch reads the keys without values).
    pub async fn cas_batch(&self, writes: &[CasWrite]) -> Result<BatchOutcome, EtcdError> {
        if writes.is_empty() {
            return Ok(BatchOutcome::Committed { revision: 0 });
        }
        let txn = proto::TxnRequest {
            compare: writes
                .iter()
                .map(|w| proto::Compare {
                    result: proto::COMPARE_EQUAL,
                    target: proto::COMPARE_TARGET_MOD,
                    key: w.key.clone(),
                    target_union: Some(proto::CompareTarget::ModRevision(w.expect_mod_revision)),
                })
                .collect(),
            success: writes
                .iter()
                .map(|w| proto::RequestOp {
                    request: Some(proto::Request::Put(proto::PutRequest {
                        key: w.key.clone(),
                        value: w.value.clone(),
                        lease: w.lease,
                    })),
                })
                .collect(),
            failure: writes
                .iter()
                .map(|w| proto::RequestOp {
                    request: Some(proto::Request::Range(proto::RangeRequest {
                        key: w.key.clone(),
                        keys_only: true,
                        ..Default::default()
                    })),
                })
                .collect(),
        };
        let resp: proto::TxnResponse = self.call("txn", path::TXN, &txn).await?;
        if resp.succeeded {
            return Ok(BatchOutcome::Committed {
                revision: header_revision(&resp.header),
            });
        }
        let mut conflicts = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            let now = match resp.responses.get(i).and_then(|r| r.response.as_ref()) {
                Some(proto::Response::Range(r)) => r.kvs.first().map(|kv| kv.mod_revision),
                _ => None,
            };
            if now != Some(w.expect_mod_revision) {
                conflicts.push((i, now));
            }
        }
        Ok(BatchOutcome::Conflicts(conflicts))
    }

    /// Put one value without conditions (tests and load generators).
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<i64, EtcdError> {
        let req = proto::PutRequest {
            key: key.to_vec(),
            value: bytes::Bytes::copy_from_slice(value),
            lease: 0,
        };
        let resp: proto::PutResponse = self.call("put", path::PUT, &req).await?;
        Ok(header_revision(&resp.header))
    }

    /// Put many values in one transaction without conditions (load generators).
    pub async fn put_many(&self, kvs: &[(Vec<u8>, Vec<u8>)]) -> Result<i64, EtcdError> {
        let txn = proto::TxnRequest {
            success: kvs
                .iter()
                .map(|(k, v)| proto::RequestOp {
                    request: Some(proto::Request::Put(proto::PutRequest {
                        key: k.clone(),
                        value: bytes::Bytes::copy_from_slice(v),
                        lease: 0,
                    })),
                })
                .collect(),
            ..Default::default()
        };
        let resp: proto::TxnResponse = self.call("txn", path::TXN, &txn).await?;
        Ok(header_revision(&resp.header))
    }
}

/// Which revision a paged read uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAt {
    /// All pages at one revision: this one, or (0) the first page's.
    Fixed(i64),
    /// Each page at the latest revision (for writers that check every key with a
    /// compare-and-swap anyway, and must not fail when etcd compacts meanwhile).
    Latest,
}

impl ReadAt {
    /// The `revision` of a range request (0: the latest).
    fn revision(self) -> i64 {
        match self {
            ReadAt::Fixed(r) => r,
            ReadAt::Latest => 0,
        }
    }

    /// `Fixed(0)` as the cluster's current revision: the keys-only scans and
    /// the reads of one fixed read must all see the same revision.
    async fn pinned(self, etcd: &Etcd) -> Result<ReadAt, EtcdError> {
        Ok(match self {
            ReadAt::Fixed(0) => ReadAt::Fixed(etcd.revision().await?),
            at => at,
        })
    }
}

/// Options for a range read: at the fixed revision, or serializable at the
/// latest (a member's local state, without waiting for writes in flight to
/// apply: good enough for a writer whose every write is compared).
fn range_request(at: ReadAt, start: Vec<u8>, end: Vec<u8>, limit: i64) -> proto::RangeRequest {
    proto::RangeRequest {
        key: start,
        range_end: end,
        limit,
        revision: at.revision(),
        serializable: matches!(at, ReadAt::Latest),
        ..Default::default()
    }
}

/// Read one page of `[start, end)`: up to `page_size` keys (fewer when a page of
/// large values would be over the response limit). Returns the page and, when
/// the range holds more keys, where the next page starts.
async fn read_page(
    etcd: &Etcd,
    at: ReadAt,
    start: Vec<u8>,
    end: &[u8],
    page_size: i64,
) -> Result<(Page, Option<Vec<u8>>), EtcdError> {
    let mut limit = page_size;
    let resp = loop {
        let req = range_request(at, start.clone(), end.to_vec(), limit);
        match etcd.range("range", &req).await {
            Ok(r) => break r,
            // A page of large values over the response limit: smaller pages.
            Err(e) if limit > 1 && e.detail.contains("message length too large") => {
                limit = (limit / 4).max(1);
            }
            Err(e) => return Err(e),
        }
    };
    let revision = match at {
        ReadAt::Fixed(r) if r != 0 => r,
        _ => header_revision(&resp.header),
    };
    let kvs: Vec<KeyValue> = resp.kvs.into_iter().map(KeyValue::from).collect();
    // More keys than the limit (written since the tiles were found, or a smaller
    // limit): go on after the last one.
    let next = match (resp.more, kvs.last()) {
        (true, Some(last)) => {
            let mut k = last.key.clone();
            k.push(0);
            Some(k)
        }
        _ => None,
    };
    Ok((Page { revision, kvs }, next))
}

/// Every page of the tile `[start, end)`.
async fn read_tile(
    etcd: Etcd,
    at: ReadAt,
    start: Vec<u8>,
    end: Vec<u8>,
    page_size: i64,
) -> Result<Vec<Page>, EtcdError> {
    let mut pages = Vec::with_capacity(1);
    let mut next = Some(start);
    while let Some(from) = next.take() {
        let (page, more) = read_page(&etcd, at, from, &end, page_size).await?;
        if !page.kvs.is_empty() {
            pages.push(page);
        }
        next = more;
    }
    Ok(pages)
}

/// The body of [`Etcd::prefetch`]: read the tiles of `[start, end)`, `ahead`
/// at a time, and send their pages in key order. Ends early, without error,
/// when the receiver goes away.
#[allow(clippy::too_many_arguments)]
async fn read_tiles(
    etcd: &Etcd,
    start: Vec<u8>,
    end: Vec<u8>,
    at: ReadAt,
    page_size: i64,
    ahead: usize,
    known: Option<Vec<Vec<u8>>>,
    tx: &tokio::sync::mpsc::Sender<Result<Page, EtcdError>>,
) -> Result<(), EtcdError> {
    let at = at.pinned(etcd).await?;
    let mut bounds = match known {
        Some(known) => Bounds::known(&start, &end, known),
        None => Bounds::discover(etcd, at, start.clone(), end.clone(), page_size, ahead),
    };
    // Tile reads in flight, in key order.
    let mut in_flight = std::collections::VecDeque::with_capacity(ahead);
    // Start of the next tile; each ends where the next begins, the last at `end`.
    let mut next = Some(start);
    loop {
        while in_flight.len() < ahead {
            let Some(tile_start) = next.take() else { break };
            next = bounds.next().await?;
            let tile_end = next.clone().unwrap_or_else(|| end.clone());
            in_flight.push_back(AbortOnDrop(tokio::spawn(read_tile(
                etcd.clone(),
                at,
                tile_start,
                tile_end,
                page_size,
            ))));
        }
        let Some(mut task) = in_flight.pop_front() else {
            return Ok(());
        };
        let pages = (&mut task.0).await.map_err(|e| EtcdError {
            op: "range",
            endpoints: etcd.inner.endpoints.clone(),
            kind: FailureKind::Other,
            detail: format!("read task failed: {e}"),
        })??;
        for p in pages {
            if tx.send(Ok(p)).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// Where the tiles of a range start, after the first: given by the caller, or
/// found by keys-only scans on a task that runs ahead of the reads.
enum Bounds {
    Known(std::vec::IntoIter<Vec<u8>>),
    Found {
        rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, EtcdError>>,
        _scans: AbortOnDrop<()>,
    },
}

/// A background task stopped when its owner goes away: a read or a scan ahead
/// of a reader that left, or of a read that failed, must not keep querying etcd.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Bounds {
    /// `bounds` that are inside `(start, end)` and each greater than the one
    /// before (an `end` of `"\0"`, etcd's "every key from `start` on", bounds
    /// nothing).
    fn known(start: &[u8], end: &[u8], bounds: Vec<Vec<u8>>) -> Bounds {
        let unbounded = end == [0];
        let mut kept: Vec<Vec<u8>> = Vec::with_capacity(bounds.len());
        for b in bounds {
            let after = kept.last().map_or(start, Vec::as_slice);
            if b.as_slice() > after && (unbounded || b.as_slice() < end) {
                kept.push(b);
            }
        }
        Bounds::Known(kept.into_iter())
    }

    /// Start the scans: the first covers `ahead + 1` tiles, the next ones
    /// [`Pages::DISCOVER`] tiles each, at most two scans' worth buffered.
    fn discover(
        etcd: &Etcd,
        at: ReadAt,
        start: Vec<u8>,
        end: Vec<u8>,
        page_size: i64,
        ahead: usize,
    ) -> Bounds {
        let (tx, rx) = tokio::sync::mpsc::channel(2 * Pages::DISCOVER as usize);
        let etcd = etcd.clone();
        let first = (ahead as i64 + 1).min(Pages::DISCOVER);
        let task = tokio::spawn(async move {
            let mut from = start;
            let mut tiles = first;
            loop {
                let (found, more) =
                    match discover_tiles(&etcd, at, &from, &end, page_size, tiles).await {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                for b in found {
                    if tx.send(Ok(b)).await.is_err() {
                        return;
                    }
                }
                match more {
                    Some(m) => from = m,
                    None => return,
                }
                tiles = Pages::DISCOVER;
            }
        });
        Bounds::Found {
            rx,
            _scans: AbortOnDrop(task),
        }
    }

    /// The next tile start; `None` when the tile being cut is the last.
    async fn next(&mut self) -> Result<Option<Vec<u8>>, EtcdError> {
        match self {
            Bounds::Known(it) => Ok(it.next()),
            Bounds::Found { rx, .. } => rx.recv().await.transpose(),
        }
    }
}

/// One keys-only scan from `from` for up to `tiles` tiles of `page_size` keys:
/// the starts of the tiles after the one that begins at `from`, the last of
/// them where the next scan begins (returned as well), or `None` when the scan
/// reached `end`.
async fn discover_tiles(
    etcd: &Etcd,
    at: ReadAt,
    from: &[u8],
    end: &[u8],
    page_size: i64,
    tiles: i64,
) -> Result<(Vec<Vec<u8>>, Option<Vec<u8>>), EtcdError> {
    let limit = (page_size * tiles).min(50_000).max(page_size);
    let mut req = range_request(at, from.to_vec(), end.to_vec(), limit);
    req.keys_only = true;
    let resp = etcd.range("range", &req).await?;
    let step = page_size as usize;
    let mut found: Vec<Vec<u8>> = resp
        .kvs
        .iter()
        .skip(step)
        .step_by(step)
        .map(|kv| kv.key.clone())
        .collect();
    let more = match (resp.more, resp.kvs.last()) {
        (true, Some(last)) => {
            // Just past the last key seen: no key of this scan, so no bound twice.
            let mut k = last.key.clone();
            k.push(0);
            found.push(k.clone());
            Some(k)
        }
        _ => None,
    };
    Ok((found, more))
}

/// Cuts a key range into tiles of about `page_size` keys.
///
/// etcd walks every key from a range's start to its end to count them, whatever
/// the limit (`treeIndex.Revisions` in etcd 3.4 `mvcc/index.go` and 3.5/3.6
/// `server/mvcc/index.go`; only 3.7 can skip the count), so paging
/// `[next, end)` costs time quadratic in the size of the range. Instead, a
/// keys-only scan of up to [`Pages::DISCOVER`] pages' worth of keys finds where
/// the next tiles start, and each tile is read as
/// `[start of tile, start of next tile)`: every request walks one page. The
/// tiles cover the range without gap or overlap, so they can also be read at
/// the same time. (Before 3.7 a keys-only range still reads each value from
/// the backend and drops it afterwards, `etcdserver/apply.go`: a scan costs
/// etcd about as much as reading the values, which is why a second read of the
/// same range can reuse the first one's tiles (`bounds` of [`Etcd::prefetch`]).)
struct Tiles {
    etcd: Etcd,
    /// Start of the next tile; `None` at the end.
    next: Option<Vec<u8>>,
    end: Vec<u8>,
    at: ReadAt,
    page_size: i64,
    /// Starts of the tiles after `next`, as found by the last keys-only scan.
    bounds: std::collections::VecDeque<Vec<u8>>,
    /// Whether the keys-only scans reached `end`.
    discovered: bool,
}

impl Tiles {
    fn new(etcd: Etcd, start: Vec<u8>, end: Vec<u8>, at: ReadAt, page_size: usize) -> Tiles {
        Tiles {
            etcd,
            next: Some(start),
            end,
            at,
            page_size: page_size.clamp(1, 100_000) as i64,
            bounds: std::collections::VecDeque::new(),
            discovered: false,
        }
    }

    /// A keys-only scan from `from`: the starts of the tiles after the one that
    /// begins at `from`.
    async fn discover(&mut self, from: &[u8]) -> Result<(), EtcdError> {
        self.at = self.at.pinned(&self.etcd).await?;
        let (found, more) = discover_tiles(
            &self.etcd,
            self.at,
            from,
            &self.end,
            self.page_size,
            Pages::DISCOVER,
        )
        .await?;
        self.bounds.extend(found);
        self.discovered = more.is_none();
        Ok(())
    }

    /// The next tile `[start, end)`, or `None` at the end of the range.
    async fn next_tile(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>, EtcdError> {
        let Some(start) = self.next.take() else {
            return Ok(None);
        };
        if self.bounds.is_empty() && !self.discovered {
            self.discover(&start).await?;
        }
        Ok(Some(match self.bounds.pop_front() {
            Some(b) => {
                self.next = Some(b.clone());
                (start, b)
            }
            // The scans reached the end of the range: this tile is the last.
            None => (start, self.end.clone()),
        }))
    }
}

/// A paged range read; see [`Etcd::pages`].
pub struct Pages {
    tiles: Tiles,
    /// Where the next page starts in the current tile, and the tile's end.
    current: Option<(Vec<u8>, Vec<u8>)>,
}

impl Pages {
    /// Pages found per keys-only scan.
    pub const DISCOVER: i64 = 40;

    /// The revision of a fixed read (0 until the first page when not given).
    pub fn revision(&self) -> i64 {
        self.tiles.at.revision()
    }

    /// The next page, or `None` at the end of the range.
    pub async fn next_page(&mut self) -> Result<Option<Page>, EtcdError> {
        loop {
            let (from, end) = match self.current.take() {
                Some(c) => c,
                None => match self.tiles.next_tile().await? {
                    Some(t) => t,
                    None => return Ok(None),
                },
            };
            let (page, more) = read_page(
                &self.tiles.etcd,
                self.tiles.at,
                from,
                &end,
                self.tiles.page_size,
            )
            .await?;
            self.current = more.map(|m| (m, end));
            if !page.kvs.is_empty() {
                return Ok(Some(page));
            }
        }
    }
}

/// The smallest key greater than every key that starts with `prefix`
/// (etcd's `clientv3.GetPrefixRangeEnd`).
pub(crate) fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): to the end of the keyspace.
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bounds_keep_only_keys_inside_the_range_in_order() {
        let kept = |start: &str, end: &[u8], bounds: &[&str]| -> Vec<String> {
            let b = bounds.iter().map(|b| b.as_bytes().to_vec()).collect();
            match Bounds::known(start.as_bytes(), end, b) {
                Bounds::Known(it) => it.map(|k| String::from_utf8(k).unwrap()).collect(),
                Bounds::Found { .. } => unreachable!(),
            }
        };
        assert_eq!(
            kept(
                "/p/",
                b"/p0",
                &["/a", "/p/", "/p/1", "/p/0", "/p/1", "/p/2", "/p0", "/q"]
            ),
            vec!["/p/1", "/p/2"]
        );
        assert_eq!(kept("/p/", b"/p0", &[]), Vec::<String>::new());
        // "\0": every key from the start on.
        assert_eq!(
            kept("/p/", &[0], &["/p/1", "/z", "\u{ff}"]),
            vec!["/p/1", "/z", "\u{ff}"]
        );
    }

    #[test]
    fn range_end() {
        assert_eq!(prefix_range_end(b"/registry/"), b"/registry0".to_vec());
        assert_eq!(prefix_range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_range_end(b"\xff"), vec![0]);
    }

    #[test]
    fn endpoint_urls() {
        assert_eq!(
            endpoint_url("127.0.0.1:2379", false).unwrap(),
            "http://127.0.0.1:2379"
        );
        assert_eq!(
            endpoint_url("127.0.0.1:2379", true).unwrap(),
            "https://127.0.0.1:2379"
        );
        assert_eq!(endpoint_url("https://h:1/", true).unwrap(), "https://h:1");
        assert!(endpoint_url("http://h:1", true).is_err());
        assert!(endpoint_url("unix://x", false).is_err());
    }

    #[test]
    fn password_never_printed() {
        let o = ConnectOptions {
            user: Some("root".into()),
            password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{o:?}").contains("hunter2"));
        let kv = KeyValue {
            key: b"/registry/secrets/a/b".to_vec(),
            value: bytes::Bytes::from_static(b"topsecret"),
            create_revision: 1,
            mod_revision: 1,
            version: 1,
            lease: 0,
        };
        assert!(!format!("{kv:?}").contains("topsecret"));
    }
}
