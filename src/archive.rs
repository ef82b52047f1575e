//! The key archive: keys that `atrest rotate retire` removed from a config, kept so
//! that backups taken before the rotation stay readable.
//!
//! The format is atrest's own (no upstream format exists; OpenShift's operator keeps
//! old keys in Secrets for the same reason). A YAML document, JSON also accepted:
//!
//! ```yaml
//! apiVersion: atrest.dev/v1
//! kind: KeyArchive
//! keys:
//!   - provider: aescbc                   # aescbc | aesgcm | secretbox
//!     name: key1                         # as in k8s:enc:<provider>:v1:<name>:
//!     secret: "<base64, as in an EncryptionConfiguration>"
//!     fingerprint: 0123456789abcdef      # atrest fingerprint, checked on load
//!     resources: [secrets]               # the resources[] it served
//!     retiredAt: "2026-11-30T09:10:31Z"  # UTC
//!     config: /etc/kubernetes/enc/encryption-config.yaml
//! ```
//!
//! Entries are only ever appended ([`append`]): the whole file is rewritten atomically
//! (mode 0600, owner kept, by [`crate::fsutil::write_private`]) and read back to check
//! that every entry is there. A file is checked before use ([`KeyArchive::load`]): it
//! must parse, every key must fit its provider and match its fingerprint, and its mode
//! is reported when group or others may read it. Secrets live in [`SecretKey`]s and the
//! file text in zeroizing strings; no message ever contains key material.

use crate::config::{EncryptionConfiguration, KeyConfig, KeysConfig, ProviderConfig};
use crate::fsutil::{write_private, WriteFileError};
use crate::key::{Fingerprint, SecretKey};
use crate::transformer::Transformer;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use zeroize::Zeroizing;

/// `apiVersion` of a key archive.
pub const API_VERSION: &str = "atrest.dev/v1";
/// `kind` of a key archive.
pub const KIND: &str = "KeyArchive";

/// A key provider whose keys an archive holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArchivedProvider {
    /// `aescbc`
    AesCbc,
    /// `aesgcm`
    AesGcm,
    /// `secretbox`
    Secretbox,
}

impl ArchivedProvider {
    /// The provider's name in configs and stored prefixes.
    pub fn name(self) -> &'static str {
        match self {
            ArchivedProvider::AesCbc => "aescbc",
            ArchivedProvider::AesGcm => "aesgcm",
            ArchivedProvider::Secretbox => "secretbox",
        }
    }

    /// `aescbc`, `aesgcm` or `secretbox`.
    pub fn parse(s: &str) -> Option<ArchivedProvider> {
        match s {
            "aescbc" => Some(ArchivedProvider::AesCbc),
            "aesgcm" => Some(ArchivedProvider::AesGcm),
            "secretbox" => Some(ArchivedProvider::Secretbox),
            _ => None,
        }
    }

    /// The provider of a config entry (`None` for identity and kms).
    pub fn of(p: &ProviderConfig) -> Option<ArchivedProvider> {
        match p {
            ProviderConfig::AesCbc(_) => Some(ArchivedProvider::AesCbc),
            ProviderConfig::AesGcm(_) => Some(ArchivedProvider::AesGcm),
            ProviderConfig::Secretbox(_) => Some(ArchivedProvider::Secretbox),
            ProviderConfig::Identity | ProviderConfig::Kms(_) => None,
        }
    }

    /// A config provider holding `keys`.
    pub fn wrap(self, keys: Vec<KeyConfig>) -> ProviderConfig {
        let keys = KeysConfig { keys };
        match self {
            ArchivedProvider::AesCbc => ProviderConfig::AesCbc(keys),
            ArchivedProvider::AesGcm => ProviderConfig::AesGcm(keys),
            ArchivedProvider::Secretbox => ProviderConfig::Secretbox(keys),
        }
    }
}

impl fmt::Display for ArchivedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One retired key. `Debug` shows the fingerprint, never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedKey {
    /// Its provider.
    pub provider: ArchivedProvider,
    /// Its name (part of the stored prefix).
    pub name: String,
    /// The key.
    pub secret: SecretKey,
    /// The resources[] names it served, in config order.
    pub resources: Vec<String>,
    /// When it was retired, RFC 3339 UTC (`2026-11-30T09:10:31Z`).
    pub retired_at: String,
    /// The config file it was retired from.
    pub config: String,
}

impl ArchivedKey {
    /// The key's public fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.secret.fingerprint()
    }

    /// `aescbc key `key1` (fingerprint ...)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} key `{}` (fingerprint {})",
            self.provider,
            self.name,
            self.fingerprint()
        )
    }

    fn same_key(&self, other: &ArchivedKey) -> bool {
        self.provider == other.provider && self.name == other.name && self.secret == other.secret
    }
}

/// A whole key archive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyArchive {
    /// Entries in the order they were archived.
    pub keys: Vec<ArchivedKey>,
}

/// An archive read from a file, with what the check of the file found.
#[derive(Clone, Debug)]
pub struct LoadedArchive {
    /// The file.
    pub path: PathBuf,
    /// Its entries.
    pub archive: KeyArchive,
    /// The file's permission bits when group or others have any access (`None`: 0600
    /// or stricter).
    pub loose_mode: Option<u32>,
}

impl LoadedArchive {
    /// A warning about the file's permissions, if they are loose.
    pub fn permission_warning(&self) -> Option<String> {
        self.loose_mode.map(|m| {
            format!(
                "{} has mode {m:04o}: group or others can read the keys in it; run `chmod 600 {}` and keep the archive with the backups, not on the nodes",
                self.path.display(),
                self.path.display()
            )
        })
    }
}

/// Why an archive could not be read or written. No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file could not be read.
    #[error("cannot read key archive {}: {source}; check the path and its permissions", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path is not a regular file.
    #[error("key archive {} is not a regular file; give the path of the archive file", .path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The text is not a key archive.
    #[error("{}: not a key archive: {message}; fix the file, or restore it from a copy (atrest never edits entries, it only appends)", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (values are never quoted).
        message: String,
    },
    /// An entry is unusable.
    #[error("{}: keys[{index}] ({provider}/{name}): {problem}; restore the archive from a copy", .path.display())]
    BadEntry {
        /// The file.
        path: PathBuf,
        /// Index of the entry.
        index: usize,
        /// Its provider as written.
        provider: String,
        /// Its name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// Appending to an archive others can read is refused.
    #[error("refused to add a key to {}: its mode is {mode:04o}, so group or others can read the keys in it; run `chmod 600 {}` (and check who could read it), then retry; the config was not changed", .path.display(), .path.display())]
    LoosePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file changed between reading and writing it.
    #[error("{} changed while the key was being added (another atrest at work?); run the command again; the config was not changed", .path.display())]
    ChangedOnDisk {
        /// The file.
        path: PathBuf,
    },
    /// Reading the file back did not show every entry.
    #[error("{} does not hold every entry after writing it ({problem}); keep the previous copy of the archive and the config's .bak file; the config was not changed", .path.display())]
    Lost {
        /// The file.
        path: PathBuf,
        /// What is missing.
        problem: String,
    },
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] WriteFileError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchive {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    #[serde(default)]
    keys: Option<Vec<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    provider: String,
    name: String,
    secret: RawSecret,
    fingerprint: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(rename = "retiredAt")]
    retired_at: String,
    #[serde(default)]
    config: String,
}

/// The base64 text of a key, wiped on drop.
struct RawSecret(Zeroizing<String>);

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RawSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSecret, E> {
                Ok(RawSecret(Zeroizing::new(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawSecret, E> {
                Ok(RawSecret(Zeroizing::new(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Drop anything quoted from a parser message: it may be a value from the file.
fn redact(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut quote: Option<char> = None;
    for c in msg.chars() {
        match quote {
            Some(q) if c == q => {
                out.push_str("...");
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
            }
        }
    }
    out
}

impl KeyArchive {
    /// Parse archive text (YAML, or JSON when it starts with `{`). `path` names the
    /// file in errors. Every entry is checked: known provider, base64 secret of a size
    /// the provider takes, fingerprint matching the secret.
    pub fn from_slice(path: &Path, bytes: &[u8]) -> Result<KeyArchive, ArchiveError> {
        let parse_err = |message: String| ArchiveError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|e| parse_err(format!("not UTF-8 (offset {})", e.valid_up_to())))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(parse_err(format!(
                "the file is empty (expected apiVersion: {API_VERSION}, kind: {KIND})"
            )));
        }
        let raw: RawArchive = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| {
                parse_err(format!(
                    "invalid JSON at line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    redact(&e.to_string())
                ))
            })?
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                parse_err(format!(
                    "invalid YAML: {}",
                    redact(&e.without_snippet().to_string())
                ))
            })?
        };
        if raw.api_version != API_VERSION || raw.kind != KIND {
            return Err(parse_err(format!(
                "apiVersion/kind is {}/{}, expected {API_VERSION}/{KIND}",
                redact(&format!("{:?}", raw.api_version)),
                redact(&format!("{:?}", raw.kind)),
            )));
        }
        let mut keys = Vec::new();
        for (index, e) in raw.keys.unwrap_or_default().into_iter().enumerate() {
            let bad = |problem: String| ArchiveError::BadEntry {
                path: path.to_path_buf(),
                index,
                provider: e.provider.clone(),
                name: e.name.clone(),
                problem,
            };
            let provider = ArchivedProvider::parse(&e.provider)
                .ok_or_else(|| bad("provider must be aescbc, aesgcm or secretbox".into()))?;
            if e.name.is_empty() {
                return Err(bad("the name is empty".into()));
            }
            let secret = SecretKey::from_base64(&e.secret.0).map_err(|x| bad(x.to_string()))?;
            let entry = ArchivedKey {
                provider,
                name: e.name.clone(),
                secret,
                resources: e.resources.clone(),
                retired_at: e.retired_at.clone(),
                config: e.config.clone(),
            };
            entry.cipher_check().map_err(bad)?;
            if entry.fingerprint().to_string() != e.fingerprint {
                return Err(bad(format!(
                    "the secret's fingerprint is {}, the entry says {}: the secret or the fingerprint was changed",
                    entry.fingerprint(),
                    redact(&format!("{:?}", e.fingerprint))
                )));
            }
            keys.push(entry);
        }
        Ok(KeyArchive { keys })
    }

    /// Read and check an archive file (see [`KeyArchive::from_slice`]); also reports
    /// loose permissions in [`LoadedArchive::loose_mode`].
    pub fn load(path: &Path) -> Result<LoadedArchive, ArchiveError> {
        let io = |source| ArchiveError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(ArchiveError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(io)?);
        let archive = KeyArchive::from_slice(path, &bytes)?;
        Ok(LoadedArchive {
            path: path.to_path_buf(),
            archive,
            loose_mode: loose_mode(&meta),
        })
    }

    /// The file text (YAML; holds keys, so zeroizing). Every string is written as a
    /// JSON string, which is a valid YAML double-quoted scalar.
    pub fn to_yaml(&self) -> Zeroizing<String> {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
        let mut out = Zeroizing::new(String::with_capacity(256 + 320 * self.keys.len()));
        out.push_str(&format!("apiVersion: {API_VERSION}\nkind: {KIND}\n"));
        if self.keys.is_empty() {
            out.push_str("keys: []\n");
            return out;
        }
        out.push_str("keys:\n");
        for k in &self.keys {
            out.push_str(&format!("  - provider: {}\n", k.provider));
            out.push_str(&format!("    name: {}\n", q(&k.name)));
            out.push_str("    secret: \"");
            out.push_str(&k.secret.to_base64());
            out.push_str("\"\n");
            out.push_str(&format!("    fingerprint: \"{}\"\n", k.fingerprint()));
            let res: Vec<String> = k.resources.iter().map(|r| q(r)).collect();
            out.push_str(&format!("    resources: [{}]\n", res.join(", ")));
            out.push_str(&format!("    retiredAt: {}\n", q(&k.retired_at)));
            out.push_str(&format!("    config: {}\n", q(&k.config)));
        }
        out
    }
}

impl ArchivedKey {
    /// Whether the key fits its provider (AES 16/24/32 bytes, secretbox 32).
    fn cipher_check(&self) -> Result<(), String> {
        let p = self.provider.wrap(vec![KeyConfig {
            name: self.name.clone(),
            secret: self.secret.clone(),
        }]);
        Transformer::from_providers(&[p])
            .map(|_| ())
            .map_err(|e| e.source.to_string())
    }
}

#[cfg(unix)]
fn loose_mode(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

/// `2026-11-30T09:10:31Z` for a point in time.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let s = crate::rotation::utc_stamp(t);
    // YYYYMMDDTHHMMSSZ → YYYY-MM-DDTHH:MM:SSZ
    let b = s.as_bytes();
    if b.len() != 16 {
        return s;
    }
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    )
}

/// The keys that `old` has and `new` lost (what a `retire` removed), as archive
/// entries: each keyed provider's key once, with the resources of every `old` item
/// that had it.
pub fn removed_keys(
    old: &EncryptionConfiguration,
    new: &EncryptionConfiguration,
    config: &Path,
    now: SystemTime,
) -> Vec<ArchivedKey> {
    let has = |cfg: &EncryptionConfiguration, p: ArchivedProvider, k: &KeyConfig| {
        cfg.resources.iter().any(|item| {
            item.providers.iter().any(|q| {
                ArchivedProvider::of(q) == Some(p)
                    && q.keys().is_some_and(|ks| {
                        ks.keys
                            .iter()
                            .any(|x| x.name == k.name && x.secret == k.secret)
                    })
            })
        })
    };
    let retired_at = rfc3339_utc(now);
    let mut out: Vec<ArchivedKey> = Vec::new();
    for item in &old.resources {
        for p in &item.providers {
            let (Some(kind), Some(ks)) = (ArchivedProvider::of(p), p.keys()) else {
                continue;
            };
            for k in &ks.keys {
                if has(new, kind, k) {
                    continue;
                }
                let entry = out
                    .iter_mut()
                    .find(|e| e.provider == kind && e.name == k.name && e.secret == k.secret);
                match entry {
                    Some(e) => {
                        for r in &item.resources {
                            if !e.resources.contains(r) {
                                e.resources.push(r.clone());
                            }
                        }
                    }
                    None => out.push(ArchivedKey {
                        provider: kind,
                        name: k.name.clone(),
                        secret: k.secret.clone(),
                        resources: item.resources.clone(),
                        retired_at: retired_at.clone(),
                        config: config.display().to_string(),
                    }),
                }
            }
        }
    }
    out
}

/// What [`append`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The archive file written (symlinks resolved).
    pub path: PathBuf,
    /// Entries added.
    pub added: Vec<String>,
    /// Entries already in the archive (same provider, name and secret), not repeated.
    pub already: Vec<String>,
    /// Whether the file was created.
    pub created: bool,
}

/// Append `entries` to the archive at `path` (created, mode 0600, when missing).
///
/// An existing file is checked first ([`KeyArchive::load`]) and refused when group or
/// others may access it. The new text keeps every old entry in order and adds the new
/// ones (a key already archived is not repeated); it replaces the file atomically, only
/// if the file did not change meanwhile, and is read back to check that every entry is
/// there.
pub fn append(path: &Path, entries: &[ArchivedKey]) -> Result<Appended, ArchiveError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ArchiveError::Io { path: p, source }
    };
    let target = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(io(path)(e)),
    };
    let existing = match std::fs::symlink_metadata(&target) {
        Ok(_) => {
            let before = Zeroizing::new(std::fs::read(&target).map_err(io(&target))?);
            let loaded = KeyArchive::load(&target)?;
            if let Some(mode) = loaded.loose_mode {
                return Err(ArchiveError::LoosePermissions { path: target, mode });
            }
            Some((loaded.archive, before))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&target)(e)),
    };
    let created = existing.is_none();
    let mut archive = existing
        .as_ref()
        .map(|(a, _)| a.clone())
        .unwrap_or_default();
    let (mut added, mut already) = (Vec::new(), Vec::new());
    for e in entries {
        if archive.keys.iter().any(|k| k.same_key(e)) {
            already.push(e.describe());
        } else {
            added.push(e.describe());
            archive.keys.push(e.clone());
        }
    }
    if !added.is_empty() || created {
        let text = archive.to_yaml();
        match &existing {
            None => write_private(&target, text.as_bytes(), false)?,
            Some((_, before)) => {
                let now = Zeroizing::new(std::fs::read(&target).map_err(io(&target))?);
                if *now != **before {
                    return Err(ArchiveError::ChangedOnDisk { path: target });
                }
                write_private(&target, text.as_bytes(), true)?;
            }
        }
        let back = KeyArchive::load(&target)?;
        if back.archive != archive {
            return Err(ArchiveError::Lost {
                path: target,
                problem: format!(
                    "{} entries expected, {} read back",
                    archive.keys.len(),
                    back.archive.keys.len()
                ),
            });
        }
    }
    Ok(Appended {
        path: target,
        added,
        already,
        created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn entry(name: &str, byte: u8) -> ArchivedKey {
        ArchivedKey {
            provider: ArchivedProvider::AesCbc,
            name: name.to_string(),
            secret: SecretKey::new(vec![byte; 32]),
            resources: vec!["secrets".into(), "configmaps".into()],
            retired_at: "2026-11-30T09:10:31Z".into(),
            config: "/etc/kubernetes/enc/encryption-config.yaml".into(),
        }
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trip_and_append_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("keys.yaml");
        let a = append(&p, &[entry("key1", 1)]).unwrap();
        assert!(a.created);
        assert_eq!(a.added.len(), 1);
        #[cfg(unix)]
        assert_eq!(mode(&p), 0o600);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("apiVersion: atrest.dev/v1\nkind: KeyArchive\n"),
            "{text}"
        );
        // Same key again: not repeated. Another key: appended after the first.
        let a = append(&p, &[entry("key1", 1), entry("key2", 2)]).unwrap();
        assert_eq!((a.added.len(), a.already.len(), a.created), (1, 1, false));
        let l = KeyArchive::load(&p).unwrap();
        assert_eq!(l.archive.keys, vec![entry("key1", 1), entry("key2", 2)]);
        assert_eq!(l.loose_mode, None);
        // A reused name with another secret is a different key: kept too.
        append(&p, &[entry("key1", 3)]).unwrap();
        assert_eq!(KeyArchive::load(&p).unwrap().archive.keys.len(), 3);
        let leftovers = std::fs::read_dir(d.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }

    #[test]
    fn json_is_accepted() {
        let e = entry("k", 7);
        let json = format!(
            r#"{{"apiVersion":"atrest.dev/v1","kind":"KeyArchive","keys":[{{"provider":"aescbc","name":"k","secret":"{}","fingerprint":"{}","resources":["secrets"],"retiredAt":"2026-01-01T00:00:00Z","config":"c.yaml"}}]}}"#,
            &*e.secret.to_base64(),
            e.fingerprint()
        );
        let a = KeyArchive::from_slice(Path::new("a.json"), json.as_bytes()).unwrap();
        assert_eq!(a.keys[0].secret, e.secret);
    }

    #[test]
    fn damaged_archives_are_refused_without_quoting_secrets() {
        let p = Path::new("a.yaml");
        let good = KeyArchive {
            keys: vec![entry("key1", 1)],
        }
        .to_yaml();
        let b64 = entry("key1", 1).secret.to_base64().to_string();
        // A changed secret no longer matches its fingerprint.
        let other = entry("key1", 9).secret.to_base64().to_string();
        let bad = good.replace(&b64, &other);
        let e = KeyArchive::from_slice(p, bad.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("keys[0] (aescbc/key1)") && e.contains("fingerprint"),
            "{e}"
        );
        assert!(!e.contains(&other), "{e}");
        // A secret of the wrong size.
        let short = good.replace(&b64, "AAAAAAAAAAAAAAAA");
        let e = KeyArchive::from_slice(p, short.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("12 bytes") || e.contains("bytes"), "{e}");
        // Wrong kind, unknown field, empty file.
        let e = KeyArchive::from_slice(p, good.replace("KeyArchive", "Secret").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected atrest.dev/v1/KeyArchive"), "{e}");
        let e = KeyArchive::from_slice(p, good.replace("    config:", "    secrets:").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a key archive"), "{e}");
        assert!(!e.contains(&b64), "{e}");
        assert!(KeyArchive::from_slice(p, b"  \n").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn loose_archives_warn_on_read_and_refuse_appends() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("keys.yaml");
        append(&p, &[entry("key1", 1)]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let l = KeyArchive::load(&p).unwrap();
        assert_eq!(l.loose_mode, Some(0o644));
        assert!(l.permission_warning().unwrap().contains("chmod 600"));
        let before = std::fs::read(&p).unwrap();
        let e = append(&p, &[entry("key2", 2)]).unwrap_err();
        assert!(
            matches!(e, ArchiveError::LoosePermissions { mode: 0o644, .. }),
            "{e}"
        );
        assert_eq!(
            std::fs::read(&p).unwrap(),
            before,
            "refused: file untouched"
        );
    }

    /// Needs `write_private` to keep the owner of the file it replaces (the fsutil
    /// change of the rewrite-safety work); un-ignore once both are merged.
    #[cfg(unix)]
    #[test]
    fn append_keeps_the_owner() {
        use std::os::unix::fs::MetadataExt;
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("keys.yaml");
        append(&p, &[entry("key1", 1)]).unwrap();
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        append(&p, &[entry("key2", 2)]).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (65534, 65534, 0o600));
    }

    #[test]
    fn removed_keys_are_what_retire_dropped() {
        let yaml = |keys: &str| {
            EncryptionConfiguration::from_yaml_str(&format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aescbc: {{keys: [{keys}]}}\n  - resources: [configmaps]\n    providers:\n      - aescbc: {{keys: [{keys}]}}\n"
            ))
            .unwrap()
        };
        let k2 = "{name: key2, secret: AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=}";
        let k1 = "{name: key1, secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=}";
        let old = yaml(&format!("{k2}, {k1}"));
        let new = yaml(k2);
        let t = UNIX_EPOCH + Duration::from_secs(1_764_400_000);
        let got = removed_keys(&old, &new, Path::new("enc.yaml"), t);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "key1");
        assert_eq!(got[0].secret, SecretKey::new(vec![1; 32]));
        assert_eq!(got[0].resources, ["secrets", "configmaps"]);
        assert_eq!(got[0].retired_at, "2025-11-29T07:06:40Z");
        assert_eq!(got[0].config, "enc.yaml");
        assert!(removed_keys(&old, &old, Path::new("x"), t).is_empty());
        assert!(!format!("{:?}", got[0]).contains("AQEB"));
    }
}
