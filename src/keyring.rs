//! Extra read-only keys: the keys of further EncryptionConfiguration files and of key
//! archives ([`crate::archive`]), tried after the primary config's chain has failed.
//!
//! kube-apiserver offers a value to every configured key whose whole prefix
//! `k8s:enc:<provider>:v1:<name>:` the value starts with (kubernetes
//! `staging/src/k8s.io/apiserver/pkg/storage/value/transformer.go`); extra keys are
//! offered the same way, each as a provider of its own, whatever resource the value
//! belongs to. Reads are always checked ([`ReadMode::Checked`]), so a wrong key of the
//! same name is not mistaken for the right one. Extra keys never write, and an object
//! they read is never `current`: kube-apiserver with the primary config cannot read it.

use crate::archive::{ArchivedProvider, LoadedArchive};
use crate::config::{EncryptionConfiguration, KeyConfig};
use crate::key::Fingerprint;
use crate::kube::ExpectedObject;
use crate::transformer::{BuildError, ReadMode, Transformer};
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where an extra key comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An EncryptionConfiguration file.
    Config,
    /// A key archive.
    Archive,
}

/// One extra key (no secret here: the chain holds it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraKey {
    /// Its provider.
    pub provider: ArchivedProvider,
    /// Its name.
    pub name: String,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// The file it was read from.
    pub file: PathBuf,
    /// Config or archive.
    pub origin: Origin,
    /// The resources[] names it serves (config) or served (archive).
    pub resources: Vec<String>,
    /// When it was retired (archives only).
    pub retired_at: Option<String>,
}

impl fmt::Display for ExtraKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} key `{}` ({}) from {} {}",
            self.provider,
            self.name,
            self.fingerprint,
            match self.origin {
                Origin::Config => "config",
                Origin::Archive => "archive",
            },
            self.file.display()
        )
    }
}

/// A read by an extra key.
#[derive(Clone, Debug)]
pub struct ExtraRead<'k> {
    /// The decrypted bytes (a Kubernetes object: reads are checked).
    pub plaintext: Vec<u8>,
    /// The key that read it.
    pub key: &'k ExtraKey,
}

/// Keys from further configs and archives, in the order given (configs first).
#[derive(Clone, Debug, Default)]
pub struct ExtraKeys {
    keys: Vec<ExtraKey>,
    chain: Option<Transformer>,
}

/// A key file could not be turned into keys.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", .file.display())]
pub struct ExtraKeyError {
    /// The file.
    pub file: PathBuf,
    /// The unusable key.
    #[source]
    pub source: BuildError,
}

impl ExtraKeys {
    /// The keyed providers' keys of `configs`, then the keys of `archives`; a key
    /// (provider, name, secret) seen before is not added again.
    pub fn new(
        configs: &[(&Path, &EncryptionConfiguration)],
        archives: &[LoadedArchive],
    ) -> Result<ExtraKeys, ExtraKeyError> {
        Self::build(configs, archives, true)
    }

    /// Every key of `configs` and `archives`, also those that repeat a key of
    /// another file (for listings; no chain is built).
    pub fn catalog(
        configs: &[(&Path, &EncryptionConfiguration)],
        archives: &[LoadedArchive],
    ) -> Vec<ExtraKey> {
        Self::build(configs, archives, false)
            .map(|k| k.keys)
            .unwrap_or_default()
    }

    fn build(
        configs: &[(&Path, &EncryptionConfiguration)],
        archives: &[LoadedArchive],
        dedup: bool,
    ) -> Result<ExtraKeys, ExtraKeyError> {
        let mut keys: Vec<ExtraKey> = Vec::new();
        let mut providers = Vec::new();
        let mut add =
            |kind: ArchivedProvider,
             k: KeyConfig,
             file: &Path,
             origin: Origin,
             resources: &[String],
             retired_at: Option<&str>,
             providers: &mut Vec<(crate::config::ProviderConfig, PathBuf)>| {
                let fp = k.secret.fingerprint();
                if let Some(e) = keys
                    .iter_mut()
                    .find(|e| e.provider == kind && e.name == k.name && e.fingerprint == fp)
                {
                    if e.origin == origin && e.file == file {
                        for r in resources {
                            if !e.resources.contains(r) {
                                e.resources.push(r.clone());
                            }
                        }
                    }
                    return;
                }
                keys.push(ExtraKey {
                    provider: kind,
                    name: k.name.clone(),
                    fingerprint: fp,
                    file: file.to_path_buf(),
                    origin,
                    resources: resources.to_vec(),
                    retired_at: retired_at.map(str::to_string),
                });
                providers.push((kind.wrap(vec![k]), file.to_path_buf()));
            };
        for (file, cfg) in configs {
            for item in &cfg.resources {
                for p in &item.providers {
                    let (Some(kind), Some(ks)) = (ArchivedProvider::of(p), p.keys()) else {
                        continue;
                    };
                    for k in &ks.keys {
                        add(
                            kind,
                            k.clone(),
                            file,
                            Origin::Config,
                            &item.resources,
                            None,
                            &mut providers,
                        );
                    }
                }
            }
        }
        for a in archives {
            for e in &a.archive.keys {
                let k = KeyConfig {
                    name: e.name.clone(),
                    secret: e.secret.clone(),
                };
                add(
                    e.provider,
                    k,
                    &a.path,
                    Origin::Archive,
                    &e.resources,
                    Some(&e.retired_at),
                    &mut providers,
                );
            }
        }
        if !dedup {
            return Ok(ExtraKeys { keys, chain: None });
        }
        // One provider per key, so the provider index of a read names the key.
        let mut chain_providers = Vec::with_capacity(providers.len());
        for (p, file) in providers {
            Transformer::from_providers(std::slice::from_ref(&p))
                .map_err(|source| ExtraKeyError { file, source })?;
            chain_providers.push(p);
        }
        let chain = if chain_providers.is_empty() {
            None
        } else {
            Some(
                Transformer::from_providers(&chain_providers).map_err(|source| ExtraKeyError {
                    file: PathBuf::new(),
                    source,
                })?,
            )
        };
        Ok(ExtraKeys { keys, chain })
    }

    /// Whether there are no extra keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every extra key, in the order tried.
    pub fn keys(&self) -> &[ExtraKey] {
        &self.keys
    }

    /// Whether some extra key has `provider`/`name`.
    pub fn has(&self, provider: &str, name: &str) -> bool {
        self.keys
            .iter()
            .any(|k| k.provider.name() == provider && k.name == name)
    }

    /// Read `stored` (at `etcd_key`, under kube-apiserver's `prefix`) with the
    /// extra keys: `None` when none of them reads it as the whole object its etcd
    /// key names (the checked read audit and rewrite use). Plaintext is never
    /// "read" here.
    pub fn read(&self, stored: &[u8], etcd_key: &[u8], prefix: &str) -> Option<ExtraRead<'_>> {
        let expected = ExpectedObject::from_key(etcd_key, prefix)?;
        self.read_expecting(stored, etcd_key, expected)
    }

    /// [`ExtraKeys::read`] with the object the etcd key names already worked out.
    pub fn read_expecting(
        &self,
        stored: &[u8],
        etcd_key: &[u8],
        expected: ExpectedObject<'_>,
    ) -> Option<ExtraRead<'_>> {
        let chain = self.chain.as_ref()?;
        let r = chain
            .read(stored, etcd_key, ReadMode::Checked(expected))
            .ok()?;
        let key = self.keys.get(r.by.provider_index)?;
        if !r.looks_like_object {
            return None;
        }
        let plaintext = match r.plaintext {
            Cow::Owned(v) => v,
            Cow::Borrowed(_) => return None,
        };
        Some(ExtraRead { plaintext, key })
    }
}

/// What the objects of a backup need, for one provider and key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyNeed {
    /// `aescbc`, `aesgcm`, `secretbox`, `kms`, `kms-v2`, `identity` or `unknown`.
    pub provider: &'static str,
    /// The key (KMS: plugin) name in the values' prefix; `None` for identity.
    pub name: Option<String>,
    /// Objects stored under it.
    pub objects: u64,
    /// Of those, objects a key at hand read.
    pub read: u64,
    /// The files whose keys read them, in the order first used.
    pub files: Vec<PathBuf>,
    /// The first objects no key at hand read.
    pub unread_examples: Vec<String>,
}

impl KeyNeed {
    /// `covered`, `missing` (no key of this name at hand), `unreadable` (a key of
    /// this name is at hand but does not read every object), `plaintext`, or
    /// `not-checked` (KMS: needs the plugin).
    pub fn state(&self, at_hand: &ExtraKeys) -> &'static str {
        match self.provider {
            "identity" => "plaintext",
            "kms" | "kms-v2" => "not-checked",
            _ if self.read == self.objects => "covered",
            p => match &self.name {
                Some(n) if at_hand.has(p, n) => "unreadable",
                _ => "missing",
            },
        }
    }

    /// Whether restoring the backup would lose these objects.
    pub fn is_missing(&self, at_hand: &ExtraKeys) -> bool {
        matches!(self.state(at_hand), "missing" | "unreadable")
    }
}

/// Which keys `objects` (etcd key, stored value) need, and whether `at_hand` reads
/// them: one [`KeyNeed`] per provider and key name, in order of first appearance.
pub fn needs<'a>(
    at_hand: &ExtraKeys,
    prefix: &str,
    objects: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Vec<KeyNeed> {
    use crate::envelope::Envelope;
    let mut out: Vec<KeyNeed> = Vec::new();
    for (key, value) in objects {
        let env = Envelope::parse(value);
        let provider = env.provider.name();
        let name = env.key_name_str();
        let idx = match out
            .iter()
            .position(|n| n.provider == provider && n.name == name)
        {
            Some(i) => i,
            None => {
                out.push(KeyNeed {
                    provider,
                    name: name.clone(),
                    ..KeyNeed::default()
                });
                out.len() - 1
            }
        };
        let need = &mut out[idx];
        need.objects += 1;
        let keyed = matches!(provider, "aescbc" | "aesgcm" | "secretbox");
        if !keyed {
            continue;
        }
        match at_hand.read(value, key, prefix) {
            Some(r) => {
                need.read += 1;
                if !need.files.contains(&r.key.file) {
                    need.files.push(r.key.file.clone());
                }
            }
            None => {
                if need.unread_examples.len() < crate::rotation::MAX_EXAMPLES {
                    need.unread_examples
                        .push(String::from_utf8_lossy(key).into_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchivedKey, KeyArchive};
    use crate::key::SecretKey;

    /// `v1 Secret default/db` as kube-apiserver stores it (protobuf).
    const OBJ: &[u8] =
        b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x0f\x0a\x0d\x0a\x02db\x1a\x07default";
    const EK: &[u8] = b"/registry/secrets/default/db";

    fn cfg(keys: &str) -> EncryptionConfiguration {
        EncryptionConfiguration::from_yaml_str(&format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aesgcm: {{keys: [{keys}]}}\n      - identity: {{}}\n"
        ))
        .unwrap()
    }

    #[test]
    fn archived_key_reads_what_the_configs_cannot() {
        let old = cfg("{name: k1, secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=}");
        let new = cfg("{name: k2, secret: AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=}");
        let stored = Transformer::from_providers(&old.resources[0].providers)
            .unwrap()
            .write(OBJ, EK)
            .unwrap();
        let none = ExtraKeys::new(&[(Path::new("new.yaml"), &new)], &[]).unwrap();
        assert!(none.read(&stored, EK, "/registry").is_none());
        assert!(
            none.read(OBJ, EK, "/registry").is_none(),
            "plaintext is not an extra read"
        );
        let archive = LoadedArchive {
            path: PathBuf::from("/backups/keys.yaml"),
            archive: KeyArchive {
                keys: vec![ArchivedKey {
                    provider: ArchivedProvider::AesGcm,
                    name: "k1".into(),
                    secret: SecretKey::new(vec![1; 32]),
                    resources: vec!["secrets".into()],
                    retired_at: "2026-01-01T00:00:00Z".into(),
                    config: "enc.yaml".into(),
                }],
            },
            loose_mode: None,
        };
        let ks = ExtraKeys::new(&[(Path::new("new.yaml"), &new)], &[archive]).unwrap();
        assert_eq!(ks.keys().len(), 2);
        let r = ks.read(&stored, EK, "/registry").unwrap();
        assert_eq!(r.plaintext, OBJ);
        assert_eq!(r.key.file, Path::new("/backups/keys.yaml"));
        assert_eq!(r.key.origin, Origin::Archive);
        assert!(ks.has("aesgcm", "k1"));
        // aesgcm binds the etcd key: the same value at another key does not read.
        assert!(ks
            .read(&stored, b"/registry/secrets/default/x", "/registry")
            .is_none());
        assert!(!r.key.to_string().contains("AQEB"));
    }

    #[test]
    fn duplicates_are_tried_once() {
        let c = cfg("{name: k1, secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=}");
        let ks = ExtraKeys::new(&[(Path::new("a"), &c), (Path::new("b"), &c)], &[]).unwrap();
        assert_eq!(ks.keys().len(), 1);
        assert_eq!(ks.keys()[0].file, Path::new("a"));
        assert!(ExtraKeys::new(&[], &[]).unwrap().is_empty());
    }
}
