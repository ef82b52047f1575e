//! Comparing two nodes' configurations.
//!
//! Every kube-apiserver of a cluster must use equivalent configurations: a node that writes
//! with a key the others lack makes objects unreadable through them. Differences are
//! described by resource item, provider, key name and key fingerprint, never key material.

use super::model::{
    EncryptionConfiguration, KeysConfig, KmsConfig, ProviderConfig, ResourceConfig,
};
use std::collections::HashMap;

/// Describe every difference between `a` and `b` that changes how data is read or written.
/// Empty when they are equivalent. Messages say "a" and "b" for the two arguments.
pub fn drift(a: &EncryptionConfiguration, b: &EncryptionConfiguration) -> Vec<String> {
    let mut out = Vec::new();
    if a.api_version != b.api_version || a.kind != b.kind {
        out.push(format!(
            "apiVersion/kind: a has {}/{}, b has {}/{}",
            a.api_version, a.kind, b.api_version, b.kind
        ));
    }
    if a.resources.len() != b.resources.len() {
        out.push(format!(
            "a has {} resource items, b has {}",
            a.resources.len(),
            b.resources.len()
        ));
    }
    let n = a.resources.len().max(b.resources.len());
    for i in 0..n {
        match (a.resources.get(i), b.resources.get(i)) {
            (Some(x), Some(y)) => item_drift(i, x, y, &mut out),
            (Some(x), None) => out.push(format!("{}: only in a", item_label(i, x))),
            (None, Some(y)) => out.push(format!("{}: only in b", item_label(i, y))),
            (None, None) => {}
        }
    }
    out
}

fn item_label(i: usize, item: &ResourceConfig) -> String {
    format!("resources[{i}] ({})", item.resources.join(", "))
}

fn item_drift(i: usize, x: &ResourceConfig, y: &ResourceConfig, out: &mut Vec<String>) {
    let label = item_label(i, x);
    if x.resources != y.resources {
        out.push(format!(
            "{label}: resources differ: a lists [{}], b lists [{}]",
            x.resources.join(", "),
            y.resources.join(", ")
        ));
    }

    let xa = provider_ids(&x.providers);
    let yb = provider_ids(&y.providers);
    let a_labels: Vec<&str> = xa.iter().map(|p| p.label.as_str()).collect();
    let b_labels: Vec<&str> = yb.iter().map(|p| p.label.as_str()).collect();

    for p in &xa {
        if !yb.iter().any(|q| q.id == p.id) {
            out.push(format!(
                "{label}: provider {} (providers[{}]) only in a",
                p.label, p.index
            ));
        }
    }
    for q in &yb {
        if !xa.iter().any(|p| p.id == q.id) {
            out.push(format!(
                "{label}: provider {} (providers[{}]) only in b",
                q.label, q.index
            ));
        }
    }
    if a_labels != b_labels {
        let mut sa = a_labels.clone();
        let mut sb = b_labels.clone();
        sa.sort_unstable();
        sb.sort_unstable();
        if sa == sb {
            out.push(format!(
                "{label}: provider order differs: a [{}], b [{}]",
                a_labels.join(", "),
                b_labels.join(", ")
            ));
        }
        if let (Some(fa), Some(fb)) = (a_labels.first(), b_labels.first()) {
            if fa != fb {
                out.push(format!(
                    "{label}: new writes use provider {fa} on a but {fb} on b"
                ));
            }
        }
    }

    for p in &xa {
        let Some(q) = yb.iter().find(|q| q.id == p.id) else {
            continue;
        };
        let plabel = format!("{label}: {}", p.label);
        match (p.provider, q.provider) {
            (ProviderConfig::Kms(ka), ProviderConfig::Kms(kb)) => kms_drift(&plabel, ka, kb, out),
            (pa, pb) => {
                if let (Some(ka), Some(kb)) = (pa.keys(), pb.keys()) {
                    keys_drift(&plabel, ka, kb, out);
                }
            }
        }
    }
}

struct ProviderId<'a> {
    /// Matching identity: kind plus occurrence, or kms plus name.
    id: String,
    /// Human label: `aescbc`, `aescbc#2`, `kms "name"`.
    label: String,
    index: usize,
    provider: &'a ProviderConfig,
}

fn provider_ids(providers: &[ProviderConfig]) -> Vec<ProviderId<'_>> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    providers
        .iter()
        .enumerate()
        .map(|(index, provider)| {
            let (id, label) = match provider {
                ProviderConfig::Kms(k) => (format!("kms:{}", k.name), format!("kms {:?}", k.name)),
                other => {
                    let kind = other.kind_name();
                    let n = seen.entry(kind).or_insert(0);
                    *n += 1;
                    let label = if *n == 1 {
                        kind.to_string()
                    } else {
                        format!("{kind}#{n}")
                    };
                    (label.clone(), label)
                }
            };
            ProviderId {
                id,
                label,
                index,
                provider,
            }
        })
        .collect()
}

fn find<'k>(keys: &'k KeysConfig, name: &str) -> Option<&'k super::model::KeyConfig> {
    keys.keys.iter().find(|k| k.name == name)
}

fn keys_drift(label: &str, a: &KeysConfig, b: &KeysConfig, out: &mut Vec<String>) {
    for ka in &a.keys {
        match find(b, &ka.name) {
            Some(kb) => {
                if ka.secret != kb.secret {
                    out.push(format!(
                        "{label}: key {:?} differs: fingerprint {} on a, {} on b",
                        ka.name,
                        ka.secret.fingerprint(),
                        kb.secret.fingerprint()
                    ));
                }
            }
            None => {
                let same = b.keys.iter().find(|kb| kb.secret == ka.secret);
                let note = same
                    .map(|kb| format!(" (b has the same key as {:?})", kb.name))
                    .unwrap_or_default();
                out.push(format!(
                    "{label}: key {:?} (fingerprint {}) only in a{note}",
                    ka.name,
                    ka.secret.fingerprint()
                ));
            }
        }
    }
    for kb in &b.keys {
        if find(a, &kb.name).is_none() {
            let same = a.keys.iter().find(|ka| ka.secret == kb.secret);
            let note = same
                .map(|ka| format!(" (a has the same key as {:?})", ka.name))
                .unwrap_or_default();
            out.push(format!(
                "{label}: key {:?} (fingerprint {}) only in b{note}",
                kb.name,
                kb.secret.fingerprint()
            ));
        }
    }

    let common_a: Vec<&str> = a
        .keys
        .iter()
        .map(|k| k.name.as_str())
        .filter(|n| b.keys.iter().any(|k| k.name == *n))
        .collect();
    let common_b: Vec<&str> = b
        .keys
        .iter()
        .map(|k| k.name.as_str())
        .filter(|n| a.keys.iter().any(|k| k.name == *n))
        .collect();
    if common_a != common_b {
        out.push(format!(
            "{label}: key order differs: a [{}], b [{}]",
            common_a.join(", "),
            common_b.join(", ")
        ));
    }
    if let (Some(fa), Some(fb)) = (a.keys.first(), b.keys.first()) {
        if fa.name != fb.name {
            out.push(format!(
                "{label}: new writes use key {:?} on a but {:?} on b",
                fa.name, fb.name
            ));
        }
    }
}

fn kms_drift(label: &str, a: &KmsConfig, b: &KmsConfig, out: &mut Vec<String>) {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(default)".to_string());
    if a.effective_api_version() != b.effective_api_version() {
        out.push(format!(
            "{label}: apiVersion {} on a, {} on b",
            a.effective_api_version(),
            b.effective_api_version()
        ));
    }
    if a.endpoint != b.endpoint {
        out.push(format!(
            "{label}: endpoint {} on a, {} on b",
            show(&a.endpoint),
            show(&b.endpoint)
        ));
    }
    if a.cachesize != b.cachesize {
        out.push(format!(
            "{label}: cachesize {} on a, {} on b",
            show(&a.cachesize.map(|c| c.to_string())),
            show(&b.cachesize.map(|c| c.to_string()))
        ));
    }
    if a.timeout != b.timeout {
        out.push(format!(
            "{label}: timeout {} on a, {} on b",
            show(&a.timeout),
            show(&b.timeout)
        ));
    }
}
