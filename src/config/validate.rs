//! Validation: upstream's rules and error texts, plus warnings for mistakes upstream accepts.
//!
//! Errors mirror `staging/src/k8s.io/apiserver/pkg/apis/apiserver/validation/validation_encryption.go`
//! (called with `reload = false`) and the load-time masking check of
//! `staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go`. A config with
//! any error finding would be refused by kube-apiserver. Warnings are ours: configurations
//! kube-apiserver starts with but that do not do what their author most likely meant.

use super::model::{EncryptionConfiguration, GroupResource, KeysConfig, KmsConfig, ProviderConfig};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// How serious a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// kube-apiserver refuses this configuration.
    Error,
    /// Accepted upstream, but likely wrong or risky.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found by [`EncryptionConfiguration::validate`]. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Field path in upstream's notation, e.g. `resources[0].providers[1].aescbc.keys[0].secret`.
    pub path: String,
    /// What is wrong (upstream's text for upstream's rules).
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.severity, self.path, self.message)
    }
}

// Upstream texts (validation_encryption.go).
const DUPLICATE_RESOURCE_ERR: &str = "the same resource cannot be specified multiple times";
const OVERLAP_ERR: &str = "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked";
const RESOURCE_NAME_ERR: &str = "resource name should not contain capital letters";
const STAR_RESOURCE_ERR: &str =
    "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources";
const NON_REST_API_RESOURCE_ERR: &str =
    "resources which do not have REST API/s cannot be encrypted";
const EVENTS_GROUP_ERR: &str = "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file";
const EXTENSIONS_GROUP_ERR: &str =
    "'extensions' group has been removed and cannot be used for encryption";
const RESOURCE_ACROSS_GROUP_ERR: &str =
    "encrypting the same resource across groups is not supported";
const NON_REST_RESOURCES: &[&str] = &[
    "apiserveripinfo",
    "serviceipallocations",
    "servicenodeportallocations",
];

/// Key sizes accepted for AES (`aesKeySizes` upstream).
pub(crate) const AES_KEY_SIZES: &[usize] = &[16, 24, 32];
/// Key sizes accepted for secretbox (`secretBoxKeySizes` upstream).
pub(crate) const SECRETBOX_KEY_SIZES: &[usize] = &[32];

struct Out(Vec<Finding>);

impl Out {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Finding {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        });
    }
    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Finding {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        });
    }
}

impl EncryptionConfiguration {
    /// Check the configuration. Findings come in file order; an empty list means
    /// kube-apiserver would accept it and we have nothing to warn about.
    pub fn validate(&self) -> Vec<Finding> {
        let mut out = Out(Vec::new());
        if self.resources.is_empty() {
            out.error("resources", "at least one resources is required");
            return out.0;
        }

        // Load-time state from config.go: rules seen so far, in order, for masking.
        let mut seen: HashMap<GroupResource<'_>, usize> = HashMap::new();
        // kmsProviderNames upstream: names of kms providers seen so far.
        let mut kms_names: HashSet<&str> = HashSet::new();

        for (i, item) in self.resources.iter().enumerate() {
            let r = format!("resources[{i}].resources");
            let p = format!("resources[{i}].providers");

            if item.resources.is_empty() {
                out.error(&r, format!("at least one {r} is required"));
            }
            check_overlap(&item.resources, &r, &mut out);
            check_names(&item.resources, &r, &mut out);
            check_masking(&item.resources, i, &r, &mut seen, &mut out);

            if item.providers.is_empty() {
                out.error(&p, format!("at least one {p} is required"));
            }
            for (j, provider) in item.providers.iter().enumerate() {
                let path = format!("{p}[{j}]");
                match provider {
                    ProviderConfig::Kms(k) => {
                        check_kms(k, &format!("{path}.kms"), &kms_names, &mut out);
                        kms_names.insert(&k.name);
                    }
                    ProviderConfig::AesGcm(k) | ProviderConfig::AesCbc(k) => check_keys(
                        k,
                        &format!("{path}.{}.keys", provider.kind_name()),
                        AES_KEY_SIZES,
                        &mut out,
                    ),
                    ProviderConfig::Secretbox(k) => check_keys(
                        k,
                        &format!("{path}.secretbox.keys"),
                        SECRETBOX_KEY_SIZES,
                        &mut out,
                    ),
                    ProviderConfig::Identity => {}
                }
            }
            lint_item(item, &p, &mut out);
        }
        out.0
    }

    /// True when [`validate`](Self::validate) reports no errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.validate()
            .iter()
            .all(|f| f.severity != Severity::Error)
    }
}

/// Duplicates and overlaps within one `resources:` list, with upstream's pairwise
/// semantics (`validateResourceOverlap`): one duplicate pair is recorded as a duplicate,
/// any further equal pair is judged for overlap like distinct entries.
fn check_overlap(resources: &[String], path: &str, out: &mut Out) {
    if resources.len() < 2 {
        return;
    }
    let parsed: Vec<GroupResource<'_>> =
        resources.iter().map(|r| GroupResource::parse(r)).collect();
    let (mut duplicate, mut overlap) = (false, false);
    for (i, a) in parsed.iter().enumerate() {
        for (j, b) in parsed.iter().enumerate() {
            if i == j {
                continue;
            }
            if a == b && !duplicate {
                duplicate = true;
                continue;
            }
            if overlap {
                continue;
            }
            if a.is_any_any() {
                overlap = true;
                continue;
            }
            if a.group == b.group && (a.resource == "*" || b.resource == "*") {
                overlap = true;
            }
        }
    }
    if duplicate {
        out.error(path, DUPLICATE_RESOURCE_ERR);
    }
    if overlap {
        out.error(path, OVERLAP_ERR);
    }
}

/// Per-name rules (`validateResourceNames`): first matching rule only, as upstream.
fn check_names(resources: &[String], path: &str, out: &mut Out) {
    for (j, res) in resources.iter().enumerate() {
        let jj = format!("{path}[{j}]");
        let gr = GroupResource::parse(res);
        if res.to_lowercase() != *res {
            out.error(jj, RESOURCE_NAME_ERR);
        } else if res == "*" {
            out.error(jj, STAR_RESOURCE_ERR);
        } else if NON_REST_RESOURCES.contains(&res.as_str()) {
            out.error(jj, NON_REST_API_RESOURCE_ERR);
        } else if gr.group == "events.k8s.io" {
            out.error(jj, EVENTS_GROUP_ERR);
        } else if gr.group == "extensions" {
            out.error(jj, EXTENSIONS_GROUP_ERR);
        } else if gr.group == "*" && gr.resource != "*" {
            out.error(jj, RESOURCE_ACROSS_GROUP_ERR);
        } else if res.is_empty() {
            // Not checked upstream; an empty name matches no resource.
            out.warn(jj, "empty resource name matches no resource; remove it");
        }
    }
}

/// Masking across the whole file, in order (`getTransformerOverridesAndKMSPluginProbes` in
/// config.go): a rule is refused when an earlier rule (earlier item, or earlier in the
/// same list) is `*.<its group>` or `*.*`. A plain name repeated in a later item is not
/// refused upstream: its providers are appended to the earlier item's, which we warn about.
fn check_masking<'a>(
    resources: &'a [String],
    item: usize,
    path: &str,
    seen: &mut HashMap<GroupResource<'a>, usize>,
    out: &mut Out,
) {
    for (j, res) in resources.iter().enumerate() {
        let gr = GroupResource::parse(res);
        let any_in_group = GroupResource {
            group: gr.group,
            resource: "*",
        };
        let any_any = GroupResource {
            group: "*",
            resource: "*",
        };
        let jj = format!("{path}[{j}]");
        let mask = [any_in_group, any_any]
            .into_iter()
            .find(|m| seen.contains_key(m));
        if let Some(m) = mask {
            out.error(
                jj,
                format!(
                    "resource {:?} is masked by earlier rule {:?}",
                    gr.yaml_string(),
                    m.yaml_string()
                ),
            );
            continue;
        }
        match seen.get(&gr) {
            Some(&first) if first != item => out.warn(
                jj,
                format!(
                    "resource {res:?} is also listed in resources[{first}]; kube-apiserver appends this item's providers after that item's, so writes use resources[{first}]'s first provider; list each resource once"
                ),
            ),
            Some(_) => {}
            None => {
                seen.insert(gr, item);
            }
        }
    }
}

fn check_keys(keys: &KeysConfig, path: &str, sizes: &[usize], out: &mut Out) {
    if keys.keys.is_empty() {
        out.error(path, "at least one keys is required");
        return;
    }
    for (k, key) in keys.keys.iter().enumerate() {
        let kp = format!("{path}[{k}]");
        if key.name.is_empty() {
            out.error(format!("{kp}.name"), "name is a mandatory field for a key");
        }
        if key.secret.is_empty() {
            out.error(
                format!("{kp}.secret"),
                "secret is a mandatory field for a key",
            );
            continue;
        }
        if !sizes.contains(&key.secret.len()) {
            out.error(
                format!("{kp}.secret"),
                format!(
                    "secret is not of the expected length, got {}, expected one of {}",
                    key.secret.len(),
                    go_int_slice(sizes)
                ),
            );
        }
    }
}

/// Go's `%v` of an `[]int`: `[16 24 32]`.
fn go_int_slice(v: &[usize]) -> String {
    let parts: Vec<String> = v.iter().map(|n| n.to_string()).collect();
    format!("[{}]", parts.join(" "))
}

/// `validateKMSConfiguration` (upstream order: name, timeout, endpoint, cachesize, apiVersion).
fn check_kms(k: &KmsConfig, path: &str, earlier_names: &HashSet<&str>, out: &mut Out) {
    let version = k.effective_api_version();
    let name_path = format!("{path}.name");
    if k.name.is_empty() {
        out.error(&name_path, "name is a mandatory field for a provider");
    }
    if version != "v1" && k.name.contains(':') {
        out.error(
            &name_path,
            format!("invalid KMS provider name {}, must not contain ':'", k.name),
        );
    }
    if earlier_names.contains(k.name.as_str()) {
        if version != "v1" {
            out.error(
                &name_path,
                format!(
                    "duplicate KMS provider name {}, names must be unique",
                    k.name
                ),
            );
        } else {
            out.warn(
                &name_path,
                format!("duplicate KMS provider name {}; kube-apiserver refuses this when --encryption-provider-config-automatic-reload is on; give each kms provider a unique name", k.name),
            );
        }
    }

    if let Some(t) = &k.timeout {
        match parse_go_duration(t) {
            Ok(ns) if ns > 0 => {}
            Ok(_) => out.error(
                format!("{path}.timeout"),
                "timeout should be a positive value",
            ),
            Err(e) => out.error(
                format!("{path}.timeout"),
                format!("{e}; use a Go duration such as 3s or 500ms"),
            ),
        }
    }

    let ep_path = format!("{path}.endpoint");
    match k.endpoint.as_deref() {
        None | Some("") => out.error(ep_path, "endpoint is a mandatory field for a kms"),
        Some(ep) => match url_scheme(ep) {
            Err(e) => out.error(
                ep_path,
                format!("invalid endpoint for kms provider, error: {e}"),
            ),
            Ok(scheme) if scheme != "unix" => out.error(
                ep_path,
                format!("unsupported scheme {scheme:?} for KMS provider, only unix is supported"),
            ),
            Ok(_) => {}
        },
    }

    if version != "v1" && k.cachesize.is_some() {
        out.error(
            format!("{path}.cachesize"),
            "cachesize is not supported in v2",
        );
    }
    if version == "v1" && k.cachesize == Some(0) {
        out.error(
            format!("{path}.cachesize"),
            "cachesize should be a positive value, or negative to disable",
        );
    }

    if version != "v1" && version != "v2" {
        // Upstream formats the field name here instead of the value; we show the value.
        out.error(
            format!("{path}.apiVersion"),
            format!(
                "unsupported apiVersion {version} for KMS provider, only v1 and v2 are supported"
            ),
        );
    }
    if version == "v1" {
        out.warn(
            format!("{path}.apiVersion"),
            "KMS v1 is deprecated and disabled by default since Kubernetes 1.29 (it needs --feature-gates=KMSv1=true); migrate to apiVersion: v2",
        );
        if k.name.contains(':') {
            out.warn(
                &name_path,
                "':' in a KMS provider name is ambiguous in the stored prefix k8s:enc:kms:v1:<name>:; use a name without ':'",
            );
        }
    }
}

/// Lints for one resource item: provider order, missing identity, key names.
fn lint_item(item: &super::model::ResourceConfig, p: &str, out: &mut Out) {
    for (i, name) in item.resources.iter().enumerate() {
        // Wildcards govern what they name; capitals and resources without a REST
        // API are already upstream's errors.
        if name.contains('*')
            || name.to_lowercase() != *name
            || NON_REST_RESOURCES.contains(&name.as_str())
        {
            continue;
        }
        let gr = crate::etcd_key::GroupResource::parse(name);
        if let Err(e) = crate::etcd_key::check_resource_name(&gr) {
            out.warn(
                format!("{}.resources[{i}]", p.trim_end_matches(".providers")),
                format!("{e}: this rule matches nothing, and those objects are written with the rules after it"),
            );
        }
    }
    if let Some(first) = item.providers.first() {
        if matches!(first, ProviderConfig::Identity) && item.providers.len() > 1 {
            out.warn(
                format!("{p}[0]"),
                "identity is the first provider, so new writes are stored as plaintext; the providers after it are only used to read; move the encrypting provider first to encrypt",
            );
        }
        if !matches!(first, ProviderConfig::Identity)
            && !item
                .providers
                .iter()
                .any(|x| matches!(x, ProviderConfig::Identity))
        {
            out.warn(
                p,
                "no identity provider: objects of these resources still stored as plaintext cannot be read; add `- identity: {}` as the last provider until every object has been rewritten encrypted",
            );
        }
    }

    // Key names: within a provider, and across the providers of the item.
    let mut names: HashMap<&str, (usize, &'static str, usize)> = HashMap::new();
    for (j, provider) in item.providers.iter().enumerate() {
        let Some(keys) = provider.keys() else {
            continue;
        };
        let kind = provider.kind_name();
        for (k, key) in keys.keys.iter().enumerate() {
            let kp = format!("{p}[{j}].{kind}.keys[{k}].name");
            if key.name.contains(':') {
                out.warn(
                    &kp,
                    format!(
                        "key name {:?} contains ':', the separator of the stored prefix k8s:enc:{kind}:v1:<name>:, so prefixes can collide; use a name without ':'",
                        key.name
                    ),
                );
            }
            if key.name.is_empty() {
                continue;
            }
            match names.get(key.name.as_str()) {
                Some(&(pj, _, pk)) if pj == j => out.warn(
                    &kp,
                    format!(
                        "key name {:?} is also used by keys[{pk}] of this provider; reads try both keys for the same prefix (with aescbc a wrong key can pass the padding check); give each key a unique name",
                        key.name
                    ),
                ),
                Some(&(pj, pkind2, pk)) => {
                    let clash = if pkind2 == kind {
                        "both write the same prefix, so reads cannot tell them apart"
                    } else {
                        "the stored prefixes differ, but operators and tools identify keys by name"
                    };
                    out.warn(
                        &kp,
                        format!(
                            "key name {:?} is also used by {p}[{pj}].{pkind2}.keys[{pk}]; {clash}; give each key a unique name",
                            key.name
                        ),
                    )
                }
                None => {
                    names.insert(&key.name, (j, kind, k));
                }
            }
        }
    }
}

/// The scheme of `ep` as Go's `url.Parse` gives it (lower-cased; "" when none),
/// or its error when Go refuses the URL.
fn url_scheme(ep: &str) -> Result<String, String> {
    crate::gourl::parse(ep).map(|u| u.scheme)
}

/// Parse a Go `time.Duration` string (`300ms`, `-1.5h`, `2h45m`); returns nanoseconds.
pub(crate) fn parse_go_duration(s: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    if total > 9.3e18 {
        return Err(invalid());
    }
    let ns = total as i128;
    Ok(if neg { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("3s"), Ok(3_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("-2ms"), Ok(-2_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("0s"), Ok(0));
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("3").is_err());
        assert!(parse_go_duration("3x").is_err());
        assert!(parse_go_duration("s").is_err());
        assert!(parse_go_duration("1..2s").is_err());
        assert!(parse_go_duration("-").is_err());
    }

    #[test]
    fn url_schemes() {
        assert_eq!(url_scheme("unix:///tmp/kms.sock").as_deref(), Ok("unix"));
        assert_eq!(url_scheme("UNIX:///x").as_deref(), Ok("unix"));
        assert_eq!(url_scheme("tcp://1.2.3.4:80").as_deref(), Ok("tcp"));
        assert_eq!(url_scheme("/tmp/kms.sock").as_deref(), Ok(""));
        assert!(url_scheme(":foo").is_err());
        assert!(url_scheme("unix:///a\nb").is_err());
    }

    /// kube-apiserver validates a KMS endpoint with Go's `url.Parse`
    /// (`validateKMSEndpoint` in upstream
    /// `staging/src/k8s.io/apiserver/pkg/apis/apiserver/validation/validation_encryption.go`),
    /// which refuses a bad percent escape, a non-numeric port, and a host with
    /// characters a host cannot hold.
    #[test]
    fn endpoints_go_url_parse_refuses() {
        for bad in [
            "unix:///tmp/kms%zz.sock",
            "unix:///tmp/kms%2.sock",
            "unix://host:port/tmp/kms.sock",
            "unix://[::1/tmp/kms.sock",
            "unix://a b/tmp/kms.sock",
            "unix:///tmp/kms.sock#%zz",
        ] {
            assert!(url_scheme(bad).is_err(), "{bad}");
        }
        for good in [
            "unix:///tmp/kms%20x.sock",
            "unix://host:123/tmp/kms.sock",
            "unix://[::1]:1/tmp/kms.sock",
            "unix:///tmp/kms.sock?%zz",
            "unix:relative",
        ] {
            assert_eq!(url_scheme(good).as_deref(), Ok("unix"), "{good}");
        }
    }

    #[test]
    fn go_slice_format() {
        assert_eq!(go_int_slice(AES_KEY_SIZES), "[16 24 32]");
    }
}
