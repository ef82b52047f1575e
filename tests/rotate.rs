//! Key rotation: the config edits of `atrest::rotation`, the `atrest rotate` command on
//! files, and the whole procedure against a real etcd (plaintext → aescbc → new key →
//! aesgcm) with the real `atrest rewrite`, checking after every step that every object
//! stays readable.

use assert_cmd::Command;
use atrest::audit::{AuditOptions, Auditor, StoredObject};
use atrest::config::{EncryptionConfiguration, ProviderConfig};
use atrest::key::SecretKey;
use atrest::rotation::{
    self, KeyUsage, KeyedProvider, PrepareOptions, RetireTarget, RotationError, Scope, Stage,
};
use atrest::transformer::{Transformer, Transformers};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;

const K1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const K2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
const K3: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_764_400_000) // 2025-11-29T07:06:40Z
}

fn cfg_text(items: &[(&str, &str)]) -> String {
    let mut s =
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
            .to_string();
    for (res, providers) in items {
        s += &format!("  - resources: [{res}]\n    providers:\n{providers}");
    }
    s
}

fn cfg(items: &[(&str, &str)]) -> EncryptionConfiguration {
    EncryptionConfiguration::from_yaml_str(&cfg_text(items)).unwrap()
}

fn keyed(provider: &str, keys: &[(&str, &str)]) -> String {
    let mut s = format!("      - {provider}:\n          keys:\n");
    for (n, k) in keys {
        s += &format!("            - name: {n}\n              secret: {k}\n");
    }
    s
}

const ID: &str = "      - identity: {}\n";

/// Provider kinds and key names of item `i`, in order: `["aescbc:key2,key1", "identity"]`.
fn shape(c: &EncryptionConfiguration, i: usize) -> Vec<String> {
    c.resources[i]
        .providers
        .iter()
        .map(|p| match p.keys() {
            Some(ks) => format!(
                "{}:{}",
                p.kind_name(),
                ks.keys
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => p.kind_name().to_string(),
        })
        .collect()
}

fn opts(provider: Option<KeyedProvider>, name: Option<&str>) -> PrepareOptions {
    PrepareOptions {
        provider,
        key_name: name.map(str::to_string),
        scope: Scope::default(),
    }
}

fn fresh() -> SecretKey {
    SecretKey::new(vec![7u8; 32])
}

fn stage_of(c: &EncryptionConfiguration) -> Stage {
    rotation::overall(&rotation::stage(c, &Scope::default()).unwrap()).unwrap()
}

#[test]
fn prepare_adds_a_reader_of_the_write_provider() {
    let c = cfg(&[(
        "secrets",
        &format!("{}{ID}", keyed("aescbc", &[("key1", K1)])),
    )]);
    assert_eq!(stage_of(&c), Stage::Clean);
    let (n, change) =
        rotation::prepare_with_key(&c, &opts(None, Some("key2")), now(), fresh()).unwrap();
    assert_eq!(shape(&n, 0), ["aescbc:key1,key2", "identity"]);
    assert_eq!(stage_of(&n), Stage::Prepared);
    let text = change.to_string();
    assert!(text.contains("`key2`"), "{text}");
    assert!(text.contains(&fresh().fingerprint().to_string()), "{text}");
    assert!(text.contains("does not write yet"), "{text}");
    assert!(!text.contains(fresh().to_base64().as_str()), "{text}");
    // The same provider asked for explicitly is the same edit.
    let (m, _) = rotation::prepare_with_key(
        &c,
        &opts(Some(KeyedProvider::AesCbc), Some("key2")),
        now(),
        fresh(),
    )
    .unwrap();
    assert_eq!(m, n);
    // The real thing draws a key from the OS RNG.
    let (r, _) = rotation::prepare(&c, &opts(None, None), now()).unwrap();
    assert_eq!(
        shape(&r, 0),
        ["aescbc:key1,key-20251129T070640Z", "identity"]
    );
    let ProviderConfig::AesCbc(ks) = &r.resources[0].providers[0] else {
        panic!()
    };
    assert_eq!(ks.keys[1].secret.len(), 32);
}

#[test]
fn prepare_with_another_provider_adds_it_second() {
    let c = cfg(&[(
        "secrets",
        &format!("{}{ID}", keyed("aescbc", &[("key1", K1)])),
    )]);
    let (n, change) =
        rotation::prepare_with_key(&c, &opts(Some(KeyedProvider::AesGcm), None), now(), fresh())
            .unwrap();
    assert_eq!(
        shape(&n, 0),
        ["aescbc:key1", "aesgcm:key-20251129T070640Z", "identity"]
    );
    assert_eq!(stage_of(&n), Stage::Prepared);
    assert!(
        change.to_string().contains("right after aescbc"),
        "{change}"
    );
    let (p, _) = rotation::promote(&n, None, &Scope::default()).unwrap();
    assert_eq!(
        shape(&p, 0),
        ["aesgcm:key-20251129T070640Z", "aescbc:key1", "identity"]
    );
    assert_eq!(stage_of(&p), Stage::Writing);
}

#[test]
fn enabling_encryption_from_identity_only() {
    let c = cfg(&[("secrets,configmaps", ID)]);
    assert_eq!(stage_of(&c), Stage::NoEncryption);
    let (n, _) = rotation::prepare_with_key(&c, &opts(None, Some("key1")), now(), fresh()).unwrap();
    assert_eq!(shape(&n, 0), ["identity", "aescbc:key1"]);
    assert_eq!(stage_of(&n), Stage::Prepared);
    let (p, change) = rotation::promote(&n, None, &Scope::default()).unwrap();
    assert_eq!(shape(&p, 0), ["aescbc:key1", "identity"]);
    assert!(change.to_string().contains("before: identity"), "{change}");
    assert_eq!(stage_of(&p), Stage::Clean);
    // Secretbox on request.
    let (s, _) = rotation::prepare_with_key(
        &c,
        &opts(Some(KeyedProvider::Secretbox), Some("box1")),
        now(),
        fresh(),
    )
    .unwrap();
    assert_eq!(shape(&s, 0), ["identity", "secretbox:box1"]);
}

#[test]
fn deliberately_plaintext_items_are_left_alone() {
    let c = cfg(&[
        (
            "secrets",
            &format!("{}{ID}", keyed("aescbc", &[("key1", K1)])),
        ),
        ("events", ID),
    ]);
    let (n, change) =
        rotation::prepare_with_key(&c, &opts(None, Some("key2")), now(), fresh()).unwrap();
    assert_eq!(shape(&n, 1), ["identity"]);
    assert_eq!(change.edits.len(), 1);
    // --resource narrows the edit, and must name an item.
    let two = cfg(&[
        ("secrets", &keyed("aescbc", &[("key1", K1)])),
        ("configmaps", &keyed("aescbc", &[("cm1", K3)])),
    ]);
    let scoped = PrepareOptions {
        scope: Scope {
            resources: vec!["configmaps".into()],
        },
        ..opts(None, Some("key2"))
    };
    let (n, _) = rotation::prepare_with_key(&two, &scoped, now(), fresh()).unwrap();
    assert_eq!(shape(&n, 0), ["aescbc:key1"]);
    assert_eq!(shape(&n, 1), ["aescbc:cm1,key2"]);
    let none = PrepareOptions {
        scope: Scope {
            resources: vec!["pods".into()],
        },
        ..opts(None, None)
    };
    let e = rotation::prepare_with_key(&two, &none, now(), fresh()).unwrap_err();
    assert!(
        matches!(e, RotationError::EmptyScope { .. }) && e.is_usage(),
        "{e}"
    );
}

#[test]
fn prepare_refusals_say_what_to_do() {
    let prepared = cfg(&[("secrets", &keyed("aescbc", &[("key1", K1), ("key2", K2)]))]);
    let e = rotation::prepare_with_key(&prepared, &opts(None, Some("key3")), now(), fresh())
        .unwrap_err();
    assert!(matches!(e, RotationError::AlreadyPrepared { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("atrest rotate promote") && msg.contains("retire --key key2"),
        "{msg}"
    );

    let promoted = cfg(&[("secrets", &keyed("aescbc", &[("key2", K2), ("key1", K1)]))]);
    let e = rotation::prepare_with_key(&promoted, &opts(None, Some("key3")), now(), fresh())
        .unwrap_err();
    assert!(matches!(e, RotationError::OldKeysPresent { .. }), "{e}");
    assert!(e.to_string().contains("rewrite"), "{e}");

    let unclear = cfg(&[("secrets", &keyed("aescbc", &[("blue", K2), ("green", K1)]))]);
    assert_eq!(stage_of(&unclear), Stage::Ambiguous);
    let e = rotation::prepare_with_key(&unclear, &opts(None, Some("key3")), now(), fresh())
        .unwrap_err();
    assert!(e.to_string().contains("--key NAME"), "{e}");

    let one = cfg(&[(
        "secrets",
        &format!("{}{ID}", keyed("aescbc", &[("key1", K1)])),
    )]);
    let e =
        rotation::prepare_with_key(&one, &opts(None, Some("key1")), now(), fresh()).unwrap_err();
    assert!(matches!(e, RotationError::NameTaken { .. }), "{e}");
    assert!(e.to_string().contains("choose another --key-name"), "{e}");
    let e = rotation::prepare_with_key(&one, &opts(None, Some("a:b")), now(), fresh()).unwrap_err();
    assert!(
        matches!(e, RotationError::BadName { .. }) && e.is_usage(),
        "{e}"
    );

    let kms = EncryptionConfiguration::from_yaml_str(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - kms: {apiVersion: v2, name: vault, endpoint: unix:///run/kms.sock}\n      - identity: {}\n",
    )
    .unwrap();
    assert_eq!(stage_of(&kms), Stage::Kms);
    let e = rotation::prepare_with_key(&kms, &opts(None, None), now(), fresh()).unwrap_err();
    assert!(e.to_string().contains("rotated in the KMS plugin"), "{e}");
}

#[test]
fn promote_refusals_and_explicit_key() {
    let one = cfg(&[(
        "secrets",
        &format!("{}{ID}", keyed("aescbc", &[("key1", K1)])),
    )]);
    let e = rotation::promote(&one, None, &Scope::default()).unwrap_err();
    assert!(matches!(e, RotationError::NothingPrepared { .. }), "{e}");
    assert!(e.to_string().contains("atrest rotate prepare"), "{e}");
    let plain = cfg(&[("secrets", ID)]);
    assert!(matches!(
        rotation::promote(&plain, None, &Scope::default()),
        Err(RotationError::NothingPrepared { .. })
    ));

    // Promoting twice would make the old key write again: refused.
    let prepared = cfg(&[("secrets", &keyed("aescbc", &[("key1", K1), ("key2", K2)]))]);
    let (p, _) = rotation::promote(&prepared, None, &Scope::default()).unwrap();
    assert_eq!(shape(&p, 0), ["aescbc:key2,key1"]);
    let e = rotation::promote(&p, None, &Scope::default()).unwrap_err();
    assert!(matches!(e, RotationError::AlreadyPromoted { .. }), "{e}");
    assert!(e.to_string().contains("rewrite"), "{e}");
    // ...unless asked for by name.
    let (back, _) = rotation::promote(&p, Some("key1"), &Scope::default()).unwrap();
    assert_eq!(shape(&back, 0), ["aescbc:key1,key2"]);
    assert!(matches!(
        rotation::promote(&p, Some("key2"), &Scope::default()),
        Err(RotationError::AlreadyWriter { .. })
    ));
    assert!(matches!(
        rotation::promote(&p, Some("nope"), &Scope::default()),
        Err(RotationError::KeyNotFound { .. })
    ));

    // Names that do not show their age need the name.
    let unclear = cfg(&[("secrets", &keyed("aescbc", &[("blue", K2), ("green", K1)]))]);
    assert!(matches!(
        rotation::promote(&unclear, None, &Scope::default()),
        Err(RotationError::Ambiguous { .. })
    ));
    let (g, _) = rotation::promote(&unclear, Some("green"), &Scope::default()).unwrap();
    assert_eq!(shape(&g, 0), ["aescbc:green,blue"]);
}

/// A stored object for etcd key `key` (`/registry/<resource>/<ns>/<name>`), as
/// kube-apiserver writes it in protobuf.
fn object(key: &str) -> Vec<u8> {
    let parts: Vec<&str> = key.rsplitn(3, '/').collect();
    stored_secret(parts[1], parts[0], &[("v", b"x")])
}

/// `object(key)` sealed with `provider` key `name` (secret `secret`).
fn sealed(provider: &str, name: &str, secret: &str, key: &str) -> Vec<u8> {
    let c = cfg(&[("secrets", &keyed(provider, &[(name, secret)]))]);
    Transformer::from_providers(&c.resources[0].providers)
        .unwrap()
        .write(&object(key), key.as_bytes())
        .unwrap()
}

/// The scan of `objects` (etcd key, stored value) with config `c`.
fn usage(c: &EncryptionConfiguration, objects: &[(&str, Vec<u8>)]) -> KeyUsage {
    let ts = Transformers::new(c).unwrap();
    let auditor = Auditor::new(Some(&ts), AuditOptions::default());
    KeyUsage::scan(
        &auditor,
        &ts,
        objects.iter().map(|(k, v)| StoredObject {
            key: k.as_bytes(),
            value: v,
            mod_revision: 1,
        }),
    )
}

const S1: &str = "/registry/secrets/a/s1";
const S2: &str = "/registry/secrets/a/s2";

#[test]
fn retire_needs_proof() {
    let c = cfg(&[
        (
            "secrets",
            &format!("{}{ID}", keyed("aescbc", &[("key2", K2), ("key1", K1)])),
        ),
        ("configmaps", ID),
    ]);
    let key1: RetireTarget = "key1".parse().unwrap();
    let scope = Scope::default();
    let s2 = (S2, sealed("aescbc", "key2", K2, S2));

    // Objects under key1: refused, with the objects listed.
    let u = usage(&c, &[(S1, sealed("aescbc", "key1", K1, S1)), s2.clone()]);
    let e = rotation::retire(&c, &key1, &u, &scope).unwrap_err();
    assert!(matches!(e, RotationError::InUse { count: 1, .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(S1) && msg.contains("rewrite"), "{msg}");

    // Unreadable objects: the proof is incomplete.
    let x = "/registry/secrets/a/x";
    let u = usage(&c, &[s2.clone(), (x, sealed("aescbc", "key0", K3, x))]);
    let e = rotation::retire(&c, &key1, &u, &scope).unwrap_err();
    assert!(matches!(e, RotationError::ProofIncomplete { .. }), "{e}");
    assert!(e.to_string().contains(x), "{e}");

    // The writer is never retired.
    let e =
        rotation::retire(&c, &"key2".parse().unwrap(), &KeyUsage::default(), &scope).unwrap_err();
    assert!(matches!(e, RotationError::RetireWriter { .. }), "{e}");
    assert!(e.to_string().contains("prepare and promote"), "{e}");
    assert!(matches!(
        rotation::retire(&c, &"key9".parse().unwrap(), &KeyUsage::default(), &scope),
        Err(RotationError::KeyNotFound { .. })
    ));

    // Plaintext ConfigMaps (not encrypted here) do not block; key1 goes.
    let cm = "/registry/configmaps/a/c";
    let u = usage(&c, &[s2.clone(), (cm, object(cm))]);
    let (n, change) = rotation::retire(&c, &key1, &u, &scope).unwrap();
    assert_eq!(shape(&n, 0), ["aescbc:key2", "identity"]);
    assert!(
        change.to_string().contains("removed aescbc key `key1`"),
        "{change}"
    );

    // identity: refused while a plaintext Secret remains, then removed.
    let p = "/registry/secrets/a/p";
    let u = usage(&n, &[s2.clone(), (p, object(p))]);
    let e = rotation::retire(&n, &RetireTarget::Identity, &u, &scope).unwrap_err();
    assert!(e.to_string().contains(p), "{e}");
    let u = usage(&n, std::slice::from_ref(&s2));
    let (m, change) = rotation::retire(&n, &RetireTarget::Identity, &u, &scope).unwrap();
    assert_eq!(shape(&m, 0), ["aescbc:key2"]);
    assert_eq!(
        shape(&m, 1),
        ["identity"],
        "the plaintext item keeps identity"
    );
    assert!(change.to_string().contains("removed identity"), "{change}");

    // identity that writes: encryption is not enabled yet.
    let plain = cfg(&[(
        "secrets",
        &format!("{ID}{}", keyed("aescbc", &[("key1", K1)])),
    )]);
    let e = rotation::retire(
        &plain,
        &RetireTarget::Identity,
        &KeyUsage::default(),
        &scope,
    )
    .unwrap_err();
    assert!(matches!(e, RotationError::IdentityWrites { .. }), "{e}");
}

/// Issue 9, cases 1, 2 and 4, on the library: an object under the key in another
/// rule, a key name with `:`, and scans that saw nothing.
#[test]
fn retire_proof_cannot_be_fooled() {
    let scope = Scope::default();
    let s2 = (S2, sealed("aescbc", "k2", K2, S2));
    // 1. configmaps has its own rule without k1; a ConfigMap under k1 blocks.
    let c = cfg(&[
        ("secrets", &keyed("aescbc", &[("k2", K2), ("k1", K1)])),
        ("configmaps", &keyed("aescbc", &[("k2", K2)])),
    ]);
    let cm = "/registry/configmaps/a/c";
    let cm2 = "/registry/configmaps/a/c2";
    let u = usage(
        &c,
        &[
            s2.clone(),
            (cm2, sealed("aescbc", "k2", K2, cm2)),
            (cm, sealed("aescbc", "k1", K1, cm)),
        ],
    );
    let e = rotation::retire(&c, &"k1".parse().unwrap(), &u, &scope).unwrap_err();
    assert!(e.to_string().contains(cm), "{e}");
    // ... and so does a readable one, even when --resource narrows the edit.
    let both = cfg(&[
        ("secrets", &keyed("aescbc", &[("k2", K2), ("k1", K1)])),
        ("configmaps", &keyed("aescbc", &[("k2", K2), ("k1", K1)])),
    ]);
    let u = usage(&both, &[s2.clone(), (cm, sealed("aescbc", "k1", K1, cm))]);
    let narrowed = Scope {
        resources: vec!["secrets".into()],
    };
    let e = rotation::retire(&both, &"k1".parse().unwrap(), &u, &narrowed).unwrap_err();
    assert!(matches!(e, RotationError::InUse { count: 1, .. }), "{e}");
    assert!(e.to_string().contains("configmaps"), "{e}");

    // 2. A key named `old:1` is not `old`.
    let c = cfg(&[(
        "secrets",
        &keyed("aescbc", &[("k2", K2), ("old", K3), ("old:1", K1)]),
    )]);
    let u = usage(&c, &[s2.clone(), (S1, sealed("aescbc", "old:1", K1, S1))]);
    for name in ["old:1", "old"] {
        let e = rotation::retire(&c, &name.parse().unwrap(), &u, &scope).unwrap_err();
        assert!(
            matches!(e, RotationError::InUse { count: 1, .. }),
            "{name}: {e}"
        );
    }
    let st = rotation::status(&c, &scope, Some(&u)).unwrap();
    let old1 = st.keys.iter().find(|k| k.key.name == "old:1").unwrap();
    assert_eq!(old1.objects, Some(1));

    // 4. An empty scan, or one without the write key's objects, proves nothing.
    let c = cfg(&[(
        "secrets",
        &format!("{}{ID}", keyed("aescbc", &[("key2", K2), ("key1", K1)])),
    )]);
    let e =
        rotation::retire(&c, &"key1".parse().unwrap(), &KeyUsage::default(), &scope).unwrap_err();
    assert!(matches!(e, RotationError::ScanMissesResource { .. }), "{e}");
    assert!(e.to_string().contains("--etcd-prefix"), "{e}");
    let u = usage(&c, &[(S1, object(S1))]);
    let e = rotation::retire(&c, &"key1".parse().unwrap(), &u, &scope).unwrap_err();
    assert!(matches!(e, RotationError::ScanMissesWriter { .. }), "{e}");
    assert!(e.to_string().contains("`key2`"), "{e}");
    let e = rotation::retire(&c, &RetireTarget::Identity, &u, &scope).unwrap_err();
    assert!(e.to_string().contains(S1), "plaintext still in use: {e}");
    // A wildcard rule needs an object of some resource it governs.
    let w = cfg(&[("'*.apps'", &keyed("aescbc", &[("key2", K2), ("key1", K1)]))]);
    let e = rotation::retire(
        &w,
        &"key1".parse().unwrap(),
        &usage(&w, &[(S2, object(S2))]),
        &scope,
    )
    .unwrap_err();
    assert!(e.to_string().contains("*.apps"), "{e}");
    let d = "/registry/deployments/a/web";
    let (n, _) = rotation::retire(
        &w,
        &"key1".parse().unwrap(),
        &usage(&w, &[(d, sealed("aescbc", "key2", K2, d))]),
        &scope,
    )
    .unwrap();
    assert_eq!(shape(&n, 0), ["aescbc:key2"]);
    // A prepared key that never wrote goes while identity still writes.
    let prepared = cfg(&[(
        "secrets",
        &format!("{ID}{}", keyed("aescbc", &[("key1", K1)])),
    )]);
    let (n, _) = rotation::retire(
        &prepared,
        &"key1".parse().unwrap(),
        &usage(&prepared, &[(S1, object(S1))]),
        &scope,
    )
    .unwrap();
    assert_eq!(shape(&n, 0), ["identity"]);

    // Only a snapshot whose hash verified is a proof.
    use atrest::snapshot::HashCheck;
    let snap = Path::new("s.db");
    assert!(rotation::check_snapshot(snap, HashCheck::Verified).is_ok());
    for h in [HashCheck::NoTrailer, HashCheck::Skipped] {
        let e = rotation::check_snapshot(snap, h).unwrap_err();
        assert!(e.to_string().contains("etcdctl snapshot save"), "{e}");
    }
}

#[test]
fn retiring_the_last_key_removes_its_provider() {
    let c = cfg(&[(
        "secrets",
        &format!(
            "{}{}",
            keyed("aesgcm", &[("key-20251129T070640Z", K3)]),
            keyed("aescbc", &[("key2", K2)])
        ),
    )]);
    // Every Secret is under the new aesgcm key.
    let u = usage(
        &c,
        &[(S1, sealed("aesgcm", "key-20251129T070640Z", K3, S1))],
    );
    let (n, change) =
        rotation::retire(&c, &"aescbc/key2".parse().unwrap(), &u, &Scope::default()).unwrap();
    assert_eq!(shape(&n, 0), ["aesgcm:key-20251129T070640Z"]);
    assert!(
        change.to_string().contains("and its provider aescbc"),
        "{change}"
    );
    // The same name in two providers needs the provider.
    let twice = cfg(&[(
        "secrets",
        &format!(
            "{}{}",
            keyed("aesgcm", &[("k", K3)]),
            keyed("aescbc", &[("k", K2)])
        ),
    )]);
    let e = rotation::retire(
        &twice,
        &"k".parse().unwrap(),
        &KeyUsage::default(),
        &Scope::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("--key PROVIDER/k"), "{e}");
}

#[test]
fn status_suggests_the_next_step() {
    let scope = Scope::default();
    let next = |c: &EncryptionConfiguration, u: Option<&KeyUsage>| {
        rotation::status(c, &scope, u).unwrap().next
    };
    use rotation::NextStep as N;
    assert_eq!(
        next(&cfg(&[("secrets", ID)]), None),
        N::Prepare { enable: true }
    );
    let prepared = cfg(&[("secrets", &keyed("aescbc", &[("key1", K1), ("key2", K2)]))]);
    assert_eq!(next(&prepared, None), N::Promote);
    let promoted = cfg(&[(
        "secrets",
        &format!("{}{ID}", keyed("aescbc", &[("key2", K2), ("key1", K1)])),
    )]);
    assert_eq!(next(&promoted, None), N::Scan);
    let stale = usage(&promoted, &[(S1, sealed("aescbc", "key1", K1, S1))]);
    assert_eq!(next(&promoted, Some(&stale)), N::Rewrite { objects: 1 });
    let done = usage(&promoted, &[(S1, sealed("aescbc", "key2", K2, S1))]);
    assert_eq!(
        next(&promoted, Some(&done)),
        N::Retire {
            target: "key1".into()
        }
    );
    let r = rotation::status(&promoted, &scope, Some(&done)).unwrap();
    let counts: Vec<(String, bool, Option<u64>)> = r
        .keys
        .iter()
        .map(|k| (k.key.name.clone(), k.writer, k.objects))
        .collect();
    assert_eq!(
        counts,
        [
            ("key2".into(), true, Some(1)),
            ("key1".into(), false, Some(0))
        ]
    );
    let clean = cfg(&[(
        "secrets",
        &format!("{}{ID}", keyed("aescbc", &[("key2", K2)])),
    )]);
    assert_eq!(
        next(&clean, Some(&done)),
        N::Retire {
            target: "identity".into()
        }
    );
    assert_eq!(
        next(
            &cfg(&[("secrets", &keyed("aescbc", &[("key2", K2)]))]),
            None
        ),
        N::Done
    );
    let x = "/registry/secrets/a/x";
    let risky = usage(&clean, &[(x, sealed("aescbc", "key0", K3, x))]);
    assert_eq!(next(&clean, Some(&risky)), N::FixAtRisk);
    // A scan that saw nothing (wrong prefix, another cluster) shows no object under
    // key1 either, but retire would refuse it: status does not suggest the retire.
    let empty = usage(&promoted, &[]);
    match next(&promoted, Some(&empty)) {
        N::ProofIncomplete { target, why } => {
            assert_eq!(target, "key1");
            assert!(why.contains("secrets"), "{why}");
        }
        other => panic!("expected ProofIncomplete, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// The command on files.

fn atrest() -> Command {
    Command::cargo_bin("atrest").unwrap()
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run atrest without the ETCDCTL_* variables of the caller's environment.
fn run(args: &[&str]) -> Out {
    let mut cmd = atrest();
    for k in [
        "ETCDCTL_ENDPOINTS",
        "ETCDCTL_CACERT",
        "ETCDCTL_CERT",
        "ETCDCTL_KEY",
        "ETCDCTL_USER",
        "ETCDCTL_PASSWORD",
    ] {
        cmd.env_remove(k);
    }
    let o = cmd.args(args).output().unwrap();
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    v.sort();
    v
}

/// Every base64 secret in a config file.
fn secrets_in(text: &str) -> Vec<String> {
    let c = EncryptionConfiguration::from_slice(text.as_bytes()).unwrap();
    let mut v = Vec::new();
    for item in &c.config.resources {
        for p in &item.providers {
            if let Some(ks) = p.keys() {
                v.extend(ks.keys.iter().map(|k| k.secret.to_base64().to_string()));
            }
        }
    }
    v
}

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
// ---------------------------------------------------------------------------------
// The whole procedure against a real etcd: live scans, the real `atrest rewrite`,
// and one snapshot so that both sources stay covered.

/// A throw-away single-member etcd on loopback (stopped on drop), with TLS and client
/// certificates unless `plain`; etcdctl and atrest reach it with the same flags.
struct Etcd {
    cluster: common::Cluster,
}

fn have(cmd: &std::ffi::OsStr, version_arg: &str) -> bool {
    std::process::Command::new(cmd)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Etcd {
    /// `None` when etcd is not installed (set ATREST_REQUIRE_ETCD=1 to fail instead).
    fn start(tls: bool) -> Option<Etcd> {
        if !have(&common::etcd_bin(), "--version") || !have(&common::etcdctl_bin(), "version") {
            assert!(
                std::env::var_os("ATREST_REQUIRE_ETCD").is_none(),
                "etcd and etcdctl are required (apt-get install etcd-server etcd-client, or set ATREST_ETCD_BIN and ATREST_ETCDCTL_BIN)"
            );
            eprintln!("skipping: etcd/etcdctl not installed");
            return None;
        }
        Some(Etcd {
            cluster: common::Cluster::start(1, tls),
        })
    }

    /// The connection flags, as etcdctl takes them (`--key` is the client key).
    fn conn(&self) -> Vec<String> {
        self.cluster.conn_args()
    }

    /// The connection flags of `rotate retire`, where the client key is `--client-key`.
    fn retire_conn(&self) -> Vec<String> {
        self.conn()
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

    fn try_ctl(&self, args: &[&str], stdin: &[u8]) -> Result<Vec<u8>, String> {
        use std::io::Write;
        let mut child = common::etcdctl()
            .args(self.conn())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
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

    fn ctl(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        self.try_ctl(args, stdin)
            .unwrap_or_else(|e| panic!("etcdctl {args:?}: {e}"))
    }

    /// Values with NUL bytes go on stdin.
    fn put(&self, key: &str, value: &[u8]) {
        self.ctl(&["put", key], value);
    }

    /// Every key/value under a prefix.
    fn get_prefix(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
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

    fn snapshot(&self, path: &Path) {
        self.ctl(&["snapshot", "save", path.to_str().unwrap()], b"");
    }
}

/// `a` followed by `b`, as one argument list.
fn cat<'a>(a: &[&'a str], b: &'a [String]) -> Vec<&'a str> {
    a.iter()
        .copied()
        .chain(b.iter().map(String::as_str))
        .collect()
}

/// Protobuf field with a length-delimited value.
fn field(n: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![(n << 3) | 2];
    let mut len = bytes.len();
    while len >= 0x80 {
        v.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    v.push(len as u8);
    v.extend_from_slice(bytes);
    v
}

/// A `v1.Secret` as kube-apiserver stores it: `k8s\0` + runtime.Unknown.
fn stored_secret(ns: &str, name: &str, data: &[(&str, &[u8])]) -> Vec<u8> {
    let meta = [field(1, name.as_bytes()), field(3, ns.as_bytes())].concat();
    let mut secret = field(1, &meta);
    for (k, v) in data {
        secret.extend(field(2, &[field(1, k.as_bytes()), field(2, v)].concat()));
    }
    secret.extend(field(3, b"Opaque"));
    let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
    [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &secret)].concat()
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
fn audit(etcd: &Etcd, config: &Path) -> std::collections::BTreeMap<String, String> {
    let conn = etcd.conn();
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
fn expect(etcd: &Etcd, config: &Path, want: &str) {
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
    let Some(etcd) = Etcd::start(true) else {
        return;
    };
    let conn = etcd.conn();
    let live = conn.join(" ");
    let retire_live = etcd.retire_conn().join(" ");
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
            &etcd.retire_conn(),
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
            &etcd.retire_conn(),
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
            &etcd.retire_conn(),
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
        &etcd.retire_conn(),
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
        &etcd.retire_conn(),
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
    let Some(etcd) = Etcd::start(false) else {
        return;
    };
    let rt = common::rt();
    let old = common::secrets_config(&[("key1", 1)]);
    rt.block_on(async {
        let e = common::connect(&etcd.cluster.options()).await;
        common::populate(&e, &common::transformer(&old), 20).await;
    });
    let config = common::write_config(
        d.path(),
        "enc.yaml",
        &common::secrets_config(&[("key2", 2), ("key1", 1)]),
    );
    let c = config.to_str().unwrap();
    let eps = etcd.cluster.endpoints();
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

    let o = run(&cat(&retire, &etcd.conn()));
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
        &cat(&retire, &etcd.conn()),
        &["--snapshot".to_string(), "x.db".to_string()],
    ));
    assert_eq!(both.code, Some(2), "{}", both.stderr);

    let o = run(&cat(
        &["rewrite", "--config", c, "--resource", "secrets"],
        &etcd.conn(),
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
    let Some(etcd) = Etcd::start(false) else {
        return;
    };
    let live = etcd.retire_conn();
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
        &etcd.conn(),
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
