//! KMS v2 and v1 through a real plugin (examples/kms_plugin.rs on a unix socket)
//! and, where a case involves one, a real etcd: decrypt, audit (current, stale
//! after a KEK rotation, undecryptable), the override of a provider's endpoint,
//! an unreachable, failing or slow plugin, and upstream's recorded values.

mod common;

use atrest::config::EncryptionConfiguration;
use atrest::envelope::aescbc::AesCbc;
use atrest::envelope::aesgcm::AesGcm;
use atrest::envelope::kms::{encode_v2, DataKey, DekSourceType};
use atrest::key::SecretKey;
use atrest::kms::Plugins;
use common::{args, atrest, Cluster};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test plugin binary, built on demand (`cargo test` does not build examples
/// for a single integration test).
fn plugin_bin() -> PathBuf {
    let exe = Path::new(common::ATREST);
    let dir = exe.parent().expect("target dir");
    let bin = dir.join("examples").join("kms_plugin");
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        // In the profile the tests run in, so that `bin` is what was built.
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let profile = if profile == "debug" { "dev" } else { profile };
        let st = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--example",
                "kms_plugin",
                "--profile",
                profile,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build --example kms_plugin");
        assert!(st.success(), "building the test plugin failed");
    });
    bin
}

/// A running test plugin, stopped when dropped.
struct Plugin {
    child: Child,
    state: tempfile::TempDir,
}

impl Plugin {
    fn start(endpoint: &str, extra: &[&str]) -> Plugin {
        let state = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(plugin_bin());
        cmd.args(["--socket", endpoint, "--state-dir"])
            .arg(state.path())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start the test plugin");
        // It prints one line once it listens.
        let mut out = child.stdout.take().unwrap();
        let mut buf = [0u8; 1];
        let deadline = Instant::now() + Duration::from_secs(20);
        use std::io::Read;
        while out.read(&mut buf).map(|n| n == 1).unwrap_or(false) && buf[0] != b'\n' {
            assert!(Instant::now() < deadline, "plugin did not start");
        }
        Plugin { child, state }
    }

    fn set(&self, file: &str, content: &str) {
        std::fs::write(self.state.path().join(file), content).unwrap();
    }

    fn unset(&self, file: &str) {
        let _ = std::fs::remove_file(self.state.path().join(file));
    }

    /// Lines of calls.log that start with `what`.
    fn calls(&self, what: &str) -> usize {
        std::fs::read_to_string(self.state.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(what))
            .count()
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn socket_in(dir: &Path) -> String {
    format!("unix://{}/kms.sock", dir.display())
}

fn abstract_name(tag: &str) -> String {
    format!("unix:///@atrest-test-{tag}-{}", std::process::id())
}

fn kms_config(version: &str, name: &str, endpoint: &str, extra_first: &str) -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n{extra_first}      - kms: {{apiVersion: {version}, name: {name}, endpoint: \"{endpoint}\", timeout: 2s}}\n      - identity: {{}}\n"
    )
}

fn write_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Writes kms v2 values as kube-apiserver 1.29+ does: one seed, wrapped once by
/// the plugin, a fresh info and nonce per value.
struct V2Writer {
    prefix: Vec<u8>,
    seed: SecretKey,
    wrapped: Vec<u8>,
    key_id: String,
    annotations: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl V2Writer {
    fn new(config_yaml: &str, name: &str) -> V2Writer {
        let cfg = EncryptionConfiguration::from_yaml_str(config_yaml).unwrap();
        let plugins = Plugins::from_config(&cfg, &[]).unwrap().unwrap();
        let p = plugins.get(atrest::kms::ApiVersion::V2, name).unwrap();
        let seed = SecretKey::generate(32).unwrap();
        let resp = p.encrypt_v2(&seed).unwrap();
        V2Writer {
            prefix: format!("k8s:enc:kms:v2:{name}:").into_bytes(),
            seed,
            wrapped: resp.ciphertext,
            key_id: resp.key_id,
            annotations: resp
                .annotations
                .into_iter()
                .map(|e| (e.key, e.value))
                .collect(),
        }
    }

    fn write(&self, plain: &[u8], etcd_key: &str) -> Vec<u8> {
        let data = DataKey::seal_with_seed(&self.seed, plain, etcd_key.as_bytes()).unwrap();
        let mut out = self.prefix.clone();
        out.extend_from_slice(&encode_v2(
            &data,
            self.key_id.as_bytes(),
            &self.wrapped,
            &self.annotations,
            DekSourceType::HkdfSha256XNonceAesGcmSeed,
        ));
        out
    }
}

fn secret(name: &str, body: &str) -> Vec<u8> {
    common::secret_json(&format!("/registry/secrets/ns/{name}"), body)
}

fn decrypt(cfg: &Path, key: &str, stored: &[u8], extra: &[&str]) -> (i32, Vec<u8>, String) {
    crypt("decrypt", cfg, key, stored, extra)
}

/// Run `atrest encrypt|decrypt --config CFG --etcd-key KEY EXTRA...` with `input` on stdin.
fn crypt(
    command: &str,
    cfg: &Path,
    key: &str,
    input: &[u8],
    extra: &[&str],
) -> (i32, Vec<u8>, String) {
    let mut cmd = Command::new(common::ATREST);
    cmd.args([command, "--config"])
        .arg(cfg)
        .args(["--etcd-key", key])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    // A run that fails early (a plugin down) may exit before it reads its
    // input: a broken pipe here is not the test's failure, the exit code is.
    if let Err(e) = child.stdin.take().unwrap().write_all(input) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn v2_decrypt_override_and_plugin_failures() {
    let dir = tempfile::tempdir().unwrap();
    let ep = socket_in(dir.path());
    let plugin = Plugin::start(&ep, &[]);
    let yaml = kms_config("v2", "kp", &ep, "");
    let cfg = write_file(dir.path(), "enc.yaml", &yaml);
    let w = V2Writer::new(&yaml, "kp");
    let key = "/registry/secrets/ns/a";
    let plain = secret("a", "hunter2");
    let stored = w.write(&plain, key);

    let (code, out, err) = decrypt(&cfg, key, &stored, &[]);
    assert_eq!((code, out.as_slice()), (0, plain.as_slice()), "{err}");

    // The etcd key is the AAD: the same value under another key is refused by GCM.
    let (code, _, err) = decrypt(&cfg, "/registry/secrets/ns/b", &stored, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("authentication failed"), "{err}");

    // A config whose endpoint is elsewhere (a node's socket), overridden on the
    // command line: the plugin on an abstract socket reads it.
    let abs = abstract_name("override");
    let other = Plugin::start(&abs, &[]);
    let elsewhere = write_file(
        dir.path(),
        "node.yaml",
        &kms_config("v2", "kp", "unix:///var/run/kms/none.sock", ""),
    );
    let (code, _, err) = decrypt(&elsewhere, key, &stored, &[]);
    assert_eq!(code, 2, "unreachable plugin is exit 2: {err}");
    assert!(
        err.contains("unix:///var/run/kms/none.sock") && err.contains("--kms-endpoint"),
        "{err}"
    );
    // The other plugin has other KEKs (a random KEK seed): it refuses the DEK.
    let (code, _, err) = decrypt(
        &elsewhere,
        key,
        &stored,
        &["--kms-endpoint", &format!("kp={abs}")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("refused Decrypt") && err.contains(&abs),
        "{err}"
    );
    assert_eq!(other.calls("Decrypt"), 1);
    let (code, out, err) = decrypt(
        &elsewhere,
        key,
        &stored,
        &["--kms-endpoint", &format!("kp={ep}")],
    );
    assert_eq!((code, out.as_slice()), (0, plain.as_slice()), "{err}");
    let (code, _, err) = decrypt(
        &elsewhere,
        key,
        &stored,
        &["--kms-endpoint", "nope=unix:///x"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("no kms provider named `nope`") && err.contains("kp"),
        "{err}"
    );

    // A failing plugin (Status refused): exit 2 naming the endpoint.
    plugin.set("fail", "");
    let (code, out, err) = decrypt(&cfg, key, &stored, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(err.contains(&ep) && err.contains("key disabled"), "{err}");
    plugin.unset("fail");

    // A slow plugin: the provider's 2s timeout, exit 2.
    plugin.set("hang", "");
    let t0 = Instant::now();
    let (code, _, err) = decrypt(&cfg, key, &stored, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("did not answer within 2s") && err.contains(&ep),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(20));
}

#[test]
fn v1_gcm_and_cbc_values() {
    let dir = tempfile::tempdir().unwrap();
    let ep = socket_in(dir.path());
    let plugin = Plugin::start(&ep, &[]);
    let yaml = kms_config("v1", "old", &ep, "");
    let cfg = write_file(dir.path(), "enc.yaml", &yaml);
    let c = EncryptionConfiguration::from_yaml_str(&yaml).unwrap();
    let plugins = Plugins::from_config(&c, &[]).unwrap().unwrap();
    let p = plugins.get(atrest::kms::ApiVersion::V1, "old").unwrap();
    let key = "/registry/secrets/ns/v1";
    let plain = secret("v1", "from 1.24");
    for cbc in [false, true] {
        let dek = SecretKey::generate(32).unwrap();
        let wrapped = p.encrypt_v1(&dek).unwrap();
        let mut stored = b"k8s:enc:kms:v1:old:".to_vec();
        stored.extend_from_slice(&(wrapped.len() as u16).to_be_bytes());
        stored.extend_from_slice(&wrapped);
        if cbc {
            AesCbc::new(&dek)
                .unwrap()
                .seal_into(&plain, &mut stored)
                .unwrap();
        } else {
            AesGcm::new(&dek)
                .unwrap()
                .seal_into(&plain, key.as_bytes(), &mut stored)
                .unwrap();
        }
        let (code, out, err) = decrypt(&cfg, key, &stored, &[]);
        assert_eq!(
            (code, out.as_slice()),
            (0, plain.as_slice()),
            "cbc={cbc}: {err}"
        );
    }
    // One Version for the writer above, then one per atrest run.
    assert_eq!(plugin.calls("Version"), 3, "one Version per run");
    assert_eq!(plugin.calls("V1Decrypt"), 2);
}

/// KEK rotation against a live etcd: key_id 1 → all current; the plugin moves
/// to key_id 2 → all stale; one Decrypt per distinct DEK source; a value moved
/// to another key is undecryptable; a failing plugin stops the audit.
#[test]
fn v2_audit_live_etcd_rotation() {
    let cluster = Cluster::start(1, false);
    let dir = tempfile::tempdir().unwrap();
    let ep = socket_in(dir.path());
    let plugin = Plugin::start(&ep, &[]);
    let yaml = kms_config("v2", "kp", &ep, "");
    let cfg = write_file(dir.path(), "enc.yaml", &yaml);
    let w = V2Writer::new(&yaml, "kp");
    let n = 40;
    let mut kvs = Vec::new();
    for i in 0..n {
        let key = format!("/registry/secrets/ns/s{i:03}");
        kvs.push((
            key.clone().into_bytes(),
            w.write(&secret(&format!("s{i:03}"), "v"), &key),
        ));
    }
    let rt = common::rt();
    rt.block_on(async {
        let etcd = common::connect(&cluster.options()).await;
        etcd.put_many(&kvs).await.unwrap();
    });
    let audit = |extra: &[&str]| {
        let mut a = args(&["audit", "--endpoints", &cluster.endpoints(), "--config"]);
        a.push(cfg.display().to_string());
        a.extend(args(&["-o", "json"]));
        a.extend(args(extra));
        atrest(&a)
    };
    let statuses = |out: &str| -> Vec<(String, String, String)> {
        let v: serde_json::Value = serde_json::from_str(out).unwrap();
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["provider"].as_str().unwrap().to_string(),
                    o["key_name"].as_str().unwrap().to_string(),
                    o["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let before = plugin.calls("Decrypt");
    let (code, out, err) = audit(&[]);
    assert_eq!(code, 0, "{err}");
    let s = statuses(&out);
    assert_eq!(s.len(), n);
    assert!(
        s.iter()
            .all(|x| x == &("kms-v2".into(), "kp/1".into(), "current".into())),
        "{s:?}"
    );
    assert_eq!(
        plugin.calls("Decrypt") - before,
        1,
        "one Decrypt per distinct DEK source"
    );

    // KEK rotation in the KMS: the plugin now writes key_id 2.
    plugin.set("key_id", "2");
    let (code, out, err) = audit(&[]);
    assert_eq!(code, 1, "stale objects need action: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let objs = v["objects"].as_array().unwrap();
    assert!(objs.iter().all(|o| o["status"] == "stale"), "{out}");
    let detail = objs[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"1\"") && detail.contains("\"2\""),
        "{detail}"
    );

    // Break-glass: a snapshot of the cluster, recovered through the plugin.
    let snap = dir.path().join("backup.db");
    cluster.snapshot(&snap);
    let mut a = args(&[
        "dump",
        "--snapshot",
        &snap.display().to_string(),
        "--config",
    ]);
    a.push(cfg.display().to_string());
    a.extend(args(&["-o", "json"]));
    let (code, out, err) = atrest(&a);
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), n);
    assert_eq!(items[0]["metadata"]["name"], "s000");
    assert_eq!(
        items[0]["data"]["v"], "dg==",
        "base64 of the Secret's value"
    );

    // A value moved to another key fails GCM: undecryptable.
    rt.block_on(async {
        let etcd = common::connect(&cluster.options()).await;
        etcd.put(b"/registry/secrets/ns/moved", &kvs[0].1)
            .await
            .unwrap();
    });
    let (code, out, _) = audit(&[]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let moved = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "moved")
        .unwrap();
    assert_eq!(moved["status"], "undecryptable", "{moved}");

    // A failing plugin: exit 2 naming the endpoint, nothing on stdout.
    plugin.set("fail", "");
    let (code, out, err) = audit(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(&ep), "{err}");
}

/// Values recorded by released kube-apiservers, from kubernetes
/// `test/integration/controlplane/transformation/kmsv2_transformation_test.go`
/// (`TestKMSv2ProviderLegacyData`): a v1.27.0 value with DEK source type
/// AES_GCM_KEY and a v1.28.0 value with HKDF_SHA256_XNONCE_AES_GCM_SEED, written
/// through upstream's base64 mock plugin (wrapping = base64, key ID "1") under
/// the etcd prefix `/43da1478-5e9c-4ef3-a92a-2b19d540c8a5/registry`. The bytes are
/// the Go string literals of that test, in hex.
#[test]
fn upstream_recorded_values_decrypt_to_their_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let ep = abstract_name("upstream");
    let _plugin = Plugin::start(&ep, &["--mode", "base64"]);
    let cfg = write_file(
        dir.path(),
        "enc.yaml",
        &kms_config("v2", "kms-provider", &ep, ""),
    );
    let prefix = "/43da1478-5e9c-4ef3-a92a-2b19d540c8a5/registry";
    let cases = [
        (
            "kmsv2-upstream-aes-gcm-key.hex",
            "dek-source-aes-gcm-key",
            "1f4a8f7b-01b4-49d1-b898-751eb56937f1",
        ),
        (
            "kmsv2-upstream-hkdf-seed.hex",
            "dek-source-hkdf-sha256-xnonce-aes-gcm-seed",
            "87c514b4-9c26-4041-ad0d-0d07dca557ed",
        ),
    ];
    for (file, name, uid) in cases {
        let hex = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data")
                .join(file),
        )
        .unwrap();
        let stored: Vec<u8> = (0..hex.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let key = format!("{prefix}/secrets/kms-v2-legacy-data/{name}");
        let (code, out, err) = decrypt(&cfg, &key, &stored, &["--etcd-prefix", prefix]);
        assert_eq!(code, 0, "{file}: {err}");
        let m = atrest::kube::decode_manifest(
            &out,
            &atrest::kube::ManifestOptions {
                resource_version: None,
                clean: false,
            },
        )
        .unwrap();
        assert_eq!(m["kind"], "Secret");
        assert_eq!(m["metadata"]["name"], name);
        assert_eq!(m["metadata"]["namespace"], "kms-v2-legacy-data");
        assert_eq!(m["metadata"]["uid"], uid);
        assert_eq!(m["type"], "Opaque");
        // base64 of the test's secretVal "086a7ffc-0225-11e8-ba89-0ed5f89f718b".
        assert_eq!(
            m["data"]["api_key"],
            "MDg2YTdmZmMtMDIyNS0xMWU4LWJhODktMGVkNWY4OWY3MThi"
        );
        // The wrong etcd key (prefix left out) fails authentication.
        let bare = format!("/registry/secrets/kms-v2-legacy-data/{name}");
        let (code, _, _) = decrypt(&cfg, &bare, &stored, &[]);
        assert_eq!(code, 1, "{file}: the AAD includes the etcd prefix");
    }
}

/// Run `atrest encrypt` with `plain` on stdin.
fn encrypt(cfg: &Path, key: &str, plain: &[u8], extra: &[&str]) -> (i32, Vec<u8>, String) {
    crypt("encrypt", cfg, key, plain, extra)
}

/// The top-level fields of a protobuf message as (field number, wire type,
/// bytes or varint), in wire order: read here independently of atrest's parser.
fn raw_fields(mut b: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let tag = varint(&mut b);
        match tag & 7 {
            0 => {
                let v = varint(&mut b);
                out.push((tag >> 3, 0, v.to_le_bytes().to_vec()));
            }
            2 => {
                let n = varint(&mut b) as usize;
                out.push((tag >> 3, 2, b[..n].to_vec()));
                b = &b[n..];
            }
            w => panic!("unexpected wire type {w}"),
        }
    }
    out
}

/// `atrest encrypt` writes kms v2 values as kube-apiserver 1.29+ does: the
/// `k8s:enc:kms:v2:<name>:` prefix, an EncryptedObject with fields 1..5 in order,
/// keyID and annotations from the plugin's Encrypt answer, source type 1 (seed),
/// `info(32) ‖ nonce(12) ‖ ciphertext ‖ tag(16)`; one Encrypt per run; the value
/// decrypts through atrest's reader and, independently, through the plugin's
/// Decrypt and HKDF-Expand + AES-GCM done here. v1 writes a DEK per value.
#[test]
fn encrypt_writes_upstream_layout() {
    use atrest::envelope::kms::EncryptedObject;
    let dir = tempfile::tempdir().unwrap();
    let ep = socket_in(dir.path());
    let plugin = Plugin::start(&ep, &["--key-id", "kek-7", "--kek-seed", "00112233"]);
    let yaml = kms_config("v2", "kp", &ep, "");
    let cfg = write_file(dir.path(), "enc.yaml", &yaml);
    let key = "/registry/secrets/ns/w";
    let plain = secret("w", "written by atrest");

    let (code, stored, err) = encrypt(&cfg, key, &plain, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(plugin.calls("Encrypt"), 1);
    let prefix = b"k8s:enc:kms:v2:kp:";
    assert!(stored.starts_with(prefix), "{:?}", &stored[..20]);
    let payload = &stored[prefix.len()..];

    // The wire layout, field by field (gogo's marshaller: number order, zero omitted).
    let fields = raw_fields(payload);
    let numbers: Vec<u64> = fields.iter().map(|f| f.0).collect();
    assert_eq!(numbers, vec![1, 2, 3, 4, 5], "{numbers:?}");
    assert_eq!(fields[1].2, b"kek-7", "keyID from the Encrypt answer");
    assert_eq!(fields[4].1, 0);
    assert_eq!(fields[4].2[0], 1, "HKDF_SHA256_XNONCE_AES_GCM_SEED");
    let entry = raw_fields(&fields[3].2);
    assert_eq!(entry[0].2, b"kek.test-plugin.atrest.io");
    assert_eq!(entry[1].2, b"aead");
    assert_eq!(fields[0].2.len(), 32 + 12 + plain.len() + 16);

    let obj = EncryptedObject::parse(payload).unwrap();
    // Independently of atrest's plugin client: the test plugin wraps with
    // AES-256-GCM under HMAC-SHA256(KEK seed, key ID), the key ID as AAD, so the
    // seed is unwrapped here; HKDF-Expand(seed, info) is the value's AES-256-GCM key.
    use hmac::Mac;
    let mut m =
        <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&[0x00, 0x11, 0x22, 0x33]).unwrap();
    m.update(b"kek-7");
    let kek = AesGcm::new(&SecretKey::new(m.finalize().into_bytes().to_vec())).unwrap();
    let seed = kek.open(obj.encrypted_dek_source, b"kek-7").unwrap();
    assert_eq!(seed.len(), 32, "a 32-byte seed");
    let (info, rest) = obj.encrypted_data.split_at(32);
    let hk = hkdf::Hkdf::<sha2::Sha256>::from_prk(&seed).unwrap();
    let mut dk = [0u8; 32];
    hk.expand(info, &mut dk).unwrap();
    let gcm = AesGcm::new(&SecretKey::new(dk.to_vec())).unwrap();
    assert_eq!(gcm.open(rest, key.as_bytes()).unwrap(), plain);

    // atrest's own reader.
    let (code, out, err) = decrypt(&cfg, key, &stored, &[]);
    assert_eq!((code, out.as_slice()), (0, plain.as_slice()), "{err}");

    // A second run: a new seed (one per run), a fresh info and nonce.
    let (code, again, err) = encrypt(&cfg, key, &plain, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(plugin.calls("Encrypt"), 2, "one Encrypt per run");
    let again_obj = EncryptedObject::parse(&again[prefix.len()..]).unwrap();
    assert_ne!(again_obj.encrypted_dek_source, obj.encrypted_dek_source);
    assert_ne!(&again_obj.encrypted_data[..44], &obj.encrypted_data[..44]);

    // A plugin that refuses Encrypt: exit 2 naming the endpoint, nothing on stdout.
    plugin.set("fail", "Encrypt");
    let (code, out, err) = encrypt(&cfg, key, &plain, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(err.contains(&ep) && err.contains("Encrypt"), "{err}");
    plugin.unset("fail");

    // v1: a fresh DEK per value, `u16 len ‖ encrypted DEK ‖ GCM data`.
    let v1 = write_file(dir.path(), "v1.yaml", &kms_config("v1", "old", &ep, ""));
    let (code, stored, err) = encrypt(&v1, key, &plain, &[]);
    assert_eq!(code, 0, "{err}");
    let payload = stored
        .strip_prefix(b"k8s:enc:kms:v1:old:".as_slice())
        .unwrap();
    let n = usize::from(u16::from_be_bytes([payload[0], payload[1]]));
    assert_eq!(payload.len(), 2 + n + 12 + plain.len() + 16);
    assert_eq!(plugin.calls("V1Encrypt"), 1);
    let (code, out, err) = decrypt(&v1, key, &stored, &[]);
    assert_eq!((code, out.as_slice()), (0, plain.as_slice()), "{err}");
}

/// The write seed follows the plugin's key ID: renewed (one new Encrypt) when
/// Status reports another key_id, reused otherwise.
#[test]
fn seed_renewed_when_key_id_changes() {
    use atrest::envelope::kms::EncryptedObject;
    let dir = tempfile::tempdir().unwrap();
    let ep = socket_in(dir.path());
    let plugin = Plugin::start(&ep, &[]);
    let c = EncryptionConfiguration::from_yaml_str(&kms_config("v2", "kp", &ep, "")).unwrap();
    let plugins = Plugins::from_config(&c, &[]).unwrap().unwrap();
    let p = plugins.get(atrest::kms::ApiVersion::V2, "kp").unwrap();
    p.set_write_status_interval(Duration::ZERO);
    let key = b"/registry/secrets/ns/r";
    let id_of = |v: &[u8]| EncryptedObject::parse(v).unwrap().key_id.to_vec();
    let a = p.seal(b"one", key).unwrap();
    let b = p.seal(b"two", key).unwrap();
    assert_eq!((id_of(&a), id_of(&b)), (b"1".to_vec(), b"1".to_vec()));
    assert_eq!(p.encrypt_calls(), 1);
    assert_eq!(plugin.calls("Encrypt"), 1);
    plugin.set("key_id", "2");
    let c2 = p.seal(b"three", key).unwrap();
    assert_eq!(id_of(&c2), b"2".to_vec());
    assert_eq!(plugin.calls("Encrypt"), 2, "a new seed under the new key");
    let _ = p.seal(b"four", key).unwrap();
    assert_eq!(plugin.calls("Encrypt"), 2);
}

/// KEK rotation end to end against a live etcd: values written by atrest under
/// key_id 1 are current; the plugin moves to key_id 2; audit shows them stale;
/// `rotate status` counts them under key ID 1 and suggests the rewrite; a plugin
/// that refuses Encrypt, or cannot be reached, makes `rewrite` exit 2 naming the
/// endpoint with nothing written; `rewrite` through the plugin (the config's
/// endpoint overridden) moves everything, plaintext included, with one Encrypt;
/// audit shows all current under key 2 and `rotate status` no object under 1.
#[test]
fn kek_rotation_rewrite_live_etcd() {
    let cluster = Cluster::start(1, false);
    let dir = tempfile::tempdir().unwrap();
    let ep = socket_in(dir.path());
    let plugin = Plugin::start(&ep, &[]);
    let yaml = kms_config("v2", "kp", &ep, "");
    // The nodes' config points at the node socket; this machine overrides it.
    let node_yaml = kms_config("v2", "kp", "unix:///var/run/kms/kp.sock", "");
    let node_cfg = write_file(dir.path(), "node.yaml", &node_yaml);
    let over = format!("kp={ep}");
    let c = EncryptionConfiguration::from_yaml_str(&yaml).unwrap();
    let plugins = std::sync::Arc::new(Plugins::from_config(&c, &[]).unwrap().unwrap());
    let ts = atrest::transformer::Transformers::with_kms(&c, Some(plugins)).unwrap();
    let (t, _) = ts.for_resource(&atrest::etcd_key::GroupResource::new("", "secrets"));
    let (n, plaintext) = (30, 3);
    let mut kvs = Vec::new();
    let mut want = BTreeMap::new();
    for i in 0..n + plaintext {
        let key = format!("/registry/secrets/ns/s{i:03}");
        let plain = secret(&format!("s{i:03}"), &format!("value {i}"));
        let stored = if i < n {
            t.write(&plain, key.as_bytes()).unwrap()
        } else {
            plain.clone()
        };
        want.insert(key.clone(), plain);
        kvs.push((key.into_bytes(), stored));
    }
    let rt = common::rt();
    rt.block_on(async {
        let etcd = common::connect(&cluster.options()).await;
        etcd.put_many(&kvs).await.unwrap();
    });
    let run = |cmd: &[&str], extra: &[&str]| {
        let mut a = args(cmd);
        a.extend(args(&["--endpoints", &cluster.endpoints(), "--config"]));
        a.push(node_cfg.display().to_string());
        a.extend(args(extra));
        atrest(&a)
    };
    let audit = || {
        let (code, out, err) = run(&["audit"], &["-o", "json", "--kms-endpoint", &over]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{err}"));
        let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
        for o in v["objects"].as_array().unwrap() {
            let k = (
                o["key_name"].as_str().unwrap_or("-").to_string(),
                o["status"].as_str().unwrap().to_string(),
            );
            *by.entry(k).or_default() += 1;
        }
        (code, by)
    };
    let status = || {
        let (code, out, err) = run(
            &["rotate", "status"],
            &["-o", "json", "--kms-endpoint", &over],
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{err}"));
        (code, v)
    };
    let k = |a: &str, b: &str| (a.to_string(), b.to_string());

    let (code, by) = audit();
    assert_eq!(code, 1, "plaintext needs action");
    assert_eq!(
        by,
        BTreeMap::from([(k("kp/1", "current"), n), (k("-", "plaintext"), plaintext)])
    );

    // KEK rotation in the KMS.
    plugin.set("key_id", "2");
    let (_, by) = audit();
    assert_eq!(
        by,
        BTreeMap::from([(k("kp/1", "stale"), n), (k("-", "plaintext"), plaintext)])
    );
    let (_, v) = status();
    let kms = &v["kms"][0];
    assert_eq!(kms["name"], "kp");
    assert_eq!(kms["current_key_id"], "2");
    assert_eq!(kms["by_key_id"], serde_json::json!({"1": n}));
    assert_eq!(kms["old_key_id_objects"], n);
    let next = v["next"].as_str().unwrap();
    assert!(
        next.starts_with("atrest rewrite") && next.contains(&format!("--kms-endpoint {over}")),
        "{next}"
    );

    // Nothing is written when the plugin cannot write or cannot be reached.
    let rev = common::revision_of(&cluster);
    let encrypts = plugin.calls("Encrypt");
    plugin.set("fail", "Encrypt");
    let (code, out, err) = run(&["rewrite"], &["--kms-endpoint", &over]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&ep) && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(
        plugin.calls("Encrypt"),
        encrypts + 1,
        "one attempt, not one per object"
    );
    plugin.unset("fail");
    let (code, _, err) = run(&["rewrite"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unix:///var/run/kms/kp.sock"), "{err}");
    assert_eq!(common::revision_of(&cluster), rev, "nothing was written");

    // The rewrite: one Encrypt for the run's seed, whatever the number of objects.
    let encrypts = plugin.calls("Encrypt");
    let (code, out, err) = run(&["rewrite"], &["--kms-endpoint", &over]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(plugin.calls("Encrypt") - encrypts, 1, "one seed per run");
    assert!(common::revision_of(&cluster) > rev);
    let (code, by) = audit();
    assert_eq!(code, 0);
    assert_eq!(by, BTreeMap::from([(k("kp/2", "current"), n + plaintext)]));
    let (code, v) = status();
    assert_eq!(code, 0, "{v}");
    let kms = &v["kms"][0];
    assert_eq!(kms["by_key_id"], serde_json::json!({"2": n + plaintext}));
    assert_eq!(kms["old_key_id_objects"], 0);
    assert!(v["next"].is_null(), "{v}");
    assert!(
        v["advice"]
            .as_str()
            .unwrap()
            .contains("no object of the scanned data is under an old key ID"),
        "{v}"
    );
    let (_, table, _) = run(&["rotate", "status"], &["--kms-endpoint", &over]);
    assert!(table.contains("key ID \"2\" (current)"), "{table}");
    assert!(!table.contains("key ID \"1\""), "{table}");

    // Every value decrypts to what was written, through atrest's reader.
    for (key, plain) in &want {
        let stored = rt.block_on(async {
            let etcd = common::connect(&cluster.options()).await;
            etcd.get(key.as_bytes()).await.unwrap().unwrap().value
        });
        assert!(stored.starts_with(b"k8s:enc:kms:v2:kp:"));
        let (code, out, err) = decrypt(&node_cfg, key, &stored, &["--kms-endpoint", &over]);
        assert_eq!((code, &out), (0, plain), "{key}: {err}");
    }
}

/// A plugin that dies or stops answering in the middle of a run (after the
/// objects under its first DEK sources were read and reported): every command
/// that reads through it exits 2 naming the endpoint and prints nothing on
/// stdout, live and from a snapshot, in every output format; `dump --out-dir`
/// says the tree it wrote is incomplete.
#[test]
fn plugin_failing_mid_run_leaves_no_partial_result() {
    let cluster = Cluster::start(1, false);
    let dir = tempfile::tempdir().unwrap();
    let ep = socket_in(dir.path());
    let start = || Plugin::start(&ep, &["--kek-seed", "00112233"]);
    let plugin = start();
    let yaml = kms_config("v2", "kp", &ep, "");
    let cfg = write_file(dir.path(), "enc.yaml", &yaml);
    // Several writers, each with its own seed: a Decrypt per seed, spread
    // over the run (objects are read in key order, a seed per block of keys).
    let (seeds, per_seed) = (6, 40);
    let writers: Vec<V2Writer> = (0..seeds).map(|_| V2Writer::new(&yaml, "kp")).collect();
    let mut kvs = Vec::new();
    for i in 0..seeds * per_seed {
        let key = format!("/registry/secrets/ns/s{i:03}");
        let stored = writers[i / per_seed].write(&secret(&format!("s{i:03}"), "v"), &key);
        kvs.push((key.into_bytes(), stored));
    }
    let rt = common::rt();
    rt.block_on(async {
        let etcd = common::connect(&cluster.options()).await;
        // etcd takes at most 128 operations per transaction.
        for batch in kvs.chunks(100) {
            etcd.put_many(batch).await.unwrap();
        }
    });
    let snap = dir.path().join("backup.db");
    cluster.snapshot(&snap);
    let snap = snap.display().to_string();
    let cfg = cfg.display().to_string();
    let endpoints = cluster.endpoints();
    let live = |extra: &[&str]| {
        let mut a = args(&["audit", "--endpoints", &endpoints, "--config", &cfg]);
        a.extend(args(&["--page-size", "20", "--threads", "1"]));
        a.extend(args(extra));
        a
    };
    let from_snapshot = |cmd: &str, extra: &[&str]| {
        let mut a = args(&[cmd, "--snapshot", &snap, "--config", &cfg, "--threads", "1"]);
        a.extend(args(extra));
        a
    };

    // The healthy plugin: full results, one Decrypt per seed.
    let (code, out, err) = atrest(&live(&["-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["objects"].as_array().unwrap().len(), seeds * per_seed);
    assert_eq!(plugin.calls("Decrypt"), seeds, "one Decrypt per seed");
    let (code, out, err) = atrest(&from_snapshot("dump", &["-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), seeds * per_seed);
    drop(plugin);

    let restore = dir.path().join("restore");
    let restore_s = restore.display().to_string();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("die_after", live(&["-o", "json"])),
        ("die_after", live(&["-o", "yaml"])),
        ("hang_after", live(&[])),
        ("die_after", from_snapshot("audit", &["-o", "json"])),
        ("hang_after", from_snapshot("audit", &["-o", "yaml"])),
        ("die_after", from_snapshot("audit", &[])),
        ("die_after", from_snapshot("dump", &[])),
        ("hang_after", from_snapshot("dump", &["-o", "json"])),
        (
            "die_after",
            from_snapshot("dump", &["--out-dir", &restore_s]),
        ),
    ];
    for (knob, a) in cases {
        let what = format!("{knob}: atrest {}", a.join(" "));
        let plugin = start();
        // Two Decrypts are answered (two seeds' objects read), then it fails.
        plugin.set(knob, "2");
        let t = Instant::now();
        let (code, out, err) = atrest(&a);
        assert_eq!(
            code,
            2,
            "{what}: {err} calls {} out {}",
            plugin.calls("Decrypt"),
            out.len()
        );
        assert!(out.is_empty(), "{what}: partial output on stdout:\n{out}");
        assert!(err.contains(&ep), "{what}: the endpoint is named: {err}");
        assert_eq!(
            plugin.calls("Decrypt"),
            2,
            "{what}: the plugin failed mid-run, after two seeds"
        );
        assert!(
            t.elapsed() < Duration::from_secs(50),
            "{what}: took {:?}",
            t.elapsed()
        );
        if a.contains(&restore_s) {
            assert!(err.contains("INCOMPLETE"), "{what}: {err}");
            let written = walk_files(&restore);
            assert!(
                err.contains(&format!("{written} object file(s) were written")),
                "{what}: {written} files: {err}"
            );
            assert!(written < seeds * per_seed, "{what}: {written}");
        }
    }
}

/// Regular files under `dir`, recursively.
fn walk_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_files(&p)
            } else {
                usize::from(p.is_file())
            }
        })
        .sum()
}

/// A valid KMS v2 `EncryptedObject` (seed type, one annotation), then `extra`
/// bytes appended (later fields on the wire).
fn encrypted_object_with(key_id: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut annotations = BTreeMap::new();
    annotations.insert(b"kek.example.com".to_vec(), b"v".to_vec());
    let mut out = encode_v2(
        &[7u8; 64],
        key_id,
        b"wrapped seed",
        &annotations,
        DekSourceType::HkdfSha256XNonceAesGcmSeed,
    );
    out.extend_from_slice(extra);
    out
}

/// kube-apiserver decodes the KMS v2 `EncryptedObject` with protobuf-go's
/// `proto.Unmarshal` (`doDecode` in upstream
/// `staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/envelope.go`;
/// `kmsv2/v2/api.pb.go` is protoc-gen-go output). protobuf-go refuses a varint
/// whose 10th byte carries bits past 64 (`protowire.ConsumeVarint`), and refuses
/// a proto3 `string` field (`keyID`) that is not valid UTF-8. kube-apiserver
/// cannot read such a value, so atrest must not either.
#[test]
fn encrypted_object_refuses_what_protobuf_go_refuses() {
    use atrest::envelope::kms::EncryptedObject;
    assert!(EncryptedObject::parse(&encrypted_object_with(b"kek-1", &[])).is_ok());

    // encryptedDEKSourceType = 1 again, as a 10-byte varint with a bit past 64.
    let overflow = [
        0x28, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
    ];
    let v = encrypted_object_with(b"kek-1", &overflow);
    assert!(
        EncryptedObject::parse(&v).is_err(),
        "varint overflow accepted"
    );

    let v = encrypted_object_with(b"kek-\xff\xfe", &[]);
    assert!(
        EncryptedObject::parse(&v).is_err(),
        "non-UTF-8 keyID accepted"
    );
}

/// protobuf-go keeps a field it cannot use as an unknown field instead of
/// failing: a known field number with another wire type (the generated
/// `consume*` functions return `errUnknown`), and a group (wire types 3/4,
/// skipped whole by `protowire.ConsumeFieldValue`). kube-apiserver reads such
/// a value with the fields it knows (`doDecode` in upstream `kmsv2/envelope.go`).
#[test]
fn encrypted_object_skips_what_protobuf_go_skips() {
    use atrest::envelope::kms::EncryptedObject;
    let plain_object = encrypted_object_with(b"kek-1", &[]);
    let good = EncryptedObject::parse(&plain_object).unwrap();
    let cases: &[(&str, &[u8])] = &[
        // encryptedData (1) as a varint: unknown, the bytes field stays.
        ("field 1 as varint", &[0x08, 0x05]),
        // keyID (2) as fixed32, encryptedDEKSourceType (5) as length-delimited.
        ("field 2 as fixed32", &[0x15, 1, 2, 3, 4]),
        ("field 5 as bytes", &[0x2a, 0x01, 0x00]),
        // An empty group, and one holding a varint and a nested group, field 9.
        ("empty group", &[0x4b, 0x4c]),
        ("nested group", &[0x4b, 0x08, 0x01, 0x53, 0x54, 0x4c]),
    ];
    for (what, extra) in cases {
        let v = encrypted_object_with(b"kek-1", extra);
        match EncryptedObject::parse(&v) {
            Ok(o) => {
                assert_eq!(o.encrypted_data, good.encrypted_data, "{what}");
                assert_eq!(o.key_id, good.key_id, "{what}");
                assert_eq!(o.source_type, good.source_type, "{what}");
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
    // A group that is never closed, or closed with another number, is corrupt.
    for extra in [&[0x4b, 0x08, 0x01][..], &[0x4b, 0x54][..], &[0x4c][..]] {
        let v = encrypted_object_with(b"kek-1", extra);
        assert!(EncryptedObject::parse(&v).is_err(), "{extra:?}");
    }
}
