//! `dump` end to end on objects written into a real etcd: what it prints must
//! give back, through `kubectl apply`, exactly the stored object, and what it
//! cannot print must be said, never dropped silently.

mod common;

use common::{atrest, start_etcd};

/// A tiny protobuf writer for the stored objects below.
#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn varint(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
        self
    }
    fn int(&mut self, field: u32, v: u64) -> &mut Self {
        self.varint(u64::from(field) << 3).varint(v)
    }
    fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.varint(u64::from(field) << 3 | 2)
            .varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(&mut self, field: u32, m: &Enc) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// `k8s\x00` + runtime.Unknown{typeMeta, raw}, as kube-apiserver stores objects.
fn stored(api_version: &str, kind: &str, raw: &Enc) -> Vec<u8> {
    let mut tm = Enc::default();
    tm.str(1, api_version).str(2, kind);
    let mut u = Enc::default();
    u.msg(1, &tm).msg(2, raw);
    let mut out = b"k8s\x00".to_vec();
    out.extend(u.0);
    out
}

const IDENTITY: &str = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - identity: {}\n";

/// A Secret written by a newer kube-apiserver carries a field (6) this version
/// of atrest does not know; a custom resource carries a float and a map key
/// that YAML readers could take for numbers.
#[test]
fn dump_says_what_it_cannot_print_and_keeps_values_exact() {
    let Some(cluster) = start_etcd(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut meta = Enc::default();
    meta.str(1, "newer").str(3, "prod");
    let mut entry = Enc::default();
    entry.str(1, "password").bytes(2, b"s3cr3t");
    let mut secret = Enc::default();
    secret
        .msg(1, &meta)
        .msg(2, &entry)
        .str(3, "Opaque")
        .int(6, 1);
    cluster.put(
        "/registry/secrets/prod/newer",
        &stored("v1", "Secret", &secret),
    );
    // As Go's encoding/json writes a float64 (shortest form) and a map key.
    cluster.put(
        "/registry/example.com/widgets/prod/w",
        br#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"prod"},"spec":{"ratio":1298840.8475174343,"byId":{"+_1":"one"}}}"#,
    );
    // A type atrest prints with its metadata only.
    let mut dmeta = Enc::default();
    dmeta.str(1, "web").str(3, "prod");
    let mut deployment = Enc::default();
    deployment.msg(1, &dmeta).bytes(2, b"");
    cluster.put(
        "/registry/deployments/prod/web",
        &stored("apps/v1", "Deployment", &deployment),
    );
    let snap = dir.path().join("snap.db");
    cluster.snapshot(&snap);
    let cfg = dir.path().join("enc.yaml");
    std::fs::write(&cfg, IDENTITY).unwrap();
    let base = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "dump",
            "--snapshot",
            snap.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    // The Secret is printed (its known fields are the break-glass copy), but the
    // run says, for that object, which stored field is missing, and exits 1.
    let (code, out, err) = atrest(&base(&["-o", "json"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("/registry/secrets/prod/newer") && err.contains("Secret field 6"),
        "{err}"
    );
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["items"][0]["data"]["password"], "czNjcjN0");

    // The float comes back with the digits stored (kube-apiserver and kubectl
    // read it with Go's correctly rounded strconv.ParseFloat).
    let (code, out, err) = atrest(&base(&["--resource", "widgets.example.com", "-o", "json"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"ratio\": 1298840.8475174343"), "{out}");
    // Printed as stored, in full: no note that it is not.
    assert!(!err.contains("metadata only"), "{err}");

    // In YAML the key `+_1` is quoted: go-yaml v2 (resolve.go) reads a plain
    // `+_1` as the int 1, and sigs.k8s.io/yaml YAMLToJSON (kubectl apply)
    // turns that key into "1".
    let (code, out, err) = atrest(&base(&["--resource", "widgets.example.com"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"+_1\": one"), "{out}");

    // The note is for what is printed with its metadata only.
    let (code, _, err) = atrest(&base(&["--resource", "deployments.apps"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "deployments.apps objects are printed with apiVersion, kind and metadata only"
        ),
        "{err}"
    );
}
