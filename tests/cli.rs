//! The `atrest` command as a user runs it: generate, validate, encrypt, decrypt,
//! including bad input, with the documented exit codes.

use assert_cmd::Command;
use base64::Engine;
use std::fs;
use std::path::{Path, PathBuf};

fn atrest() -> Command {
    Command::cargo_bin("atrest").unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn write_config(dir: &Path, name: &str, providers: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(
        &p,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n{providers}"
        ),
    )
    .unwrap();
    p
}

fn keyed(provider: &str, keys: &[(&str, Vec<u8>)]) -> String {
    let mut s = format!("      - {provider}:\n          keys:\n");
    for (n, k) in keys {
        s += &format!(
            "            - name: {n}\n              secret: {}\n",
            b64(k)
        );
    }
    s
}

const IDENTITY: &str = "      - identity: {}\n";
const OBJ: &[u8] = b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\x05hello";
const KEY: &str = "/registry/secrets/default/db";

fn run_ok(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = atrest().args(args).write_stdin(stdin).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `atrest encrypt` of `plain` at [`KEY`] with `cfg`; must succeed.
fn encrypt(cfg: &Path, plain: &[u8]) -> Vec<u8> {
    run_ok(
        &[
            "encrypt",
            "--config",
            cfg.to_str().unwrap(),
            "--etcd-key",
            KEY,
        ],
        plain,
    )
}

/// `atrest decrypt` of `stored` at `etcd_key` with `cfg`, whatever the outcome.
fn decrypt(cfg: &Path, etcd_key: &str, stored: &[u8]) -> std::process::Output {
    atrest()
        .args([
            "decrypt",
            "--config",
            cfg.to_str().unwrap(),
            "--etcd-key",
            etcd_key,
        ])
        .write_stdin(stored.to_vec())
        .output()
        .unwrap()
}

#[test]
fn encrypt_then_decrypt_every_provider_and_key_size() {
    let d = tempfile::tempdir().unwrap();
    for (provider, sizes) in [
        ("aescbc", vec![16, 24, 32]),
        ("aesgcm", vec![16, 24, 32]),
        ("secretbox", vec![32]),
    ] {
        for size in sizes {
            let cfg = write_config(
                d.path(),
                "c.yaml",
                &(keyed(provider, &[("k1", vec![7u8; size])]) + IDENTITY),
            );
            let c = cfg.to_str().unwrap();
            let stored = run_ok(&["encrypt", "--config", c, "--etcd-key", KEY], OBJ);
            let prefix = format!("k8s:enc:{provider}:v1:k1:");
            assert!(stored.starts_with(prefix.as_bytes()), "{provider}/{size}");
            let plain = run_ok(&["decrypt", "--config", c, "--etcd-key", KEY], &stored);
            assert_eq!(plain, OBJ, "{provider}/{size}");
        }
    }
}

#[test]
fn decrypt_with_wrong_key_names_keys_tried_and_exits_1() {
    let d = tempfile::tempdir().unwrap();
    let good = write_config(
        d.path(),
        "good.yaml",
        &keyed("aesgcm", &[("k1", vec![1u8; 32])]),
    );
    let bad = write_config(
        d.path(),
        "bad.yaml",
        &keyed("aesgcm", &[("k1", vec![2u8; 32])]),
    );
    let stored = encrypt(&good, OBJ);
    let out = decrypt(&bad, KEY, &stored);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("aesgcm key `k1`") && err.contains("authentication failed"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn decrypt_with_unknown_key_name_says_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let old = write_config(
        d.path(),
        "old.yaml",
        &keyed("aescbc", &[("old", vec![1u8; 32])]),
    );
    let new = write_config(
        d.path(),
        "new.yaml",
        &keyed("aescbc", &[("new", vec![2u8; 32])]),
    );
    let stored = encrypt(&old, OBJ);
    let out = decrypt(&new, KEY, &stored);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`old`") && err.contains("add the old key"),
        "{err}"
    );
}

#[test]
fn truncated_values_fail_cleanly() {
    let d = tempfile::tempdir().unwrap();
    for provider in ["aescbc", "aesgcm", "secretbox"] {
        let cfg = write_config(
            d.path(),
            "c.yaml",
            &keyed(provider, &[("k", vec![3u8; 32])]),
        );
        let c = cfg.to_str().unwrap();
        let stored = run_ok(&["encrypt", "--config", c, "--etcd-key", KEY], OBJ);
        let prefix_len = format!("k8s:enc:{provider}:v1:k:").len();
        for cut in [
            prefix_len,
            prefix_len + 5,
            prefix_len + 16,
            stored.len() - 1,
        ] {
            let out = atrest()
                .args(["decrypt", "--config", c, "--etcd-key", KEY])
                .write_stdin(&stored[..cut])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{provider} cut at {cut}");
            assert!(String::from_utf8_lossy(&out.stderr).contains("cannot decrypt"));
        }
    }
}

#[test]
fn plaintext_needs_identity() {
    let d = tempfile::tempdir().unwrap();
    let no_id = write_config(
        d.path(),
        "c.yaml",
        &keyed("aescbc", &[("k", vec![3u8; 32])]),
    );
    let out = decrypt(&no_id, KEY, OBJ);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("identity"));
    // A resource the config does not cover is read with identity.
    let plain = run_ok(
        &[
            "decrypt",
            "--config",
            no_id.to_str().unwrap(),
            "--etcd-key",
            "/registry/configmaps/a/b",
        ],
        OBJ,
    );
    assert_eq!(plain, OBJ);
}

#[test]
fn aesgcm_value_moved_to_another_key_fails() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(
        d.path(),
        "c.yaml",
        &keyed("aesgcm", &[("k", vec![3u8; 32])]),
    );
    let c = cfg.to_str().unwrap();
    let stored = run_ok(&["encrypt", "--config", c, "--etcd-key", KEY], OBJ);
    atrest()
        .args([
            "decrypt",
            "--config",
            c,
            "--etcd-key",
            "/registry/secrets/default/other",
        ])
        .write_stdin(stored)
        .assert()
        .code(1);
}

#[test]
fn resource_override_and_underivable_key() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(
        d.path(),
        "c.yaml",
        &keyed("aescbc", &[("k", vec![3u8; 32])]),
    );
    let c = cfg.to_str().unwrap();
    // Not a Kubernetes object key: needs --resource.
    atrest()
        .args(["encrypt", "--config", c, "--etcd-key", "weird"])
        .write_stdin(OBJ)
        .assert()
        .code(2);
    let stored = run_ok(
        &[
            "encrypt",
            "--config",
            c,
            "--etcd-key",
            "weird",
            "--resource",
            "secrets",
        ],
        OBJ,
    );
    assert!(stored.starts_with(b"k8s:enc:aescbc:v1:k:"));
}

#[test]
fn bad_configs_are_usage_errors_without_leaking_keys() {
    let d = tempfile::tempdir().unwrap();
    let secret = b64(&[0x41u8; 10]);
    let short = write_config(
        d.path(),
        "short.yaml",
        &format!("      - aescbc:\n          keys:\n            - name: k\n              secret: {secret}\n"),
    );
    let not_b64 = write_config(
        d.path(),
        "nb.yaml",
        "      - aescbc:\n          keys:\n            - name: k\n              secret: '!!notbase64!!'\n",
    );
    for cfg in [&short, &not_b64] {
        let out = atrest()
            .args([
                "encrypt",
                "--config",
                cfg.to_str().unwrap(),
                "--etcd-key",
                KEY,
            ])
            .write_stdin(OBJ)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", cfg.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(cfg.file_name().unwrap().to_str().unwrap()),
            "{err}"
        );
        assert!(
            !err.contains(&secret) && !err.contains("notbase64"),
            "{err}"
        );
    }
    atrest()
        .args([
            "decrypt",
            "--config",
            "/nonexistent/enc.yaml",
            "--etcd-key",
            KEY,
        ])
        .write_stdin(OBJ)
        .assert()
        .code(2);
}

#[test]
fn generate_prints_a_valid_config_with_a_fresh_key() {
    let a = run_ok(&["generate"], b"");
    let b = run_ok(&["generate"], b"");
    assert_ne!(a, b, "every run draws a new key");
    let text = String::from_utf8(a).unwrap();
    assert!(text.contains("kind: EncryptionConfiguration") && text.contains("- identity: {}"));
    let loaded = atrest::config::EncryptionConfiguration::from_slice(text.as_bytes()).unwrap();
    let providers = &loaded.config.resources[0].providers;
    assert_eq!(providers.len(), 2);
    assert_eq!(providers[0].kind_name(), "aescbc");
    assert_eq!(providers[0].keys().unwrap().keys[0].secret.len(), 32);
    assert_eq!(providers[1].kind_name(), "identity");
    assert!(loaded
        .config
        .validate()
        .iter()
        .all(|f| f.severity != atrest::config::Severity::Error));

    for p in ["aesgcm", "secretbox"] {
        let t = run_ok(
            &[
                "generate",
                "--provider",
                p,
                "--key-name",
                "k2",
                "--resources",
                "secrets,configmaps",
            ],
            b"",
        );
        let l = atrest::config::EncryptionConfiguration::from_slice(&t).unwrap();
        assert_eq!(l.config.resources[0].providers[0].kind_name(), p);
        assert_eq!(
            l.config.resources[0].resources,
            vec!["secrets", "configmaps"]
        );
    }
}

#[test]
fn generate_output_is_0600_and_not_overwritten() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("enc.yaml");
    let ps = p.to_str().unwrap();
    let out = atrest()
        .args(["generate", "--output", ps])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "the key goes to the file only");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fingerprint"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let before = fs::read(&p).unwrap();
    atrest().args(["generate", "--output", ps]).assert().code(2);
    assert_eq!(
        fs::read(&p).unwrap(),
        before,
        "refused overwrite leaves the file as it was"
    );
    atrest()
        .args(["generate", "--output", ps, "--force"])
        .assert()
        .success();
    assert_ne!(fs::read(&p).unwrap(), before);
    atrest().args(["validate", ps]).assert().success();
}

#[test]
fn validate_exit_codes_and_drift() {
    let d = tempfile::tempdir().unwrap();
    let a = write_config(
        d.path(),
        "a.yaml",
        &(keyed("aescbc", &[("k1", vec![1u8; 32])]) + IDENTITY),
    );
    let b = write_config(
        d.path(),
        "b.yaml",
        &(keyed("aescbc", &[("k1", vec![2u8; 32])]) + IDENTITY),
    );
    let bad = write_config(
        d.path(),
        "bad.yaml",
        &keyed("aescbc", &[("k1", vec![1u8; 7])]),
    );
    let (a, b, bad) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        bad.to_str().unwrap(),
    );
    atrest().args(["validate", a]).assert().success();
    atrest().args(["validate", a, a]).assert().success();
    let out = atrest().args(["validate", a, b]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("drift") && text.contains("k1"), "{text}");
    let out = atrest().args(["validate", bad]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("7"));
    atrest()
        .args(["validate", "/nonexistent.yaml"])
        .assert()
        .code(2);
    fs::write(d.path().join("garbage.yaml"), "resources: [[[").unwrap();
    atrest()
        .args(["validate", d.path().join("garbage.yaml").to_str().unwrap()])
        .assert()
        .code(1);
    let out = atrest()
        .args(["validate", "-o", "json", a, b])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"][0]["valid"], true);
    assert_eq!(
        v["files"][0]["resources"][0]["providers"][0]["keys"][0]["name"],
        "k1"
    );
    assert!(!v["drift"][0]["differences"].as_array().unwrap().is_empty());
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        !json.contains(&b64(&[1u8; 32])),
        "no key material in reports"
    );
}

#[test]
fn usage_errors_exit_2() {
    atrest().arg("frobnicate").assert().code(2);
    atrest().args(["encrypt"]).assert().code(2);
    atrest()
        .args(["generate", "--provider", "rot13"])
        .assert()
        .code(2);
}

/// Cross-check aescbc against an independent implementation (the openssl CLI):
/// openssl decrypts what atrest wrote, and atrest decrypts what openssl wrote.
#[test]
fn aescbc_interoperates_with_openssl() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("openssl not installed; skipping");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let key: Vec<u8> = (0u8..32).collect();
    let hexkey: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let cfg = write_config(d.path(), "c.yaml", &keyed("aescbc", &[("k", key)]));
    let c = cfg.to_str().unwrap();
    let plain: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let stored = run_ok(&["encrypt", "--config", c, "--etcd-key", KEY], &plain);
    let body = &stored[b"k8s:enc:aescbc:v1:k:".len()..];
    let iv: String = body[..16].iter().map(|b| format!("{b:02x}")).collect();
    fs::write(d.path().join("ct"), &body[16..]).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "enc",
            "-d",
            "-aes-256-cbc",
            "-K",
            &hexkey,
            "-iv",
            &iv,
            "-in",
        ])
        .arg(d.path().join("ct"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, plain);

    let iv = [0x42u8; 16];
    let ivhex: String = iv.iter().map(|b| format!("{b:02x}")).collect();
    fs::write(d.path().join("pt"), &plain).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["enc", "-aes-256-cbc", "-K", &hexkey, "-iv", &ivhex, "-in"])
        .arg(d.path().join("pt"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut stored = b"k8s:enc:aescbc:v1:k:".to_vec();
    stored.extend_from_slice(&iv);
    stored.extend_from_slice(&out.stdout);
    assert_eq!(
        run_ok(&["decrypt", "--config", c, "--etcd-key", KEY], &stored),
        plain
    );
}

/// Runs atrest with stdin from a regular file (read from `offset` on), as a
/// shell redirect `< file` does; large files take the mapped-input path.
fn run_file_stdin(args: &[&str], path: &Path, offset: u64) -> Vec<u8> {
    use std::io::{Seek, SeekFrom};
    let mut f = fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("atrest"))
        .args(args)
        .stdin(f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Values given as files (small ones are read, large ones mapped and decrypted
/// on several threads) round-trip, also from a stdin positioned past the start,
/// and openssl reads the large aescbc value atrest wrote.
#[test]
fn values_from_regular_files_small_and_large() {
    let d = tempfile::tempdir().unwrap();
    let key: Vec<u8> = (100u8..132).collect();
    let cfg = write_config(d.path(), "c.yaml", &keyed("aescbc", &[("k", key.clone())]));
    let c = cfg.to_str().unwrap();
    for len in [1000usize, (3 << 20) + 5] {
        let mut plain = OBJ.to_vec();
        plain.extend((0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let pt_path = d.path().join("pt");
        fs::write(&pt_path, &plain).unwrap();
        let stored = run_file_stdin(&["encrypt", "--config", c, "--etcd-key", KEY], &pt_path, 0);
        assert!(stored.starts_with(b"k8s:enc:aescbc:v1:k:"));
        // The same value after 7 junk bytes, read from offset 7.
        let st_path = d.path().join("stored");
        let mut with_junk = b"JUNK!!!".to_vec();
        with_junk.extend_from_slice(&stored);
        fs::write(&st_path, &with_junk).unwrap();
        let args = ["decrypt", "--config", c, "--etcd-key", KEY];
        assert!(run_file_stdin(&args, &st_path, 7) == plain, "len {len}");
        fs::write(&st_path, &stored).unwrap();
        assert!(run_file_stdin(&args, &st_path, 0) == plain, "len {len}");

        if std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_err()
        {
            continue;
        }
        let body = &stored[b"k8s:enc:aescbc:v1:k:".len()..];
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        fs::write(d.path().join("ct"), &body[16..]).unwrap();
        let out = std::process::Command::new("openssl")
            .args([
                "enc",
                "-d",
                "-aes-256-cbc",
                "-K",
                &hex(&key),
                "-iv",
                &hex(&body[..16]),
                "-in",
            ])
            .arg(d.path().join("ct"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == plain, "openssl disagrees at len {len}");
    }
}

/// A `--resource` that names nothing kube-apiserver stores matched no object and
/// the rewrite reported success: a groupless name of another group's resource
/// (`resourceclaims`), one that is no core resource (`secret`, a typo of
/// `secrets`), or a name with capitals. Each is refused before connecting, naming
/// the resource to use or the one it resembles.
#[test]
fn rewrite_refuses_resource_names_kube_apiserver_does_not_store() {
    for (given, hint) in [
        ("secrets,resourceclaims", "resourceclaims.resource.k8s.io"),
        ("secret", "`secrets`"),
        ("widgets", "widgets.example.com"),
        ("Deployments.apps", "`deployments.apps`"),
    ] {
        let out = atrest()
            .args([
                "rewrite",
                "--endpoints",
                "127.0.0.1:1",
                "--config",
                "testdata/sample/encryption-config.yaml",
                "--resource",
                given,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{given}");
        let err = String::from_utf8_lossy(&out.stderr);
        let bad = given.rsplit(',').next().unwrap_or(given);
        assert!(err.contains(bad) && err.contains(hint), "{err}");
        assert!(
            !err.contains("unreachable"),
            "checked before connecting: {err}"
        );
    }
}
