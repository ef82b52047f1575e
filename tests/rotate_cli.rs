//! `atrest rotate` on config files: the edits keep the file's form, owner, group and
//! mode, back it up and never print key material; unsafe steps are refused with the
//! documented exit codes.

use atrest::config::EncryptionConfiguration;
use atrest::rotation;
use std::fs;
use std::time::{Duration, SystemTime};

mod common;

use common::fixtures::{
    backups, cfg_text, keyed, mode, secrets_in, set_mode, shape, ID, K1, K2, K3,
};
use common::run;

#[test]
fn cli_edits_keep_the_form_back_up_and_never_print_keys() {
    let d = tempfile::tempdir().unwrap();
    // YAML
    let y = d.path().join("enc.yaml");
    fs::write(
        &y,
        cfg_text(&[(
            "secrets",
            &format!("{}{ID}", keyed("aescbc", &[("key1", K1)])),
        )]),
    )
    .unwrap();
    // Edits keep the file's mode (and owner and group), and give them to the backup.
    set_mode(&y, 0o640);
    let before = fs::read(&y).unwrap();
    let o = run(&[
        "rotate",
        "prepare",
        "--config",
        y.to_str().unwrap(),
        "--key-name",
        "key2",
        "--dry-run",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stdout.contains("dry run") && o.stdout.contains("key2"),
        "{}",
        o.stdout
    );
    assert_eq!(fs::read(&y).unwrap(), before, "dry run writes nothing");
    assert!(backups(d.path()).is_empty());

    let o = run(&[
        "rotate",
        "prepare",
        "--config",
        y.to_str().unwrap(),
        "--key-name",
        "key2",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let after = fs::read_to_string(&y).unwrap();
    assert!(after.starts_with("apiVersion:"), "still YAML: {after}");
    assert_eq!(mode(&y), 0o640);
    let baks = backups(d.path());
    assert_eq!(baks.len(), 1);
    assert_eq!(
        fs::read(&baks[0]).unwrap(),
        before,
        "the backup is the previous file"
    );
    assert_eq!(mode(&baks[0]), 0o640);
    assert!(
        baks[0].to_string_lossy().contains("enc.yaml.20"),
        "{baks:?}"
    );
    for s in secrets_in(&after) {
        assert!(
            !o.stdout.contains(&s) && !o.stderr.contains(&s),
            "key material printed"
        );
    }
    // A second edit in the same second gets its own backup.
    let o = run(&["rotate", "promote", "--config", y.to_str().unwrap()]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(backups(d.path()).len(), 2);
    let s = run(&[
        "rotate",
        "status",
        "--config",
        y.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(v["stage"], "writing");
    assert_eq!(v["keys"][0]["name"], "key2");
    assert_eq!(v["keys"][0]["role"], "writer");
    for sec in secrets_in(&fs::read_to_string(&y).unwrap()) {
        assert!(!s.stdout.contains(&sec));
    }

    // JSON stays JSON.
    let j = d.path().join("enc.json");
    fs::write(
        &j,
        r#"{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{"resources":["secrets"],"providers":[{"identity":{}}]}]}"#,
    )
    .unwrap();
    set_mode(&j, 0o600);
    let o = run(&[
        "rotate",
        "prepare",
        "--config",
        j.to_str().unwrap(),
        "--provider",
        "secretbox",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let text = fs::read_to_string(&j).unwrap();
    assert!(text.trim_start().starts_with('{'), "{text}");
    let c = EncryptionConfiguration::from_slice(text.as_bytes()).unwrap();
    assert_eq!(c.format, atrest::config::ConfigFormat::Json);
    assert_eq!(shape(&c.config, 0)[0], "identity");
    assert!(shape(&c.config, 0)[1].starts_with("secretbox:key-"));
    assert_eq!(mode(&j), 0o600);
}

#[test]
fn cli_refuses_unsafe_steps() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("enc.yaml");
    fs::write(&p, cfg_text(&[("secrets", ID)])).unwrap();
    let ps = p.to_str().unwrap();
    let before = fs::read(&p).unwrap();

    let o = run(&["rotate", "promote", "--config", ps]);
    assert_eq!(o.code, Some(1));
    assert!(
        o.stderr.contains("run `atrest rotate prepare"),
        "{}",
        o.stderr
    );

    let o = run(&["rotate", "retire", "--config", ps, "--key", "identity"]);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("--snapshot FILE"), "{}", o.stderr);
    assert_eq!(fs::read(&p).unwrap(), before);
    assert!(backups(d.path()).is_empty());

    // An invalid file is not edited.
    let bad = d.path().join("bad.yaml");
    fs::write(
        &bad,
        cfg_text(&[("secrets", &keyed("aescbc", &[("key1", "AAAA")]))]),
    )
    .unwrap();
    let bad_before = fs::read(&bad).unwrap();
    let o = run(&["rotate", "prepare", "--config", bad.to_str().unwrap()]);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("atrest validate"), "{}", o.stderr);
    assert_eq!(fs::read(&bad).unwrap(), bad_before);

    // Copies that differ: no next step.
    let q = d.path().join("enc2.yaml");
    fs::write(
        &q,
        cfg_text(&[(
            "secrets",
            &format!("{ID}{}", keyed("aescbc", &[("key1", K1)])),
        )]),
    )
    .unwrap();
    let o = run(&[
        "rotate",
        "status",
        "--config",
        ps,
        "--config",
        q.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(o.code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(v["next"].is_null(), "{v}");
    assert!(!v["drift"].as_array().unwrap().is_empty());
    assert!(
        v["advice"].as_str().unwrap().contains("atrest validate"),
        "{v}"
    );
    let o = run(&["rotate", "status", "--config", ps, "--config", ps]);
    assert_eq!(o.code, Some(0));
    assert!(
        o.stdout.contains("next: atrest rotate prepare"),
        "{}",
        o.stdout
    );
}

/// Issue 9, case 10: two `rotate prepare` runs in the same second (another provider,
/// another item) must not pick the same key name.
#[test]
fn prepared_key_names_never_collide() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("enc.yaml");
    // Names for this second and the next few are taken already, so the run below
    // meets a collision whatever the clock says.
    let t = SystemTime::now();
    let taken: Vec<String> = (0..6)
        .map(|s| rotation::default_key_name(t + Duration::from_secs(s)))
        .collect();
    let taken_keys: Vec<(&str, &str)> = taken.iter().map(|n| (n.as_str(), K3)).collect();
    fs::write(
        &p,
        cfg_text(&[
            ("secrets", &keyed("aescbc", &[("key1", K1)])),
            ("configmaps", &keyed("aesgcm", &[("cm1", K2)])),
            (
                "leases.coordination.k8s.io",
                &keyed("secretbox", &taken_keys),
            ),
        ]),
    )
    .unwrap();
    let ps = p.to_str().unwrap();
    let o = run(&["rotate", "prepare", "--config", ps, "--resource", "secrets"]);
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    let o = run(&[
        "rotate",
        "prepare",
        "--config",
        ps,
        "--resource",
        "configmaps",
        "--provider",
        "aesgcm",
    ]);
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    let c = EncryptionConfiguration::load(&p).unwrap().config;
    let new_secret = shape(&c, 0)[0].clone();
    let new_cm = shape(&c, 1)[0].clone();
    let a = new_secret.rsplit(',').next().unwrap().to_string();
    let b = new_cm.rsplit(',').next().unwrap().to_string();
    assert!(a.starts_with("key-") && b.starts_with("key-"), "{a} {b}");
    assert_ne!(a, b);
    for n in [&a, &b] {
        assert!(!taken.contains(n), "{n} was taken");
        // Still ordered as newer than the key it replaces.
        assert_eq!(rotation::newer(n, "key1"), Some(true), "{n}");
    }
    assert_eq!(rotation::newer(&b, &a), Some(true), "{a} then {b}");
}
