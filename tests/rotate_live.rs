//! The whole rotation procedure against a real etcd (plaintext → aescbc → new key →
//! aesgcm) with the real `atrest rewrite`, live scans and one snapshot so that both
//! sources stay covered, checking after every step that every object stays readable;
//! and the retire proof on a live etcd. tests/run.sh runs these with etcd 3.4 and
//! again with etcd 3.5.

use assert_cmd::Command;
use atrest::config::EncryptionConfiguration;
use atrest::transformer::Transformer;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

mod common;

use common::fixtures::{
    backups, cfg, cfg_text, field, keyed, mode, object, sealed, secrets_in, set_mode, shape,
    stored_secret, ID, K1, K2, K3,
};
use common::{cat, run, start_etcd, Cluster, Out};

fn atrest() -> Command {
    Command::cargo_bin("atrest").unwrap()
}

fn run_stdin(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let o = atrest().args(args).write_stdin(stdin).output().unwrap();
    assert!(
        o.status.success(),
        "atrest {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// Run a command `atrest rotate status` suggested, word for word (the test's paths
/// have no spaces); it must succeed.
fn run_suggested(next: &serde_json::Value) -> Out {
    let line = next
        .as_str()
        .unwrap_or_else(|| panic!("no next command: {next}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[0], "atrest", "{line}");
    let o = run(&words[1..]);
    assert_eq!(o.code, Some(0), "{line}: {}{}", o.stdout, o.stderr);
    o
}

/// `atrest audit` of the live etcd with `config`: etcd key → "provider/key_name status".
fn audit(etcd: &Cluster, config: &Path) -> std::collections::BTreeMap<String, String> {
    let conn = etcd.conn_args();
    let o = run(&cat(
        &["audit", "--config", config.to_str().unwrap(), "-o", "json"],
        &conn,
    ));
    let v: serde_json::Value =
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.stderr));
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|obj| {
            let pk = match obj["key_name"].as_str() {
                Some(k) => format!("{}/{k}", obj["provider"].as_str().unwrap()),
                None => obj["provider"].as_str().unwrap().to_string(),
            };
            (
                obj["key"].as_str().unwrap().to_string(),
                format!("{pk} {}", obj["status"].as_str().unwrap()),
            )
        })
        .collect()
}

const SECRETS: &[(&str, &str)] = &[
    ("default", "db-password"),
    ("default", "api-token"),
    ("prod", "tls"),
    ("kube-system", "bootstrap"),
];
const CONFIGMAP: &str = "/registry/configmaps/default/settings";

/// Every Secret must audit as `want` with `config`; the ConfigMap (not covered by
/// the config) stays plaintext and current.
fn expect(etcd: &Cluster, config: &Path, want: &str) {
    let got = audit(etcd, config);
    for (ns, name) in SECRETS {
        let key = format!("/registry/secrets/{ns}/{name}");
        assert_eq!(
            got.get(&key).map(String::as_str),
            Some(want),
            "{key} with {}",
            config.display()
        );
    }
    assert_eq!(
        got.get(CONFIGMAP).map(String::as_str),
        Some("identity current")
    );
    assert_eq!(got.len(), SECRETS.len() + 1);
}

/// The JSON status of `config` against `source` (`--snapshot FILE` or the connection).
fn status(config: &Path, source: &[String]) -> serde_json::Value {
    let o = run(&cat(
        &[
            "rotate",
            "status",
            "--config",
            config.to_str().unwrap(),
            "-o",
            "json",
        ],
        source,
    ));
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    serde_json::from_str(&o.stdout).unwrap()
}

/// One step of the procedure: run it on the live config, keep a copy of the result.
struct Steps {
    dir: PathBuf,
    config: PathBuf,
    n: usize,
}

impl Steps {
    fn cfg(&self) -> &str {
        self.config.to_str().unwrap()
    }

    /// Run an editing command (must succeed) and return (previous, current) config copies.
    fn edit(&mut self, args: &[&str]) -> (PathBuf, PathBuf) {
        let o = run(args);
        assert_eq!(o.code, Some(0), "{args:?}: {}{}", o.stdout, o.stderr);
        self.edited()
    }

    /// Record an edit made by a command already run.
    fn edited(&mut self) -> (PathBuf, PathBuf) {
        let prev = self.dir.join(format!("step{}.yaml", self.n));
        self.n += 1;
        let cur = self.dir.join(format!("step{}.yaml", self.n));
        fs::copy(&self.config, &cur).unwrap();
        (prev, cur)
    }

    /// Run a command that must be refused, with `advice` in its message, leaving the file as it was.
    fn refused(&self, args: &[&str], advice: &str) {
        let before = fs::read(&self.config).unwrap();
        let o = run(args);
        assert_eq!(o.code, Some(1), "{args:?} must be refused: {}", o.stdout);
        assert!(o.stderr.contains(advice), "{args:?}: {}", o.stderr);
        assert_eq!(
            fs::read(&self.config).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }
}

#[test]
fn rotation_end_to_end_on_real_etcd() {
    let d = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(true) else {
        return;
    };
    let conn = etcd.conn_args();
    let live = conn.join(" ");
    let retire_live = etcd.retire_conn_args().join(" ");
    let originals: Vec<(String, Vec<u8>)> = SECRETS
        .iter()
        .map(|(ns, name)| {
            (
                format!("/registry/secrets/{ns}/{name}"),
                stored_secret(ns, name, &[("value", format!("{ns}/{name}").as_bytes())]),
            )
        })
        .collect();
    for (k, v) in &originals {
        etcd.put(k, v);
    }
    let cm_type = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
    let cm_meta = [field(1, b"settings"), field(3, b"default")].concat();
    etcd.put(
        CONFIGMAP,
        &[
            b"k8s\0".to_vec(),
            field(1, &cm_type),
            field(2, &field(1, &cm_meta)),
        ]
        .concat(),
    );

    // Encryption not enabled: the config writes identity for Secrets.
    let config = d.path().join("encryption-config.yaml");
    fs::write(&config, cfg_text(&[("secrets", ID)])).unwrap();
    set_mode(&config, 0o600);
    fs::copy(&config, d.path().join("step0.yaml")).unwrap();
    let mut s = Steps {
        dir: d.path().to_path_buf(),
        config: config.clone(),
        n: 0,
    };
    let c = s.cfg().to_string();
    let c = c.as_str();
    // The one snapshot: status and retire read it as well as the live etcd.
    let s0 = d.path().join("snap0.db");
    etcd.snapshot(&s0);
    let s0s = s0.to_str().unwrap();
    let snap0 = vec!["--snapshot".to_string(), s0s.to_string()];
    expect(&etcd, &config, "identity current");
    for source in [&snap0, &conn] {
        let st = status(&config, source);
        assert_eq!(st["stage"], "no-encryption");
        assert_eq!(st["plaintext_objects"], 4);
        assert_eq!(
            st["next"],
            format!("atrest rotate prepare --config {c} --provider aescbc")
        );
    }
    s.refused(
        &["rotate", "promote", "--config", c],
        "atrest rotate prepare",
    );
    s.refused(
        &cat(
            &["rotate", "retire", "--config", c, "--key", "identity"],
            &snap0,
        ),
        "identity writes",
    );

    // Enable aescbc: prepare, promote, rewrite, retire identity.
    let (prev, cur) = s.edit(&[
        "rotate",
        "prepare",
        "--config",
        c,
        "--provider",
        "aescbc",
        "--key-name",
        "key1",
    ]);
    expect(&etcd, &cur, "identity current");
    expect(&etcd, &prev, "identity current");
    assert_eq!(
        status(&config, &conn)["next"],
        format!("atrest rotate promote --config {c}")
    );
    s.refused(&["rotate", "prepare", "--config", c], "is already prepared");

    let (prev, cur) = s.edit(&["rotate", "promote", "--config", c]);
    expect(&etcd, &cur, "identity plaintext");
    expect(&etcd, &prev, "identity current");
    let st = status(&config, &conn);
    assert_eq!(st["stage"], "clean");
    // The suggested rewrite carries the connection of the status run.
    assert_eq!(
        st["next"],
        format!("atrest rewrite {live} --config {c} --resource secrets")
    );
    // The snapshot from before the rewrite still has plaintext Secrets: refused,
    // and so is the same proof against the live etcd.
    s.refused(
        &cat(
            &["rotate", "retire", "--config", c, "--key", "identity"],
            &snap0,
        ),
        "/registry/secrets/default/api-token",
    );
    s.refused(
        &cat(
            &["rotate", "retire", "--config", c, "--key", "identity"],
            &etcd.retire_conn_args(),
        ),
        "/registry/secrets/default/api-token",
    );

    run_suggested(&st["next"]);
    expect(&etcd, &cur, "aescbc/key1 current");
    expect(&etcd, &prev, "aescbc/key1 stale");
    let st = status(&config, &conn);
    assert_eq!(
        st["next"],
        format!("atrest rotate retire --config {c} --key identity {retire_live}")
    );
    run_suggested(&st["next"]);
    let (prev, cur) = s.edited();
    expect(&etcd, &cur, "aescbc/key1 current");
    expect(&etcd, &prev, "aescbc/key1 current");
    let st = status(&config, &conn);
    assert_eq!(st["stage"], "clean");
    assert_eq!(st["keys"][0]["objects"], 4);
    assert_eq!(st["source"]["flags"], live);
    // A backup of the cluster encrypted with key1, before the next rotation; and the
    // config that reads it.
    let cfg_key1 = cur.clone();
    let snap1 = d.path().join("backup-key1.db");
    etcd.snapshot(&snap1);
    let stored_key1 = etcd.get_prefix("/registry/secrets/");
    let archive = d.path().join("key-archive.yaml");
    let ar = archive.to_str().unwrap();

    // Rotate key1 → key2.
    let (prev, cur) = s.edit(&["rotate", "prepare", "--config", c, "--key-name", "key2"]);
    expect(&etcd, &cur, "aescbc/key1 current");
    expect(&etcd, &prev, "aescbc/key1 current");
    assert_eq!(status(&config, &conn)["stage"], "prepared");
    s.refused(
        &cat(
            &[
                "rotate",
                "retire",
                "--config",
                c,
                "--key",
                "key1",
                "--no-archive",
            ],
            &etcd.retire_conn_args(),
        ),
        "is the write key",
    );

    let (prev, cur) = s.edit(&["rotate", "promote", "--config", c]);
    expect(&etcd, &cur, "aescbc/key1 stale");
    expect(&etcd, &prev, "aescbc/key1 current");
    s.refused(&["rotate", "promote", "--config", c], "already writes");
    s.refused(
        &cat(
            &[
                "rotate",
                "retire",
                "--config",
                c,
                "--key",
                "key1",
                "--no-archive",
            ],
            &etcd.retire_conn_args(),
        ),
        "4 object(s) of secrets still use aescbc key `key1`",
    );

    let st = status(&config, &conn);
    assert_eq!(
        st["next"],
        format!("atrest rewrite {live} --config {c} --resource secrets")
    );
    run_suggested(&st["next"]);
    expect(&etcd, &cur, "aescbc/key2 current");
    expect(&etcd, &prev, "aescbc/key2 stale");
    // Without --archive, status suggests a placeholder and retire refuses to guess.
    let st = status(&config, &conn);
    assert_eq!(
        st["next"],
        format!("atrest rotate retire --config {c} --key key1 --archive FILE {retire_live}")
    );
    assert!(st["advice"]
        .as_str()
        .unwrap()
        .contains("not on the control-plane nodes"));
    let o = run(&cat(
        &["rotate", "retire", "--config", c, "--key", "key1"],
        &etcd.retire_conn_args(),
    ));
    assert_eq!(o.code, Some(2), "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("--archive FILE") && o.stderr.contains("--no-archive"),
        "{}",
        o.stderr
    );
    let with_archive: Vec<String> = cat(&["--archive", ar], &conn)
        .into_iter()
        .map(String::from)
        .collect();
    let st = status(&config, &with_archive);
    assert_eq!(
        st["next"],
        format!("atrest rotate retire --config {c} --key key1 --archive {ar} {retire_live}")
    );
    let o = run_suggested(&st["next"]);
    assert!(
        o.stdout.contains("archived aescbc key `key1`") && o.stdout.contains(ar),
        "{}",
        o.stdout
    );
    assert_eq!(mode(&archive), 0o600);
    let (prev, cur) = s.edited();
    expect(&etcd, &cur, "aescbc/key2 current");
    expect(&etcd, &prev, "aescbc/key2 current");

    // Switch provider: aescbc → aesgcm, with the default timestamped key name.
    let (prev, cur) = s.edit(&["rotate", "prepare", "--config", c, "--provider", "aesgcm"]);
    expect(&etcd, &cur, "aescbc/key2 current");
    expect(&etcd, &prev, "aescbc/key2 current");
    let st = status(&config, &conn);
    assert_eq!(st["stage"], "prepared");
    let new_key = st["resources"][0]["prepared"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(new_key.starts_with("key-20"), "{new_key}");

    let (prev, cur) = s.edit(&["rotate", "promote", "--config", c]);
    expect(&etcd, &cur, "aescbc/key2 stale");
    expect(&etcd, &prev, "aescbc/key2 current");

    let o = run(&cat(
        &["rewrite", "--config", c, "--resource", "secrets"],
        &conn,
    ));
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    let gcm = format!("aesgcm/{new_key}");
    expect(&etcd, &cur, &format!("{gcm} current"));
    expect(&etcd, &prev, &format!("{gcm} stale"));
    let owner = fs::metadata(&archive).map(|m| (m.uid(), m.gid())).unwrap();
    let (prev, cur) = s.edit(&cat(
        &[
            "rotate",
            "retire",
            "--config",
            c,
            "--key",
            "key2",
            "--archive",
            ar,
        ],
        &etcd.retire_conn_args(),
    ));
    assert_eq!(mode(&archive), 0o600, "the archive stays private");
    assert_eq!(
        fs::metadata(&archive).map(|m| (m.uid(), m.gid())).unwrap(),
        owner,
        "the archive keeps its owner"
    );
    expect(&etcd, &cur, &format!("{gcm} current"));
    expect(&etcd, &prev, &format!("{gcm} current"));
    let final_cfg = EncryptionConfiguration::load(&config).unwrap().config;
    assert_eq!(shape(&final_cfg, 0), [format!("aesgcm:{new_key}")]);
    let st = status(&config, &conn);
    assert_eq!(st["stage"], "clean");
    assert_eq!(st["keys"][0]["objects"], 4);
    assert_eq!(st["next"], format!("atrest rotate prepare --config {c}"));

    // The data survived every step byte for byte.
    for (key, value) in etcd.get_prefix("/registry/secrets/") {
        let plain = run_stdin(&["decrypt", "--config", c, "--etcd-key", &key], &value);
        let want = originals.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
        assert_eq!(Some(&plain), want, "{key}");
    }
    // Every edit left a private backup.
    let baks = backups(d.path());
    assert_eq!(baks.len(), 9, "three edits in each of three rotations");
    assert!(baks.iter().all(|b| mode(b) == 0o600));
    assert_eq!(mode(&config), 0o600);

    old_backup_is_recovered_with_the_archive(
        d.path(),
        &config,
        &cfg_key1,
        &snap1,
        &archive,
        &stored_key1,
        &originals,
    );
}

/// The backup taken under key1, after key1 and key2 were retired into `archive`:
/// the final config alone cannot read it; with the archive, `dump` recovers exactly
/// what the config of that time did, `audit` says which file read each object,
/// `decrypt` reads the stored values, and `keys find` names what the backup needs.
fn old_backup_is_recovered_with_the_archive(
    dir: &Path,
    config: &Path,
    cfg_key1: &Path,
    snap1: &Path,
    archive: &Path,
    stored_key1: &[(String, Vec<u8>)],
    originals: &[(String, Vec<u8>)],
) {
    let (c, c1, sn, ar) = (
        config.to_str().unwrap(),
        cfg_key1.to_str().unwrap(),
        snap1.to_str().unwrap(),
        archive.to_str().unwrap(),
    );
    let text = fs::read_to_string(archive).unwrap();
    assert!(
        text.starts_with("apiVersion: atrest.dev/v1\nkind: KeyArchive\n"),
        "{text}"
    );

    let want = run(&["dump", "--snapshot", sn, "--config", c1, "-o", "json"]);
    assert_eq!(want.code, Some(0), "{}", want.stderr);
    let v: serde_json::Value = serde_json::from_str(&want.stdout).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), SECRETS.len());

    let o = run(&["dump", "--snapshot", sn, "--config", c, "-o", "json"]);
    assert_eq!(
        o.code,
        Some(1),
        "the final config alone cannot read the backup"
    );
    assert!(o.stderr.contains("aescbc key `key1`"), "{}", o.stderr);

    let got = run(&[
        "dump",
        "--snapshot",
        sn,
        "--config",
        c,
        "--archive",
        ar,
        "-o",
        "json",
    ]);
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    assert_eq!(got.stdout, want.stdout, "recovered exactly");
    assert!(
        got.stderr
            .contains("4 object(s) read with aescbc key `key1`"),
        "{}",
        got.stderr
    );
    assert!(got.stderr.contains(ar), "{}", got.stderr);

    // The same through --config given twice: the old config's keys read it.
    let two = run(&[
        "dump",
        "--snapshot",
        sn,
        "--config",
        c,
        "--config",
        c1,
        "-o",
        "json",
    ]);
    assert_eq!(two.code, Some(0), "{}", two.stderr);
    assert_eq!(two.stdout, want.stdout);

    // Audit: stale (never current), with the file and key that read each object.
    let o = run(&[
        "audit",
        "--snapshot",
        sn,
        "--config",
        c,
        "--archive",
        ar,
        "-o",
        "json",
    ]);
    assert_eq!(o.code, Some(1), "stale objects need action");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let secrets: Vec<&serde_json::Value> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["resource"] == "secrets")
        .collect();
    assert_eq!(secrets.len(), SECRETS.len());
    for obj in &secrets {
        assert_eq!(obj["status"], "stale", "{obj}");
        assert_eq!(obj["read_with"], ar, "{obj}");
        let detail = obj["detail"].as_str().unwrap();
        assert!(
            detail.contains("key `key1`") && detail.contains(ar),
            "{detail}"
        );
    }
    let cm = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["resource"] == "configmaps")
        .unwrap();
    assert!(
        cm.get("read_with").is_none(),
        "read_with only where an extra key read: {cm}"
    );

    // rotate status with the archive: still at risk for this config, file named.
    let o = run(&[
        "rotate",
        "status",
        "--config",
        c,
        "--archive",
        ar,
        "--snapshot",
        sn,
        "-o",
        "json",
    ]);
    assert_eq!(o.code, Some(1), "{}", o.stdout);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["at_risk_total"], 4);
    assert_eq!(v["at_risk"][0]["read_with"], ar);

    // decrypt: the stored values of that time.
    for (key, value) in stored_key1 {
        let plain = run_stdin(
            &["decrypt", "--config", c, "--archive", ar, "--etcd-key", key],
            value,
        );
        let want = originals.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        assert_eq!(Some(&plain), want, "{key}");
    }

    // keys find: what the backup needs, and whether the files at hand have it.
    let o = run(&["keys", "find", "--snapshot", sn, "--config", c]);
    assert_eq!(o.code, Some(1), "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("aescbc/key1"), "{}", o.stderr);
    assert!(o.stdout.contains("missing"), "{}", o.stdout);
    let o = run(&[
        "keys",
        "find",
        "--snapshot",
        sn,
        "--config",
        c,
        "--archive",
        ar,
        "-o",
        "json",
    ]);
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let k1 = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "key1")
        .unwrap();
    assert_eq!(
        (
            k1["provider"].as_str(),
            k1["objects"].as_u64(),
            k1["state"].as_str()
        ),
        (Some("aescbc"), Some(4), Some("covered"))
    );
    assert_eq!(k1["read_with"][0], ar);

    // keys list: both retired keys, their resources and time, never a secret.
    let o = run(&["keys", "list", "--config", c, "--archive", ar, "-o", "json"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let names: Vec<&str> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(&names[1..], ["key1", "key2"], "{v}");
    let archived = &v["keys"][1];
    assert_eq!(archived["resources"][0], "secrets");
    assert!(
        archived["retired_at"].as_str().unwrap().starts_with("20"),
        "{archived}"
    );
    let table = run(&["keys", "list", "--config", c, "--archive", ar]);
    for secret in secrets_in(&fs::read_to_string(cfg_key1).unwrap()) {
        assert!(!o.stdout.contains(&secret) && !table.stdout.contains(&secret));
        assert!(text.contains(&secret), "the archive holds key1");
    }

    // validate: a loose archive is a warning, and retire refuses to add to it.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(archive, fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&["validate", "--archive", ar]);
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("mode 0644") && o.stdout.contains("chmod 600"),
        "{}",
        o.stdout
    );
    fs::set_permissions(archive, fs::Permissions::from_mode(0o600)).unwrap();
    let o = run(&["validate", "--archive", ar]);
    assert!(!o.stdout.contains("warning"), "{}", o.stdout);
    let _ = dir;
}

/// `rotate retire --endpoints` proves from the live etcd, read in pages at one
/// revision: refused (exit 1, file untouched, objects listed) while an object uses
/// the key, done once `atrest rewrite` has moved them.
#[test]
fn retire_on_live_etcd_refuses_until_rewritten() {
    let d = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(false) else {
        return;
    };
    let rt = common::rt();
    let old = common::secrets_config(&[("key1", 1)]);
    rt.block_on(async {
        let e = common::connect(&etcd.options()).await;
        common::populate(&e, &common::transformer(&old), 20).await;
    });
    let config = common::write_config(
        d.path(),
        "enc.yaml",
        &common::secrets_config(&[("key2", 2), ("key1", 1)]),
    );
    let c = config.to_str().unwrap();
    let eps = etcd.endpoints();
    let before = fs::read(&config).unwrap();
    let retire = [
        "rotate",
        "retire",
        "--config",
        c,
        "--key",
        "key1",
        "--no-archive",
        "--page-size",
        "3",
    ];

    let o = run(&cat(&retire, &etcd.conn_args()));
    assert_eq!(o.code, Some(1), "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr
            .contains("10 object(s) of secrets still use aescbc key `key1`"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(&common::secret_key(1)),
        "objects listed: {}",
        o.stderr
    );
    assert_eq!(fs::read(&config).unwrap(), before, "file untouched");
    assert!(backups(d.path()).is_empty());
    // One source only.
    let both = run(&cat(
        &cat(&retire, &etcd.conn_args()),
        &["--snapshot".to_string(), "x.db".to_string()],
    ));
    assert_eq!(both.code, Some(2), "{}", both.stderr);

    let o = run(&cat(
        &["rewrite", "--config", c, "--resource", "secrets"],
        &etcd.conn_args(),
    ));
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);

    // As audit: without --endpoints, ETCDCTL_ENDPOINTS names the etcd.
    let o = atrest()
        .args(retire)
        .env("ETCDCTL_ENDPOINTS", &eps)
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        err.contains(&format!("scan of {eps} at revision")) && err.contains("20 objects"),
        "{err}"
    );
    let after = EncryptionConfiguration::load(&config).unwrap().config;
    assert_eq!(shape(&after, 0), ["aescbc:key2", "identity"]);
    assert_eq!(backups(d.path()).len(), 1);
    assert_eq!(fs::read(&backups(d.path())[0]).unwrap(), before);
}

/// A `resource.k8s.io` ResourceClaim as kube-apiserver stores it.
fn stored_claim(ns: &str, name: &str) -> Vec<u8> {
    let meta = [field(1, name.as_bytes()), field(3, ns.as_bytes())].concat();
    let type_meta = [field(1, b"resource.k8s.io/v1"), field(2, b"ResourceClaim")].concat();
    [
        b"k8s\0".to_vec(),
        field(1, &type_meta),
        field(2, &field(1, &meta)),
    ]
    .concat()
}

/// Issue 9, cases 1–4, through the CLI against a real etcd: `rotate retire` removed a
/// key that live objects still needed (an object under another rule, a key name with
/// `:`, a built-in resource stored without its group, a scan that saw nothing). Each
/// case lives under its own `--etcd-prefix` in one etcd; every refusal exits 1 and
/// leaves the file as it was.
#[test]
fn retire_proof_cannot_be_fooled_on_real_etcd() {
    let d = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(false) else {
        return;
    };
    let live = etcd.retire_conn_args();
    let write = |name: &str, items: &[(&str, &str)]| -> PathBuf {
        let p = d.path().join(name);
        fs::write(&p, cfg_text(items)).unwrap();
        p
    };
    let at = |prefix: &str, source: &[String]| -> Vec<String> {
        let mut v = source.to_vec();
        v.extend(["--etcd-prefix".to_string(), prefix.to_string()]);
        v
    };
    let retire = |config: &Path, key: &str, source: &[String]| {
        run(&cat(
            &[
                "rotate",
                "retire",
                "--config",
                config.to_str().unwrap(),
                "--key",
                key,
                "--no-archive",
            ],
            source,
        ))
    };
    let refused = |config: &Path, key: &str, source: &[String], advice: &str| {
        let before = fs::read(config).unwrap();
        let o = retire(config, key, source);
        assert_eq!(
            o.code,
            Some(1),
            "retire --key {key} {source:?} must be refused: {}{}",
            o.stdout,
            o.stderr
        );
        assert!(o.stderr.contains(advice), "{source:?}: {}", o.stderr);
        assert_eq!(fs::read(config).unwrap(), before, "file changed");
    };
    let put_sealed = |key: &str, provider: &str, name: &str, secret: &str| {
        etcd.put(key, &sealed(provider, name, secret, key));
    };

    // 1. A ConfigMap under k1, whose own rule has only k2.
    let c1 = write(
        "c1.yaml",
        &[
            ("secrets", &keyed("aescbc", &[("k2", K2), ("k1", K1)])),
            ("configmaps", &keyed("aescbc", &[("k2", K2)])),
        ],
    );
    put_sealed("/c1/secrets/a/s", "aescbc", "k2", K2);
    put_sealed("/c1/configmaps/a/c2", "aescbc", "k2", K2);
    put_sealed("/c1/configmaps/a/c", "aescbc", "k1", K1);
    refused(&c1, "k1", &at("/c1", &live), "/c1/configmaps/a/c");

    // 2. An object under `old:1`.
    let c2 = write(
        "c2.yaml",
        &[("secrets", &keyed("aescbc", &[("k2", K2), ("old:1", K1)]))],
    );
    put_sealed("/c2/secrets/a/s", "aescbc", "k2", K2);
    put_sealed("/c2/secrets/a/o", "aescbc", "old:1", K1);
    refused(&c2, "old:1", &at("/c2", &live), "/c2/secrets/a/o");

    // 3. ResourceClaims are stored at /registry/resourceclaims, without their group;
    // `rewrite --resource` finds them, and then the key goes.
    let c3 = write(
        "c3.yaml",
        &[(
            "resourceclaims.resource.k8s.io",
            &keyed("aescbc", &[("k2", K2), ("k1", K1)]),
        )],
    );
    let claims = ["/c3/resourceclaims/a/claim1", "/c3/resourceclaims/a/claim2"];
    for (k, (name, secret)) in claims.iter().zip([("k1", K1), ("k2", K2)]) {
        let c = cfg(&[("secrets", &keyed("aescbc", &[(name, secret)]))]);
        let plain = stored_claim("a", k.rsplit('/').next().unwrap());
        let v = Transformer::from_providers(&c.resources[0].providers)
            .unwrap()
            .write(&plain, k.as_bytes())
            .unwrap();
        etcd.put(k, &v);
    }
    refused(
        &c3,
        "k1",
        &at("/c3", &live),
        "1 object(s) of resourceclaims.resource.k8s.io still use aescbc key `k1`",
    );
    let o = run(&cat(
        &[
            "rewrite",
            "--config",
            c3.to_str().unwrap(),
            "--resource",
            "resourceclaims.resource.k8s.io",
            "--etcd-prefix",
            "/c3",
        ],
        &etcd.conn_args(),
    ));
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    let o = retire(&c3, "k1", &at("/c3", &live));
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    let after = EncryptionConfiguration::load(&c3).unwrap().config;
    assert_eq!(shape(&after, 0), ["aescbc:k2"]);

    // 4. Scans that prove nothing. The config: key2 writes, key1 is old.
    let promoted = [(
        "secrets",
        format!("{}{ID}", keyed("aescbc", &[("key2", K2), ("key1", K1)])),
    )];
    let promoted: Vec<(&str, &str)> = promoted.iter().map(|(r, p)| (*r, p.as_str())).collect();
    let c4 = write("c4.yaml", &promoted);
    // A wrong --etcd-prefix sees nothing at all.
    put_sealed("/c4/secrets/a/s1", "aescbc", "key1", K1);
    refused(
        &c4,
        "key1",
        &at("/kubernetes.io", &live),
        "saw no object of secrets (0 object(s) in all)",
    );
    // A snapshot older than key2: plaintext then, key1 and key2 now.
    etcd.put("/c5/secrets/a/p1", &object("/c5/secrets/a/p1"));
    let old = d.path().join("old.db");
    etcd.snapshot(&old);
    put_sealed("/c5/secrets/a/p1", "aescbc", "key1", K1);
    put_sealed("/c5/secrets/a/p2", "aescbc", "key2", K2);
    let old_src = vec!["--snapshot".to_string(), old.display().to_string()];
    refused(
        &c4,
        "key1",
        &at("/c5", &old_src),
        "saw no object written with aescbc key `key2`",
    );
    refused(&c4, "key1", &at("/c5", &live), "/c5/secrets/a/p1");
    // Another cluster's data: its Secrets are under an aesgcm key this config lacks.
    put_sealed("/c6/secrets/a/x", "aesgcm", "theirs", K3);
    refused(&c4, "key1", &at("/c6", &live), "/c6/secrets/a/x");
    // Good data, but a snapshot whose hash is not verified proves nothing.
    put_sealed("/c7/secrets/a/s", "aescbc", "key2", K2);
    let now = d.path().join("now.db");
    etcd.snapshot(&now);
    let now_src = vec!["--snapshot".to_string(), now.display().to_string()];
    let mut dry = at("/c7", &now_src);
    dry.push("--dry-run".into());
    let o = retire(&c4, "key1", &dry);
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    let mut skipped = at("/c7", &now_src);
    skipped.push("--skip-hash-check".into());
    refused(&c4, "key1", &skipped, "not checked");
    let bytes = fs::read(&now).unwrap();
    let cut = d.path().join("member-db");
    fs::write(&cut, &bytes[..bytes.len() - 32]).unwrap();
    let cut_src = vec!["--snapshot".to_string(), cut.display().to_string()];
    refused(&c4, "key1", &at("/c7", &cut_src), "no sha256 trailer");

    // The issue's own example: the sample snapshot under a prefix it does not use.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sample");
    let sc = d.path().join("sample.yaml");
    fs::copy(sample.join("encryption-config.yaml"), &sc).unwrap();
    let src = vec![
        "--snapshot".to_string(),
        sample.join("snapshot.db").display().to_string(),
        "--etcd-prefix".to_string(),
        "/kubernetes.io".to_string(),
    ];
    refused(&sc, "key1", &src, "saw no object of secrets");
    assert!(backups(d.path()).len() == 1, "only case 3 wrote");
}

/// The library's scan (`rotation::UsageScan`) of a live etcd, read at one revision
/// in pages smaller than the keyspace, and of a snapshot of it: both count every
/// object under the key that wrote it, report progress for every record, and agree.
#[test]
fn usage_scan_of_live_etcd_and_of_its_snapshot_agree() {
    use atrest::keyring::ExtraKeys;
    use atrest::rotation::UsageScan;
    use atrest::snapshot::{Snapshot, SnapshotOptions};
    use atrest::source::SnapshotSource;
    use atrest::transformer::Transformers;
    use std::sync::atomic::{AtomicU64, Ordering};

    let Some(etcd) = start_etcd(false) else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    // 5 Secrets under key1, 3 under key2, 2 in plaintext; one ConfigMap.
    for i in 0..10 {
        let key = format!("/registry/secrets/ns/s{i}");
        let value = match i {
            0..5 => sealed("aescbc", "key1", K1, &key),
            5..8 => sealed("aescbc", "key2", K2, &key),
            _ => object(&key),
        };
        etcd.put(&key, &value);
    }
    etcd.put(CONFIGMAP, b"{}");
    let c = cfg(&[(
        "secrets",
        &(keyed("aescbc", &[("key2", K2), ("key1", K1)]) + ID),
    )]);
    let ts = Transformers::new(&c).unwrap();
    let extra = ExtraKeys::default();
    let scan = UsageScan::new(&ts, &extra, "/registry");

    let live_seen = AtomicU64::new(0);
    let live = common::rt().block_on(async {
        let e = common::connect(&etcd.options()).await;
        let revision = e.revision().await.unwrap();
        scan.live(&e, revision, 3, &|n| {
            live_seen.fetch_add(n, Ordering::Relaxed);
        })
        .await
        .unwrap()
    });
    let snap = d.path().join("s.db");
    etcd.snapshot(&snap);
    let file = Snapshot::open(&snap, SnapshotOptions::default()).unwrap();
    let source = SnapshotSource::open(file.bolt(), None).unwrap();
    let snap_seen = AtomicU64::new(0);
    let from_snapshot = scan.snapshot(&source, &|n| {
        snap_seen.fetch_add(n, Ordering::Relaxed);
    });

    for (what, u, seen) in [
        ("live", &live, &live_seen),
        ("snapshot", &from_snapshot, &snap_seen),
    ] {
        assert_eq!(u.summary.objects, 11, "{what}");
        assert_eq!(seen.load(Ordering::Relaxed), 11, "{what} progress");
        assert_eq!(u.objects_under("aescbc", "key1"), 5, "{what}");
        assert_eq!(u.objects_under("aescbc", "key2"), 3, "{what}");
        assert_eq!(u.at_risk_total, 0, "{what}");
    }
    assert_eq!(live.summary, from_snapshot.summary);
    assert_eq!(live.under_key, from_snapshot.under_key);
    assert_eq!(live.examples, from_snapshot.examples);
}

/// Turning encryption off: `identity` writes and `key1` still reads. Retiring
/// `key1` after a scan that saw nothing (a wrong `--etcd-prefix`) used to succeed,
/// leaving every Secret still under `key1` unreadable. It is refused like any
/// other scan that did not see the data; with the right prefix, after every
/// Secret was rewritten in plaintext, `key1` goes.
#[test]
fn retire_after_decryption_refuses_a_scan_that_saw_nothing() {
    let d = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(false) else {
        return;
    };
    let config = d.path().join("enc.yaml");
    let text = cfg_text(&[(
        "secrets",
        &format!("{ID}{}", keyed("aescbc", &[("key1", K1)])),
    )]);
    fs::write(&config, &text).unwrap();
    let key = "/registry/secrets/a/s";
    etcd.put(key, &sealed("aescbc", "key1", K1, key));
    let retire = |prefix: &str| {
        let mut a = vec![
            "rotate",
            "retire",
            "--config",
            config.to_str().unwrap(),
            "--key",
            "key1",
            "--no-archive",
            "--etcd-prefix",
            prefix,
        ];
        let live = etcd.retire_conn_args();
        a.extend(live.iter().map(String::as_str));
        run(&a)
    };
    let o = retire("/kubernetes.io");
    assert_eq!(o.code, Some(1), "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("saw no object of secrets"),
        "{}",
        o.stderr
    );
    assert_eq!(fs::read_to_string(&config).unwrap(), text, "file changed");
    // The right prefix, before the rewrite: key1 is in use.
    let o = retire("/registry");
    assert_eq!(o.code, Some(1), "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains(key), "{}", o.stderr);
    let o = run(&cat(
        &["rewrite", "--config", config.to_str().unwrap()],
        &etcd.conn_args(),
    ));
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    let o = retire("/registry");
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    let after = EncryptionConfiguration::load(&config).unwrap().config;
    assert_eq!(shape(&after, 0), ["identity"]);
}
