//! Key rotation in the library: the config edits of `atrest::rotation` (prepare,
//! promote, retire), the proof a retire needs from a scan, and the status it reports.

use atrest::audit::{AuditOptions, Auditor, StoredObject};
use atrest::config::{EncryptionConfiguration, ProviderConfig};
use atrest::key::SecretKey;
use atrest::rotation::{
    self, KeyUsage, KeyedProvider, PrepareOptions, RetireTarget, RotationError, Scope, Stage,
};
use atrest::transformer::Transformers;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;

use common::fixtures::{cfg, keyed, object, sealed, shape, ID, K1, K2, K3};

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_764_400_000) // 2025-11-29T07:06:40Z
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

/// Turning encryption off (kubernetes/website `encrypt-data.md`, "Decrypt all data"):
/// `identity` writes and the old key still reads until every object is rewritten in
/// plaintext. Retiring that key is the step that makes data under it unreadable, so
/// the scan must have seen the data: an empty scan (a wrong `--etcd-prefix`, another
/// etcd such as the one `--etcd-servers-overrides` gives events), or one with no
/// object of the rule's resources, proves nothing.
#[test]
fn retire_after_decryption_needs_a_scan_that_saw_the_data() {
    let c = cfg(&[
        (
            "secrets",
            &format!("{ID}{}", keyed("aescbc", &[("key1", K1)])),
        ),
        ("configmaps", ID),
    ]);
    let key1: RetireTarget = "key1".parse().unwrap();
    let scope = Scope::default();
    let e = rotation::retire(&c, &key1, &KeyUsage::default(), &scope).unwrap_err();
    assert!(matches!(e, RotationError::ScanMissesResource { .. }), "{e}");
    assert!(e.to_string().contains("--etcd-prefix"), "{e}");
    // Objects, but none of the resources the rule covers.
    let cm = "/registry/configmaps/a/c";
    let e = rotation::retire(&c, &key1, &usage(&c, &[(cm, object(cm))]), &scope).unwrap_err();
    assert!(matches!(e, RotationError::ScanMissesResource { .. }), "{e}");
    // Every Secret is plaintext now: key1 goes.
    let (n, _) = rotation::retire(&c, &key1, &usage(&c, &[(S1, object(S1))]), &scope).unwrap();
    assert_eq!(shape(&n, 0), ["identity"]);
}

/// A cluster can keep its events in another etcd (kube-apiserver
/// `--etcd-servers-overrides=/events#URL`). Under a wildcard rule, a scan of that
/// etcd sees objects the rule governs (events, written with the current key: they
/// live an hour) and none under the old key, yet the Secrets in the main etcd may
/// still need it. Every cluster has namespaces in its main etcd, so a wildcard rule
/// that governs them needs a scan that saw one.
#[test]
fn retire_under_a_wildcard_needs_more_than_an_events_etcd() {
    let c = cfg(&[("'*.*'", &keyed("aescbc", &[("key2", K2), ("key1", K1)]))]);
    let writer = cfg(&[("secrets", &keyed("aescbc", &[("key2", K2)]))]);
    let t =
        atrest::transformer::Transformer::from_providers(&writer.resources[0].providers).unwrap();
    let seal = |key: &'static str, plain: Vec<u8>| (key, t.write(&plain, key.as_bytes()).unwrap());
    let ev = "/registry/events/a/e1.17f0";
    let ns = "/registry/namespaces/default";
    let event = seal(ev, object(ev));
    let namespace = seal(ns, common::fixtures::stored_secret("", "default", &[]));
    let key1: RetireTarget = "key1".parse().unwrap();
    let scope = Scope::default();
    let e =
        rotation::retire(&c, &key1, &usage(&c, std::slice::from_ref(&event)), &scope).unwrap_err();
    assert!(matches!(e, RotationError::ScanMissesResource { .. }), "{e}");
    assert!(e.to_string().contains("namespaces"), "{e}");
    let u = usage(&c, &[event, namespace]);
    assert_eq!(u.at_risk_total, 0, "{:?}", u.at_risk);
    let (n, _) = rotation::retire(&c, &key1, &u, &scope).unwrap();
    assert_eq!(shape(&n, 0), ["aescbc:key2"]);
}

/// What `retire` proves includes "no value under `--etcd-prefix` starts with the
/// key's whole prefix". Values at keys that name no object (one segment, no name,
/// not UTF-8) were skipped by the scan, so a value under the old key there did not
/// block its removal, and would be unreadable after it.
#[test]
fn retire_counts_values_at_keys_that_name_no_object() {
    let c = cfg(&[(
        "secrets",
        &format!("{}{ID}", keyed("aescbc", &[("key2", K2), ("key1", K1)])),
    )]);
    let ts = Transformers::new(&c).unwrap();
    let auditor = Auditor::new(Some(&ts), AuditOptions::default());
    let s2 = sealed("aescbc", "key2", K2, S2);
    let old = sealed("aescbc", "key1", K1, S1);
    let key1: RetireTarget = "key1".parse().unwrap();
    for odd in [
        &b"/registry/leftover"[..],
        b"/registry/secrets/a/",
        b"/registry/secrets/a/\xff",
    ] {
        let objects = [(S2.as_bytes(), &s2[..]), (odd, &old[..])];
        let u = KeyUsage::scan(
            &auditor,
            &ts,
            objects.iter().map(|(k, v)| StoredObject {
                key: k,
                value: v,
                mod_revision: 1,
            }),
        );
        let e = rotation::retire(&c, &key1, &u, &Scope::default()).unwrap_err();
        assert!(
            matches!(e, RotationError::InUse { count: 1, .. }),
            "{}: {e}",
            String::from_utf8_lossy(odd)
        );
        // rewrite skips such keys: the refusal says what to do instead.
        assert!(
            e.to_string()
                .contains("rewrite skips values at keys that name no object"),
            "{e}"
        );
    }
    // Outside the prefix: another cluster's, not this one's.
    let objects = [(S2.as_bytes(), &s2[..]), (&b"/other/x"[..], &old[..])];
    let u = KeyUsage::scan(
        &auditor,
        &ts,
        objects.iter().map(|(k, v)| StoredObject {
            key: k,
            value: v,
            mod_revision: 1,
        }),
    );
    assert!(rotation::retire(&c, &key1, &u, &Scope::default()).is_ok());
}
