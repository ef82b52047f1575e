//! The edits of the procedure: [`prepare`] (a new key reads), [`promote`] (it writes)
//! and [`retire`] (an old key, or `identity`, goes once a scan proves nothing uses it).
//!
//! Each is a pure transformation of an EncryptionConfiguration that refuses an unsafe
//! step with a [`RotationError`]; they follow the steps of kubernetes/website
//! `tasks/administer-cluster/encrypt-data.md` ("Rotating a decryption key"). Writing the
//! result is [`super::file`]'s work.

use super::naming::{free_default_name, name_user};
use super::stage::{identity_id, item_label, item_stage, keys_of, known_keys, targets};
use super::{KeyId, KeyUsage, RotationError, Scope, Stage};
use crate::config::{EncryptionConfiguration, KeyConfig, KeysConfig, ProviderConfig};
use crate::key::SecretKey;
use std::fmt;
use std::time::SystemTime;

/// Size of the keys `prepare` generates: valid for aescbc, aesgcm (AES-256) and secretbox.
pub const NEW_KEY_LEN: usize = 32;

/// A provider `prepare` can create a key for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyedProvider {
    /// `aescbc`
    AesCbc,
    /// `aesgcm`
    AesGcm,
    /// `secretbox`
    Secretbox,
}

impl KeyedProvider {
    /// The config name of the provider.
    pub fn name(self) -> &'static str {
        match self {
            KeyedProvider::AesCbc => "aescbc",
            KeyedProvider::AesGcm => "aesgcm",
            KeyedProvider::Secretbox => "secretbox",
        }
    }

    fn of(p: &ProviderConfig) -> Option<KeyedProvider> {
        match p {
            ProviderConfig::AesCbc(_) => Some(KeyedProvider::AesCbc),
            ProviderConfig::AesGcm(_) => Some(KeyedProvider::AesGcm),
            ProviderConfig::Secretbox(_) => Some(KeyedProvider::Secretbox),
            ProviderConfig::Identity | ProviderConfig::Kms(_) => None,
        }
    }

    fn wrap(self, keys: KeysConfig) -> ProviderConfig {
        match self {
            KeyedProvider::AesCbc => ProviderConfig::AesCbc(keys),
            KeyedProvider::AesGcm => ProviderConfig::AesGcm(keys),
            KeyedProvider::Secretbox => ProviderConfig::Secretbox(keys),
        }
    }
}

/// One change to the file, by key name and fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// A key was added to an existing provider, to read only.
    AddedKey {
        /// Item label, e.g. `resources[0] (secrets)`.
        item: String,
        /// The key.
        key: KeyId,
    },
    /// A provider was added with one key, to read only.
    AddedProvider {
        /// Item label.
        item: String,
        /// The new key.
        key: KeyId,
        /// The provider it follows (the current writer).
        after: &'static str,
    },
    /// A key became the writer.
    Promoted {
        /// Item label.
        item: String,
        /// The new write key.
        key: KeyId,
        /// What wrote before (`identity` or a key).
        previous: String,
    },
    /// A key was removed.
    RemovedKey {
        /// Item label.
        item: String,
        /// The removed key.
        key: KeyId,
        /// Its provider went with it (it was the last key).
        provider_removed: bool,
    },
    /// `identity` was removed.
    RemovedIdentity {
        /// Item label.
        item: String,
    },
}

impl fmt::Display for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edit::AddedKey { item, key } => write!(
                f,
                "{item}: added {key} as the second key of {}: it reads, it does not write yet",
                key.provider
            ),
            Edit::AddedProvider { item, key, after } => write!(
                f,
                "{item}: added provider {} with {key} right after {after}: it reads, it does not write yet",
                key.provider
            ),
            Edit::Promoted {
                item,
                key,
                previous,
            } => write!(f, "{item}: {key} now writes (before: {previous})"),
            Edit::RemovedKey {
                item,
                key,
                provider_removed,
            } => {
                write!(f, "{item}: removed {key}")?;
                if *provider_removed {
                    write!(f, " and its provider {} (no keys left)", key.provider)?;
                }
                Ok(())
            }
            Edit::RemovedIdentity { item } => write!(
                f,
                "{item}: removed identity: plaintext objects can no longer be read"
            ),
        }
    }
}

/// What an edit changed. `Display` prints one line per edit, never key material.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The edits, in item order.
    pub edits: Vec<Edit>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, e) in self.edits.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// What `prepare` should add.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrepareOptions {
    /// Provider of the new key; `None`: the current write provider's kind (aescbc when
    /// encryption is not enabled yet).
    pub provider: Option<KeyedProvider>,
    /// Name of the new key; `None`: `key-YYYYMMDDTHHMMSSZ` from `now` (with `-N` added
    /// when the config already has that name).
    pub key_name: Option<String>,
    /// Items to touch.
    pub scope: Scope,
}

/// Add a fresh 32-byte key from the OS RNG as a reader (step 1 of the procedure).
///
/// In every target item: when the writer is a keyed provider and `provider` is `None` or
/// the same kind, the key becomes that provider's second key; when `provider` differs,
/// a new provider with the key goes right after the writer; when `identity` writes, a new
/// provider (aescbc by default) goes right after `identity`. Refused when any target item
/// already has a key that reads but does not write.
pub fn prepare(
    cfg: &EncryptionConfiguration,
    opts: &PrepareOptions,
    now: SystemTime,
) -> Result<(EncryptionConfiguration, Change), RotationError> {
    let secret =
        SecretKey::generate(NEW_KEY_LEN).map_err(|e| RotationError::Random(e.to_string()))?;
    prepare_with_key(cfg, opts, now, secret)
}

/// [`prepare`] with a given key (for tests and reproducible fixtures).
pub fn prepare_with_key(
    cfg: &EncryptionConfiguration,
    opts: &PrepareOptions,
    now: SystemTime,
    secret: SecretKey,
) -> Result<(EncryptionConfiguration, Change), RotationError> {
    let name = match &opts.key_name {
        Some(n) => n.clone(),
        None => free_default_name(cfg, now),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(RotationError::BadName { name });
    }
    if let Some(item) = name_user(cfg, &name) {
        return Err(RotationError::NameTaken { name, item });
    }
    let targets = targets(cfg, &opts.scope)?;
    for &i in &targets {
        let st = item_stage(cfg, i);
        let item = item_label(cfg, i);
        match st.stage {
            Stage::NoEncryption | Stage::Clean => {}
            Stage::Prepared => {
                if let Some(key) = st.prepared {
                    return Err(RotationError::AlreadyPrepared { item, key });
                }
            }
            Stage::Writing => return Err(RotationError::OldKeysPresent { item, keys: st.old }),
            Stage::Ambiguous => {
                return Err(RotationError::Ambiguous {
                    item,
                    readers: st.old,
                })
            }
            Stage::Kms => {
                return Err(RotationError::KmsWriter {
                    item,
                    name: st.writer.map(|w| w.name).unwrap_or_default(),
                })
            }
        }
    }

    let mut out = cfg.clone();
    let mut change = Change::default();
    let fingerprint = secret.fingerprint();
    for &i in &targets {
        let label = item_label(cfg, i);
        let providers = &mut out.resources[i].providers;
        let new_key = KeyConfig {
            name: name.clone(),
            secret: secret.clone(),
        };
        let writer_kind = providers.first().and_then(KeyedProvider::of);
        let kind = opts
            .provider
            .or(writer_kind)
            .unwrap_or(KeyedProvider::AesCbc);
        let same = writer_kind == Some(kind);
        let mut key = KeyId {
            provider: kind.name(),
            provider_index: 0,
            key_index: 1,
            name: name.clone(),
            fingerprint: Some(fingerprint),
        };
        if same {
            if let Some(
                ProviderConfig::AesCbc(ks)
                | ProviderConfig::AesGcm(ks)
                | ProviderConfig::Secretbox(ks),
            ) = providers.first_mut()
            {
                let at = ks.keys.len().min(1);
                ks.keys.insert(at, new_key);
                key.key_index = at;
            }
            change.edits.push(Edit::AddedKey { item: label, key });
        } else {
            let after = providers
                .first()
                .map_or("identity", ProviderConfig::kind_name);
            let at = providers.len().min(1);
            providers.insert(
                at,
                kind.wrap(KeysConfig {
                    keys: vec![new_key],
                }),
            );
            key.provider_index = at;
            key.key_index = 0;
            change.edits.push(Edit::AddedProvider {
                item: label,
                key,
                after,
            });
        }
    }
    Ok((out, change))
}

/// Make the prepared key the writer (step 2 of the procedure).
///
/// Without `key`, each target item's prepared key (see [`Stage::Prepared`]) moves first
/// in its provider and its provider moves first in the item. With `key`, that reader is
/// promoted whatever its age (to resolve [`Stage::Ambiguous`], or to roll back).
pub fn promote(
    cfg: &EncryptionConfiguration,
    key: Option<&str>,
    scope: &Scope,
) -> Result<(EncryptionConfiguration, Change), RotationError> {
    let targets = targets(cfg, scope)?;
    let mut picks = Vec::new();
    for &i in &targets {
        let st = item_stage(cfg, i);
        let item = item_label(cfg, i);
        let pick = match key {
            Some(name) => {
                if let Some(w) = st.writer.as_ref().filter(|w| w.name == name) {
                    return Err(RotationError::AlreadyWriter {
                        item,
                        key: w.clone(),
                    });
                }
                let readers = st.prepared.iter().chain(st.old.iter());
                match readers.into_iter().find(|k| k.name == name) {
                    Some(k) => k.clone(),
                    None => {
                        return Err(RotationError::KeyNotFound {
                            name: name.to_string(),
                            in_scope: !scope.resources.is_empty(),
                            known: known_keys(cfg, &targets),
                        })
                    }
                }
            }
            None => match st.stage {
                Stage::Prepared => match st.prepared {
                    Some(k) => k,
                    None => return Err(RotationError::NothingPrepared { item }),
                },
                Stage::NoEncryption | Stage::Clean => {
                    return Err(RotationError::NothingPrepared { item })
                }
                Stage::Writing => {
                    return Err(RotationError::AlreadyPromoted {
                        item,
                        writer: st.writer.unwrap_or_else(identity_id),
                        old: st.old,
                    })
                }
                Stage::Ambiguous => {
                    return Err(RotationError::Ambiguous {
                        item,
                        readers: st.old,
                    })
                }
                Stage::Kms => {
                    return Err(RotationError::KmsWriter {
                        item,
                        name: st.writer.map(|w| w.name).unwrap_or_default(),
                    })
                }
            },
        };
        let previous = st
            .writer
            .map_or_else(|| "identity".to_string(), |w| w.to_string());
        picks.push((i, pick, previous));
    }
    let mut out = cfg.clone();
    let mut change = Change::default();
    for (i, k, previous) in picks {
        let providers = &mut out.resources[i].providers;
        if let Some(
            ProviderConfig::AesCbc(ks) | ProviderConfig::AesGcm(ks) | ProviderConfig::Secretbox(ks),
        ) = providers.get_mut(k.provider_index)
        {
            if k.key_index < ks.keys.len() {
                let moved = ks.keys.remove(k.key_index);
                ks.keys.insert(0, moved);
            }
        }
        if k.provider_index < providers.len() {
            let moved = providers.remove(k.provider_index);
            providers.insert(0, moved);
        }
        change.edits.push(Edit::Promoted {
            item: item_label(cfg, i),
            key: KeyId {
                provider_index: 0,
                key_index: 0,
                ..k
            },
            previous,
        });
    }
    Ok((out, change))
}

/// What `retire` removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetireTarget {
    /// A key, by name, optionally with its provider (`aescbc/key1`).
    Key {
        /// `aescbc`, `aesgcm` or `secretbox`; `None`: whichever has the name.
        provider: Option<String>,
        /// Key name.
        name: String,
    },
    /// The `identity` provider.
    Identity,
}

impl std::str::FromStr for RetireTarget {
    type Err = String;

    /// `identity`, `NAME` or `PROVIDER/NAME` (a key literally named `identity` is
    /// `aescbc/identity`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "identity" {
            return Ok(RetireTarget::Identity);
        }
        match s.split_once('/') {
            Some((p, n)) if ["aescbc", "aesgcm", "secretbox"].contains(&p) && !n.is_empty() => {
                Ok(RetireTarget::Key {
                    provider: Some(p.to_string()),
                    name: n.to_string(),
                })
            }
            Some(_) => Err(format!(
                "{s:?}: expected NAME, PROVIDER/NAME (provider aescbc, aesgcm or secretbox) or identity"
            )),
            None if s.is_empty() => Err("empty key name".to_string()),
            None => Ok(RetireTarget::Key {
                provider: None,
                name: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for RetireTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetireTarget::Identity => f.write_str("identity"),
            RetireTarget::Key {
                provider: Some(p),
                name,
            } => write!(f, "{p}/{name}"),
            RetireTarget::Key {
                provider: None,
                name,
            } => f.write_str(name),
        }
    }
}

/// Remove a key, or `identity`, once `usage` proves that no object needs it (step 4).
///
/// `usage` must come from a complete scan (a live etcd at one revision, or a snapshot
/// that passes [`check_snapshot`](super::check_snapshot)) classified with `cfg`. Refused when the key writes;
/// when any object is at risk (a key the config lacks, undecryptable, plaintext the
/// config cannot read); when any object of any resource is stored under the key's whole
/// prefix `k8s:enc:<provider>:v1:<name>:` (for `identity`: any plaintext object of the
/// resources the affected items cover); and when the scan did not see the data it
/// proves something about: in each affected item, an object of every resource it lists
/// and an object stored as it writes now (under its write key, or in plaintext where
/// `identity` writes). A provider goes with its last key.
pub fn retire(
    cfg: &EncryptionConfiguration,
    target: &RetireTarget,
    usage: &KeyUsage,
    scope: &Scope,
) -> Result<(EncryptionConfiguration, Change), RotationError> {
    let selected = scope.selected(cfg)?;
    match target {
        RetireTarget::Identity => retire_identity(cfg, &selected, usage),
        RetireTarget::Key { provider, name } => {
            retire_key(cfg, &selected, provider.as_deref(), name, usage, scope)
        }
    }
}

fn retire_identity(
    cfg: &EncryptionConfiguration,
    selected: &[usize],
    usage: &KeyUsage,
) -> Result<(EncryptionConfiguration, Change), RotationError> {
    let mut items = Vec::new();
    let mut writes = None;
    for &i in selected {
        let ps = &cfg.resources[i].providers;
        match ps
            .iter()
            .position(|p| matches!(p, ProviderConfig::Identity))
        {
            Some(0) => writes = writes.or(Some(i)),
            Some(_) => items.push(i),
            None => {}
        }
    }
    if items.is_empty() {
        return Err(match writes {
            Some(i) => RotationError::IdentityWrites {
                item: item_label(cfg, i),
            },
            None => RotationError::NoIdentity,
        });
    }
    let target = "identity (plaintext objects)";
    usage.check_readable(target)?;
    let (count, examples, resources) = usage.matching(cfg, &items, |p, _, _| p == "identity");
    if count > 0 {
        return Err(RotationError::InUse {
            target: target.to_string(),
            resources,
            count,
            examples,
        });
    }
    usage.check_coverage(cfg, &items, target)?;
    let mut out = cfg.clone();
    let mut change = Change::default();
    for &i in &items {
        out.resources[i]
            .providers
            .retain(|p| !matches!(p, ProviderConfig::Identity));
        change.edits.push(Edit::RemovedIdentity {
            item: item_label(cfg, i),
        });
    }
    Ok((out, change))
}

fn retire_key(
    cfg: &EncryptionConfiguration,
    selected: &[usize],
    provider: Option<&str>,
    name: &str,
    usage: &KeyUsage,
    scope: &Scope,
) -> Result<(EncryptionConfiguration, Change), RotationError> {
    let mut found: Vec<(usize, KeyId)> = Vec::new();
    for &i in selected {
        for k in keys_of(&cfg.resources[i].providers, 0) {
            if k.name == name && k.provider != "kms" && provider.is_none_or(|p| p == k.provider) {
                found.push((i, k));
            }
        }
    }
    if found.is_empty() {
        return Err(RotationError::KeyNotFound {
            name: name.to_string(),
            in_scope: !scope.resources.is_empty(),
            known: known_keys(cfg, selected),
        });
    }
    let mut kinds: Vec<&'static str> = found.iter().map(|(_, k)| k.provider).collect();
    kinds.sort_unstable();
    kinds.dedup();
    if kinds.len() > 1 {
        return Err(RotationError::NameInSeveralProviders {
            name: name.to_string(),
            providers: kinds,
        });
    }
    let kind = kinds[0];
    if let Some((i, k)) = found
        .iter()
        .find(|(_, k)| k.provider_index == 0 && k.key_index == 0)
    {
        return Err(RotationError::RetireWriter {
            item: item_label(cfg, *i),
            key: k.clone(),
        });
    }
    let items: Vec<usize> = {
        let mut v: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let target = found[0].1.to_string();
    usage.check_readable(&target)?;
    if let Some(under) = usage
        .under_key
        .get(&(kind, name.to_string()))
        .filter(|o| o.count > 0)
    {
        return Err(RotationError::InUse {
            target,
            resources: under.resources.clone(),
            count: under.count,
            examples: under.examples.clone(),
        });
    }
    usage.check_coverage(cfg, &items, &target)?;

    let mut out = cfg.clone();
    let mut change = Change::default();
    // Remove from the back so earlier indices stay valid.
    for (i, k) in found.iter().rev() {
        let providers = &mut out.resources[*i].providers;
        let mut provider_removed = false;
        if let Some(
            ProviderConfig::AesCbc(ks) | ProviderConfig::AesGcm(ks) | ProviderConfig::Secretbox(ks),
        ) = providers.get_mut(k.provider_index)
        {
            if k.key_index < ks.keys.len() {
                ks.keys.remove(k.key_index);
            }
            if ks.keys.is_empty() {
                providers.remove(k.provider_index);
                provider_removed = true;
            }
        }
        change.edits.push(Edit::RemovedKey {
            item: item_label(cfg, *i),
            key: k.clone(),
            provider_removed,
        });
    }
    change.edits.reverse();
    Ok((out, change))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retire_targets_parse() {
        assert_eq!("identity".parse(), Ok(RetireTarget::Identity));
        assert_eq!(
            "aesgcm/k".parse(),
            Ok(RetireTarget::Key {
                provider: Some("aesgcm".into()),
                name: "k".into()
            })
        );
        assert!("kms/x".parse::<RetireTarget>().is_err());
        assert!("".parse::<RetireTarget>().is_err());
    }
}
