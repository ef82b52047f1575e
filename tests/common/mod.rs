//! Test support: real etcd processes on free loopback ports with temporary data
//! dirs, stopped when dropped (also on panic); TLS certificates made at test time;
//! a cluster writer and checker; etcdctl and atrest runs; and, in [`fixtures`],
//! configs and stored objects the tests build.
//!
//! The etcd and etcdctl binaries are `ATREST_ETCD_BIN` and `ATREST_ETCDCTL_BIN`
//! when set (tests/run.sh runs the real-etcd tests once with Debian's etcd 3.4
//! from `PATH` and once with etcd 3.5 this way), else `etcd` and `etcdctl` on
//! `PATH`.
#![allow(dead_code)]

pub mod fixtures;

use atrest::config::EncryptionConfiguration;
use atrest::etcd::{ConnectOptions, Etcd, ReadAt};
use atrest::kube::ExpectedObject;
use atrest::transformer::{ReadMode, Transformer};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const ATREST: &str = env!("CARGO_BIN_EXE_atrest");

/// The etcd server binary: `ATREST_ETCD_BIN`, else `etcd` on `PATH`.
pub fn etcd_bin() -> std::ffi::OsString {
    std::env::var_os("ATREST_ETCD_BIN").unwrap_or_else(|| "etcd".into())
}

/// The etcdctl binary: `ATREST_ETCDCTL_BIN`, else `etcdctl` on `PATH`.
pub fn etcdctl_bin() -> std::ffi::OsString {
    std::env::var_os("ATREST_ETCDCTL_BIN").unwrap_or_else(|| "etcdctl".into())
}

/// An etcdctl command speaking the v3 API.
pub fn etcdctl() -> Command {
    let mut c = Command::new(etcdctl_bin());
    c.env("ETCDCTL_API", "3");
    c
}

/// Whether `cmd VERSION_ARG` runs and succeeds.
fn runs(cmd: &std::ffi::OsStr, version_arg: &str) -> bool {
    Command::new(cmd)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether etcd and etcdctl run. When they do not, a real-etcd test skips (it
/// says so on stderr), unless ATREST_REQUIRE_ETCD is set (tests/run.sh), where
/// it fails.
pub fn etcd_available() -> bool {
    if runs(&etcd_bin(), "--version") && runs(&etcdctl_bin(), "version") {
        return true;
    }
    assert!(
        std::env::var_os("ATREST_REQUIRE_ETCD").is_none(),
        "etcd and etcdctl are required (apt-get install etcd-server etcd-client, or set ATREST_ETCD_BIN and ATREST_ETCDCTL_BIN)"
    );
    eprintln!("skipping: etcd/etcdctl not installed");
    false
}

/// A throw-away single-member etcd (see [`Cluster::start`]); `None` when etcd is
/// not installed and the test skips (see [`etcd_available`]).
pub fn start_etcd(tls: bool) -> Option<Cluster> {
    etcd_available().then(|| Cluster::start(1, tls))
}

/// `n` distinct free loopback ports (held open together while picked).
pub fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind loopback"))
        .collect();
    ls.iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// Certificates for one test: a CA, a server certificate (SAN 127.0.0.1,
/// localhost), a client certificate, and a second CA with its own client
/// certificate (for the wrong-CA and wrong-client cases).
pub struct TlsFiles {
    pub dir: TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
    pub other_client_cert: PathBuf,
    pub other_client_key: PathBuf,
}

fn make_ca(name: &str) -> (rcgen::CertificateParams, rcgen::KeyPair, String) {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_string());
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (p, key, cert.pem())
}

fn make_leaf(
    ca: &(rcgen::CertificateParams, rcgen::KeyPair, String),
    cn: &str,
    sans: Vec<String>,
    eku: Vec<rcgen::ExtendedKeyUsagePurpose>,
) -> (String, String) {
    let mut p = rcgen::CertificateParams::new(sans).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, cn.to_string());
    p.extended_key_usages = eku;
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::from_params(&ca.0, &ca.1);
    let cert = p.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

pub fn make_tls() -> TlsFiles {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca("atrest test CA");
    let other = make_ca("some other CA");
    let (sc, sk) = make_leaf(
        &ca,
        "etcd",
        vec!["127.0.0.1".into(), "localhost".into()],
        vec![ServerAuth, ClientAuth],
    );
    let (cc, ck) = make_leaf(&ca, "root", vec![], vec![ClientAuth]);
    let (oc, ok) = make_leaf(&other, "root", vec![], vec![ClientAuth]);
    let w = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    TlsFiles {
        ca: w("ca.crt", &ca.2),
        server_cert: w("server.crt", &sc),
        server_key: w("server.key", &sk),
        client_cert: w("client.crt", &cc),
        client_key: w("client.key", &ck),
        other_ca: w("other-ca.crt", &other.2),
        other_client_cert: w("other-client.crt", &oc),
        other_client_key: w("other-client.key", &ok),
        dir,
    }
}

/// One etcd process.
pub struct Member {
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    pub metrics_url: String,
    child: Option<Child>,
    pub dir: TempDir,
}

impl Member {
    /// SIGKILL the process and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => true,
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster of etcd members on loopback.
pub struct Cluster {
    pub members: Vec<Member>,
    pub tls: Option<TlsFiles>,
}

impl Cluster {
    /// Start `n` members (TLS with client-certificate auth when `tls`), wait until
    /// every member is healthy.
    pub fn start(n: usize, tls: bool) -> Cluster {
        let tls = tls.then(make_tls);
        for attempt in 0..3 {
            match Self::try_start(n, tls.as_ref()) {
                Ok(members) => return Cluster { members, tls },
                Err(e) if attempt < 2 => eprintln!("etcd start failed, retrying: {e}"),
                Err(e) => panic!("etcd did not start: {e}"),
            }
        }
        unreachable!()
    }

    fn try_start(n: usize, tls: Option<&TlsFiles>) -> Result<Vec<Member>, String> {
        let ports = free_ports(3 * n);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let peers: Vec<String> = (0..n)
            .map(|i| format!("http://127.0.0.1:{}", ports[3 * i + 1]))
            .collect();
        let initial: Vec<String> = names
            .iter()
            .zip(&peers)
            .map(|(n, p)| format!("{n}={p}"))
            .collect();
        let mut members = Vec::new();
        for i in 0..n {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let client = format!("{scheme}://127.0.0.1:{}", ports[3 * i]);
            let metrics = format!("http://127.0.0.1:{}", ports[3 * i + 2]);
            let mut cmd = Command::new(etcd_bin());
            cmd.arg("--name")
                .arg(&names[i])
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .args(["--listen-client-urls", &client])
                .args(["--advertise-client-urls", &client])
                .args(["--listen-peer-urls", &peers[i]])
                .args(["--initial-advertise-peer-urls", &peers[i]])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-token", "atrest-test"])
                .args(["--listen-metrics-urls", &metrics])
                .args(["--logger", "zap", "--log-outputs"])
                .arg(dir.path().join("etcd.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(t) = tls {
                cmd.arg("--cert-file")
                    .arg(&t.server_cert)
                    .arg("--key-file")
                    .arg(&t.server_key)
                    .arg("--trusted-ca-file")
                    .arg(&t.ca)
                    .arg("--client-cert-auth");
            }
            let child = cmd.spawn().map_err(|e| {
                format!(
                    "cannot run {}: {e} (install etcd-server, or set ATREST_ETCD_BIN)",
                    etcd_bin().to_string_lossy()
                )
            })?;
            members.push(Member {
                name: names[i].clone(),
                client_url: client,
                peer_url: peers[i].clone(),
                metrics_url: metrics,
                child: Some(child),
                dir,
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for m in members.iter_mut() {
            loop {
                let mut c = etcdctl();
                c.arg("--endpoints").arg(&m.client_url).args([
                    "--dial-timeout",
                    "1s",
                    "--command-timeout",
                    "2s",
                ]);
                if let Some(t) = tls {
                    c.arg("--cacert")
                        .arg(&t.ca)
                        .arg("--cert")
                        .arg(&t.client_cert)
                        .arg("--key")
                        .arg(&t.client_key);
                }
                let ok = c
                    .args(["endpoint", "health"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                if ok {
                    break;
                }
                if m.exited() {
                    return Err(format!("{} exited:\n{}", m.name, m.log()));
                }
                if Instant::now() > deadline {
                    return Err(format!("{} not healthy in 30 s:\n{}", m.name, m.log()));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(members)
    }

    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client_url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `--endpoints` and, with TLS, the right certificates.
    pub fn conn_args(&self) -> Vec<String> {
        let mut v = vec!["--endpoints".to_string(), self.endpoints()];
        if let Some(t) = &self.tls {
            for (f, p) in [
                ("--cacert", &t.ca),
                ("--cert", &t.client_cert),
                ("--key", &t.client_key),
            ] {
                v.push(f.into());
                v.push(p.display().to_string());
            }
        }
        v
    }

    pub fn options(&self) -> ConnectOptions {
        let t = self.tls.as_ref();
        ConnectOptions {
            endpoints: self.members.iter().map(|m| m.client_url.clone()).collect(),
            ca_cert: t.map(|t| t.ca.clone()),
            cert: t.map(|t| t.client_cert.clone()),
            key: t.map(|t| t.client_key.clone()),
            ..Default::default()
        }
    }

    /// The connection flags of `rotate retire`, where the client key is `--client-key`.
    pub fn retire_conn_args(&self) -> Vec<String> {
        self.conn_args()
            .into_iter()
            .map(|a| {
                if a == "--key" {
                    "--client-key".into()
                } else {
                    a
                }
            })
            .collect()
    }

    /// Run etcdctl against the cluster with `stdin`: its stdout, or its stderr.
    pub fn try_ctl(&self, args: &[&str], stdin: &[u8]) -> Result<Vec<u8>, String> {
        use std::io::Write;
        let mut child = etcdctl()
            .args(self.conn_args())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(stdin).map_err(|e| e.to_string())?;
        }
        let o = child.wait_with_output().map_err(|e| e.to_string())?;
        if o.status.success() {
            Ok(o.stdout)
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    }

    /// Run etcdctl against the cluster; it must succeed.
    pub fn ctl(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        self.try_ctl(args, stdin)
            .unwrap_or_else(|e| panic!("etcdctl {args:?}: {e}"))
    }

    /// `etcdctl put` (the value goes on stdin, so it may hold NUL bytes).
    pub fn put(&self, key: &str, value: &[u8]) {
        self.ctl(&["put", key], value);
    }

    /// Every key/value under a prefix, read with etcdctl.
    pub fn get_prefix(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let out = self.ctl(&["get", prefix, "--prefix", "-w", "json"], b"");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        v["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .map(|kv| {
                        let k = b64.decode(kv["key"].as_str().unwrap()).unwrap();
                        let val = b64.decode(kv["value"].as_str().unwrap()).unwrap();
                        (String::from_utf8(k).unwrap(), val)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `etcdctl snapshot save PATH`.
    pub fn snapshot(&self, path: &Path) {
        self.ctl(&["snapshot", "save", path.to_str().unwrap()], b"");
    }

    /// The member ID of the current leader, as index into `members`.
    pub fn leader(&self) -> Option<usize> {
        let out = etcdctl()
            .args([
                "--endpoints",
                &self.endpoints(),
                "endpoint",
                "status",
                "-w",
                "json",
            ])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let arr = v.as_array()?;
        let leader = arr.first()?["Status"]["leader"].as_u64()?;
        arr.iter()
            .position(|s| s["Status"]["header"]["member_id"].as_u64() == Some(leader))
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub async fn connect(o: &ConnectOptions) -> Etcd {
    Etcd::connect(o).await.expect("connect").0
}

/// A config for Secrets: aescbc with `keys` (first writes), then identity.
pub fn secrets_config(keys: &[(&str, u8)]) -> EncryptionConfiguration {
    let ks: Vec<String> = keys
        .iter()
        .map(|(n, b)| format!("{{name: {n}, secret: {}}}", base64_32(*b)))
        .collect();
    EncryptionConfiguration::from_yaml_str(&format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aescbc: {{keys: [{}]}}\n      - identity: {{}}\n",
        ks.join(", ")
    ))
    .unwrap()
}

fn base64_32(b: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([b; 32])
}

/// Write a config file for the CLI.
pub fn write_config(dir: &Path, name: &str, c: &EncryptionConfiguration) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, c.to_yaml().as_bytes()).unwrap();
    p
}

pub fn transformer(c: &EncryptionConfiguration) -> Transformer {
    Transformer::from_providers(&c.resources[0].providers).unwrap()
}

pub fn secret_key(i: usize) -> String {
    format!("/registry/secrets/ns{}/s{i:05}", i % 7)
}

/// A Secret as kube-apiserver stores it in JSON form (content `body`).
pub fn secret_json(key: &str, body: &str) -> Vec<u8> {
    use base64::Engine;
    let mut parts = key.rsplit('/');
    let name = parts.next().unwrap_or("x");
    let namespace = parts.next().unwrap_or("default");
    format!(
        "{{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{namespace}\"}},\"data\":{{\"v\":\"{}\"}}}}",
        base64::engine::general_purpose::STANDARD.encode(body)
    )
    .into_bytes()
}

/// Write `n` Secrets: even ones in plaintext, odd ones with `t` (the old key).
/// Returns key → plaintext.
pub async fn populate(etcd: &Etcd, t: &Transformer, n: usize) -> BTreeMap<String, Vec<u8>> {
    let mut want = BTreeMap::new();
    let mut batch = Vec::new();
    for i in 0..n {
        let k = secret_key(i);
        let plain = secret_json(&k, &format!("original-{i}"));
        let stored = if i % 2 == 0 {
            plain.clone()
        } else {
            t.write(&plain, k.as_bytes()).unwrap()
        };
        want.insert(k.clone(), plain);
        batch.push((k.into_bytes(), stored));
        if batch.len() == 100 {
            etcd.put_many(&batch).await.unwrap();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        etcd.put_many(&batch).await.unwrap();
    }
    want
}

/// Every Secret: key → (key name it is stored under, plaintext).
pub async fn read_secrets(
    etcd: &Etcd,
    t: &Transformer,
) -> BTreeMap<String, (Option<String>, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut pages = etcd.pages(
        b"/registry/secrets/".to_vec(),
        b"/registry/secrets0".to_vec(),
        ReadAt::Fixed(0),
        1000,
    );
    while let Some(p) = pages.next_page().await.unwrap() {
        for kv in p.kvs {
            let expected = ExpectedObject::from_key(&kv.key, "/registry").unwrap();
            let r = t
                .read(&kv.value, &kv.key, ReadMode::Checked(expected))
                .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&kv.key)));
            out.insert(
                String::from_utf8(kv.key).unwrap(),
                (
                    r.by.key_name.map(|k| k.to_string()),
                    r.plaintext.into_owned(),
                ),
            );
        }
    }
    out
}

/// Run atrest; (exit code, stdout, stderr).
pub fn atrest(args: &[String]) -> (i32, String, String) {
    atrest_env(args, &[])
}

pub fn atrest_env(args: &[String], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = atrest_command(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The atrest command with `args`, without the ETCDCTL_* variables of the
/// caller's environment.
fn atrest_command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut c = Command::new(ATREST);
    c.args(args);
    for k in [
        "ETCDCTL_ENDPOINTS",
        "ETCDCTL_CACERT",
        "ETCDCTL_CERT",
        "ETCDCTL_KEY",
        "ETCDCTL_USER",
        "ETCDCTL_PASSWORD",
    ] {
        c.env_remove(k);
    }
    c
}

/// What a run of atrest gave.
pub struct Out {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run atrest without the ETCDCTL_* variables of the caller's environment.
pub fn run(args: &[&str]) -> Out {
    let o = atrest_command(args).output().unwrap();
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `a` followed by `b`, as one argument list.
pub fn cat<'a>(a: &[&'a str], b: &'a [String]) -> Vec<&'a str> {
    a.iter()
        .copied()
        .chain(b.iter().map(String::as_str))
        .collect()
}

pub fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The cluster's revision, read with etcdctl (independent of atrest).
pub fn revision_of(c: &Cluster) -> i64 {
    let mut cmd = etcdctl();
    cmd.args(["--endpoints", &c.endpoints()]);
    if let Some(t) = &c.tls {
        cmd.arg("--cacert")
            .arg(&t.ca)
            .arg("--cert")
            .arg(&t.client_cert)
            .arg("--key")
            .arg(&t.client_key);
    }
    let out = cmd
        .args(["endpoint", "status", "-w", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["Status"]["header"]["revision"].as_i64().unwrap()
}

/// Parse a command's JSON output, showing it when it is not JSON.
pub fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `atrest SUBCOMMAND <connection flags> REST...`
pub fn with(conn: &[String], more: &[&str]) -> Vec<String> {
    let mut v = vec![more[0].to_string()];
    v.extend(conn.iter().cloned());
    v.extend(more[1..].iter().map(|s| s.to_string()));
    v
}
