//! `atrest info` against files made by real etcd: the committed fixtures
//! (testdata/bolt from make-bolt-fixtures.sh, testdata/sample from make-sample.sh,
//! both etcd 3.4) compared with what etcd itself reported when it wrote them, damaged
//! and foreign files, and a snapshot saved now from the etcd under test
//! (`ATREST_ETCD_BIN`; tests/run.sh runs it with etcd 3.4 and 3.5).

mod common;

use atrest::etcd_key::parse_object_key;
use base64::Engine;
use common::{args, atrest, etcd_available, etcd_bin, etcdctl, revision_of, Cluster};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn testdata(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(path)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// `atrest info --snapshot FILE -o json EXTRA...`: exit code, JSON, stderr.
fn info_json(file: &Path, extra: &[&str]) -> (i32, Value, String) {
    let mut a = args(&["info", "--snapshot", file.to_str().unwrap(), "-o", "json"]);
    a.extend(extra.iter().map(|s| s.to_string()));
    let (code, out, err) = atrest(&a);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, v, err)
}

/// Objects by resource at the latest revision, counted from etcd's own `etcdctl get` listing.
fn objects_from_etcd_listing(expected: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for kv in expected["kvs"].as_array().unwrap() {
        let key = base64::engine::general_purpose::STANDARD
            .decode(kv["key_b64"].as_str().unwrap())
            .unwrap();
        if let Some(k) = parse_object_key(&key, "/registry") {
            *out.entry(k.resource.to_string()).or_default() += 1;
        }
    }
    out
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

/// The page and size figures agree with the file itself.
fn assert_pages_fit(info: &Value, file: &Path, trailer: bool) {
    let len = fs::metadata(file).unwrap().len();
    assert_eq!(info["file_size"].as_u64(), Some(len));
    assert_eq!(info["page_size"].as_u64(), Some(4096));
    let bolt_len = if trailer { len - 32 } else { len };
    let (used, free) = (
        info["pages"]["used"].as_u64().unwrap(),
        info["pages"]["free"].as_u64().unwrap(),
    );
    assert_eq!(used + free, bolt_len / 4096, "{info}");
    // Two meta pages and the root's leaf page at least (small buckets are inline).
    assert!(used >= 3, "{info}");
}

/// The one member of a cluster started by testdata/lib/etcd.sh: name as given
/// there, client and peer on consecutive loopback ports.
fn assert_script_member(info: &Value, name: &str) {
    let members = info["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{info}");
    let m = &members[0];
    assert_eq!(m["name"], name);
    let id = m["id"].as_str().unwrap();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()) && id != "0",
        "{id}"
    );
    let port = |url: &Value| -> u16 {
        url.as_str()
            .unwrap()
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("loopback URL: {url}"))
            .parse()
            .unwrap()
    };
    let peers = m["peer_urls"].as_array().unwrap();
    let clients = m["client_urls"].as_array().unwrap();
    assert_eq!((peers.len(), clients.len()), (1, 1), "{m}");
    assert_eq!(port(&peers[0]), port(&clients[0]) + 1, "{m}");
}

#[test]
fn bolt_fixture_info_matches_what_etcd_reported() {
    let expected = read_json(&testdata("bolt/expected-live.json"));
    let snap = testdata("bolt/snapshot.db");
    let (code, info, err) = info_json(&snap, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(info["storage_version"], "3.4");
    assert_eq!(info["revision"], expected["revision"]);
    assert_eq!(info["compact_revision"], expected["compact_revision"]);
    assert!(info["consistent_index"].as_u64().is_some_and(|i| i > 0));
    assert_eq!(info["term"], Value::Null, "etcd 3.4 stores no term");
    // The fixture was written by a member named `fixture`.
    assert_script_member(&info, "fixture");
    // make-bolt-fixtures.sh grants one lease.
    assert_eq!(info["leases"], 1);
    assert_eq!(
        counts(&info["objects"]),
        objects_from_etcd_listing(&expected)
    );
    assert_eq!(info["hash"]["present"], true);
    assert_eq!(info["hash"]["ok"], true);
    assert_pages_fit(&info, &snap, true);
    assert!(
        info.get("providers").is_none(),
        "providers only with --config"
    );

    // The raw member db of the same etcd: same content, no trailer.
    let member = testdata("bolt/member.db");
    let (code, m, err) = info_json(&member, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(m["hash"]["present"], false);
    assert_eq!(m["hash"]["ok"], Value::Null);
    for field in [
        "revision",
        "compact_revision",
        "members",
        "objects",
        "leases",
    ] {
        assert_eq!(m[field], info[field], "{field}");
    }
    assert_pages_fit(&m, &member, false);
}

#[test]
fn sample_info_matches_what_the_writer_recorded() {
    let exp = read_json(&testdata("sample/expected.json"));
    let snap = testdata("sample/snapshot.db");
    let config = testdata("sample/encryption-config.yaml");
    let (code, info, err) = info_json(&snap, &["--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(info["revision"], exp["revision"]);
    assert_eq!(info["compact_revision"], exp["compacted_revision"]);
    assert_script_member(&info, "sample");
    assert_eq!(info["leases"], 0);

    // Objects, providers and statuses as the writer recorded each object it left in etcd.
    let mut objects: BTreeMap<String, u64> = BTreeMap::new();
    let mut providers: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for (key, o) in exp["objects"].as_object().unwrap() {
        let resource = parse_object_key(key.as_bytes(), "/registry")
            .unwrap()
            .resource
            .to_string();
        *objects.entry(resource.clone()).or_default() += 1;
        let provider = match o["key_name"].as_str() {
            Some(k) => format!("{}:{k}", o["provider"].as_str().unwrap()),
            None => o["provider"].as_str().unwrap().to_string(),
        };
        *providers
            .entry(resource)
            .or_default()
            .entry(provider)
            .or_default() += 1;
        *statuses
            .entry(o["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(objects["secrets"] > 10, "{objects:?}");
    assert_eq!(counts(&info["objects"]), objects);
    let got: BTreeMap<String, BTreeMap<String, u64>> = info["providers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(r, p)| (r.clone(), counts(p)))
        .collect();
    assert_eq!(got, providers);
    assert_eq!(counts(&info["statuses"]), statuses);

    // Another prefix: no objects, the rest unchanged.
    let (code, other, _) = info_json(&snap, &["--etcd-prefix", "/other"]);
    assert_eq!(code, 0);
    assert_eq!(counts(&other["objects"]), BTreeMap::new());
    assert_eq!(other["revision"], info["revision"]);
}

#[test]
fn table_and_yaml_say_the_same() {
    let snap = testdata("bolt/snapshot.db");
    let (code, json, _) = info_json(&snap, &[]);
    assert_eq!(code, 0);
    let (code, table, err) = atrest(&args(&["info", "--snapshot", snap.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let line = |k: &str| -> String {
        table
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_else(|| panic!("no {k} line: {table}"))
            .to_string()
    };
    assert!(line("revision").ends_with(&format!(" {}", json["revision"])));
    assert!(line("compacted at").ends_with(&format!(" {}", json["compact_revision"])));
    assert!(line("storage version").contains("3.4"));
    assert!(line("hash").contains("verified"));
    assert!(line("members").contains(json["members"][0]["id"].as_str().unwrap()));
    assert!(line("members").contains("fixture"));
    assert!(table.contains(&format!("{}", json["objects"]["configmaps"])));

    let (code, yaml, err) = atrest(&args(&[
        "info",
        "--snapshot",
        snap.to_str().unwrap(),
        "-o",
        "yaml",
    ]));
    assert_eq!(code, 0, "{err}");
    let from_yaml: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(from_yaml, json);
}

#[test]
fn a_hash_that_does_not_match_is_reported_with_the_info_and_exit_1() {
    let d = tempfile::tempdir().unwrap();
    let bytes = fs::read(testdata("bolt/snapshot.db")).unwrap();
    let (_, good, _) = info_json(&testdata("bolt/snapshot.db"), &[]);
    // A damaged trailer, and a damaged byte in a free page of the body: both
    // leave every record readable, and neither matches the trailer.
    let free_page = {
        let bolt = atrest::bolt::BoltFile::from_bytes(bytes[..bytes.len() - 32].to_vec()).unwrap();
        *bolt
            .free_pages()
            .unwrap()
            .first()
            .expect("the fixture has free pages")
    };
    let mut trailer = bytes.clone();
    let last = trailer.len() - 1;
    trailer[last] ^= 0x01;
    let mut body = bytes.clone();
    body[free_page as usize * 4096 + 100] ^= 0xff;
    for (name, data) in [("trailer.db", trailer), ("body.db", body)] {
        let p = d.path().join(name);
        fs::write(&p, data).unwrap();
        let (code, info, err) = info_json(&p, &[]);
        assert_eq!(code, 1, "{name}: {err}");
        assert_eq!(info["hash"]["present"], true);
        assert_eq!(info["hash"]["ok"], false);
        assert!(err.contains("sha256") && err.contains(name), "{err}");
        for field in ["revision", "members", "objects", "leases", "pages"] {
            assert_eq!(info[field], good[field], "{name}: {field}");
        }
        let (code, table, _) = atrest(&args(&["info", "--snapshot", p.to_str().unwrap()]));
        assert_eq!(code, 1);
        assert!(table.contains("DOES NOT MATCH"), "{table}");
    }
}

#[test]
fn files_that_are_not_etcd_dbs_are_exit_2_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let bytes = fs::read(testdata("bolt/snapshot.db")).unwrap();
    for (name, data, says) in [
        (
            "text.db",
            b"this is not an etcd snapshot\n".repeat(200),
            "not an etcd snapshot",
        ),
        ("empty.db", Vec::new(), "empty"),
        ("cut.db", bytes[..bytes.len() / 3].to_vec(), "cut.db"),
    ] {
        let p = d.path().join(name);
        fs::write(&p, &data).unwrap();
        let (code, out, err) = atrest(&args(&["info", "--snapshot", p.to_str().unwrap()]));
        assert_eq!(code, 2, "{name}: {out} {err}");
        assert!(err.contains(name) && err.contains(says), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.is_empty(), "{name}: nothing on stdout: {out}");
    }
    // A damaged tree under a trailer that no longer matches: both are said.
    let root = atrest::bolt::BoltFile::from_bytes(bytes[..bytes.len() - 32].to_vec())
        .unwrap()
        .meta()
        .root as usize;
    let mut damaged = bytes.clone();
    damaged[root * 4096..root * 4096 + 8].fill(0xff);
    let p = d.path().join("damaged.db");
    fs::write(&p, &damaged).unwrap();
    let (code, out, err) = atrest(&args(&["info", "--snapshot", p.to_str().unwrap()]));
    assert_eq!(code, 2, "{out} {err}");
    assert!(
        err.contains("damaged.db") && err.contains(&format!("page {root}")),
        "{err}"
    );
    assert!(err.contains("sha256 trailer does not match"), "{err}");

    let (code, _, err) = atrest(&args(&["info", "--snapshot", "/nonexistent/snap.db"]));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/snap.db"), "{err}");
}

/// A snapshot saved now from the etcd under test: members, leases, revisions and
/// the storage version match what that etcd says about itself.
#[test]
fn a_real_etcds_snapshot_reports_its_members_leases_and_version() {
    if !etcd_available() {
        return;
    }
    let version = etcd_version().expect("`etcd --version` names its version");
    let c = Cluster::start(1, false);
    let ctl = |a: &[&str]| -> String {
        let out = etcdctl()
            .args(["--endpoints", &c.endpoints()])
            .args(a)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "etcdctl {a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let lease = |out: String| out.split_whitespace().nth(1).unwrap().to_string();
    let l1 = lease(ctl(&["lease", "grant", "3600"]));
    lease(ctl(&["lease", "grant", "3600"]));
    ctl(&["put", "/registry/secrets/default/a", "one"]);
    ctl(&["put", "/registry/secrets/default/a", "two"]);
    ctl(&[
        "put",
        "--lease",
        &l1,
        "/registry/leases/kube-node-lease/n1",
        "x",
    ]);
    ctl(&["put", "/registry/configmaps/default/b", "y"]);
    let compact_at = revision_of(&c);
    ctl(&["compact", &compact_at.to_string()]);
    ctl(&["put", "/registry/configmaps/default/gone", "z"]);
    ctl(&["del", "/registry/configmaps/default/gone"]);
    ctl(&["put", "/elsewhere/key", "not under the prefix"]);
    let revision = revision_of(&c);
    let members: Value = serde_json::from_str(&ctl(&["member", "list", "-w", "json"])).unwrap();
    let id = format!("{:x}", members["members"][0]["ID"].as_u64().unwrap());

    let d = tempfile::tempdir().unwrap();
    let snap = d.path().join("snap.db");
    ctl(&["snapshot", "save", snap.to_str().unwrap()]);
    let (code, info, err) = info_json(&snap, &[]);
    assert_eq!(code, 0, "{err}");

    assert_eq!(info["storage_version"], version, "{info}");
    if version == "3.4" {
        assert_eq!(info["term"], Value::Null);
    } else {
        assert!(info["term"].as_u64().is_some_and(|t| t >= 1), "{info}");
    }
    assert_eq!(info["revision"], revision);
    assert_eq!(info["compact_revision"], compact_at);
    assert!(info["consistent_index"].as_u64().is_some_and(|i| i > 0));
    let m = &c.members[0];
    // etcd 3.4 saves the member's published attributes to the `members` bucket;
    // 3.5 applies that first publish to its v2 store only (`UpdateAttributes` with
    // `shouldApplyV3` false, server/etcdserver/api/membership/cluster.go), so the
    // bucket keeps the name given at bootstrap and no client URLs.
    let client_urls = if version == "3.4" {
        serde_json::json!([m.client_url])
    } else {
        info["members"][0]["client_urls"].clone()
    };
    assert!(
        client_urls == serde_json::json!([m.client_url]) || client_urls == serde_json::json!([]),
        "{info}"
    );
    assert_eq!(
        info["members"],
        serde_json::json!([{
            "id": id,
            "name": m.name,
            "peer_urls": [m.peer_url],
            "client_urls": client_urls,
            "is_learner": false,
        }])
    );
    assert_eq!(info["leases"], 2);
    assert_eq!(
        counts(&info["objects"]),
        BTreeMap::from([
            ("configmaps".to_string(), 1),
            ("leases.coordination.k8s.io".to_string(), 1),
            ("secrets".to_string(), 1),
        ])
    );
    assert_eq!(
        info["hash"],
        serde_json::json!({"present": true, "ok": true})
    );
    assert_pages_fit(&info, &snap, true);
}

/// `3.4`, `3.5`, ... from `etcd --version`; `None` when etcd does not run.
fn etcd_version() -> Option<String> {
    let out = std::process::Command::new(etcd_bin())
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version: "))?;
    let mut parts = v.trim().split('.');
    Some(format!("{}.{}", parts.next()?, parts.next()?))
}
