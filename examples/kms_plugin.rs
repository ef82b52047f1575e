//! A small KMS plugin for trying atrest and for its tests: serves the KMS v2
//! (`v2.KeyManagementService`) and v1 (`v1beta1.KeyManagementService`) APIs of
//! kubernetes `staging/src/k8s.io/kms/apis/{v2,v1beta1}/api.proto` on a unix socket.
//!
//! It holds its KEKs in memory: the KEK of key ID `k` is HMAC-SHA256(KEK seed, k),
//! with a random KEK seed unless `--kek-seed HEX` is given (give one to decrypt
//! again after a restart). DEKs are wrapped with AES-256-GCM under the KEK.
//! `--mode base64` instead behaves like upstream's test plugin
//! (`test/integration/.../kmsv2/testing` `Base64Plugin`): wrapping is base64.
//!
//! Run-time control through files in `--state-dir` (read on every call):
//! - `key_id`: the current key ID (default `--key-id`); change it to rotate the KEK;
//! - `fail`: while it exists, calls fail (FailedPrecondition), as a disabled key
//!   does: every call when it is empty, else only the methods it lists
//!   (`Status`, `Decrypt`, `Encrypt`, `Version`, `V1Decrypt`, `V1Encrypt`);
//! - `hang`: while it exists, calls answer only after 60 s (to test timeouts);
//! - `die_after` (a number N): the plugin exits, unanswered, when Decrypt call
//!   N+1 arrives (v2 and v1 counted together), as a plugin that crashes in the
//!   middle of a run;
//! - `hang_after` (a number N): Decrypt calls after the N-th answer only after
//!   60 s, as a plugin that stops answering in the middle of a run;
//! - `calls.log`: one line per call is appended (`Status`, `Decrypt 1`, ...).
//!
//! ```text
//! cargo run --example kms_plugin -- --socket unix:///tmp/kms.sock --state-dir /tmp/kms --kek-seed 00112233
//! ```

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use atrest::kms::proto;
use clap::Parser;
use hmac::{Hmac, Mac};
use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::Status;

/// The annotation the plugin adds to every v2 `Encrypt` and requires on `Decrypt`.
const ANNOTATION: &str = "kek.test-plugin.atrest.io";
/// Upstream's mock annotation (`Base64Plugin.Encrypt`).
const BASE64_ANNOTATION: &str = "local-kek.kms.kubernetes.io";

#[derive(Parser, Debug)]
struct Args {
    /// Where to listen: unix:///path/to/plugin.sock or unix:///@abstract-name.
    #[arg(long)]
    socket: String,
    /// Directory for run-time control files (key_id, fail, hang, die_after,
    /// hang_after) and calls.log.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// The key ID at start.
    #[arg(long, default_value = "1")]
    key_id: String,
    /// Hex bytes from which every KEK is derived (random when absent).
    #[arg(long)]
    kek_seed: Option<String>,
    /// `aead` (AES-GCM wrapping) or `base64` (upstream's test plugin).
    #[arg(long, default_value = "aead")]
    mode: String,
    /// The version Status reports (v2, or v2beta1).
    #[arg(long, default_value = "v2")]
    status_version: String,
}

struct Plugin {
    args: Args,
    kek_seed: Vec<u8>,
    /// Decrypt calls received (v2 and v1), for `die_after` and `hang_after`.
    decrypts: AtomicU64,
}

impl Plugin {
    fn state_file(&self, name: &str) -> Option<PathBuf> {
        self.args.state_dir.as_ref().map(|d| d.join(name))
    }

    fn has(&self, name: &str) -> bool {
        self.state_file(name).is_some_and(|p| p.exists())
    }

    fn key_id(&self) -> String {
        self.state_file("key_id")
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.args.key_id.clone())
    }

    /// The number in state file `name`, if it holds one.
    fn number(&self, name: &str) -> Option<u64> {
        self.state_file(name)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|s| s.trim().parse().ok())
    }

    fn log(&self, line: &str) {
        if let Some(p) = self.state_file("calls.log") {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                let _ = writeln!(f, "{line}");
            }
        }
    }

    fn check_failing(&self, method: &str) -> Result<(), Status> {
        let listed = self
            .state_file("fail")
            .and_then(|p| std::fs::read_to_string(p).ok());
        let fails = listed.is_some_and(|l| {
            let methods: Vec<&str> = l.split_whitespace().collect();
            methods.is_empty() || methods.contains(&method)
        });
        if fails {
            return Err(Status::failed_precondition(
                "failed precondition - key disabled",
            ));
        }
        Ok(())
    }

    fn base64(&self) -> bool {
        self.args.mode == "base64"
    }

    fn kek(&self, key_id: &[u8]) -> Aes256Gcm {
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.kek_seed)
            .expect("HMAC takes any key length");
        m.update(key_id);
        let k = m.finalize().into_bytes();
        Aes256Gcm::new(&k)
    }

    fn wrap(&self, key_id: &[u8], plain: &[u8]) -> Result<Vec<u8>, Status> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| Status::internal(e.to_string()))?;
        let mut buf = plain.to_vec();
        let tag = self
            .kek(key_id)
            .encrypt_in_place_detached((&nonce).into(), key_id, &mut buf)
            .map_err(|_| Status::internal("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn unwrap(&self, key_id: &[u8], cipher: &[u8]) -> Result<Vec<u8>, Status> {
        if cipher.len() < 28 {
            return Err(Status::invalid_argument("ciphertext too short"));
        }
        let (nonce, rest) = cipher.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let mut buf = ct.to_vec();
        self.kek(key_id)
            .decrypt_in_place_detached(nonce.into(), key_id, &mut buf, tag.into())
            .map_err(|_| {
                Status::invalid_argument(format!(
                    "cannot decrypt with the KEK of key ID {:?}",
                    String::from_utf8_lossy(key_id)
                ))
            })?;
        Ok(buf)
    }

    fn status(&self, _: proto::StatusRequest) -> Result<proto::StatusResponse, Status> {
        self.log("Status");
        self.check_failing("Status")?;
        Ok(proto::StatusResponse {
            version: self.args.status_version.clone(),
            healthz: "ok".into(),
            key_id: self.key_id(),
        })
    }

    fn decrypt(&self, r: proto::DecryptRequest) -> Result<proto::DecryptResponse, Status> {
        self.log(&format!("Decrypt {}", String::from_utf8_lossy(&r.key_id)));
        self.check_failing("Decrypt")?;
        if r.uid.is_empty() {
            return Err(Status::invalid_argument("uid is required"));
        }
        if self.base64() {
            return b64(&r.ciphertext).map(|plaintext| proto::DecryptResponse { plaintext });
        }
        if !r.annotations.iter().any(|a| a.key == ANNOTATION.as_bytes()) {
            return Err(Status::invalid_argument(format!(
                "annotation {ANNOTATION} is missing"
            )));
        }
        let plaintext = self.unwrap(&r.key_id, &r.ciphertext)?;
        Ok(proto::DecryptResponse { plaintext })
    }

    fn encrypt(&self, r: proto::EncryptRequest) -> Result<proto::EncryptResponse, Status> {
        self.log("Encrypt");
        self.check_failing("Encrypt")?;
        if r.uid.is_empty() {
            return Err(Status::invalid_argument("uid is required"));
        }
        let key_id = self.key_id();
        let (ciphertext, annotation) = if self.base64() {
            (
                base64_encode(&r.plaintext).into_bytes(),
                proto::BytesEntry {
                    key: BASE64_ANNOTATION.into(),
                    value: b"encrypted-local-kek".to_vec(),
                },
            )
        } else {
            (
                self.wrap(key_id.as_bytes(), &r.plaintext)?,
                proto::BytesEntry {
                    key: ANNOTATION.into(),
                    value: b"aead".to_vec(),
                },
            )
        };
        Ok(proto::EncryptResponse {
            ciphertext,
            key_id,
            annotations: vec![annotation],
        })
    }

    fn version(&self, _: proto::VersionRequest) -> Result<proto::VersionResponse, Status> {
        self.log("Version");
        self.check_failing("Version")?;
        Ok(proto::VersionResponse {
            version: "v1beta1".into(),
            runtime_name: "atrest-test-plugin".into(),
            runtime_version: "0.1.0".into(),
        })
    }

    /// v1 ciphertext: len(key ID) ‖ key ID ‖ wrapped DEK (v1 has no key IDs).
    fn v1_encrypt(&self, r: proto::V1EncryptRequest) -> Result<proto::V1EncryptResponse, Status> {
        self.log("V1Encrypt");
        self.check_failing("V1Encrypt")?;
        if self.base64() {
            return Ok(proto::V1EncryptResponse {
                cipher: base64_encode(&r.plain).into_bytes(),
            });
        }
        let key_id = self.key_id();
        let mut cipher = vec![key_id.len() as u8];
        cipher.extend_from_slice(key_id.as_bytes());
        cipher.extend_from_slice(&self.wrap(key_id.as_bytes(), &r.plain)?);
        Ok(proto::V1EncryptResponse { cipher })
    }

    fn v1_decrypt(&self, r: proto::V1DecryptRequest) -> Result<proto::V1DecryptResponse, Status> {
        self.log("V1Decrypt");
        self.check_failing("V1Decrypt")?;
        if self.base64() {
            return b64(&r.cipher).map(|plain| proto::V1DecryptResponse { plain });
        }
        let n = usize::from(*r.cipher.first().unwrap_or(&0));
        if r.cipher.len() < 1 + n {
            return Err(Status::invalid_argument("ciphertext too short"));
        }
        let plain = self.unwrap(&r.cipher[1..1 + n], &r.cipher[1 + n..])?;
        Ok(proto::V1DecryptResponse { plain })
    }
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn b64(b: &[u8]) -> Result<Vec<u8>, Status> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b)
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

/// Answer one unary call with `f`.
async fn unary<Req, Resp>(
    req: http::Request<Body>,
    f: impl Fn(Req) -> Result<Resp, Status> + Send + Sync + 'static,
) -> http::Response<Body>
where
    Req: prost::Message + Default + Send + Sync + 'static,
    Resp: prost::Message + Send + Sync + 'static,
{
    struct Handler<F>(Arc<F>);
    impl<Req, Resp, F> tonic::server::UnaryService<Req> for Handler<F>
    where
        F: Fn(Req) -> Result<Resp, Status> + Send + Sync + 'static,
        Req: Send + 'static,
        Resp: Send + 'static,
    {
        type Response = Resp;
        type Future = std::future::Ready<Result<tonic::Response<Resp>, Status>>;
        fn call(&mut self, r: tonic::Request<Req>) -> Self::Future {
            std::future::ready((self.0)(r.into_inner()).map(tonic::Response::new))
        }
    }
    let codec = tonic_prost::ProstCodec::<Resp, Req>::default();
    tonic::server::Grpc::new(codec)
        .unary(Handler(Arc::new(f)), req)
        .await
}

#[derive(Clone)]
struct Service(Arc<Plugin>);

impl tower::Service<http::Request<Body>> for Service {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let p = Arc::clone(&self.0);
        Box::pin(async move {
            if p.has("hang") {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            }
            if matches!(
                req.uri().path(),
                proto::path::V2_DECRYPT | proto::path::V1_DECRYPT
            ) {
                let n = p.decrypts.fetch_add(1, Ordering::SeqCst) + 1;
                if p.number("die_after").is_some_and(|max| n > max) {
                    eprintln!("kms plugin: exiting at Decrypt call {n} (die_after)");
                    std::process::exit(3);
                }
                if p.number("hang_after").is_some_and(|max| n > max) {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                }
            }
            let resp = match req.uri().path() {
                proto::path::V2_STATUS => unary(req, move |r| p.status(r)).await,
                proto::path::V2_DECRYPT => unary(req, move |r| p.decrypt(r)).await,
                proto::path::V2_ENCRYPT => unary(req, move |r| p.encrypt(r)).await,
                proto::path::V1_VERSION => unary(req, move |r| p.version(r)).await,
                proto::path::V1_DECRYPT => unary(req, move |r| p.v1_decrypt(r)).await,
                proto::path::V1_ENCRYPT => unary(req, move |r| p.v1_encrypt(r)).await,
                other => Status::unimplemented(format!("unknown method {other}")).into_http(),
            };
            Ok(resp)
        })
    }
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("--kek-seed: an even number of hex digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("--kek-seed: {e}")))
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let kek_seed = match &args.kek_seed {
        Some(h) => parse_hex(h)?,
        None => {
            let mut s = vec![0u8; 32];
            getrandom::fill(&mut s).map_err(|e| e.to_string())?;
            s
        }
    };
    let listener = match atrest::kms::client::parse_endpoint(&args.socket)? {
        atrest::kms::client::SocketAddr::Path(p) => {
            let _ = std::fs::remove_file(&p);
            tokio::net::UnixListener::bind(&p)?
        }
        atrest::kms::client::SocketAddr::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let a = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            let l = std::os::unix::net::UnixListener::bind_addr(&a)?;
            l.set_nonblocking(true)?;
            tokio::net::UnixListener::from_std(l)?
        }
    };
    println!("kms plugin listening on {}", args.socket);
    let svc = Service(Arc::new(Plugin {
        args,
        kek_seed,
        decrypts: AtomicU64::new(0),
    }));
    tonic::transport::Server::builder()
        .serve_with_incoming(
            svc,
            tokio_stream::wrappers::UnixListenerStream::new(listener),
        )
        .await?;
    Ok(())
}
