//! Key rotation: the documented procedure as checked edits of an EncryptionConfiguration.
//!
//! Upstream procedure (kubernetes/website `tasks/administer-cluster/encrypt-data.md`):
//! add the new key second on every control-plane node and restart → make it first and
//! restart → rewrite every object → remove the old key. Here each step is a pure
//! transformation ([`prepare`], [`promote`], [`retire`]) that refuses an unsafe edit with
//! a [`RotationError`] saying what to do instead, [`KeyUsage`] is the proof (from a full
//! scan) that a key is no longer used, and [`write_config`] writes the result the safe way
//! (validated, `.bak` of the previous file, atomic, keeping the file's owner, group and
//! mode, same YAML/JSON form).
//!
//! # Which resource items rotate
//! The *target* items are those selected by the [`Scope`] (all items by default) whose
//! first provider encrypts (aescbc, aesgcm, secretbox or kms). When no selected item
//! encrypts yet, every selected item is a target: that is enabling encryption. Items that
//! deliberately write `identity` next to encrypted ones (e.g. `events`) are left alone.
//! One fresh key is shared by all target items, so there is one name and one fingerprint
//! to follow across the cluster.
//!
//! # Stages of an item
//! Kube-apiserver writes with the first key of the first provider (the *writer*) and reads
//! with every configured key (*readers*). The [`Stage`] of an item is:
//! - [`Stage::NoEncryption`]: `identity` writes and no key reads.
//! - [`Stage::Prepared`]: a key reads that is newer than the writer (added by
//!   `prepare`, waiting for `promote`); with `identity` writing, any key that reads.
//! - [`Stage::Writing`]: a key writes and older keys still read (after `promote`, until
//!   `retire`).
//! - [`Stage::Clean`]: one key writes and no other key reads; `identity` may still read.
//! - [`Stage::Ambiguous`]: a key writes and another reads, and their names do not say
//!   which is newer (see below); `promote --key NAME` resolves it.
//! - [`Stage::Kms`]: a KMS plugin writes; its keys rotate inside the plugin.
//!
//! A configuration only orders keys, so "prepared" and "old" readers look alike. atrest
//! tells them apart by age as their names show it: a name in `prepare`'s default form
//! `key-YYYYMMDDTHHMMSSZ` is newer than any name without a timestamp, two timestamps
//! compare by time, and two names that differ only in a trailing number (`key1`, `key2`)
//! compare by that number. Anything else is [`Stage::Ambiguous`].

use crate::audit::{Auditor, ObjectReport, Status, StoredObject, Summary};
use crate::config::{
    ConfigFormat, EncryptionConfiguration, KeyConfig, KeysConfig, LoadedConfig, ProviderConfig,
    Severity,
};
use crate::etcd_key::GroupResource;
use crate::fsutil::{write_private, write_private_like, WriteFileError};
use crate::key::{Fingerprint, SecretKey};
use crate::snapshot::HashCheck;
use crate::transformer::Transformers;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Size of the keys `prepare` generates: valid for aescbc, aesgcm (AES-256) and secretbox.
pub const NEW_KEY_LEN: usize = 32;

/// How many objects a refusal or report lists by name.
pub const MAX_EXAMPLES: usize = 20;

/// Prefix of the default key names, followed by a UTC timestamp.
pub const DEFAULT_KEY_PREFIX: &str = "key-";

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

    fn selected(&self, cfg: &EncryptionConfiguration) -> Result<Vec<usize>, RotationError> {
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

fn item_label(cfg: &EncryptionConfiguration, i: usize) -> String {
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

fn keys_of(providers: &[ProviderConfig], from: usize) -> Vec<KeyId> {
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

fn item_stage(cfg: &EncryptionConfiguration, i: usize) -> ItemStage {
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

/// Whether key name `a` is newer than `b`, as far as the names tell (module docs).
pub fn newer(a: &str, b: &str) -> Option<bool> {
    match (name_stamp(a), name_stamp(b)) {
        (Some(x), Some(y)) if x.0 != y.0 => Some(x.0 > y.0),
        (Some((_, Some(x))), Some((_, Some(y)))) if x != y => Some(x > y),
        (Some(_), Some(_)) => None,
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (None, None) => {
            let (sa, na) = split_number(a)?;
            let (sb, nb) = split_number(b)?;
            (sa == sb && na != nb).then_some(na > nb)
        }
    }
}

/// The timestamp of a default key name `key-YYYYMMDDTHHMMSSZ` (a sortable string), and
/// its sequence number: 1 without a suffix, `N` with the `-N` that [`prepare`] adds when
/// the name is taken, `None` for any other suffix.
fn name_stamp(name: &str) -> Option<(&str, Option<u64>)> {
    let rest = name.strip_prefix(DEFAULT_KEY_PREFIX)?;
    let stamp = rest.get(..16)?;
    let b = stamp.as_bytes();
    let ok = b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z';
    if !ok {
        return None;
    }
    let seq = match &rest[16..] {
        "" => Some(1),
        suffix => suffix
            .strip_prefix('-')
            .filter(|n| !n.is_empty() && n.len() <= 18 && n.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|n| n.parse().ok()),
    };
    Some((stamp, seq))
}

fn split_number(name: &str) -> Option<(&str, u64)> {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = &name[stem.len()..];
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    digits.parse().ok().map(|n| (stem, n))
}

/// `YYYYMMDDTHHMMSSZ` for a point in time (UTC).
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The default name of a key prepared at `now`.
pub fn default_key_name(now: SystemTime) -> String {
    format!("{DEFAULT_KEY_PREFIX}{}", utc_stamp(now))
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

/// Why a rotation step was refused. Every message says what to do instead; none
/// contains key material.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// `--resource` selected nothing.
    #[error("no resources[] item lists {}; pass names exactly as the config lists them (e.g. secrets)", .resources.join(", "))]
    EmptyScope {
        /// The names asked for.
        resources: Vec<String>,
    },
    /// A KMS plugin writes.
    #[error("{item} writes with KMS plugin `{name}`: KMS keys are rotated in the KMS plugin; atrest rotates aescbc, aesgcm and secretbox keys")]
    KmsWriter {
        /// Item label.
        item: String,
        /// Plugin name.
        name: String,
    },
    /// A key is already prepared.
    #[error("{item}: {key} is already prepared (it reads but does not write); promote it with `atrest rotate promote`, or remove it with `atrest rotate retire --key {}`", key.name)]
    AlreadyPrepared {
        /// Item label.
        item: String,
        /// The prepared key.
        key: KeyId,
    },
    /// The previous rotation is not finished.
    #[error("{item}: the previous rotation is not finished: {} still read; rewrite every object (`atrest rewrite`), then remove them with `atrest rotate retire --key NAME`, then prepare", list(.keys))]
    OldKeysPresent {
        /// Item label.
        item: String,
        /// The old keys.
        keys: Vec<KeyId>,
    },
    /// Readers of unknown age.
    #[error("{item}: cannot tell whether {} is a prepared key or an old one (the names carry no timestamp or number to compare); to make it write, pass `--key NAME` to `atrest rotate promote`; if it is an old key, rewrite and then `atrest rotate retire --key NAME`", list(.readers))]
    Ambiguous {
        /// Item label.
        item: String,
        /// The readers.
        readers: Vec<KeyId>,
    },
    /// The new key name is taken.
    #[error("key name `{name}` is already used by {item}; choose another --key-name (or leave it out for a timestamped name)")]
    NameTaken {
        /// The name.
        name: String,
        /// Where it is used.
        item: String,
    },
    /// The new key name is unusable.
    #[error("key name {name:?} is not usable: use letters, digits, '-', '_' and '.' only (the name becomes part of every stored value's prefix)")]
    BadName {
        /// The name.
        name: String,
    },
    /// Nothing to promote.
    #[error("{item}: nothing is prepared to promote; run `atrest rotate prepare --config FILE` first, restart every kube-apiserver with the result, then promote")]
    NothingPrepared {
        /// Item label.
        item: String,
    },
    /// The reader is older than the writer.
    #[error("{item}: {writer} already writes and {} older; the rotation is promoted: rewrite every object (`atrest rewrite`), then `atrest rotate retire --key NAME`; to make an older key write again on purpose, pass `--key NAME` to promote", list_are(.old))]
    AlreadyPromoted {
        /// Item label.
        item: String,
        /// The writer.
        writer: KeyId,
        /// The older readers.
        old: Vec<KeyId>,
    },
    /// `promote --key` names the writer.
    #[error("{item}: {key} already writes; nothing to promote")]
    AlreadyWriter {
        /// Item label.
        item: String,
        /// The key.
        key: KeyId,
    },
    /// The key is not in the config.
    #[error("no key named `{name}` in the {}; configured keys: {}", if *.in_scope { "selected items" } else { "config" }, if .known.is_empty() { "none".to_string() } else { .known.join(", ") })]
    KeyNotFound {
        /// The name asked for.
        name: String,
        /// Whether a `--resource` selection narrowed the search.
        in_scope: bool,
        /// `provider/name` of every configured key.
        known: Vec<String>,
    },
    /// The same name in several providers.
    #[error("key name `{name}` is used by several providers ({}); pass --key PROVIDER/{name}", .providers.join(", "))]
    NameInSeveralProviders {
        /// The name.
        name: String,
        /// The providers.
        providers: Vec<&'static str>,
    },
    /// Retiring the writer.
    #[error("{item}: {key} is the write key; prepare and promote a new key (`atrest rotate prepare`, `atrest rotate promote`), rewrite every object, then retire it")]
    RetireWriter {
        /// Item label.
        item: String,
        /// The key.
        key: KeyId,
    },
    /// Retiring identity while it writes.
    #[error("{item}: identity writes (encryption is not enabled); prepare and promote a key, rewrite every object, then retire identity")]
    IdentityWrites {
        /// Item label.
        item: String,
    },
    /// No identity provider to retire.
    #[error("no selected item reads with identity; nothing to retire")]
    NoIdentity,
    /// Objects still use the key.
    #[error("refused: {count} object(s) of {} still use {target}; rewrite them (`atrest rewrite --endpoints URL,... --config FILE --resource R,...`), then retry (from a snapshot: a new one, taken after the rewrite); the file was not changed{}", .resources.join(", "), fmt_examples(.examples, *.count))]
    InUse {
        /// What was to be retired.
        target: String,
        /// Resources checked.
        resources: Vec<String>,
        /// How many objects.
        count: u64,
        /// The first object keys.
        examples: Vec<String>,
    },
    /// The scan could not read everything, so it proves nothing.
    #[error("refused: {count} object(s) of {} cannot be read with this config (a key it lacks, undecryptable, or plaintext where it has no identity), so the scan cannot prove that {target} is unused; if the scan is of this cluster, find the key that wrote them (`atrest audit --config FILE` with the same --endpoints or --snapshot), add it back to the rule of their resource, rewrite them, and retry; otherwise scan this cluster's etcd (check --etcd-prefix); the file was not changed{}", .resources.join(", "), fmt_examples(.examples, *.count))]
    ProofIncomplete {
        /// What was to be retired.
        target: String,
        /// The resources of the unreadable objects listed.
        resources: Vec<String>,
        /// How many objects.
        count: u64,
        /// The first object keys.
        examples: Vec<String>,
    },
    /// The scan saw no object of a resource the item encrypts.
    #[error("refused: the scan saw no object of {resource} ({objects} object(s) in all), which {item} encrypts, so it proves nothing about {target}; {SCAN_ADVICE}; if the cluster really has no {resource}, create one through kube-apiserver (it is written with the current key) or remove {resource} from the rule, then retry; the file was not changed")]
    ScanMissesResource {
        /// What was to be retired.
        target: String,
        /// Item label.
        item: String,
        /// The resource, as the item lists it.
        resource: String,
        /// Objects the scan saw in all.
        objects: u64,
    },
    /// The scan saw no object under the item's write key.
    #[error("refused: the scan saw no object written with {writer}, which {item} writes with, so it is not a scan of this cluster's data since that key was promoted and proves nothing about {target}; {SCAN_ADVICE}, then retry; the file was not changed")]
    ScanMissesWriter {
        /// What was to be retired.
        target: String,
        /// Item label.
        item: String,
        /// The write key.
        writer: String,
    },
    /// A snapshot whose hash was not verified.
    #[error("refused: {} cannot prove that a key is unused: {why}; take a snapshot with `etcdctl snapshot save FILE` after the rewrite (or scan the live etcd with --endpoints), and retry; the file was not changed", .path.display())]
    UnverifiedSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// Why it is not a proof.
        why: &'static str,
    },
    /// The edited config would be refused by kube-apiserver.
    #[error("the edited config would be invalid, so it was not written:\n  {}", .findings.join("\n  "))]
    Invalid {
        /// The error findings.
        findings: Vec<String>,
    },
    /// The file changed on disk since it was read.
    #[error("{} changed since it was read; run the command again", .path.display())]
    ChangedOnDisk {
        /// The file.
        path: PathBuf,
    },
    /// The config was not read from a file.
    #[error("the config has no file to write back to")]
    NoPath,
    /// Reading the file failed.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing a file failed.
    #[error(transparent)]
    Write(#[from] WriteFileError),
    /// The OS RNG failed.
    #[error("cannot get random bytes from the OS: {0}")]
    Random(String),
}

impl RotationError {
    /// Usage and I/O errors (exit 2), as opposed to refusals (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RotationError::EmptyScope { .. }
                | RotationError::BadName { .. }
                | RotationError::NoPath
                | RotationError::Io { .. }
                | RotationError::Write(_)
                | RotationError::Random(_)
        )
    }
}

/// How to get a scan that proves something (in refusals).
const SCAN_ADVICE: &str = "check that --etcd-prefix is kube-apiserver's --etcd-prefix (default /registry; only keys under it are scanned), that the etcd or snapshot is this cluster's, and that a snapshot was taken (`etcdctl snapshot save`) after the key was promoted and every object rewritten, or scan the live etcd with --endpoints";

fn list(keys: &[KeyId]) -> String {
    keys.iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_are(keys: &[KeyId]) -> String {
    let verb = if keys.len() == 1 { "is" } else { "are" };
    format!("{} {verb}", list(keys))
}

fn fmt_examples(v: &[String], count: u64) -> String {
    if v.is_empty() {
        return String::new();
    }
    let mut s = String::from("; objects:");
    for e in v {
        s.push_str("\n  ");
        s.push_str(e);
    }
    if count > v.len() as u64 {
        s.push_str(&format!("\n  ... and {} more", count - v.len() as u64));
    }
    s
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

/// Where `name` is already used as a key or KMS plugin name, if anywhere.
fn name_user(cfg: &EncryptionConfiguration, name: &str) -> Option<String> {
    for (i, item) in cfg.resources.iter().enumerate() {
        for p in &item.providers {
            let taken = match p {
                ProviderConfig::Kms(k) => k.name == name,
                other => other
                    .keys()
                    .is_some_and(|ks| ks.keys.iter().any(|k| k.name == name)),
            };
            if taken {
                return Some(format!("{} {}", item_label(cfg, i), p.kind_name()));
            }
        }
    }
    None
}

/// The default name of a key prepared at `now` that `cfg` does not use yet:
/// `key-YYYYMMDDTHHMMSSZ`, or with `-2`, `-3`, ... when an earlier run in the same
/// second took it (names stay ordered: see [`newer`]).
fn free_default_name(cfg: &EncryptionConfiguration, now: SystemTime) -> String {
    let base = default_key_name(now);
    let mut name = base.clone();
    let mut n = 1u64;
    while name_user(cfg, &name).is_some() {
        n += 1;
        name = format!("{base}-{n}");
    }
    name
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

fn identity_id() -> KeyId {
    KeyId {
        provider: "identity",
        provider_index: 0,
        key_index: 0,
        name: "identity".to_string(),
        fingerprint: None,
    }
}

fn known_keys(cfg: &EncryptionConfiguration, items: &[usize]) -> Vec<String> {
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
    /// configured key (see [`key_prefix`]), by (provider, key name).
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
        let mut u = KeyUsage::default();
        for obj in objects {
            if let Some(r) = auditor.classify(&obj) {
                for (kind, name, prefix) in &prefixes {
                    if obj.value.starts_with(prefix) {
                        u.under_key
                            .entry((*kind, name.clone()))
                            .or_default()
                            .add(&r.key, &r.resource);
                    }
                }
                let gr = GroupResource::parse(&r.resource);
                let reads_plaintext = ts.for_resource(&gr).0.reads_plaintext();
                u.add(r, reads_plaintext);
            }
        }
        u
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
    fn matching(
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

    /// Refuse while any object is at risk: such a scan does not show the data the
    /// config was written for, so it proves nothing about a key.
    fn check_readable(&self, target: &str) -> Result<(), RotationError> {
        if self.at_risk_total == 0 {
            return Ok(());
        }
        let mut resources: Vec<String> = Vec::new();
        for r in &self.at_risk {
            if !resources.contains(&r.resource) {
                resources.push(r.resource.clone());
            }
        }
        Err(RotationError::ProofIncomplete {
            target: target.to_string(),
            resources,
            count: self.at_risk_total,
            examples: self.at_risk.iter().map(|r| r.key.clone()).collect(),
        })
    }

    /// Refuse unless the scan saw the data it is meant to prove something about: in
    /// every item in `items` that writes encrypted, at least one object of each
    /// resource it lists (of some resource it governs, for a wildcard), and at least one
    /// object written with its current write key. A wrong `--etcd-prefix`, another
    /// cluster's data or a snapshot older than the write key fail here.
    fn check_coverage(
        &self,
        cfg: &EncryptionConfiguration,
        items: &[usize],
        target: &str,
    ) -> Result<(), RotationError> {
        for &i in items {
            let Some(item) = cfg.resources.get(i) else {
                continue;
            };
            if matches!(
                item.providers.first(),
                None | Some(ProviderConfig::Identity)
            ) {
                continue;
            }
            for r in &item.resources {
                let seen = if r.contains('*') {
                    self.summary
                        .by_resource
                        .iter()
                        .any(|(res, n)| *n > 0 && relevant(cfg, res, &[i]))
                } else {
                    let name = GroupResource::parse(r).to_string();
                    self.summary.by_resource.get(&name).is_some_and(|n| *n > 0)
                };
                if !seen {
                    return Err(RotationError::ScanMissesResource {
                        target: target.to_string(),
                        item: item_label(cfg, i),
                        resource: r.clone(),
                        objects: self.summary.objects,
                    });
                }
            }
            let written = self.summary.cells.iter().any(|((res, prov, _, st), n)| {
                *n > 0 && *st == Status::Current && *prov != "identity" && relevant(cfg, res, &[i])
            });
            if !written {
                let writer = keys_of(&item.providers, 0)
                    .into_iter()
                    .next()
                    .map_or_else(|| "its write key".to_string(), |k| k.to_string());
                return Err(RotationError::ScanMissesWriter {
                    target: target.to_string(),
                    item: item_label(cfg, i),
                    writer,
                });
            }
        }
        Ok(())
    }
}

fn relevant(cfg: &EncryptionConfiguration, resource: &str, items: &[usize]) -> bool {
    let gr = GroupResource::parse(resource);
    let found = cfg
        .matching_items(&gr.resource, &gr.group)
        .any(|i| items.contains(&i));
    found
}

/// Refuse a snapshot whose sha256 trailer was not verified: only a snapshot that
/// `etcdctl snapshot save` wrote whole, with its hash checked, is a complete scan.
pub fn check_snapshot(path: &Path, hash: HashCheck) -> Result<(), RotationError> {
    let why = match hash {
        HashCheck::Verified => return Ok(()),
        HashCheck::NoTrailer => "it has no sha256 trailer (a member's db file, or a copy cut short), so nothing shows it is whole and consistent",
        HashCheck::Skipped | HashCheck::Pending => "its sha256 trailer was not checked (--skip-hash-check)",
    };
    Err(RotationError::UnverifiedSnapshot {
        path: path.to_path_buf(),
        why,
    })
}

/// Remove a key, or `identity`, once `usage` proves that no object needs it (step 4).
///
/// `usage` must come from a complete scan (a live etcd at one revision, or a snapshot
/// that passes [`check_snapshot`]) classified with `cfg`. Refused when the key writes;
/// when any object is at risk (a key the config lacks, undecryptable, plaintext the
/// config cannot read); when any object of any resource is stored under the key's whole
/// prefix `k8s:enc:<provider>:v1:<name>:` (for `identity`: any plaintext object of the
/// resources the affected items cover); and when the scan did not see the data it
/// proves something about: in each affected item that writes encrypted, an object of
/// every resource it lists and an object under its write key. A provider goes with its
/// last key.
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

/// A key in a [`StatusReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    /// The key (first item it appears in).
    pub key: KeyId,
    /// `true` when it writes in some target item.
    pub writer: bool,
    /// Objects under it (`None`: no scan): for a keyed provider, objects of any resource
    /// stored under its whole prefix; for kms, objects of the items that have it.
    pub objects: Option<u64>,
}

/// The step to take next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Objects are at risk: add the missing keys back before anything else.
    FixAtRisk,
    /// Add a new key: `atrest rotate prepare`.
    Prepare {
        /// Encryption is being enabled (no key yet).
        enable: bool,
    },
    /// Restart every kube-apiserver with the config, then `atrest rotate promote`.
    Promote,
    /// Tell atrest which reader is the prepared key.
    PromoteWhich {
        /// The readers of unknown age.
        readers: Vec<String>,
    },
    /// A scan is needed to know whether the data has moved.
    Scan,
    /// Restart every kube-apiserver with the config, then rewrite every object.
    Rewrite {
        /// Objects still under old keys or in plaintext.
        objects: u64,
    },
    /// Remove a key nothing uses any more: `atrest rotate retire --key TARGET`.
    Retire {
        /// `NAME`, `PROVIDER/NAME` or `identity`.
        target: String,
    },
    /// No object uses an old key, but the scan does not prove it (`retire` would
    /// refuse it): get a scan that does.
    ProofIncomplete {
        /// The key a retire would remove.
        target: String,
        /// Why `retire` would refuse, with what to do.
        why: String,
    },
    /// Nothing to do; the next rotation starts with `prepare`.
    Done,
    /// The items are at different stages.
    Mixed,
    /// KMS writes: rotate in the plugin (no scan, or no plugin to compare with).
    Kms,
    /// KMS writes, and objects sit under old key IDs of its plugin (after a KEK
    /// rotation) or under other providers: rewrite them through the plugin.
    KmsRewrite {
        /// Objects to rewrite.
        objects: u64,
    },
    /// KMS writes and every object is under the plugin's current key ID: the old
    /// KEKs protect no object of the scanned data any more.
    KmsDone,
}

/// The objects of one KMS provider by the key ID that wrote them (from a scan).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsKeyIds {
    /// The provider (plugin) name.
    pub name: String,
    /// `kms-v2` or `kms` (v1, which has no key IDs).
    pub provider: &'static str,
    /// The key ID the plugin writes with now (its `Status`; `None` for v1).
    pub current_key_id: Option<String>,
    /// v2: objects by the keyID stored in them.
    pub by_key_id: BTreeMap<String, u64>,
    /// All objects stored under the provider's prefix.
    pub objects: u64,
}

impl KmsKeyIds {
    /// Objects under a key ID other than the current one.
    pub fn old_key_id_objects(&self) -> u64 {
        self.by_key_id
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != self.current_key_id.as_deref())
            .map(|(_, n)| n)
            .sum()
    }
}

/// Per KMS provider of `cfg`, the objects of the scan by key ID; `current_key_id`
/// gives a v2 provider's current key ID (its plugin's `Status`).
pub fn kms_key_ids(
    cfg: &EncryptionConfiguration,
    usage: &KeyUsage,
    current_key_id: impl Fn(&str) -> Option<String>,
) -> Vec<KmsKeyIds> {
    let mut out: Vec<KmsKeyIds> = Vec::new();
    for item in &cfg.resources {
        for p in &item.providers {
            let ProviderConfig::Kms(k) = p else { continue };
            let v2 = k.effective_api_version() == "v2";
            let provider = if v2 { "kms-v2" } else { "kms" };
            if out
                .iter()
                .any(|o| o.name == k.name && o.provider == provider)
            {
                continue;
            }
            let mut e = KmsKeyIds {
                name: k.name.clone(),
                provider,
                current_key_id: if v2 { current_key_id(&k.name) } else { None },
                by_key_id: BTreeMap::new(),
                objects: 0,
            };
            let with_id = format!("{}/", k.name);
            for ((_, prov, key, _), n) in &usage.summary.cells {
                if *prov != provider {
                    continue;
                }
                let Some(key) = key.as_deref() else { continue };
                if v2 {
                    // The audit names v2 objects `<plugin>/<keyID>`.
                    if let Some(id) = key.strip_prefix(&with_id) {
                        *e.by_key_id.entry(id.to_string()).or_default() += n;
                        e.objects += n;
                    }
                } else if key == k.name {
                    e.objects += n;
                }
            }
            out.push(e);
        }
    }
    out
}

impl StatusReport {
    /// Add the scan's per-key-ID counts of the KMS providers and, when a KMS
    /// plugin writes, decide the next step from them: rewrite while objects sit
    /// under old key IDs or other providers, done once none does.
    pub fn with_kms(
        mut self,
        cfg: &EncryptionConfiguration,
        scope: &Scope,
        usage: &KeyUsage,
        kms: Vec<KmsKeyIds>,
    ) -> StatusReport {
        if self.next == NextStep::Kms {
            let targets = targets(cfg, scope).unwrap_or_default();
            let (to_rewrite, _, _) = usage.matching(cfg, &targets, |_, _, st| {
                matches!(st, Status::Stale | Status::Plaintext)
            });
            let old_ids: u64 = kms.iter().map(KmsKeyIds::old_key_id_objects).sum();
            let known = kms
                .iter()
                .all(|k| k.provider == "kms" || k.current_key_id.is_some());
            if to_rewrite + old_ids > 0 {
                self.next = NextStep::KmsRewrite {
                    objects: to_rewrite.max(old_ids),
                };
            } else if known {
                self.next = NextStep::KmsDone;
            }
        }
        self.kms = kms;
        self
    }
}

/// Where a config is in the procedure, and what to do next.
#[derive(Clone, Debug)]
pub struct StatusReport {
    /// Every target item.
    pub items: Vec<ItemStage>,
    /// The common stage; `None` when the items differ.
    pub stage: Option<Stage>,
    /// Every key of the target items, once each.
    pub keys: Vec<KeyStatus>,
    /// Plaintext objects of the target items' resources (`None`: no scan).
    pub plaintext_objects: Option<u64>,
    /// The next step.
    pub next: NextStep,
    /// KMS providers: objects by key ID (empty without a scan; see
    /// [`StatusReport::with_kms`]).
    pub kms: Vec<KmsKeyIds>,
}

/// The status of `cfg`, with the scan's counts when there is one.
pub fn status(
    cfg: &EncryptionConfiguration,
    scope: &Scope,
    usage: Option<&KeyUsage>,
) -> Result<StatusReport, RotationError> {
    let targets = targets(cfg, scope)?;
    let items: Vec<ItemStage> = targets.iter().map(|&i| item_stage(cfg, i)).collect();
    let stage = overall(&items);

    let mut keys: Vec<KeyStatus> = Vec::new();
    for st in &items {
        for k in keys_of(&cfg.resources[st.item].providers, 0) {
            let writer = k.provider_index == 0 && k.key_index == 0;
            if let Some(existing) = keys
                .iter_mut()
                .find(|e| e.key.provider == k.provider && e.key.name == k.name)
            {
                existing.writer |= writer;
                continue;
            }
            let objects = usage.map(|u| {
                if k.provider != "kms" {
                    return u.objects_under(k.provider, &k.name);
                }
                let holders: Vec<usize> = items
                    .iter()
                    .map(|s| s.item)
                    .filter(|&i| {
                        keys_of(&cfg.resources[i].providers, 0)
                            .iter()
                            .any(|x| x.provider == k.provider && x.name == k.name)
                    })
                    .collect();
                u.matching(cfg, &holders, |p, kn, _| {
                    p.starts_with("kms")
                        && kn.is_some_and(|kn| {
                            kn == k.name || kn.starts_with(&format!("{}/", k.name))
                        })
                })
                .0
            });
            keys.push(KeyStatus {
                key: k,
                writer,
                objects,
            });
        }
    }
    let plaintext_objects = usage.map(|u| u.matching(cfg, &targets, |p, _, _| p == "identity").0);

    let mut next = next_step(&items, stage, &keys, plaintext_objects, usage);
    // Suggest a retire only when `retire` itself would accept this scan as proof:
    // otherwise say why the scan proves nothing yet.
    if let (NextStep::Retire { target }, Some(u)) = (&next, usage) {
        if let Ok(t) = target.parse::<RetireTarget>() {
            if let Err(e) = retire(cfg, &t, u, scope) {
                next = NextStep::ProofIncomplete {
                    target: target.clone(),
                    why: e.to_string(),
                };
            }
        }
    }
    Ok(StatusReport {
        items,
        stage,
        keys,
        plaintext_objects,
        next,
        kms: Vec::new(),
    })
}

fn next_step(
    items: &[ItemStage],
    stage: Option<Stage>,
    keys: &[KeyStatus],
    plaintext: Option<u64>,
    usage: Option<&KeyUsage>,
) -> NextStep {
    if let Some(u) = usage {
        if u.at_risk_total > 0 {
            return NextStep::FixAtRisk;
        }
    }
    let Some(stage) = stage else {
        return NextStep::Mixed;
    };
    match stage {
        Stage::NoEncryption => NextStep::Prepare { enable: true },
        Stage::Prepared => NextStep::Promote,
        Stage::Ambiguous => NextStep::PromoteWhich {
            readers: items
                .iter()
                .flat_map(|s| s.old.iter().map(|k| k.name.clone()))
                .fold(Vec::new(), |mut v, n| {
                    if !v.contains(&n) {
                        v.push(n);
                    }
                    v
                }),
        },
        Stage::Kms => NextStep::Kms,
        Stage::Clean | Stage::Writing => {
            let identity = items.iter().any(|s| s.identity_reads);
            let old: Vec<&KeyStatus> = keys.iter().filter(|k| !k.writer).collect();
            if old.is_empty() && !identity {
                return NextStep::Done;
            }
            if usage.is_none() {
                return NextStep::Scan;
            }
            let on_old: u64 = old.iter().filter_map(|k| k.objects).sum();
            let plain = if identity { plaintext.unwrap_or(0) } else { 0 };
            if on_old + plain > 0 {
                return NextStep::Rewrite {
                    objects: on_old + plain,
                };
            }
            match old.first() {
                Some(k) => {
                    let ambiguous_name =
                        keys.iter().filter(|x| x.key.name == k.key.name).count() > 1;
                    let target = if ambiguous_name || k.key.name == "identity" {
                        format!("{}/{}", k.key.provider, k.key.name)
                    } else {
                        k.key.name.clone()
                    };
                    NextStep::Retire { target }
                }
                None => NextStep::Retire {
                    target: "identity".to_string(),
                },
            }
        }
    }
}

/// Refuse a config kube-apiserver would refuse.
pub fn check_valid(cfg: &EncryptionConfiguration) -> Result<(), RotationError> {
    let findings: Vec<String> = cfg
        .validate()
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.to_string())
        .collect();
    if findings.is_empty() {
        Ok(())
    } else {
        Err(RotationError::Invalid { findings })
    }
}

/// The file text of `cfg` in `format` (contains keys: zeroizing).
pub fn render(cfg: &EncryptionConfiguration, format: ConfigFormat) -> Zeroizing<String> {
    match format {
        ConfigFormat::Yaml => cfg.to_yaml(),
        ConfigFormat::Json => cfg.to_json(),
    }
}

/// A summary of a config by provider, key name and fingerprint (no key material).
pub fn describe(cfg: &EncryptionConfiguration) -> String {
    let mut s = String::new();
    for (i, item) in cfg.resources.iter().enumerate() {
        let providers: Vec<String> = item
            .providers
            .iter()
            .enumerate()
            .map(|(pi, p)| match p {
                ProviderConfig::Identity => "identity".to_string(),
                ProviderConfig::Kms(k) => format!("kms `{}`", k.name),
                other => {
                    let keys: Vec<String> = other
                        .keys()
                        .map(|ks| {
                            ks.keys
                                .iter()
                                .enumerate()
                                .map(|(ki, k)| {
                                    let role = if pi == 0 && ki == 0 { ", writes" } else { "" };
                                    format!("{} ({}{role})", k.name, k.secret.fingerprint())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    format!("{} [{}]", other.kind_name(), keys.join(", "))
                }
            })
            .collect();
        s.push_str(&format!(
            "{}: {}\n",
            item_label(cfg, i),
            providers.join(", then ")
        ));
    }
    s
}

/// Where [`write_config`] put the files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The config file (symlinks resolved).
    pub path: PathBuf,
    /// The copy of the previous file.
    pub backup: PathBuf,
}

/// Write `new` over the file `loaded` came from: validate it, refuse if the file changed
/// since it was read, copy the previous file to `FILE.<UTC timestamp>.bak` (never
/// overwriting: `.1.bak`, `.2.bak`, ... on collision), then write atomically in the
/// same YAML or JSON form. Both keep the owner, group and mode of the file.
pub fn write_config(
    loaded: &LoadedConfig,
    new: &EncryptionConfiguration,
    now: SystemTime,
) -> Result<Written, RotationError> {
    check_valid(new)?;
    let given = loaded.path.as_deref().ok_or(RotationError::NoPath)?;
    let path = std::fs::canonicalize(given).map_err(|source| RotationError::Io {
        path: given.to_path_buf(),
        source,
    })?;
    let old = Zeroizing::new(std::fs::read(&path).map_err(|source| RotationError::Io {
        path: path.clone(),
        source,
    })?);
    match EncryptionConfiguration::from_slice(&old) {
        Ok(on_disk) if on_disk.config == loaded.config => {}
        _ => return Err(RotationError::ChangedOnDisk { path }),
    }
    let backup = write_backup(&path, &old, now)?;
    let text = render(new, loaded.format);
    write_private(&path, text.as_bytes(), true)?;
    Ok(Written { path, backup })
}

fn write_backup(path: &Path, data: &[u8], now: SystemTime) -> Result<PathBuf, RotationError> {
    let stamp = utc_stamp(now);
    let base = path.as_os_str().to_string_lossy().into_owned();
    for n in 0..1000u32 {
        let candidate = if n == 0 {
            PathBuf::from(format!("{base}.{stamp}.bak"))
        } else {
            PathBuf::from(format!("{base}.{stamp}.{n}.bak"))
        };
        match write_private_like(&candidate, data, path) {
            Ok(()) => return Ok(candidate),
            Err(WriteFileError::Exists(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RotationError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "1000 backups with the same timestamp exist",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_are_utc_civil_time() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_764_400_000);
        assert_eq!(utc_stamp(t), "20251129T070640Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_stamp(leap), "20000229T000000Z");
        assert_eq!(default_key_name(t), "key-20251129T070640Z");
    }

    #[test]
    fn ages_from_names() {
        assert_eq!(newer("key2", "key1"), Some(true));
        assert_eq!(newer("key1", "key10"), Some(false));
        assert_eq!(newer("key-20251129T070640Z", "key9"), Some(true));
        assert_eq!(newer("key9", "key-20251129T070640Z"), Some(false));
        assert_eq!(
            newer("key-20251129T070640Z", "key-20251130T000000Z"),
            Some(false)
        );
        assert_eq!(newer("alpha", "beta"), None);
        assert_eq!(newer("a1", "b2"), None);
        assert_eq!(newer("key1", "key1"), None);
        let t = "key-20251129T070640Z";
        assert_eq!(newer(&format!("{t}-2"), t), Some(true));
        assert_eq!(newer(&format!("{t}-10"), &format!("{t}-2")), Some(true));
        assert_eq!(newer(t, &format!("{t}-3")), Some(false));
        assert_eq!(newer(&format!("{t}-blue"), t), None);
        assert_eq!(
            newer(&format!("{t}-2"), "key-20251129T070641Z"),
            Some(false)
        );
    }

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

    #[test]
    fn kms_objects_by_key_id_decide_the_next_step() {
        let cfg = EncryptionConfiguration::from_yaml_str(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - kms: {apiVersion: v2, name: kp, endpoint: unix:///k.sock}\n      - kms: {apiVersion: v2, name: kpx, endpoint: unix:///x.sock}\n      - identity: {}\n",
        )
        .unwrap();
        let scope = Scope::default();
        let usage = |cells: &[(&str, Status, u64)]| {
            let mut u = KeyUsage::default();
            for (k, st, n) in cells {
                u.summary.cells.insert(
                    ("secrets".to_string(), "kms-v2", Some(k.to_string()), *st),
                    *n,
                );
            }
            u
        };
        let current = |name: &str| (name == "kp").then(|| "2".to_string());
        let next = |u: &KeyUsage| {
            let kms = kms_key_ids(&cfg, u, current);
            let r = status(&cfg, &scope, Some(u)).unwrap();
            assert_eq!(r.next, NextStep::Kms);
            (kms.clone(), r.with_kms(&cfg, &scope, u, kms).next)
        };
        // After the KEK rotation: 3 objects under key ID 1 (stale), 2 under 2;
        // `kpx/1` is another plugin, not counted under `kp`.
        let u = usage(&[
            ("kp/1", Status::Stale, 3),
            ("kp/2", Status::Current, 2),
            ("kpx/1", Status::Stale, 1),
        ]);
        let (kms, step) = next(&u);
        assert_eq!(kms[0].name, "kp");
        assert_eq!(
            kms[0].by_key_id,
            BTreeMap::from([("1".to_string(), 3), ("2".to_string(), 2)])
        );
        assert_eq!(kms[0].old_key_id_objects(), 3);
        assert_eq!(kms[1].name, "kpx");
        assert_eq!(kms[1].current_key_id, None);
        assert_eq!(step, NextStep::KmsRewrite { objects: 4 });
        // After the rewrite: every object under key ID 2, nothing stale.
        let u = usage(&[("kp/2", Status::Current, 5)]);
        let (kms, step) = next(&u);
        assert_eq!(kms[0].old_key_id_objects(), 0);
        // `kpx` has no current key ID known: not proven done.
        assert_eq!(step, NextStep::Kms);
        let cfg1 = EncryptionConfiguration::from_yaml_str(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - kms: {apiVersion: v2, name: kp, endpoint: unix:///k.sock}\n",
        )
        .unwrap();
        let kms = kms_key_ids(&cfg1, &u, current);
        let r = status(&cfg1, &scope, Some(&u)).unwrap();
        assert_eq!(r.with_kms(&cfg1, &scope, &u, kms).next, NextStep::KmsDone);
    }
}
