//! [`RotationError`]: why a rotation step was refused or failed. As age pairs each
//! error with a recommendation, every message says what to do instead; none carries
//! key material (keys appear by name and fingerprint only).

use super::KeyId;
use crate::fsutil::WriteFileError;
use std::path::PathBuf;

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
    #[error("refused: {count} object(s) of {} still use {target}; rewrite them (`atrest rewrite --endpoints URL,... --config FILE --resource R,...`), then retry (from a snapshot: a new one, taken after the rewrite){}; the file was not changed{}", .resources.join(", "), not_objects_note(.resources), fmt_examples(.examples, *.count))]
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

/// What to do about values at keys that name no object: `rewrite` only rewrites
/// objects, so those are for the admin to inspect and delete (or rewrite) by hand.
fn not_objects_note(resources: &[String]) -> &'static str {
    if resources
        .iter()
        .any(|r| r == super::usage::NOT_AN_OBJECT_KEY)
    {
        "; rewrite skips values at keys that name no object (not kube-apiserver's objects): inspect those keys with `etcdctl get` and delete them, or store them again under the write key, by hand"
    } else {
        ""
    }
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
