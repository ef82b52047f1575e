//! Regressions for "nothing lost" (rewrite writes only what it fully verified;
//! files keep their owner; dump never follows links or trusts loose directories),
//! each through the CLI, against a real etcd where the case involves one.

mod common;

use common::fixtures::field;
use common::*;
use serde_json::Value;

/// An object as kube-apiserver stores it in protobuf: `k8s\0` + runtime.Unknown
/// {typeMeta {apiVersion, kind}, raw {metadata {name, namespace}, field 2 = `data`}}.
fn proto_object(api_version: &str, kind: &str, ns: &str, name: &str, data: &[u8]) -> Vec<u8> {
    let mut tm = field(1, api_version.as_bytes());
    tm.extend(field(2, kind.as_bytes()));
    let mut meta = field(1, name.as_bytes());
    if !ns.is_empty() {
        meta.extend(field(3, ns.as_bytes()));
    }
    let mut raw = field(1, &meta);
    if !data.is_empty() {
        raw.extend(field(2, data));
    }
    let mut out = b"k8s\x00".to_vec();
    out.extend(field(1, &tm));
    out.extend(field(2, &raw));
    out
}

async fn get(e: &atrest::etcd::Etcd, key: &str) -> Vec<u8> {
    e.get(key.as_bytes())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{key} is gone"))
        .value
        .to_vec()
}

/// Issue 9, case 5 (key drift): the config has the right key *name* with the
/// wrong secret. An aescbc value whose wrong-key decryption has valid padding
/// and starts with `{` used to pass the checked read; rewrite re-encrypted that
/// garbage under the new key. Now it is `undecryptable`, left as it is, and the
/// run exits 1 naming it; audit agrees.
#[test]
fn key_drift_is_undecryptable_and_never_rewritten() {
    let real = secrets_config(&[("k1", 1)]);
    let drifted = secrets_config(&[("k2", 2), ("k1", 9)]);
    let t_real = transformer(&real);
    let t_wrong = transformer(&secrets_config(&[("k1", 9)]));
    let key = "/registry/secrets/default/db";
    let plain = secret_json(key, "the only copy of the database password");
    // Encrypt (random IVs) until the wrong key's decryption is accepted by
    // kube-apiserver (valid padding) and starts like a JSON object: about one
    // value in 65,536.
    let mut stored = None;
    for _ in 0..4_000_000u32 {
        let v = t_real.write(&plain, key.as_bytes()).unwrap();
        if let Ok(r) = t_wrong.read(&v, key.as_bytes(), atrest::transformer::ReadMode::Apiserver) {
            if r.plaintext.first() == Some(&b'{') {
                stored = Some(v);
                break;
            }
        }
    }
    let stored = stored.expect("a drift-colliding value within 4,000,000 tries");
    let ok_key = "/registry/secrets/default/plain";
    let ok_plain = secret_json(ok_key, "fine");

    let c = Cluster::start(1, false);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "drifted.yaml", &drifted);
    let cfg = cfg.display().to_string();
    rt().block_on(async {
        let e = connect(&c.options()).await;
        e.put(key.as_bytes(), &stored).await.unwrap();
        e.put(ok_key.as_bytes(), &ok_plain).await.unwrap();
    });

    let (code, stdout, err) = atrest(&with(
        &c.conn_args(),
        &["audit", "--config", &cfg, "-o", "json"],
    ));
    assert_eq!(code, 1, "{stdout}{err}");
    let v = json(&stdout);
    let status = |k: &str| {
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["key"] == k)
            .map(|o| o["status"].clone())
    };
    assert_eq!(status(key), Some(Value::from("undecryptable")), "{v}");

    let (code, stdout, err) = atrest(&with(
        &c.conn_args(),
        &["rewrite", "--config", &cfg, "-o", "json"],
    ));
    assert_eq!(code, 1, "{stdout}{err}");
    let r = json(&stdout);
    assert_eq!(r["counts"]["failed"], 1, "{r}");
    assert_eq!(r["counts"]["rewritten"], 1, "{r}");
    let failed: Vec<&str> = r["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec![key]);
    assert!(
        r["failed"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("probably wrong"),
        "{r}"
    );
    rt().block_on(async {
        let e = connect(&c.options()).await;
        assert_eq!(
            get(&e, key).await,
            stored,
            "the drifted value was rewritten"
        );
        // It still decrypts with the real key to the original object.
        let now = get(&e, key).await;
        let r = t_real
            .read(
                &now,
                key.as_bytes(),
                atrest::transformer::ReadMode::Apiserver,
            )
            .unwrap();
        assert_eq!(&*r.plaintext, &plain[..]);
        assert!(get(&e, ok_key).await.starts_with(b"k8s:enc:aescbc:v1:k2:"));
    });
}

/// Issue 9, case 6 (malformed plaintext), and objects that are not the one
/// their key names: stored unencrypted as `k8s\0` + a truncated runtime.Unknown,
/// or a valid object copied under another key. Audit calls them `malformed`,
/// rewrite leaves them as they are and exits 1 naming them. Valid objects in
/// both forms (protobuf and JSON), namespaced and cluster-scoped, under a
/// custom `--etcd-prefix`, are rewritten.
#[test]
fn malformed_plaintext_is_never_rewritten() {
    let prefix = "/kubernetes.io";
    let k = |p: &str| format!("{prefix}/{p}");
    let good_proto = proto_object("v1", "Secret", "prod", "db", b"\x0a\x01a\x12\x01b");
    let truncated = good_proto[..good_proto.len() - 5].to_vec();
    let objects: Vec<(String, Vec<u8>, bool)> = vec![
        (k("secrets/prod/db"), good_proto.clone(), true),
        (k("secrets/prod/cut"), truncated, false),
        // A whole object, but another one than the key names.
        (k("secrets/prod/copy"), good_proto.clone(), false),
        (k("secrets/dev/db"), good_proto.clone(), false),
        (
            k("secrets/prod/j"),
            br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"j","namespace":"prod"},"data":{"v":"eA=="}}"#.to_vec(),
            true,
        ),
        (
            k("secrets/prod/jcut"),
            br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"jcut","namespace":"prod"}"#
                .to_vec(),
            false,
        ),
        (
            k("namespaces/prod"),
            proto_object("v1", "Namespace", "", "prod", b""),
            true,
        ),
        (
            k("namespaces/other"),
            proto_object("v1", "Namespace", "", "prod", b""),
            false,
        ),
    ];
    let c = Cluster::start(1, false);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("enc.yaml");
    std::fs::write(
        &cfg,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets, namespaces]\n    providers:\n      - secretbox: {keys: [{name: s1, secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=}]}\n      - identity: {}\n",
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    rt().block_on(async {
        let e = connect(&c.options()).await;
        for (key, value, _) in &objects {
            e.put(key.as_bytes(), value).await.unwrap();
        }
    });
    let bad: Vec<&str> = objects
        .iter()
        .filter(|o| !o.2)
        .map(|o| o.0.as_str())
        .collect();

    let (code, stdout, err) = atrest(&with(
        &c.conn_args(),
        &[
            "audit",
            "--config",
            &cfg,
            "--etcd-prefix",
            prefix,
            "-o",
            "json",
        ],
    ));
    assert_eq!(code, 1, "{stdout}{err}");
    let v = json(&stdout);
    for o in v["objects"].as_array().unwrap() {
        let key = o["key"].as_str().unwrap();
        let want = if bad.contains(&key) {
            "malformed"
        } else {
            "plaintext"
        };
        assert_eq!(o["status"], want, "{o}");
    }
    assert_eq!(v["objects"].as_array().unwrap().len(), objects.len());

    let (code, stdout, err) = atrest(&with(
        &c.conn_args(),
        &[
            "rewrite",
            "--config",
            &cfg,
            "--etcd-prefix",
            prefix,
            "-o",
            "json",
        ],
    ));
    assert_eq!(code, 1, "{stdout}{err}");
    let r = json(&stdout);
    let mut failed: Vec<&str> = r["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    failed.sort();
    let mut want_failed = bad.clone();
    want_failed.sort();
    assert_eq!(failed, want_failed, "{r}");
    assert_eq!(r["counts"]["rewritten"], (objects.len() - bad.len()) as u64);
    rt().block_on(async {
        let e = connect(&c.options()).await;
        for (key, value, good) in &objects {
            let now = get(&e, key).await;
            if *good {
                assert!(now.starts_with(b"k8s:enc:secretbox:v1:s1:"), "{key}");
            } else {
                assert_eq!(&now, value, "{key} was written");
            }
        }
    });
}

fn owner_mode(p: &std::path::Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // A file we create is owned by our effective uid.
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().metadata().unwrap().uid() == 0
}

/// Issue 9, case 7: `rotate` keeps the owner, group and mode of the config it
/// replaces, and gives them to the `.bak` too (a kube-apiserver that does not run
/// as root must still read both).
#[test]
fn rotate_keeps_config_owner_group_and_mode() {
    if !running_as_root() {
        eprintln!("skipped: needs root to chown the fixture to another user");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), "enc.yaml", &secrets_config(&[("key1", 1)]));
    std::os::unix::fs::chown(&cfg, Some(1234), Some(2345)).unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let (code, out, err) = prepare_key2(&cfg);
    assert_eq!(code, 0, "{out}{err}");
    assert!(std::fs::read_to_string(&cfg).unwrap().contains("key2"));
    assert_eq!(owner_mode(&cfg), (1234, 2345, 0o640), "the config");
    let baks: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    assert_eq!(baks.len(), 1, "{baks:?}");
    assert_eq!(owner_mode(&baks[0]), (1234, 2345, 0o640), "the .bak");
    assert!(!std::fs::read_to_string(&baks[0]).unwrap().contains("key2"));
}

/// Issue 9, case 9: `generate --output LINK --force` writes the link's target and
/// keeps the link (as rotate does), keeping the target's owner and mode.
#[test]
fn generate_force_writes_through_a_symlink() {
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("real.yaml");
    std::fs::write(&real, "old").unwrap();
    std::fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let link = d.path().join("enc.yaml");
    std::os::unix::fs::symlink("real.yaml", &link).unwrap();
    let (code, _, err) = atrest(&args(&["generate", "--output", link.to_str().unwrap()]));
    assert_eq!(code, 2, "refuses without --force: {err}");
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "old");
    let (code, _, err) = atrest(&args(&[
        "generate",
        "--output",
        link.to_str().unwrap(),
        "--force",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .contains("kind: EncryptionConfiguration"));
    assert_eq!(owner_mode(&real).2, 0o640);
}

/// Issue 9, case 8: `dump --out-dir` creates directories 0700, refuses existing
/// ones that are group/world-writable or another user's (saying how to fix it),
/// and never follows a symlink inside the tree.
#[test]
fn dump_out_dir_refuses_loose_directories_and_links() {
    const SNAP: &str = "testdata/sample/snapshot.db";
    const CONFIG: &str = "testdata/sample/encryption-config.yaml";
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let elsewhere = d.path().join("elsewhere");
    std::fs::create_dir_all(out.join("secrets/default")).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    for p in [&out, &out.join("secrets")] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    }
    std::fs::set_permissions(
        out.join("secrets/default"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("secrets/prod")).unwrap();
    let dump = || {
        atrest(&args(&[
            "dump",
            "--snapshot",
            SNAP,
            "--config",
            CONFIG,
            "--out-dir",
            out.to_str().unwrap(),
        ]))
    };
    let (code, _, err) = dump();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("chmod go-w"), "{err}");
    assert!(err.contains("does not follow symlinks"), "{err}");
    assert_eq!(
        std::fs::read_dir(out.join("secrets/default"))
            .unwrap()
            .count(),
        0,
        "wrote into a world-writable directory"
    );
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "followed a symlink"
    );
    // Namespaces that were not there are created 0700 and written.
    let f = out.join("secrets/kube-system/bootstrap-token-abcdef.yaml");
    assert_eq!(owner_mode(&f).2, 0o600);
    assert_eq!(owner_mode(&out.join("secrets/kube-system")).2, 0o700);

    // A directory of another user is refused too.
    if running_as_root() {
        std::fs::set_permissions(
            out.join("secrets/default"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        std::os::unix::fs::chown(out.join("secrets/default"), Some(1234), Some(1234)).unwrap();
        let (code, _, err) = dump();
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("owned by uid 1234"), "{err}");
        assert_eq!(
            std::fs::read_dir(out.join("secrets/default"))
                .unwrap()
                .count(),
            0
        );
    }
    // The root itself, when world-writable: nothing is written at all.
    let loose = d.path().join("loose");
    std::fs::create_dir(&loose).unwrap();
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let (code, _, err) = atrest(&args(&[
        "dump",
        "--snapshot",
        SNAP,
        "--config",
        CONFIG,
        "--out-dir",
        loose.to_str().unwrap(),
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("chmod go-w"), "{err}");
    assert_eq!(std::fs::read_dir(&loose).unwrap().count(), 0);
}

/// Issue 9, case 12: a running member's `db` may be truncated by etcd while we
/// read it; a mapped file that shrinks raises SIGBUS (the test process would
/// die). Such files are read into memory, so reading goes on from the copy; a
/// snapshot file (with its sha256 trailer) is still read as before.
#[test]
fn truncating_a_member_db_while_reading_does_not_fault() {
    use atrest::snapshot::{Snapshot, SnapshotOptions};
    let d = tempfile::tempdir().unwrap();
    let member = d.path().join("member/snap/db");
    std::fs::create_dir_all(member.parent().unwrap()).unwrap();
    std::fs::copy("testdata/bolt/member.db", &member).unwrap();
    let plain_copy = d.path().join("copy-of-db");
    std::fs::copy("testdata/bolt/member.db", &plain_copy).unwrap();
    for path in [&member, &plain_copy] {
        let snap = Snapshot::open(path, SnapshotOptions::default()).unwrap();
        // etcd shrinks the file (defrag) while we still read it.
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let view = atrest::mvcc::KeyspaceView::build(snap.bolt(), None).unwrap();
        let bytes: usize = view.entries.iter().map(|e| e.kv.value.len()).sum();
        assert!(view.entries.len() > 10 && bytes > 0, "{}", path.display());
    }
    // A snapshot file keeps working as before (mapped: nothing writes it).
    let snap = Snapshot::open(
        std::path::Path::new("testdata/sample/snapshot.db"),
        SnapshotOptions::default(),
    )
    .unwrap();
    assert!(snap.has_hash_trailer());
    assert!(!atrest::mvcc::KeyspaceView::build(snap.bolt(), None)
        .unwrap()
        .entries
        .is_empty());
}

/// `rewrite --resource` takes the names an EncryptionConfiguration uses, wildcards
/// included: `*.apps` is every resource of the apps group, `*.*` every resource.
/// Such a filter used to match no object, and the run reported success with
/// nothing looked at.
#[test]
fn rewrite_resource_wildcards_cover_what_they_name() {
    use common::fixtures::{cfg_text, keyed, K1, K2};
    let text = cfg_text(&[("'*.*'", &keyed("aescbc", &[("k2", K2), ("k1", K1)]))]);
    let old = atrest::config::EncryptionConfiguration::from_yaml_str(&cfg_text(&[(
        "'*.*'",
        &keyed("aescbc", &[("k1", K1)]),
    )]))
    .unwrap();
    let t_old = transformer(&old);
    let secret = "/registry/secrets/a/s";
    let deploy = "/registry/deployments/a/web";
    let objects = [
        (secret, proto_object("v1", "Secret", "a", "s", b"")),
        (
            deploy,
            proto_object("apps/v1", "Deployment", "a", "web", b""),
        ),
    ];
    let c = Cluster::start(1, false);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("enc.yaml");
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.display().to_string();
    rt().block_on(async {
        let e = connect(&c.options()).await;
        for (key, plain) in &objects {
            let v = t_old.write(plain, key.as_bytes()).unwrap();
            e.put(key.as_bytes(), &v).await.unwrap();
        }
    });
    let under = |key: &str| -> String {
        rt().block_on(async {
            let e = connect(&c.options()).await;
            let v = get(&e, key).await;
            String::from_utf8_lossy(&v[..21.min(v.len())]).into_owned()
        })
    };
    let rewrite = |resource: &str| {
        let (code, stdout, err) = atrest(&with(
            &c.conn_args(),
            &[
                "rewrite",
                "--config",
                &cfg,
                "--resource",
                resource,
                "-o",
                "json",
            ],
        ));
        assert_eq!(code, 0, "{stdout}{err}");
        json(&stdout)
    };
    let r = rewrite("*.apps");
    assert_eq!(r["counts"]["rewritten"], 1, "{r}");
    assert_eq!(under(deploy), "k8s:enc:aescbc:v1:k2:");
    assert_eq!(under(secret), "k8s:enc:aescbc:v1:k1:", "not in *.apps");
    let r = rewrite("*.*");
    assert_eq!(r["counts"]["rewritten"], 1, "{r}");
    assert_eq!(r["counts"]["already_current"], 1, "{r}");
    assert_eq!(under(secret), "k8s:enc:aescbc:v1:k2:");
}

/// A rewrite under an `--etcd-prefix` that is not kube-apiserver's looked at no
/// object, yet reported "every object is stored as the config writes it" and
/// exited 0: a prefix that holds nothing (a typo, the wrong etcd), and one that
/// holds the cluster but parses it wrong (`/` or an empty prefix, or `/tenant`
/// for a kube-apiserver on `/tenant/c1`). kube-apiserver always keeps its
/// namespaces under its prefix, so a prefix without any is refused: exit 2,
/// saying so, nothing written. An etcd that holds only events
/// (`--etcd-servers-overrides=/events#URL`) is rewritten with `--resource events`.
#[test]
fn rewrite_under_a_wrong_prefix_is_refused() {
    let c = Cluster::start(1, false);
    let dir = tempfile::tempdir().unwrap();
    let old = secrets_config(&[("k1", 1)]);
    let cfg = write_config(
        dir.path(),
        "enc.yaml",
        &secrets_config(&[("k2", 2), ("k1", 1)]),
    );
    let cfg = cfg.display().to_string();
    let stale = |key: &str, ns: &str, name: &str| {
        transformer(&old)
            .write(&proto_object("v1", "Secret", ns, name, b""), key.as_bytes())
            .unwrap()
    };
    let objects = [
        (
            "/registry/namespaces/a",
            proto_object("v1", "Namespace", "", "a", b""),
        ),
        (
            "/registry/secrets/a/s",
            stale("/registry/secrets/a/s", "a", "s"),
        ),
        (
            "/tenant/c1/namespaces/a",
            proto_object("v1", "Namespace", "", "a", b""),
        ),
        (
            "/tenant/c1/secrets/a/s",
            stale("/tenant/c1/secrets/a/s", "a", "s"),
        ),
        ("/ev/events/a/e", proto_object("v1", "Event", "a", "e", b"")),
    ];
    rt().block_on(async {
        let e = connect(&c.options()).await;
        for (k, v) in &objects {
            e.put(k.as_bytes(), v).await.unwrap();
        }
    });
    let rewrite = |prefix: &str, extra: &[&str]| {
        let mut a = vec!["rewrite", "--config", &cfg, "--etcd-prefix", prefix];
        a.extend_from_slice(extra);
        atrest(&with(&c.conn_args(), &a))
    };
    for prefix in ["/kubernetes.io", "", "/", "/tenant", "/ev"] {
        for extra in [&[][..], &["--dry-run"][..], &["--all-resources"][..]] {
            let (code, stdout, err) = rewrite(prefix, extra);
            // Everything under the prefix: a prefix that parses the cluster wrong
            // finds objects that are not what their keys name (exit 1).
            if extra == ["--all-resources"] && matches!(prefix, "" | "/" | "/tenant") {
                assert_eq!(code, 1, "{prefix:?} {extra:?}: {stdout}{err}");
                continue;
            }
            // The events etcd, every resource: its events were looked at.
            if extra == ["--all-resources"] && prefix == "/ev" {
                assert_eq!(code, 0, "{prefix:?} {extra:?}: {stdout}{err}");
                continue;
            }
            assert_eq!(code, 2, "{prefix:?} {extra:?}: {stdout}{err}");
            // Read as kube-apiserver reads it: `""` is `/`.
            let cleaned = atrest::etcd_key::clean_prefix(prefix);
            assert!(
                err.contains(&format!("--etcd-prefix {cleaned} in")),
                "{err}"
            );
        }
    }
    rt().block_on(async {
        let e = connect(&c.options()).await;
        for (k, v) in &objects {
            assert_eq!(&get(&e, k).await, v, "{k} was written");
        }
    });
    // The right prefixes: rewritten.
    for prefix in ["/registry", "/tenant/c1"] {
        let (code, stdout, err) = rewrite(prefix, &[]);
        assert_eq!(code, 0, "{prefix}: {stdout}{err}");
    }
    let (code, stdout, err) = rewrite("/ev", &["--resource", "events"]);
    assert_eq!(code, 0, "{stdout}{err}");
}

/// `atrest rotate prepare --config CFG --key-name key2`.
fn prepare_key2(cfg: &std::path::Path) -> (i32, String, String) {
    atrest(&args(&[
        "rotate",
        "prepare",
        "--config",
        cfg.to_str().unwrap(),
        "--key-name",
        "key2",
    ]))
}

/// An edit keeps the config's mode, and says so: it used to report "mode 0600"
/// whatever mode it kept.
#[test]
fn rotate_reports_the_mode_it_kept() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), "enc.yaml", &secrets_config(&[("key1", 1)]));
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let (code, out, err) = prepare_key2(&cfg);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(owner_mode(&cfg).2, 0o640);
    assert!(
        out.contains("(mode 0640)") && !out.contains("0600"),
        "{out}"
    );
}
