//! EncryptionConfiguration: parsing, validation, lookup, round trip and drift, driven by
//! the fixture files in `testdata/configs/`.

use atrest::config::{
    drift, ConfigError, ConfigFormat, EncryptionConfiguration, Finding, KeyConfig, KeysConfig,
    KmsConfig, ProviderConfig, ResourceConfig, Severity,
};
use atrest::key::SecretKey;
use std::path::{Path, PathBuf};

/// base64 of the 32 bytes 0x00..0x1f.
const K32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// base64 of the 32 bytes 0x20..0x3f.
const K32B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
/// base64 of the 16 bytes 0x00..0x0f.
const K16: &str = "AAECAwQFBgcICQoLDA0ODw==";
/// Every key text used by the fixtures; none may ever be printed.
const ALL_KEY_TEXTS: &[&str] = &[
    K32,
    K32B,
    K16,
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
    "AAECAwQFBgcICQ==",
    "c2VjcmV0LXRleHQtdGhhdC1tdXN0LW5vdC1sZWFr",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/configs")
        .join(name)
}

fn load(name: &str) -> EncryptionConfiguration {
    match EncryptionConfiguration::load(&fixture(name)) {
        Ok(l) => l.config,
        Err(e) => panic!("{name}: {e}"),
    }
}

fn load_err(name: &str) -> ConfigError {
    match EncryptionConfiguration::load(&fixture(name)) {
        Ok(_) => panic!("{name} should not parse"),
        Err(e) => e,
    }
}

fn key(name: &str, b64: &str) -> KeyConfig {
    KeyConfig {
        name: name.to_string(),
        secret: SecretKey::from_base64(b64).unwrap(),
    }
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

fn warnings(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .collect()
}

/// Assert a finding with this severity and path exists and its message contains `fragment`.
#[track_caller]
fn assert_finding(findings: &[Finding], severity: Severity, path: &str, fragment: &str) {
    assert!(
        findings
            .iter()
            .any(|f| f.severity == severity && f.path == path && f.message.contains(fragment)),
        "no {severity} at {path} containing {fragment:?} in:\n{}",
        findings
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[track_caller]
fn assert_no_key_text(s: &str) {
    for k in ALL_KEY_TEXTS {
        assert!(!s.contains(k), "key text {k} leaked into: {s}");
    }
    // Nor as a Debug byte list.
    assert!(!s.contains("[0, 1, 2, 3"), "key bytes leaked into: {s}");
}

// ---------------------------------------------------------------- good files

#[test]
fn aescbc_config_parses_into_the_model() {
    let loaded = EncryptionConfiguration::load(&fixture("good-aescbc.yaml")).unwrap();
    assert_eq!(loaded.format, ConfigFormat::Yaml);
    assert_eq!(
        loaded.path.as_deref(),
        Some(fixture("good-aescbc.yaml").as_path())
    );
    let expected = EncryptionConfiguration {
        api_version: "apiserver.config.k8s.io/v1".into(),
        kind: "EncryptionConfiguration".into(),
        resources: vec![ResourceConfig {
            resources: vec!["secrets".into()],
            providers: vec![
                ProviderConfig::AesCbc(KeysConfig {
                    keys: vec![key("key1", K32)],
                }),
                ProviderConfig::Identity,
            ],
        }],
    };
    assert_eq!(loaded.config, expected);
    assert_eq!(loaded.config.validate(), vec![]);
    assert!(loaded.config.is_valid());
    let secret = match &loaded.config.resources[0].providers[0] {
        ProviderConfig::AesCbc(k) => &k.keys[0].secret,
        other => panic!("{other:?}"),
    };
    assert_eq!(secret.expose(), (0u8..32).collect::<Vec<_>>().as_slice());
}

#[test]
fn every_provider_kind_parses_and_validates_clean() {
    let c = load("good-all-providers.yaml");
    let kinds: Vec<Vec<&str>> = c
        .resources
        .iter()
        .map(|r| r.providers.iter().map(|p| p.kind_name()).collect())
        .collect();
    assert_eq!(
        kinds,
        vec![
            vec!["kms", "aescbc", "identity"],
            vec!["aesgcm", "identity"],
            vec!["secretbox", "identity"],
            vec!["aescbc", "identity"],
            vec!["identity"],
        ]
    );
    match &c.resources[0].providers[0] {
        ProviderConfig::Kms(k) => {
            assert_eq!(
                k,
                &KmsConfig {
                    api_version: Some("v2".into()),
                    name: "vault".into(),
                    endpoint: Some("unix:///var/run/kms/vault.sock".into()),
                    cachesize: None,
                    timeout: Some("3s".into()),
                }
            );
            assert_eq!(k.effective_api_version(), "v2");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.validate(), vec![], "all providers file should be clean");
}

#[test]
fn legacy_kind_is_accepted_and_kept() {
    let c = load("good-legacy.yaml");
    assert_eq!(c.api_version, "v1");
    assert_eq!(c.kind, "EncryptionConfig");
    assert!(c.is_valid());
    let again = EncryptionConfiguration::from_yaml_str(&c.to_yaml()).unwrap();
    assert_eq!(again, c);
    assert!(c
        .to_yaml()
        .starts_with("apiVersion: v1\nkind: EncryptionConfig\n"));
}

#[test]
fn json_is_detected_and_parsed() {
    let loaded = EncryptionConfiguration::load(&fixture("good.json")).unwrap();
    assert_eq!(loaded.format, ConfigFormat::Json);
    assert_eq!(loaded.config.validate(), vec![]);
    assert_eq!(
        loaded.config.resources[0].providers[0].kind_name(),
        "aesgcm"
    );

    let text = std::fs::read_to_string(fixture("good.json")).unwrap();
    let padded = format!("\u{feff}  \n\t{text}");
    let from_bytes = EncryptionConfiguration::from_slice(padded.as_bytes()).unwrap();
    assert_eq!(from_bytes.format, ConfigFormat::Json);
    assert_eq!(from_bytes.path, None);
    assert_eq!(from_bytes.config, loaded.config);
    assert_eq!(
        EncryptionConfiguration::from_json_str(&text).unwrap(),
        loaded.config
    );

    let yaml = std::fs::read(fixture("good-aescbc.yaml")).unwrap();
    assert_eq!(
        EncryptionConfiguration::from_slice(&yaml).unwrap().format,
        ConfigFormat::Yaml
    );
}

// ---------------------------------------------------------------- parse errors

#[test]
fn unknown_yaml_field_is_rejected_with_position_and_file() {
    let err = load_err("bad-unknown-field.yaml");
    let shown = err.to_string();
    assert!(shown.contains("bad-unknown-field.yaml"), "{shown}");
    match err.root() {
        ConfigError::Yaml {
            line,
            column,
            message,
        } => {
            assert_eq!((*line, *column), (Some(10), Some(15)));
            assert!(message.contains("unknown field `secrets`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_no_key_text(&shown);
}

#[test]
fn unknown_json_field_is_rejected_with_position() {
    match load_err("bad-unknown-field.json").root() {
        ConfigError::Json {
            line,
            message,
            column,
        } => {
            assert_eq!(*line, 2);
            assert!(*column > 0);
            assert!(message.contains("unknown field `provider`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_providers_in_one_item_names_the_item() {
    let err = load_err("bad-two-providers.yaml");
    match err.root() {
        ConfigError::MultipleProviders { path, found } => {
            assert_eq!(path, "resources[0].providers[1]");
            assert_eq!(found, &vec!["aescbc", "identity"]);
        }
        other => panic!("{other:?}"),
    }
    let shown = err.to_string();
    assert!(shown.contains("more than one provider specified in a single element"));
    assert_no_key_text(&shown);
}

#[test]
fn empty_provider_item_names_the_item() {
    let err = load_err("bad-no-provider.yaml");
    match err.root() {
        ConfigError::NoProvider { path } => assert_eq!(path, "resources[0].providers[1]"),
        other => panic!("{other:?}"),
    }
    assert!(err
        .to_string()
        .contains("provider does not contain any of the expected providers"));
}

#[test]
fn bad_base64_names_path_and_key_but_not_the_secret() {
    let err = load_err("bad-base64.yaml");
    match err.root() {
        ConfigError::InvalidSecret { path, key_name, .. } => {
            assert_eq!(path, "resources[0].providers[0].aescbc.keys[1].secret");
            assert_eq!(key_name, "broken");
        }
        other => panic!("{other:?}"),
    }
    let shown = err.to_string();
    let debug = format!("{err:?}");
    assert!(shown.contains("base64"), "{shown}");
    assert_no_key_text(&shown);
    assert_no_key_text(&debug);
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
}

#[test]
fn unsupported_kind_says_what_was_found_and_expected() {
    let err = load_err("bad-kind.yaml");
    match err.root() {
        ConfigError::UnsupportedKind { api_version, kind } => {
            assert_eq!(api_version, "apiserver.config.k8s.io/v1beta1");
            assert_eq!(kind, "EncryptionConfiguration");
        }
        other => panic!("{other:?}"),
    }
    let shown = err.to_string();
    assert!(shown.contains("apiserver.config.k8s.io/v1beta1"));
    assert!(shown.contains("expected apiVersion \"apiserver.config.k8s.io/v1\""));

    for (text, api, kind) in [
        (
            "kind: EncryptionConfiguration\nresources: []\n",
            "",
            "EncryptionConfiguration",
        ),
        (
            "apiVersion: v1\nkind: EncryptionConfiguration\n",
            "v1",
            "EncryptionConfiguration",
        ),
        (
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfig\n",
            "apiserver.config.k8s.io/v1",
            "EncryptionConfig",
        ),
    ] {
        match EncryptionConfiguration::from_yaml_str(text) {
            Err(ConfigError::UnsupportedKind {
                api_version,
                kind: k,
            }) => assert_eq!((api_version.as_str(), k.as_str()), (api, kind)),
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn missing_and_empty_files_are_reported() {
    let missing = fixture("does-not-exist.yaml");
    match EncryptionConfiguration::load(&missing) {
        Err(ConfigError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "  \n").unwrap();
    let err = EncryptionConfiguration::load(&empty).unwrap_err();
    assert!(matches!(err.root(), ConfigError::Empty), "{err:?}");
    assert!(err.to_string().contains("empty.yaml"));
    assert!(matches!(
        EncryptionConfiguration::from_slice(b"\xff\xfe"),
        Err(ConfigError::NotUtf8 { valid_up_to: 0 })
    ));
}

#[test]
fn duplicate_fields_are_rejected() {
    let yaml = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aescbc:\n          keys:\n            - name: a\n              name: b\n              secret: {K32}\n"
    );
    assert!(matches!(
        EncryptionConfiguration::from_yaml_str(&yaml),
        Err(ConfigError::Yaml { line: Some(9), .. })
    ));
    let json = r#"{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","kind":"x","resources":[]}"#;
    assert!(matches!(
        EncryptionConfiguration::from_json_str(json),
        Err(ConfigError::Json { .. })
    ));
}

#[test]
fn malformed_secret_lines_do_not_leak_the_secret() {
    let secret = "c2VjcmV0LXRleHQtdGhhdC1tdXN0LW5vdC1sZWFr";
    let head = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aescbc:\n";
    let bodies = [
        format!("          keys: {secret}\n"),
        format!("          keys:\n            - name: a\n              secret:{secret}\n"),
        format!("          keys:\n            - name: a\n            secret: {secret}\n"),
        format!("          keys:\n            - name: a\n              secret: [{secret}]\n"),
        format!("          keys:\n            - {secret}\n"),
        format!("          keys:\n            - name: a\n              {secret}: x\n"),
        format!("          {secret}: 1\n"),
    ];
    for body in bodies {
        let text = format!("{head}{body}");
        let err = EncryptionConfiguration::from_yaml_str(&text).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(secret), "leaked: {shown}");
    }
    for json in [
        format!(
            r#"{{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{{"resources":["secrets"],"providers":[{{"aescbc":{{"keys":[{{"name":"a","{secret}":1}}]}}}}]}}]}}"#
        ),
        format!(
            r#"{{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{{"resources":["secrets"],"providers":[{{"aescbc":{{"keys":"{secret}"}}}}]}}]}}"#
        ),
        format!(
            r#"{{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{{"resources":["secrets"],"providers":[{{"aescbc":{{"keys":[{{"name":"a","secret":"{secret}"#
        ),
    ] {
        let err = EncryptionConfiguration::from_json_str(&json).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(secret), "leaked: {shown}");
    }
}

#[test]
fn garbage_never_panics() {
    let inputs: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"[".to_vec(),
        b"- - -".to_vec(),
        b"~".to_vec(),
        b"null".to_vec(),
        b"42".to_vec(),
        b"apiVersion: [".to_vec(),
        b"resources: *x".to_vec(),
        b"a: &a [*a]".to_vec(),
        "{\"resources\": null}".into(),
        "apiVersion: v1\nkind: EncryptionConfig\nresources: ~\n".into(),
        "apiVersion: v1\nkind: EncryptionConfig\nresources:\n  - ~\n".into(),
        "apiVersion: v1\nkind: EncryptionConfig\nresources:\n  - providers: [~]\n".into(),
        "apiVersion: v1\nkind: EncryptionConfig\nresources:\n  - providers:\n      - kms: {cachesize: 99999999999}\n".into(),
        "[".repeat(10_000).into_bytes(),
        "{\"a\":".repeat(10_000).into_bytes(),
        vec![0u8; 64],
        (0u8..=255).collect(),
    ];
    for input in inputs {
        if let Ok(l) = EncryptionConfiguration::from_slice(&input) {
            let _ = l.config.validate();
            let _ = l.config.to_yaml();
        }
    }
}

// ---------------------------------------------------------------- validation

#[test]
fn key_lengths_are_checked_per_provider() {
    let f = load("bad-key-length.yaml").validate();
    assert_finding(
        &f,
        Severity::Error,
        "resources[0].providers[0].aescbc.keys[0].secret",
        "secret is not of the expected length, got 10, expected one of [16 24 32]",
    );
    assert_finding(
        &f,
        Severity::Error,
        "resources[0].providers[1].secretbox.keys[0].secret",
        "got 16, expected one of [32]",
    );
    assert_eq!(errors(&f).len(), 2);
    for finding in &f {
        assert_no_key_text(&finding.to_string());
    }
}

#[test]
fn rule_masked_by_earlier_any_any_is_an_error() {
    let f = load("bad-wildcard-masked.yaml").validate();
    assert_finding(
        &f,
        Severity::Error,
        "resources[1].resources[0]",
        "resource \"secrets\" is masked by earlier rule \"*.*\"",
    );
}

#[test]
fn rules_masked_by_group_wildcards_are_errors() {
    let f = load("bad-group-masked.yaml").validate();
    assert_finding(
        &f,
        Severity::Error,
        "resources[1].resources[0]",
        "resource \"deployments.apps\" is masked by earlier rule \"*.apps\"",
    );
    assert_finding(
        &f,
        Severity::Error,
        "resources[3].resources[0]",
        "resource \"secrets\" is masked by earlier rule \"*.\"",
    );
    assert_eq!(errors(&f).len(), 2);
}

#[test]
fn wildcard_after_exact_names_is_fine() {
    let text = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers: [{identity: {}}]\n  - resources: ['*.']\n    providers: [{identity: {}}]\n  - resources: ['*.*']\n    providers: [{identity: {}}]\n";
    let c = EncryptionConfiguration::from_yaml_str(text).unwrap();
    assert_eq!(c.validate(), vec![]);
    // The same wildcard twice masks itself (upstream TestWildcardMasking "*. masked by *.").
    let twice = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: ['*.']\n    providers: [{identity: {}}]\n  - resources: ['*.']\n    providers: [{identity: {}}]\n";
    let f = EncryptionConfiguration::from_yaml_str(twice)
        .unwrap()
        .validate();
    assert_finding(
        &f,
        Severity::Error,
        "resources[1].resources[0]",
        "resource \"*.\" is masked by earlier rule \"*.\"",
    );
}

#[test]
fn bare_star_is_rejected() {
    let f = load("bad-star.yaml").validate();
    assert_finding(
        &f,
        Severity::Error,
        "resources[0].resources[0]",
        "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources",
    );
}

#[test]
fn resource_name_rules_mirror_upstream() {
    let f = load("bad-resource-names.yaml").validate();
    let p = |j: usize| format!("resources[0].resources[{j}]");
    assert_finding(
        &f,
        Severity::Error,
        &p(0),
        "should not contain capital letters",
    );
    assert_finding(
        &f,
        Severity::Error,
        &p(1),
        "encrypting the same resource across groups is not supported",
    );
    assert_finding(
        &f,
        Severity::Error,
        &p(2),
        "'*.events.k8s.io' objects are stored using the 'events' API group",
    );
    assert_finding(
        &f,
        Severity::Error,
        &p(3),
        "'extensions' group has been removed",
    );
    assert_finding(
        &f,
        Severity::Error,
        &p(4),
        "resources which do not have REST API/s cannot be encrypted",
    );
    assert_eq!(errors(&f).len(), 5);
    // Upstream's errors are not repeated as lints ("matches nothing").
    assert!(warnings(&f).is_empty(), "{:#?}", warnings(&f));
}

#[test]
fn duplicates_and_overlaps_within_a_list_are_errors() {
    let f = load("bad-overlap.yaml").validate();
    assert_finding(
        &f,
        Severity::Error,
        "resources[0].resources",
        "the same resource cannot be specified multiple times",
    );
    assert_finding(
        &f,
        Severity::Error,
        "resources[1].resources",
        "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed",
    );
    // '*.*' must be alone in its list.
    assert_finding(
        &f,
        Severity::Error,
        "resources[2].resources",
        "using overlapping resources",
    );
}

#[test]
fn empty_lists_and_missing_fields_are_errors() {
    let f = load("bad-empty.yaml").validate();
    assert_finding(
        &f,
        Severity::Error,
        "resources[0].resources",
        "at least one resources[0].resources is required",
    );
    assert_finding(
        &f,
        Severity::Error,
        "resources[0].providers",
        "at least one resources[0].providers is required",
    );
    assert_finding(
        &f,
        Severity::Error,
        "resources[1].providers[0].aescbc.keys",
        "at least one keys is required",
    );
    assert_finding(
        &f,
        Severity::Error,
        "resources[1].providers[1].secretbox.keys[0].name",
        "name is a mandatory field for a key",
    );
    assert_finding(
        &f,
        Severity::Error,
        "resources[1].providers[1].secretbox.keys[1].secret",
        "secret is a mandatory field for a key",
    );

    let none = load("bad-no-resources.yaml").validate();
    assert_eq!(
        none,
        vec![Finding {
            severity: Severity::Error,
            path: "resources".into(),
            message: "at least one resources is required".into(),
        }]
    );
    assert_eq!(
        none[0].to_string(),
        "error: resources: at least one resources is required"
    );
}

#[test]
fn kms_rules_mirror_upstream() {
    let f = load("bad-kms.yaml").validate();
    let p = |j: usize, field: &str| format!("resources[0].providers[{j}].kms.{field}");
    let e = Severity::Error;
    assert_finding(
        &f,
        e,
        &p(0, "name"),
        "invalid KMS provider name a:b, must not contain ':'",
    );
    assert_finding(
        &f,
        e,
        &p(0, "endpoint"),
        "unsupported scheme \"tcp\" for KMS provider, only unix is supported",
    );
    assert_finding(
        &f,
        e,
        &p(0, "cachesize"),
        "cachesize is not supported in v2",
    );
    assert_finding(
        &f,
        e,
        &p(0, "timeout"),
        "timeout should be a positive value",
    );
    assert_finding(
        &f,
        e,
        &p(1, "name"),
        "name is a mandatory field for a provider",
    );
    assert_finding(
        &f,
        e,
        &p(1, "endpoint"),
        "endpoint is a mandatory field for a kms",
    );
    assert_finding(
        &f,
        e,
        &p(1, "apiVersion"),
        "unsupported apiVersion v3 for KMS provider, only v1 and v2 are supported",
    );
    assert_finding(
        &f,
        e,
        &p(2, "cachesize"),
        "cachesize should be a positive value, or negative to disable",
    );
    assert_finding(
        &f,
        e,
        &p(2, "timeout"),
        "timeout should be a positive value",
    );
    assert_finding(
        &f,
        Severity::Warning,
        &p(2, "apiVersion"),
        "KMS v1 is deprecated",
    );
    assert_finding(
        &f,
        e,
        &p(3, "name"),
        "duplicate KMS provider name legacy, names must be unique",
    );
    assert_finding(&f, e, &p(3, "timeout"), "invalid duration \"soon\"");
}

#[test]
fn lints_warn_without_failing() {
    let c = load("warn-lints.yaml");
    let f = c.validate();
    assert!(errors(&f).is_empty(), "{f:?}");
    assert!(c.is_valid());
    let w = Severity::Warning;
    assert_finding(
        &f,
        w,
        "resources[0].providers[0]",
        "identity is the first provider, so new writes are stored as plaintext",
    );
    assert_finding(
        &f,
        w,
        "resources[0].providers[1].aescbc.keys[1].name",
        "key name \"key1\" is also used by keys[0] of this provider",
    );
    assert_finding(
        &f,
        w,
        "resources[0].providers[2].aesgcm.keys[0].name",
        "contains ':'",
    );
    assert_finding(
        &f,
        w,
        "resources[0].providers[2].aesgcm.keys[1].name",
        "also used by resources[0].providers[1].aescbc.keys[0]",
    );
    assert_finding(&f, w, "resources[1].providers", "no identity provider");
    assert_finding(
        &f,
        w,
        "resources[2].resources[0]",
        "also listed in resources[0]",
    );
    assert_finding(
        &f,
        w,
        "resources[2].providers[0].kms.apiVersion",
        "KMS v1 is deprecated",
    );
    assert_finding(
        &f,
        w,
        "resources[1].resources[1]",
        "kube-apiserver's resource is `resourceclaims.resource.k8s.io`",
    );
    assert_eq!(warnings(&f).len(), 8, "{f:#?}");
}

#[test]
fn identity_alone_or_last_draws_no_warning() {
    let c = load("good-aescbc.yaml");
    assert!(c.validate().is_empty());
    let plain = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - identity: {}\n";
    assert!(EncryptionConfiguration::from_yaml_str(plain)
        .unwrap()
        .validate()
        .is_empty());
}

// ---------------------------------------------------------------- kube-apiserver parity

/// A config whose only item covers `secrets` with `providers` (YAML list items,
/// indented for the item), then identity.
fn with_providers(providers: &str) -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n{providers}      - identity: {{}}\n"
    )
}

/// kube-apiserver defaults an empty KMS `apiVersion` to `v1` before validating
/// (`SetDefaults_KMSConfiguration` in upstream
/// `staging/src/k8s.io/apiserver/pkg/apis/apiserver/v1/defaults.go` tests
/// `obj.APIVersion == ""`), so `apiVersion: ""` is a KMS v1 provider that starts
/// (with the KMSv1 gate), not an unsupported version.
#[test]
fn kms_empty_api_version_is_defaulted_to_v1() {
    let yaml = with_providers(
        "      - kms: {apiVersion: '', name: legacy, endpoint: 'unix:///kms.sock'}\n",
    );
    let c = EncryptionConfiguration::from_yaml_str(&yaml).unwrap();
    let f = c.validate();
    assert!(errors(&f).is_empty(), "{f:#?}");
    assert_finding(
        &f,
        Severity::Warning,
        "resources[0].providers[0].kms.apiVersion",
        "KMS v1 is deprecated",
    );
    let ProviderConfig::Kms(k) = &c.resources[0].providers[0] else {
        panic!("not kms: {:?}", c.resources[0].providers[0]);
    };
    assert_eq!(k.effective_api_version(), "v1");
}

/// kube-apiserver decodes key secrets with Go's `base64.StdEncoding`
/// (`validateKey` in `.../apis/apiserver/validation/validation_encryption.go`,
/// `aesPrefixTransformer` / `secretboxPrefixTransformer` in
/// `.../server/options/encryptionconfig/config.go`). That encoding is not
/// `.Strict()`: non-zero bits after the last byte are ignored, so `...ODx==` is
/// the same 16-byte key as `...ODw==`, and `...Hh9=` the same 32 bytes as `...Hh8=`.
#[test]
fn secrets_with_nonzero_trailing_bits_decode_as_go_does() {
    for (loose, canonical) in [
        ("AAECAwQFBgcICQoLDA0ODx==", K16),
        ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", K32),
    ] {
        let got = SecretKey::from_base64(loose).map(|k| k.expose().to_vec());
        let want = SecretKey::from_base64(canonical).unwrap().expose().to_vec();
        assert_eq!(got, Ok(want), "{loose}");
    }
    let yaml =
        with_providers("      - aescbc: {keys: [{name: k, secret: AAECAwQFBgcICQoLDA0ODx==}]}\n");
    let c = EncryptionConfiguration::from_yaml_str(&yaml).unwrap();
    assert!(c.validate().is_empty(), "{:#?}", c.validate());
}

/// kube-apiserver turns the YAML into JSON without looking at the target types
/// (apimachinery `runtime/serializer/json` calls sigs.k8s.io/yaml `YAMLToJSON`),
/// then decodes the JSON: an unquoted `1`, `1.50` or `yes` becomes a JSON number or
/// bool and does not decode into a string field (`Key.Name`, `KMSConfiguration.Name`),
/// and a quoted `'5'` does not decode into the int32 `cachesize`. kube-apiserver
/// refuses such a file (`loadConfig` in `.../encryptionconfig/config.go`). Quoting
/// the name makes it a string.
#[test]
fn yaml_scalars_of_the_wrong_type_are_refused() {
    for providers in [
        "      - aescbc: {keys: [{name: 1, secret: AAECAwQFBgcICQoLDA0ODw==}]}\n",
        "      - aescbc: {keys: [{name: 1.50, secret: AAECAwQFBgcICQoLDA0ODw==}]}\n",
        "      - secretbox: {keys: [{name: yes, secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=}]}\n",
        "      - kms: {apiVersion: v2, name: 2, endpoint: 'unix:///kms.sock'}\n",
        "      - kms: {apiVersion: v1, name: p, endpoint: 'unix:///kms.sock', cachesize: '5'}\n",
    ] {
        let yaml = with_providers(providers);
        assert!(
            EncryptionConfiguration::from_yaml_str(&yaml).is_err(),
            "accepted: {providers}"
        );
    }
    let quoted = with_providers(
        "      - aescbc: {keys: [{name: '1', secret: AAECAwQFBgcICQoLDA0ODw==}]}\n      - kms: {apiVersion: v1, name: p, endpoint: 'unix:///kms.sock', cachesize: 5}\n",
    );
    let c = EncryptionConfiguration::from_yaml_str(&quoted).unwrap();
    assert_eq!(
        c.resources[0].providers[0].keys().unwrap().keys[0].name,
        "1"
    );
}

/// kube-apiserver reads only the first YAML document of the file: its decoder
/// converts YAML to JSON with sigs.k8s.io/yaml, whose `Unmarshal` (go-yaml v2)
/// parses one document (`loadConfig` in upstream
/// `staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go`).
/// A trailing `---`, or documents after the first, do not stop it.
#[test]
fn only_the_first_yaml_document_is_read() {
    let first = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - identity: {}\n";
    for tail in [
        "---\n",
        "---\nfoo: bar\n",
        "--- # next\napiVersion: v1\nkind: EncryptionConfig\nresources: []\n",
        "...\n---\nnot: [valid\n",
    ] {
        for head in ["", "---\n", "# comment\n--- \n"] {
            let text = format!("{head}{first}{tail}");
            match EncryptionConfiguration::from_yaml_str(&text) {
                Ok(c) => {
                    assert_eq!(c.kind, "EncryptionConfiguration", "{text}");
                    assert_eq!(c.resource_names().collect::<Vec<_>>(), ["secrets"]);
                }
                Err(e) => panic!("{text}\n{e}"),
            }
        }
    }
    // An empty first document is what kube-apiserver reads, and refuses.
    let empty_first = format!("---\n---\n{first}");
    assert!(EncryptionConfiguration::from_yaml_str(&empty_first).is_err());
}

// ---------------------------------------------------------------- lookup

#[test]
fn lookup_prefers_exact_then_group_wildcard_then_any() {
    let c = load("good-all-providers.yaml");
    let idx = |r: &str, g: &str| {
        c.rule_for(r, g).map(|rule| {
            c.resources
                .iter()
                .position(|x| std::ptr::eq(x, rule))
                .unwrap()
        })
    };
    assert_eq!(idx("secrets", ""), Some(0));
    assert_eq!(idx("configmaps", ""), Some(0));
    assert_eq!(idx("deployments", "apps"), Some(1));
    assert_eq!(idx("statefulsets", "apps"), Some(2));
    assert_eq!(idx("pods", ""), Some(3));
    assert_eq!(idx("widgets", "example.com"), Some(4));
    // `secrets` in group apps is not the core `secrets`.
    assert_eq!(idx("secrets", "apps"), Some(2));

    let only_secrets = load("good-aescbc.yaml");
    assert!(only_secrets.rule_for("secrets", "").is_some());
    assert!(only_secrets.rule_for("configmaps", "").is_none());
    assert!(only_secrets.rule_for("secrets", "apps").is_none());
    assert!(only_secrets.providers_for("configmaps", "").is_empty());
}

#[test]
fn a_name_in_two_items_gets_both_provider_lists() {
    let c = load("warn-lints.yaml");
    let rule = c.rule_for("secrets", "").unwrap();
    assert!(std::ptr::eq(rule, &c.resources[0]));
    let kinds: Vec<&str> = c
        .providers_for("secrets", "")
        .iter()
        .map(|p| p.kind_name())
        .collect();
    assert_eq!(
        kinds,
        vec!["identity", "aescbc", "aesgcm", "kms", "identity"]
    );
}

#[test]
fn resource_names_lists_every_entry_in_order() {
    let c = load("good-all-providers.yaml");
    let names: Vec<&str> = c.resource_names().collect();
    assert_eq!(
        names,
        vec![
            "secrets",
            "configmaps",
            "deployments.apps",
            "*.apps",
            "*.",
            "*.*"
        ]
    );
}

// ---------------------------------------------------------------- serialisation

#[test]
fn yaml_output_has_the_kubernetes_layout() {
    let c = load("good-aescbc.yaml");
    let expected = format!(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: {K32}
      - identity: {{}}
"
    );
    assert_eq!(c.to_yaml().as_str(), expected);
}

#[test]
fn json_output_has_the_kubernetes_layout() {
    let c = load("good-all-providers.yaml");
    let json = c.to_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["apiVersion", "kind", "resources"]);
    let kms = &v["resources"][0]["providers"][0]["kms"];
    let kms_keys: Vec<&String> = kms.as_object().unwrap().keys().collect();
    assert_eq!(kms_keys, ["apiVersion", "name", "endpoint", "timeout"]);
    assert_eq!(
        v["resources"][0]["providers"][2],
        serde_json::json!({"identity": {}})
    );
    assert_eq!(
        v["resources"][0]["providers"][1]["aescbc"]["keys"][0]["secret"],
        K32B
    );
}

#[test]
fn every_parsable_file_round_trips_through_yaml_and_json() {
    for name in [
        "good-aescbc.yaml",
        "good-all-providers.yaml",
        "good-legacy.yaml",
        "good.json",
        "warn-lints.yaml",
        "bad-kms.yaml",
        "bad-empty.yaml",
        "bad-overlap.yaml",
    ] {
        let c = load(name);
        let y = EncryptionConfiguration::from_yaml_str(&c.to_yaml())
            .unwrap_or_else(|e| panic!("{name} yaml: {e}\n{}", c.to_yaml().as_str()));
        assert_eq!(y, c, "{name} via YAML");
        let j = EncryptionConfiguration::from_json_str(&c.to_json())
            .unwrap_or_else(|e| panic!("{name} json: {e}"));
        assert_eq!(j, c, "{name} via JSON");
        let detected = EncryptionConfiguration::from_slice(c.to_json().as_bytes()).unwrap();
        assert_eq!(detected.format, ConfigFormat::Json);
        assert_eq!(detected.config, c);
    }
}

#[test]
fn awkward_strings_round_trip() {
    let names = [
        "",
        "yes",
        "No",
        "null",
        "~",
        "123",
        "1e3",
        "0x1F",
        ".inf",
        "*.",
        "*.*",
        "*.apps",
        "a: b",
        "#hash",
        "- dash",
        "quote\"d",
        "back\\slash",
        "tab\there",
        "new\nline",
        "ünïcödé",
        "key:with:colons",
        "  padded  ",
        "[x]",
        "{y}",
        "&anchor",
        "!tag",
        "%pct",
        "@at",
        "`tick`",
        "'single'",
        "|",
        ">",
        "?",
        ",",
    ];
    let c = EncryptionConfiguration {
        api_version: "apiserver.config.k8s.io/v1".into(),
        kind: "EncryptionConfiguration".into(),
        resources: vec![
            ResourceConfig {
                resources: names.iter().map(|s| s.to_string()).collect(),
                providers: names
                    .iter()
                    .map(|n| {
                        ProviderConfig::Secretbox(KeysConfig {
                            keys: vec![key(n, K32), key("second", K16)],
                        })
                    })
                    .chain([
                        ProviderConfig::Kms(KmsConfig {
                            api_version: Some("v1".into()),
                            name: "weird: name".into(),
                            endpoint: Some("unix:///tmp/x.sock".into()),
                            cachesize: Some(-1),
                            timeout: Some("1m30s".into()),
                        }),
                        ProviderConfig::Kms(KmsConfig::default()),
                        ProviderConfig::AesGcm(KeysConfig::default()),
                        ProviderConfig::Identity,
                    ])
                    .collect(),
            },
            ResourceConfig {
                resources: vec![],
                providers: vec![],
            },
        ],
    };
    let yaml = c.to_yaml();
    assert_eq!(
        EncryptionConfiguration::from_yaml_str(&yaml)
            .unwrap_or_else(|e| panic!("{e}\n{}", yaml.as_str())),
        c
    );
    assert_eq!(
        EncryptionConfiguration::from_json_str(&c.to_json()).unwrap(),
        c
    );

    let empty = EncryptionConfiguration {
        api_version: "v1".into(),
        kind: "EncryptionConfig".into(),
        resources: vec![],
    };
    assert_eq!(
        EncryptionConfiguration::from_yaml_str(&empty.to_yaml()).unwrap(),
        empty
    );
    assert_eq!(
        EncryptionConfiguration::from_json_str(&empty.to_json()).unwrap(),
        empty
    );
}

// ---------------------------------------------------------------- secrecy

#[test]
fn debug_and_findings_never_show_key_material() {
    for name in [
        "good-aescbc.yaml",
        "good-all-providers.yaml",
        "good.json",
        "bad-key-length.yaml",
        "warn-lints.yaml",
        "bad-empty.yaml",
    ] {
        let c = load(name);
        assert_no_key_text(&format!("{c:?}"));
        assert_no_key_text(&format!("{c:#?}"));
        for f in c.validate() {
            assert_no_key_text(&f.to_string());
            assert_no_key_text(&format!("{f:?}"));
        }
        assert_no_key_text(&format!(
            "{:?}",
            EncryptionConfiguration::load(&fixture(name))
        ));
    }
    let c = load("good-aescbc.yaml");
    let shown = format!("{c:?}");
    let fp = match &c.resources[0].providers[0] {
        ProviderConfig::AesCbc(k) => k.keys[0].secret.fingerprint().to_string(),
        other => panic!("{other:?}"),
    };
    assert!(
        shown.contains(&fp),
        "Debug should identify keys by fingerprint: {shown}"
    );
}

// ---------------------------------------------------------------- drift

fn one_item(providers: Vec<ProviderConfig>) -> EncryptionConfiguration {
    EncryptionConfiguration {
        api_version: "apiserver.config.k8s.io/v1".into(),
        kind: "EncryptionConfiguration".into(),
        resources: vec![ResourceConfig {
            resources: vec!["secrets".into()],
            providers,
        }],
    }
}

fn cbc(keys: Vec<KeyConfig>) -> ProviderConfig {
    ProviderConfig::AesCbc(KeysConfig { keys })
}

#[test]
fn identical_configs_have_no_drift() {
    let a = load("good-all-providers.yaml");
    assert!(drift(&a, &a.clone()).is_empty());
}

#[test]
fn drift_reports_a_different_key_under_the_same_name() {
    let a = one_item(vec![cbc(vec![key("key1", K32)]), ProviderConfig::Identity]);
    let b = one_item(vec![cbc(vec![key("key1", K32B)]), ProviderConfig::Identity]);
    let d = drift(&a, &b);
    assert_eq!(d.len(), 1, "{d:?}");
    let fa = SecretKey::from_base64(K32)
        .unwrap()
        .fingerprint()
        .to_string();
    let fb = SecretKey::from_base64(K32B)
        .unwrap()
        .fingerprint()
        .to_string();
    assert!(
        d[0].starts_with("resources[0] (secrets): aescbc: key \"key1\" differs"),
        "{}",
        d[0]
    );
    assert!(d[0].contains(&fa) && d[0].contains(&fb), "{}", d[0]);
    for line in &d {
        assert_no_key_text(line);
    }
}

#[test]
fn drift_reports_key_order_and_missing_keys() {
    // Mid-rotation: b already made key2 the write key, a has not.
    let a = one_item(vec![cbc(vec![key("key1", K32), key("key2", K32B)])]);
    let b = one_item(vec![cbc(vec![key("key2", K32B), key("key1", K32)])]);
    let d = drift(&a, &b);
    assert!(
        d.iter()
            .any(|l| l.contains("key order differs: a [key1, key2], b [key2, key1]")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|l| l.contains("new writes use key \"key1\" on a but \"key2\" on b")),
        "{d:?}"
    );

    // c lacks key2 and has key3; key3 is key2 renamed.
    let c = one_item(vec![cbc(vec![key("key1", K32), key("key3", K32B)])]);
    let d = drift(&a, &c);
    assert!(
        d.iter().any(|l| l.contains("key \"key2\"")
            && l.contains("only in a")
            && l.contains("b has the same key as \"key3\"")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|l| l.contains("key \"key3\"") && l.contains("only in b")),
        "{d:?}"
    );
    for line in &d {
        assert_no_key_text(line);
    }
}

#[test]
fn drift_reports_provider_order_and_extra_providers() {
    let a = one_item(vec![cbc(vec![key("key1", K32)]), ProviderConfig::Identity]);
    let b = one_item(vec![ProviderConfig::Identity, cbc(vec![key("key1", K32)])]);
    let d = drift(&a, &b);
    assert!(
        d.iter()
            .any(|l| l
                .contains("provider order differs: a [aescbc, identity], b [identity, aescbc]")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|l| l.contains("new writes use provider aescbc on a but identity on b")),
        "{d:?}"
    );

    let c = one_item(vec![cbc(vec![key("key1", K32)])]);
    let d = drift(&a, &c);
    assert_eq!(
        d,
        vec!["resources[0] (secrets): provider identity (providers[1]) only in a".to_string()]
    );
}

#[test]
fn drift_reports_items_and_kms_settings() {
    let kms = |endpoint: &str| {
        ProviderConfig::Kms(KmsConfig {
            api_version: Some("v2".into()),
            name: "vault".into(),
            endpoint: Some(endpoint.into()),
            cachesize: None,
            timeout: None,
        })
    };
    let a = one_item(vec![kms("unix:///a.sock")]);
    let mut b = one_item(vec![kms("unix:///b.sock")]);
    b.resources.push(ResourceConfig {
        resources: vec!["configmaps".into()],
        providers: vec![ProviderConfig::Identity],
    });
    let d = drift(&a, &b);
    assert!(
        d.iter().any(|l| l
            .contains("kms \"vault\": endpoint unix:///a.sock on a, unix:///b.sock on b")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|l| l == "resources[1] (configmaps): only in b"),
        "{d:?}"
    );
    assert!(
        d.iter().any(|l| l == "a has 1 resource items, b has 2"),
        "{d:?}"
    );
}

// ---------------------------------------------------------------- properties

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn arb_name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9.*-]{0,12}",
            any::<String>().prop_map(|s| s.chars().take(12).collect()),
        ]
    }

    fn arb_key() -> impl Strategy<Value = KeyConfig> {
        (arb_name(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(name, bytes)| {
            KeyConfig {
                name,
                secret: SecretKey::new(bytes),
            }
        })
    }

    fn arb_keys() -> impl Strategy<Value = KeysConfig> {
        proptest::collection::vec(arb_key(), 0..3).prop_map(|keys| KeysConfig { keys })
    }

    fn arb_provider() -> impl Strategy<Value = ProviderConfig> {
        prop_oneof![
            arb_keys().prop_map(ProviderConfig::AesCbc),
            arb_keys().prop_map(ProviderConfig::AesGcm),
            arb_keys().prop_map(ProviderConfig::Secretbox),
            Just(ProviderConfig::Identity),
            (
                proptest::option::of(arb_name()),
                arb_name(),
                proptest::option::of(arb_name()),
                proptest::option::of(any::<i32>()),
                proptest::option::of(arb_name()),
            )
                .prop_map(|(api_version, name, endpoint, cachesize, timeout)| {
                    ProviderConfig::Kms(KmsConfig {
                        api_version,
                        name,
                        endpoint,
                        cachesize,
                        timeout,
                    })
                }),
        ]
    }

    fn arb_config() -> impl Strategy<Value = EncryptionConfiguration> {
        let item = (
            proptest::collection::vec(arb_name(), 0..4),
            proptest::collection::vec(arb_provider(), 0..4),
        )
            .prop_map(|(resources, providers)| ResourceConfig {
                resources,
                providers,
            });
        (any::<bool>(), proptest::collection::vec(item, 0..4)).prop_map(|(legacy, resources)| {
            let (api_version, kind) = if legacy {
                ("v1", "EncryptionConfig")
            } else {
                ("apiserver.config.k8s.io/v1", "EncryptionConfiguration")
            };
            EncryptionConfiguration {
                api_version: api_version.into(),
                kind: kind.into(),
                resources,
            }
        })
    }

    proptest! {
        #[test]
        fn round_trips(c in arb_config()) {
            let yaml = c.to_yaml();
            let y = EncryptionConfiguration::from_yaml_str(&yaml);
            prop_assert!(y.is_ok(), "{:?}\n{}", y, yaml.as_str());
            prop_assert_eq!(y.unwrap(), c.clone());
            let j = EncryptionConfiguration::from_json_str(&c.to_json());
            prop_assert_eq!(j.unwrap(), c.clone());
            // Validation, lookup and drift are total.
            let _ = c.validate();
            let _ = c.rule_for("secrets", "");
            let _ = drift(&c, &c);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(l) = EncryptionConfiguration::from_slice(&bytes) {
                let _ = l.config.validate();
            }
        }

        #[test]
        fn arbitrary_yaml_ish_text_never_panics(text in "[a-z:{}\\[\\]\\- \n'\"*&!#,.0-9]{0,200}") {
            let with_head = format!("apiVersion: v1\nkind: EncryptionConfig\n{text}");
            for t in [text.as_str(), with_head.as_str()] {
                if let Ok(l) = EncryptionConfiguration::from_slice(t.as_bytes()) {
                    let _ = l.config.validate();
                    let _ = l.config.to_yaml();
                }
            }
        }
    }
}
