//! The sample cluster snapshot (made by a real etcd with testdata/make-sample.sh):
//! audit and dump must report exactly what the writer recorded in expected.json.

use assert_cmd::Command;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

const SNAP: &str = "testdata/sample/snapshot.db";
const CONFIG: &str = "testdata/sample/encryption-config.yaml";

fn expected() -> Value {
    serde_json::from_slice(&fs::read("testdata/sample/expected.json").unwrap()).unwrap()
}

fn atrest(args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let out = Command::cargo_bin("atrest")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn audit_json(extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["audit", "--snapshot", SNAP, "-o", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = atrest(&args);
    let v = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    (code, v)
}

#[test]
fn audit_with_config_matches_what_was_written() {
    let exp = expected();
    let (code, v) = audit_json(&["--config", CONFIG]);
    assert_eq!(code, Some(1), "the sample has objects that need action");
    assert_eq!(v["revision"], exp["revision"]);
    assert_eq!(v["source"], SNAP);
    let got: BTreeMap<String, Value> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["key"].as_str().unwrap().to_string(),
                serde_json::json!({"provider": o["provider"], "key_name": o["key_name"], "status": o["status"]}),
            )
        })
        .collect();
    let want: BTreeMap<String, Value> = exp["objects"]
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    assert_eq!(got, want);
    // Every object carries the interface fields.
    for o in v["objects"].as_array().unwrap() {
        for f in [
            "key",
            "resource",
            "namespace",
            "name",
            "mod_revision",
            "provider",
            "key_name",
            "status",
        ] {
            assert!(o.get(f).is_some(), "{f} missing in {o}");
        }
    }
    let db = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "/registry/secrets/default/db-password")
        .unwrap();
    assert_eq!(
        (
            db["resource"].as_str(),
            db["namespace"].as_str(),
            db["name"].as_str()
        ),
        (Some("secrets"), Some("default"), Some("db-password"))
    );
    let node = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "/registry/minions/cp-1")
        .unwrap();
    assert_eq!(
        (node["resource"].as_str(), node["namespace"].is_null()),
        (Some("nodes"), true)
    );
    // Summary counts agree with the objects.
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for o in want.values() {
        *by_status
            .entry(o["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(v["summary"]["objects"], want.len() as u64);
    let got_status: BTreeMap<String, u64> =
        serde_json::from_value(v["summary"]["by_status"].clone()).unwrap();
    assert_eq!(got_status, by_status);
    let secrets = want
        .keys()
        .filter(|k| k.starts_with("/registry/secrets/"))
        .count();
    assert_eq!(v["summary"]["by_resource"]["secrets"], secrets as u64);
}

#[test]
fn audit_without_config_and_resource_filter() {
    let (code, v) = audit_json(&[]);
    assert_eq!(code, Some(1), "plaintext Secrets exist");
    for o in v["objects"].as_array().unwrap() {
        let want = if o["provider"] == "identity" {
            "plaintext"
        } else {
            "encrypted"
        };
        assert_eq!(o["status"], want, "{o}");
    }
    let (code, v) = audit_json(&[
        "--config",
        CONFIG,
        "--resource",
        "configmaps,deployments.apps",
    ]);
    assert_eq!(code, Some(1), "one stale ConfigMap");
    let resources: std::collections::BTreeSet<&str> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["resource"].as_str().unwrap())
        .collect();
    assert_eq!(
        resources.into_iter().collect::<Vec<_>>(),
        vec!["configmaps", "deployments.apps"]
    );
    let (code, _) = audit_json(&["--config", CONFIG, "--resource", "pods,namespaces"]);
    assert_eq!(code, Some(0), "nothing to do for pods and namespaces");
}

/// kube-apiserver keys every object under `path.Join("/", --etcd-prefix)` (apiserver
/// `pkg/storage/etcd3/store.go`, `newStore`), so `registry`, `/registry/` and
/// `//registry` all mean the `/registry` the sample was written under: audit and
/// info must find the same objects with each, not report an empty, clean cluster.
#[test]
fn etcd_prefix_is_read_as_kube_apiserver_cleans_it() {
    let (code, want) = audit_json(&["--config", CONFIG]);
    assert_eq!(code, Some(1));
    assert!(want["summary"]["objects"].as_u64().unwrap() > 10, "{want}");
    for prefix in ["registry", "/registry/", "//registry", "/registry/./"] {
        let (code, got) = audit_json(&["--config", CONFIG, "--etcd-prefix", prefix]);
        assert_eq!(code, Some(1), "--etcd-prefix {prefix}");
        assert_eq!(got["summary"], want["summary"], "--etcd-prefix {prefix}");
        assert_eq!(got["objects"], want["objects"], "--etcd-prefix {prefix}");
        let (code, out, err) = atrest(&[
            "info",
            "--snapshot",
            SNAP,
            "-o",
            "json",
            "--etcd-prefix",
            prefix,
        ]);
        assert_eq!(code, Some(0), "{err}");
        let info: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            info["objects"], want["summary"]["by_resource"],
            "--etcd-prefix {prefix}"
        );
        assert_eq!(info["etcd_prefix"], "/registry", "--etcd-prefix {prefix}");
    }
}

#[test]
fn audit_history_reports_superseded_plaintext() {
    let exp = expected();
    let (_, v) = audit_json(&["--config", CONFIG, "--history"]);
    let got: Vec<Value> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| serde_json::json!({"key": h["key"], "mod_revision": h["mod_revision"]}))
        .collect();
    assert_eq!(Value::Array(got), exp["history_plaintext"]);
    assert_eq!(
        v["summary"]["history_plaintext"],
        exp["history_plaintext"].as_array().unwrap().len()
    );
}

/// What `--history` reports is what the file holds besides its latest keyspace:
/// reading the keyspace at an older `--revision` changes neither which old
/// plaintext revisions the backup still carries nor whether their keys exist.
/// At revision 30 the sample's `deleted-later` (plaintext at 24, deleted later)
/// was still live and `rotated` (plaintext at 32) did not exist yet.
#[test]
fn audit_history_does_not_depend_on_the_revision_read() {
    let (_, latest) = audit_json(&["--config", CONFIG, "--history"]);
    assert!(!latest["history"].as_array().unwrap().is_empty());
    for revision in ["30", "40", "51"] {
        let (_, at) = audit_json(&["--config", CONFIG, "--history", "--revision", revision]);
        assert_eq!(at["history"], latest["history"], "--revision {revision}");
        assert_eq!(
            at["summary"]["history_plaintext"], latest["summary"]["history_plaintext"],
            "--revision {revision}"
        );
    }
}

#[test]
fn audit_table_and_yaml() {
    let (code, out, _) = atrest(&["audit", "--snapshot", SNAP, "--config", CONFIG]);
    assert_eq!(code, Some(1));
    let t = String::from_utf8(out).unwrap();
    assert!(
        t.contains("RESOURCE") && t.contains("aescbc/key0") && t.contains("unknown-key"),
        "{t}"
    );
    assert!(t.contains("add the old key"), "{t}");
    let (code, out, _) = atrest(&[
        "audit",
        "--snapshot",
        SNAP,
        "--config",
        CONFIG,
        "-o",
        "yaml",
    ]);
    assert_eq!(code, Some(1));
    let y: Value = serde_saphyr::from_str(std::str::from_utf8(&out).unwrap()).unwrap();
    assert_eq!(y["revision"], expected()["revision"]);
}

fn dump_items(args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut a = vec!["dump", "--snapshot", SNAP, "--config", CONFIG, "-o", "json"];
    a.extend_from_slice(args);
    let (code, out, err) = atrest(&a);
    let v: Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(v["kind"], "List");
    (code, v["items"].as_array().unwrap().clone(), err)
}

#[test]
fn dump_recovers_every_readable_secret() {
    let exp = expected();
    let (code, items, err) = dump_items(&[]);
    assert_eq!(code, Some(1), "some Secrets cannot be recovered");
    for bad in [
        "legacy/old-key-secret",
        "prod/wrong-gcm-key",
        "prod/corrupted",
        "kube-system/malformed",
    ] {
        assert!(
            err.contains(&format!("/registry/secrets/{bad}")),
            "{bad} not reported: {err}"
        );
    }
    let secrets = exp["secrets"].as_object().unwrap();
    assert_eq!(items.len(), secrets.len());
    for it in &items {
        let ns = it["metadata"]["namespace"].as_str().unwrap();
        let name = it["metadata"]["name"].as_str().unwrap();
        let want = &secrets[&format!("/registry/secrets/{ns}/{name}")];
        assert_eq!(it["kind"], "Secret");
        assert_eq!(it["type"], want["type"], "{ns}/{name}");
        assert_eq!(it["data"], want["data"], "{ns}/{name}");
        assert!(
            it["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > 0
        );
    }
}

#[test]
fn dump_one_secret_clean_yaml() {
    let (code, items, _) =
        dump_items(&["--namespace", "default", "--name", "db-password", "--clean"]);
    assert_eq!(code, Some(0));
    assert_eq!(items.len(), 1);
    let s = &items[0];
    assert_eq!(s["data"]["password"], "czNjcjN0");
    assert!(s["metadata"].get("uid").is_none() && s["metadata"].get("resourceVersion").is_none());
    let (code, out, _) = atrest(&[
        "dump",
        "--snapshot",
        SNAP,
        "--config",
        CONFIG,
        "--namespace",
        "prod",
        "--name",
        "tls-cert",
    ]);
    assert_eq!(code, Some(0));
    let y: Value = serde_saphyr::from_str(std::str::from_utf8(&out).unwrap()).unwrap();
    assert_eq!(y["items"][0]["type"], "kubernetes.io/tls");
}

#[test]
fn dump_out_dir_is_private() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("restore");
    let (code, out, _) = atrest(&[
        "dump",
        "--snapshot",
        SNAP,
        "--config",
        CONFIG,
        "--resource",
        "secrets,configmaps",
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    let f = dir.join("secrets/default/db-password.yaml");
    let y: Value = serde_saphyr::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
    assert_eq!(y["data"]["username"], "YXBw");
    assert!(dir.join("configmaps/prod/app-config.yaml").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&f), 0o600);
        assert_eq!(mode(&dir.join("secrets/default")), 0o700);
        assert_eq!(mode(&dir), 0o700);
    }
}

#[test]
fn damaged_snapshots_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let bytes = fs::read(SNAP).unwrap();
    assert_eq!(
        bytes.len() % 512,
        32,
        "etcdctl snapshot save output has a sha256 trailer"
    );
    // A flipped byte in the data: the trailer no longer matches.
    let mut flipped = bytes.clone();
    flipped[5000] ^= 0xff;
    let p = d.path().join("flipped.db");
    fs::write(&p, &flipped).unwrap();
    let (code, _, err) = atrest(&["audit", "--snapshot", p.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("sha256") && err.contains("--skip-hash-check"),
        "{err}"
    );
    let (code, _, _) = atrest(&[
        "audit",
        "--snapshot",
        p.to_str().unwrap(),
        "--skip-hash-check",
        "--config",
        CONFIG,
    ]);
    assert!(matches!(code, Some(1) | Some(2)), "reads as far as it goes");
    for (name, data) in [
        ("empty.db", Vec::new()),
        ("text.db", b"this is not an etcd snapshot\n".repeat(100)),
        ("truncated.db", bytes[..bytes.len() / 3].to_vec()),
    ] {
        let p = d.path().join(name);
        fs::write(&p, data).unwrap();
        let (code, _, err) = atrest(&[
            "audit",
            "--snapshot",
            p.to_str().unwrap(),
            "--config",
            CONFIG,
        ]);
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(err.contains(name), "{name}: error names the file: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (code, _, _) = atrest(&["audit", "--snapshot", "/nonexistent/snap.db"]);
    assert_eq!(code, Some(2));
}

/// Run the fixture generator against a fresh real etcd and audit and dump what it
/// made: proves the generator (and the on-disk format of the etcd under test,
/// `ATREST_ETCD_BIN` or `etcd` on PATH; tests/run.sh runs this with 3.4 and 3.5)
/// still agrees with the reader, beyond the committed sample. Every figure is
/// compared with the expected.json of the same run, which records the revisions
/// that etcd reported, so nothing here is specific to one etcd version.
#[test]
fn regenerated_sample_matches_its_expectations() {
    let d = tempfile::tempdir().unwrap();
    run_fixture_script("make-sample.sh", d.path());
    let exp: Value =
        serde_json::from_slice(&fs::read(d.path().join("expected.json")).unwrap()).unwrap();
    let snap = d.path().join("snapshot.db");
    let cfg = d.path().join("encryption-config.yaml");
    let (code, stdout, err) = atrest(&[
        "audit",
        "--snapshot",
        snap.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--history",
        "-o",
        "json",
    ]);
    assert_eq!(code, Some(1), "{err}");
    let v: Value = serde_json::from_slice(&stdout).unwrap();
    let got: BTreeMap<String, Value> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["key"].as_str().unwrap().to_string(), serde_json::json!({"provider": o["provider"], "key_name": o["key_name"], "status": o["status"]})))
        .collect();
    let want: BTreeMap<String, Value> = exp["objects"]
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    assert_eq!(got, want);
    assert_eq!(v["revision"], exp["revision"]);
    let history: Vec<Value> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| serde_json::json!({"key": h["key"], "mod_revision": h["mod_revision"]}))
        .collect();
    assert_eq!(Value::Array(history), exp["history_plaintext"]);

    // The dump recovers exactly the Secrets the writer recorded.
    let (code, stdout, err) = atrest(&[
        "dump",
        "--snapshot",
        snap.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(code, Some(1), "some Secrets cannot be recovered: {err}");
    let items: BTreeMap<String, Value> = serde_json::from_slice::<Value>(&stdout).unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| {
            let m = &it["metadata"];
            (
                format!(
                    "/registry/secrets/{}/{}",
                    m["namespace"].as_str().unwrap(),
                    m["name"].as_str().unwrap()
                ),
                serde_json::json!({"type": it["type"], "data": it["data"]}),
            )
        })
        .collect();
    let want: BTreeMap<String, Value> = exp["secrets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                serde_json::json!({"type": s["type"], "data": s["data"]}),
            )
        })
        .collect();
    assert_eq!(items, want);
}

/// Plaintext rewritten under a key and compacted away is gone from the keyspace
/// and the history, but survives in free pages: `--deep` must find it.
#[test]
fn deep_scan_finds_plaintext_left_in_free_pages() {
    let d = tempfile::tempdir().unwrap();
    run_fixture_script("make-leaky.sh", d.path());
    let snap = d.path().join("snapshot.db");
    let cfg = d.path().join("encryption-config.yaml");
    let (s, c) = (snap.to_str().unwrap(), cfg.to_str().unwrap());
    let (code, _, err) = atrest(&["audit", "--snapshot", s, "--config", c, "--history"]);
    assert_eq!(code, Some(0), "keyspace and history are clean: {err}");
    let (code, stdout, err) = atrest(&[
        "audit",
        "--snapshot",
        s,
        "--config",
        c,
        "--history",
        "--deep",
        "-o",
        "json",
    ]);
    assert_eq!(code, Some(1), "{err}");
    let v: Value = serde_json::from_slice(&stdout).unwrap();
    let found = v["free_pages"].as_array().unwrap();
    assert!(!found.is_empty(), "no leftover plaintext found");
    assert_eq!(v["summary"]["free_page_plaintext"], found.len());
    let expected: std::collections::BTreeSet<String> = (1..=30)
        .map(|i| format!("/registry/secrets/default/s{i}"))
        .collect();
    for f in found {
        assert!(f["page"].as_u64().unwrap() >= 2);
        if let Some(k) = f["key"].as_str() {
            assert!(expected.contains(k), "unexpected key {k}");
        }
    }
}

/// Run a fixture generator from testdata/ against a fresh real etcd, into `dir`.
fn run_fixture_script(script: &str, dir: &Path) {
    let out = std::process::Command::new("bash")
        .arg(format!("testdata/{script}"))
        .arg(dir)
        .env("ATREST", env!("CARGO_BIN_EXE_atrest"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The parallel pipeline emits exactly what a single-threaded run does, in every
/// format, whatever the number of workers (small snapshots are cut into chunks of
/// a few keys, so results finish out of order and must be put back in order).
#[test]
fn parallel_output_is_byte_identical_to_one_thread() {
    let runs: &[&[&str]] = &[
        &[
            "audit",
            "--snapshot",
            SNAP,
            "--config",
            CONFIG,
            "-o",
            "json",
        ],
        &[
            "audit",
            "--snapshot",
            SNAP,
            "--config",
            CONFIG,
            "-o",
            "yaml",
        ],
        &["audit", "--snapshot", SNAP, "--config", CONFIG],
        &[
            "audit",
            "--snapshot",
            SNAP,
            "-o",
            "json",
            "--history",
            "--deep",
        ],
        &["audit", "--snapshot", SNAP],
        &["dump", "--snapshot", SNAP, "--config", CONFIG, "-o", "json"],
        &[
            "dump",
            "--snapshot",
            SNAP,
            "--config",
            CONFIG,
            "--resource",
            "secrets,configmaps",
        ],
        &["dump", "--snapshot", SNAP, "--config", CONFIG, "--clean"],
    ];
    for args in runs {
        let one = atrest(&[args, &["--threads", "1"][..]].concat());
        assert!(!one.1.is_empty(), "{args:?} printed nothing: {}", one.2);
        for threads in ["2", "3", "8"] {
            let many = atrest(&[args, &["--threads", threads][..]].concat());
            assert_eq!(many.0, one.0, "{args:?} --threads {threads}: exit code");
            assert!(
                many.1 == one.1,
                "{args:?} --threads {threads}: output differs from one thread"
            );
            assert_eq!(many.2, one.2, "{args:?} --threads {threads}: stderr");
        }
    }
}
