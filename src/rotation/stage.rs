//! Where each `resources[]` item is in the rotation procedure: its [`Stage`], the
//! write key and the readers, read from the order of its providers and keys.
//!
//! Follows kube-apiserver's reading of an EncryptionConfiguration: the first key of
//! the first provider writes, every configured key reads, in order (kubernetes
//! `staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go`,
//! `value/transformer.go` `prefixTransformers`). Which readers are "prepared" and
//! which are "old" is told from their names ([`super::naming`]).

use super::naming::newer;
use super::RotationError;
use crate::config::{EncryptionConfiguration, ProviderConfig};
use crate::key::Fingerprint;
use std::fmt;

/// Which `resources[]` items an edit may touch (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only items listing one of these names (`secrets`, `*.apps`); empty: every item.
    pub resources: Vec<String>,
}

impl Scope {
    fn selects(&self, item: &crate::config::ResourceConfig) -> bool {
        self.resources.is_empty() || item.resources.iter().any(|r| self.resources.contains(r))
    }

    pub(super) fn selected(
        &self,
        cfg: &EncryptionConfiguration,
    ) -> Result<Vec<usize>, RotationError> {
        let v: Vec<usize> = (0..cfg.resources.len())
            .filter(|&i| self.selects(&cfg.resources[i]))
            .collect();
        if v.is_empty() {
            return Err(RotationError::EmptyScope {
                resources: self.resources.clone(),
            });
        }
        Ok(v)
    }
}

/// The items a rotation applies to: the selected items that encrypt, or every selected
/// item when none does (enabling encryption).
pub fn targets(cfg: &EncryptionConfiguration, scope: &Scope) -> Result<Vec<usize>, RotationError> {
    let selected = scope.selected(cfg)?;
    let encrypted: Vec<usize> = selected
        .iter()
        .copied()
        .filter(|&i| {
            !matches!(
                cfg.resources[i].providers.first(),
                None | Some(ProviderConfig::Identity)
            )
        })
        .collect();
    Ok(if encrypted.is_empty() {
        selected
    } else {
        encrypted
    })
}

pub(super) fn item_label(cfg: &EncryptionConfiguration, i: usize) -> String {
    let res = cfg
        .resources
        .get(i)
        .map(|r| r.resources.join(", "))
        .unwrap_or_default();
    format!("resources[{i}] ({res})")
}

/// One configured key (or KMS plugin), by name and fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyId {
    /// `aescbc`, `aesgcm`, `secretbox` or `kms`.
    pub provider: &'static str,
    /// Index of the provider in the item's `providers`.
    pub provider_index: usize,
    /// Index of the key in the provider's `keys` (0 for kms).
    pub key_index: usize,
    /// Key name (kms: plugin name).
    pub name: String,
    /// Fingerprint of a keyed provider's key.
    pub fingerprint: Option<Fingerprint>,
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.fingerprint {
            Some(fp) => write!(
                f,
                "{} key `{}` (fingerprint {fp})",
                self.provider, self.name
            ),
            None => write!(f, "{} `{}`", self.provider, self.name),
        }
    }
}

/// Where an item is in the rotation procedure (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// `identity` writes and no key reads.
    NoEncryption,
    /// A new key reads but does not write yet: next, `promote`.
    Prepared,
    /// A key writes and older keys still read: next, rewrite then `retire`.
    Writing,
    /// One key writes, no other key reads (`identity` may still read).
    Clean,
    /// A key writes and another reads, and their names do not say which is newer.
    Ambiguous,
    /// A KMS plugin writes.
    Kms,
}

impl Stage {
    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Stage::NoEncryption => "no-encryption",
            Stage::Prepared => "prepared",
            Stage::Writing => "writing",
            Stage::Clean => "clean",
            Stage::Ambiguous => "ambiguous",
            Stage::Kms => "kms",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The stage of one `resources[]` item, with the keys that make it so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemStage {
    /// Index in `resources`.
    pub item: usize,
    /// The item's resource names.
    pub resources: Vec<String>,
    /// The stage.
    pub stage: Stage,
    /// The write key; `None` when `identity` writes.
    pub writer: Option<KeyId>,
    /// The key waiting to be promoted ([`Stage::Prepared`]).
    pub prepared: Option<KeyId>,
    /// Readers older than the writer ([`Stage::Ambiguous`]: readers of unknown age).
    pub old: Vec<KeyId>,
    /// Whether `identity` is configured after the writer (plaintext stays readable).
    pub identity_reads: bool,
}

/// The stage of every target item.
pub fn stage(
    cfg: &EncryptionConfiguration,
    scope: &Scope,
) -> Result<Vec<ItemStage>, RotationError> {
    Ok(targets(cfg, scope)?
        .into_iter()
        .map(|i| item_stage(cfg, i))
        .collect())
}

/// The common stage of all items, `None` when they differ.
pub fn overall(stages: &[ItemStage]) -> Option<Stage> {
    let first = stages.first()?.stage;
    stages.iter().all(|s| s.stage == first).then_some(first)
}

pub(super) fn keys_of(providers: &[ProviderConfig], from: usize) -> Vec<KeyId> {
    let mut v = Vec::new();
    for (pi, p) in providers.iter().enumerate().skip(from) {
        match p {
            ProviderConfig::Kms(k) => v.push(KeyId {
                provider: "kms",
                provider_index: pi,
                key_index: 0,
                name: k.name.clone(),
                fingerprint: None,
            }),
            other => {
                if let Some(keys) = other.keys() {
                    for (ki, k) in keys.keys.iter().enumerate() {
                        v.push(KeyId {
                            provider: other.kind_name(),
                            provider_index: pi,
                            key_index: ki,
                            name: k.name.clone(),
                            fingerprint: Some(k.secret.fingerprint()),
                        });
                    }
                }
            }
        }
    }
    v
}

pub(super) fn item_stage(cfg: &EncryptionConfiguration, i: usize) -> ItemStage {
    let item = &cfg.resources[i];
    let all = keys_of(&item.providers, 0);
    let identity_at = item
        .providers
        .iter()
        .position(|p| matches!(p, ProviderConfig::Identity));
    let mut out = ItemStage {
        item: i,
        resources: item.resources.clone(),
        stage: Stage::Clean,
        writer: None,
        prepared: None,
        old: Vec::new(),
        identity_reads: identity_at.is_some_and(|at| at > 0),
    };
    match item.providers.first() {
        None | Some(ProviderConfig::Identity) => {
            let mut readers = all.into_iter();
            match readers.next() {
                None => out.stage = Stage::NoEncryption,
                Some(first) => {
                    out.stage = Stage::Prepared;
                    out.prepared = Some(first);
                    out.old = readers.collect();
                }
            }
        }
        Some(ProviderConfig::Kms(_)) => {
            out.stage = Stage::Kms;
            let mut it = all.into_iter();
            out.writer = it.next();
            out.old = it.collect();
        }
        Some(_) => {
            let mut it = all.into_iter();
            let writer = it.next();
            let readers: Vec<KeyId> = it.collect();
            let Some(w) = writer else {
                // A keyed provider without keys is invalid; report it as nothing to do.
                return out;
            };
            let ages: Vec<Option<bool>> = readers.iter().map(|r| newer(&r.name, &w.name)).collect();
            out.writer = Some(w);
            if readers.is_empty() {
                out.stage = Stage::Clean;
            } else if ages.iter().any(Option::is_none)
                || ages.iter().filter(|a| **a == Some(true)).count() > 1
            {
                out.stage = Stage::Ambiguous;
                out.old = readers;
            } else if let Some(p) = ages.iter().position(|a| *a == Some(true)) {
                let mut readers = readers;
                out.prepared = Some(readers.remove(p));
                out.old = readers;
                out.stage = Stage::Prepared;
            } else {
                out.stage = Stage::Writing;
                out.old = readers;
            }
        }
    }
    out
}

pub(super) fn identity_id() -> KeyId {
    KeyId {
        provider: "identity",
        provider_index: 0,
        key_index: 0,
        name: "identity".to_string(),
        fingerprint: None,
    }
}

pub(super) fn known_keys(cfg: &EncryptionConfiguration, items: &[usize]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for &i in items {
        for k in keys_of(&cfg.resources[i].providers, 0) {
            let s = format!("{}/{}", k.provider, k.name);
            if !v.contains(&s) {
                v.push(s);
            }
        }
    }
    v
}
