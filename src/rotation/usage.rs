//! [`KeyUsage`]: which objects of a full scan use which key, counted from audit
//! reports made with the config being edited.
//!
//! A stored value belongs to every keyed provider key whose whole prefix
//! `k8s:enc:<provider>:v1:<name>:` it starts with, as kube-apiserver offers it to each
//! of them (kubernetes `staging/src/k8s.io/apiserver/pkg/storage/value/transformer.go`,
//! `prefixTransformers.TransformFromStorage`). Walking a snapshot or a live etcd to
//! fill it is [`super::scan`]'s work.

use crate::audit::{Auditor, ObjectReport, Status, StoredObject, Summary};
use crate::config::{EncryptionConfiguration, ProviderConfig};
use crate::etcd_key::GroupResource;
use crate::transformer::Transformers;
use std::collections::BTreeMap;

/// The resource [`KeyUsage::under_key`] names for a value under `--etcd-prefix`
/// at a key that names no object.
pub const NOT_AN_OBJECT_KEY: &str = "(keys that name no object)";

/// How many objects a refusal or report lists by name.
pub const MAX_EXAMPLES: usize = 20;

/// Objects found by one test of a scan: how many, the first keys, their resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectList {
    /// How many objects.
    pub count: u64,
    /// The first [`MAX_EXAMPLES`] etcd keys.
    pub examples: Vec<String>,
    /// Their resources (`secrets`, `resourceclaims.resource.k8s.io`), each once.
    pub resources: Vec<String>,
}

impl ObjectList {
    fn add(&mut self, key: &str, resource: &str) {
        self.count += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(key.to_string());
        }
        if !self.resources.iter().any(|r| r == resource) {
            self.resources.push(resource.to_string());
        }
    }

    fn merge(&mut self, other: ObjectList) {
        self.count += other.count;
        let room = MAX_EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
        for r in other.resources {
            if !self.resources.contains(&r) {
                self.resources.push(r);
            }
        }
    }
}

/// The whole prefix of the values a keyed provider's key writes:
/// `k8s:enc:<provider>:v1:<name>:` (kubernetes
/// `staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go`).
/// kube-apiserver offers a value to every key whose whole prefix the value starts with
/// (`value/transformer.go`, `prefixTransformers.TransformFromStorage`), so a value under
/// `old:1` is also offered to a key named `old`: both count it.
fn key_prefix(provider: &ProviderConfig, name: &str) -> Option<Vec<u8>> {
    let base: &[u8] = match provider {
        ProviderConfig::AesCbc(_) => crate::envelope::AESCBC_PREFIX,
        ProviderConfig::AesGcm(_) => crate::envelope::AESGCM_PREFIX,
        ProviderConfig::Secretbox(_) => crate::envelope::SECRETBOX_PREFIX,
        ProviderConfig::Identity | ProviderConfig::Kms(_) => return None,
    };
    let mut p = base.to_vec();
    p.extend_from_slice(name.as_bytes());
    p.push(b':');
    Some(p)
}

/// Every keyed provider key of `cfg`, once per provider and name, with its prefix.
fn configured_prefixes(cfg: &EncryptionConfiguration) -> Vec<(&'static str, String, Vec<u8>)> {
    let mut v: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    for item in &cfg.resources {
        for p in &item.providers {
            let Some(ks) = p.keys() else { continue };
            for k in &ks.keys {
                let kind = p.kind_name();
                if v.iter().any(|(pk, n, _)| *pk == kind && *n == k.name) {
                    continue;
                }
                if let Some(prefix) = key_prefix(p, &k.name) {
                    v.push((kind, k.name.clone(), prefix));
                }
            }
        }
    }
    v
}

/// Which objects use which key: the proof `retire` needs, from a full scan.
///
/// Built from audit reports made with the config being edited, so "uses key K" means
/// what kube-apiserver with that config would do. Feed it every object of a snapshot or
/// of a live etcd (page by page: [`KeyUsage::merge`] combines partial scans).
#[derive(Clone, Debug, Default)]
pub struct KeyUsage {
    /// Counts by resource, provider, key name and status.
    pub summary: Summary,
    /// The first [`MAX_EXAMPLES`] object keys per (resource, provider, key name).
    pub examples: BTreeMap<(String, &'static str, Option<String>), Vec<String>>,
    /// Objects of any resource whose stored value starts with the whole prefix of a
    /// configured key (see [`key_prefix`]), by (provider, key name); also values
    /// under `--etcd-prefix` at keys that name no object ([`NOT_AN_OBJECT_KEY`]).
    pub under_key: BTreeMap<(&'static str, String), ObjectList>,
    /// The first [`MAX_EXAMPLES`] objects whose data is at risk: under a key the config
    /// lacks, undecryptable, or plaintext the config cannot read.
    pub at_risk: Vec<ObjectReport>,
    /// How many objects are at risk.
    pub at_risk_total: u64,
}

impl KeyUsage {
    /// Classify `objects` with `auditor` (built with the config's transformers `ts`).
    pub fn scan<'a>(
        auditor: &Auditor<'_>,
        ts: &Transformers,
        objects: impl IntoIterator<Item = StoredObject<'a>>,
    ) -> KeyUsage {
        let prefixes = configured_prefixes(ts.config());
        let base = format!("{}/", auditor.options().prefix.trim_end_matches('/'));
        let mut u = KeyUsage::default();
        for obj in objects {
            if let Some(r) = auditor.classify(&obj) {
                u.count_under_key(&prefixes, obj.value, &r.key, &r.resource);
                let gr = GroupResource::parse(&r.resource);
                let reads_plaintext = ts.for_resource(&gr).0.reads_plaintext();
                u.add(r, reads_plaintext);
            } else if obj.key.starts_with(base.as_bytes()) {
                // Under the prefix, but no object's key (one segment, no name, not
                // UTF-8): kube-apiserver reads no such key, but a value there under
                // a key is still data that key protects.
                let key = String::from_utf8_lossy(obj.key);
                u.count_under_key(&prefixes, obj.value, &key, NOT_AN_OBJECT_KEY);
            }
        }
        u
    }

    /// Count `key` (of `resource`) under every configured key whose whole prefix
    /// `value` starts with.
    fn count_under_key(
        &mut self,
        prefixes: &[(&'static str, String, Vec<u8>)],
        value: &[u8],
        key: &str,
        resource: &str,
    ) {
        for (kind, name, prefix) in prefixes {
            if value.starts_with(prefix) {
                self.under_key
                    .entry((*kind, name.clone()))
                    .or_default()
                    .add(key, resource);
            }
        }
    }

    /// Count one report; `reads_plaintext`: whether the object's resource chain has
    /// `identity` (a plaintext object without it is at risk).
    fn add(&mut self, r: ObjectReport, reads_plaintext: bool) {
        self.summary.add(&r);
        let ex = self
            .examples
            .entry((r.resource.clone(), r.provider, r.key_name.clone()))
            .or_default();
        if ex.len() < MAX_EXAMPLES {
            ex.push(r.key.clone());
        }
        // An object only an extra key (archive, older config) reads is stale in an
        // audit, but kube-apiserver with this config cannot read it.
        let risk = matches!(r.status, Status::UnknownKey | Status::Undecryptable)
            || r.read_with.is_some()
            || (r.status == Status::Plaintext && !reads_plaintext);
        if risk {
            self.at_risk_total += 1;
            if self.at_risk.len() < MAX_EXAMPLES {
                self.at_risk.push(r);
            }
        }
    }

    /// Combine with the scan of the objects that follow.
    pub fn merge(mut self, other: KeyUsage) -> KeyUsage {
        self.summary.merge(other.summary);
        for (k, v) in other.examples {
            let ex = self.examples.entry(k).or_default();
            let room = MAX_EXAMPLES.saturating_sub(ex.len());
            ex.extend(v.into_iter().take(room));
        }
        for (k, v) in other.under_key {
            self.under_key.entry(k).or_default().merge(v);
        }
        let room = MAX_EXAMPLES.saturating_sub(self.at_risk.len());
        self.at_risk.extend(other.at_risk.into_iter().take(room));
        self.at_risk_total += other.at_risk_total;
        self
    }

    /// Objects (count, first keys, resources) of resources whose rule is one of `items`
    /// and that match `pred(provider, key name, status)`.
    pub(super) fn matching(
        &self,
        cfg: &EncryptionConfiguration,
        items: &[usize],
        pred: impl Fn(&str, Option<&str>, Status) -> bool,
    ) -> (u64, Vec<String>, Vec<String>) {
        let mut count = 0;
        let mut keys = Vec::new();
        let mut resources: Vec<String> = Vec::new();
        for ((res, prov, key, st), n) in &self.summary.cells {
            if !pred(prov, key.as_deref(), *st) || !relevant(cfg, res, items) {
                continue;
            }
            count += n;
            if !resources.contains(res) {
                resources.push(res.clone());
            }
            if let Some(ex) = self.examples.get(&(res.clone(), *prov, key.clone())) {
                let room = MAX_EXAMPLES.saturating_sub(keys.len());
                keys.extend(ex.iter().take(room).cloned());
            }
        }
        (count, keys, resources)
    }

    /// Objects of any resource stored under the whole prefix of `provider` key `name`
    /// (`aescbc`, `aesgcm` or `secretbox`).
    pub fn objects_under(&self, provider: &str, name: &str) -> u64 {
        self.under_key
            .iter()
            .find(|((p, n), _)| *p == provider && n == name)
            .map_or(0, |(_, o)| o.count)
    }
}

pub(super) fn relevant(cfg: &EncryptionConfiguration, resource: &str, items: &[usize]) -> bool {
    let gr = GroupResource::parse(resource);
    let found = cfg
        .matching_items(&gr.resource, &gr.group)
        .any(|i| items.contains(&i));
    found
}
