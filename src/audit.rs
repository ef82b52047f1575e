//! Audit: classify every stored object by provider, key and status.
//!
//! The input is a stream of stored objects (etcd key, value, mod_revision) from a
//! snapshot or a live etcd. With an EncryptionConfiguration each object is read in
//! checked mode (every encrypted value is really decrypted) and given a
//! [`Status`] that says whether it needs action; without one, objects are only
//! `plaintext` or `encrypted`. The JSON field names here are an interface that
//! scripts use: keep them.

use crate::envelope::{kms, DecryptError, Envelope, ProviderKind};
use crate::etcd_key::{parse_object_key, GroupResource};
use crate::keyring::ExtraKeys;
use crate::kube::{verify_object, ExpectedObject};
use crate::transformer::{
    AttemptError, ChainCache, ReadError, ReadMode, Transformer, Transformers,
};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

pub use crate::hygiene::{scan_free_pages, superseded_plaintext, FreePageFinding, HistoryFinding};

/// Without a config nothing is decrypted, and the one leak that is certain
/// without keys is a plaintext Secret: whether plaintext of `resource` (as
/// reports name it: `secrets`, `deployments.apps`) is a finding then.
pub fn plaintext_is_finding_without_config(resource: &str) -> bool {
    resource == "secrets"
}

/// What an audit says about one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Stored as the config would write it now.
    Current,
    /// Unencrypted although the config encrypts this resource.
    Plaintext,
    /// Readable, but not under the write key: rewrite it.
    Stale,
    /// Names a provider/key the config does not have.
    UnknownKey,
    /// The key exists but decryption fails or yields something that is not an object.
    Undecryptable,
    /// Stored unencrypted but not a Kubernetes object (empty, truncated, garbage).
    Malformed,
    /// Without a config: encrypted (not checked).
    Encrypted,
}

impl Status {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Plaintext => "plaintext",
            Status::Stale => "stale",
            Status::UnknownKey => "unknown-key",
            Status::Undecryptable => "undecryptable",
            Status::Malformed => "malformed",
            Status::Encrypted => "encrypted",
        }
    }

    /// Whether an object with this status needs an admin's action.
    pub fn needs_action(self) -> bool {
        !matches!(self, Status::Current | Status::Encrypted)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One stored object as a source yields it.
#[derive(Clone, Copy, Debug)]
pub struct StoredObject<'a> {
    /// The etcd key.
    pub key: &'a [u8],
    /// The stored value.
    pub value: &'a [u8],
    /// etcd's mod_revision of the value.
    pub mod_revision: i64,
}

/// The audit of one object (JSON field names are a stable interface).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectReport {
    /// The etcd key.
    pub key: String,
    /// Group/resource, e.g. `secrets`, `deployments.apps`.
    pub resource: String,
    /// Namespace, null for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
    /// etcd mod_revision.
    pub mod_revision: i64,
    /// `identity|aescbc|aesgcm|secretbox|kms|kms-v2` (or `unknown`).
    pub provider: &'static str,
    /// Key name from the value's prefix (KMS: plugin name); null for identity.
    pub key_name: Option<String>,
    /// Classification.
    pub status: Status,
    /// Why, for anything that needs action (null otherwise).
    pub detail: Option<String>,
    /// The config or archive file whose key read the object when the primary
    /// config could not (absent otherwise; see [`Auditor::with_extra_keys`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_with: Option<String>,
}

impl ObjectReport {
    /// A report with nothing in it yet, for [`Auditor::classify_into`] to fill.
    pub fn blank() -> Self {
        ObjectReport {
            key: String::new(),
            resource: String::new(),
            namespace: None,
            name: String::new(),
            mod_revision: 0,
            provider: "",
            key_name: None,
            status: Status::Current,
            detail: None,
            read_with: None,
        }
    }

    /// Whether this object is a finding: with a config, anything that needs
    /// action; without one, only what is certain without keys, a plaintext Secret.
    pub fn is_finding(&self, with_config: bool) -> bool {
        if with_config {
            self.status.needs_action()
        } else {
            self.status == Status::Plaintext && plaintext_is_finding_without_config(&self.resource)
        }
    }

    /// Append this report as one line of JSON, byte for byte what
    /// `serde_json::to_writer` writes for it.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use crate::json::{write_i64, write_opt_str, write_str};
        out.extend_from_slice(b"{\"key\":");
        write_str(out, &self.key);
        out.extend_from_slice(b",\"resource\":");
        write_str(out, &self.resource);
        out.extend_from_slice(b",\"namespace\":");
        write_opt_str(out, self.namespace.as_deref());
        out.extend_from_slice(b",\"name\":");
        write_str(out, &self.name);
        out.extend_from_slice(b",\"mod_revision\":");
        write_i64(out, self.mod_revision);
        out.extend_from_slice(b",\"provider\":");
        write_str(out, self.provider);
        out.extend_from_slice(b",\"key_name\":");
        write_opt_str(out, self.key_name.as_deref());
        out.extend_from_slice(b",\"status\":");
        write_str(out, self.status.name());
        out.extend_from_slice(b",\"detail\":");
        write_opt_str(out, self.detail.as_deref());
        if let Some(file) = &self.read_with {
            out.extend_from_slice(b",\"read_with\":");
            write_str(out, file);
        }
        out.push(b'}');
    }
}

/// What to audit.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// kube-apiserver's `--etcd-prefix`.
    pub prefix: String,
    /// Only these resources (all when `None`).
    pub resources: Option<Vec<GroupResource>>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            prefix: crate::etcd_key::DEFAULT_PREFIX.to_string(),
            resources: None,
        }
    }
}

/// Classifies objects; share it across threads.
pub struct Auditor<'t> {
    transformers: Option<&'t Transformers>,
    extra: Option<&'t ExtraKeys>,
    options: AuditOptions,
}

impl<'t> Auditor<'t> {
    /// An auditor with a config (`Some`) or without.
    pub fn new(transformers: Option<&'t Transformers>, options: AuditOptions) -> Self {
        Auditor {
            transformers,
            extra: None,
            options,
        }
    }

    /// Whether objects are classified with a config (decrypted) or without.
    pub fn has_config(&self) -> bool {
        self.transformers.is_some()
    }

    /// Also try `extra` keys (further configs, key archives) on objects the config
    /// cannot read. Such an object is `stale`, never `current`, and its report names
    /// the key and the file in `detail` and `read_with`.
    pub fn with_extra_keys(mut self, extra: &'t ExtraKeys) -> Self {
        self.extra = (!extra.is_empty()).then_some(extra);
        self
    }

    /// The options.
    pub fn options(&self) -> &AuditOptions {
        &self.options
    }

    /// Whether `key` is an object this audit covers (under the prefix, in the
    /// resource filter), with its parsed parts. A filter entry may be a wildcard as
    /// EncryptionConfiguration writes them: `*.apps` (every resource of a group),
    /// `*.` (of the core group) or `*.*` (every resource).
    pub fn select<'k>(&self, key: &'k [u8]) -> Option<crate::etcd_key::ObjectKey<'k>> {
        let ok = parse_object_key(key, &self.options.prefix)?;
        if let Some(filter) = &self.options.resources {
            let selects = |f: &GroupResource| {
                f == &ok.resource
                    || (f.resource == "*" && (f.group == "*" || f.group == ok.resource.group))
            };
            if !filter.iter().any(selects) {
                return None;
            }
        }
        Some(ok)
    }

    /// Classify one object; `None` when it is outside the prefix or the filter.
    pub fn classify(&self, obj: &StoredObject<'_>) -> Option<ObjectReport> {
        self.classify_in(obj, &mut self.cache())
    }

    /// What a loop over many objects keeps between calls of
    /// [`Auditor::classify_in`].
    pub fn cache(&self) -> AuditCache<'t> {
        AuditCache(self.transformers.map(Transformers::chain_cache))
    }

    /// [`Auditor::classify`] for one of many objects, reusing `cache` (from
    /// [`Auditor::cache`], on this thread).
    pub fn classify_in(
        &self,
        obj: &StoredObject<'_>,
        cache: &mut AuditCache<'t>,
    ) -> Option<ObjectReport> {
        let mut report = ObjectReport::blank();
        self.classify_keeping(obj, None, cache, &mut report)
            .then_some(report)
    }

    /// [`Auditor::classify_in`] into `report`, reusing its strings' memory (a
    /// loop over many objects keeps one); false, and `report` unspecified,
    /// when the object is outside the prefix or the filter.
    pub fn classify_into(
        &self,
        obj: &StoredObject<'_>,
        cache: &mut AuditCache<'t>,
        report: &mut ObjectReport,
    ) -> bool {
        self.classify_keeping(obj, None, cache, report)
    }

    /// Like [`Auditor::classify`], and for a `stale` object that the config
    /// decrypted, the plaintext it read (so that a rewrite need not decrypt it
    /// again). Objects read only with extra keys leave it `None`.
    pub fn classify_with_plaintext(
        &self,
        obj: &StoredObject<'_>,
    ) -> Option<(ObjectReport, Option<Vec<u8>>)> {
        let mut plain = None;
        let mut report = ObjectReport::blank();
        self.classify_keeping(obj, Some(&mut plain), &mut self.cache(), &mut report)
            .then_some((report, plain))
    }

    fn classify_keeping(
        &self,
        obj: &StoredObject<'_>,
        plain: Option<&mut Option<Vec<u8>>>,
        cache: &mut AuditCache<'t>,
        out: &mut ObjectReport,
    ) -> bool {
        let Some(ok) = self.select(obj.key) else {
            return false;
        };
        let env = Envelope::parse(obj.value);
        let mut key_name: Option<Cow<'_, str>> = env.key_name.map(String::from_utf8_lossy);
        if env.provider == ProviderKind::KmsV2 {
            if let Some(id) = kms::kms_v2_key_id(env.payload) {
                let name = key_name.as_deref().unwrap_or_default();
                key_name = Some(Cow::Owned(format!("{name}/{id}")));
            }
        }
        let (mut status, mut detail) = match &mut cache.0 {
            None => match env.provider {
                ProviderKind::Identity => (Status::Plaintext, None),
                _ => (Status::Encrypted, None),
            },
            Some(chains) => {
                // A configured name with `:` in it (`old:1`) is matched by its
                // whole prefix, as kube-apiserver matches it, not cut at the `:`.
                let (t, covered) = chains.get(&ok.resource);
                if env.provider != ProviderKind::KmsV2 {
                    if let Some(name) = configured_key_name(t, obj.value) {
                        key_name = Some(Cow::Borrowed(name));
                    }
                }
                // `select` parsed this key under the prefix, so this is never None.
                let Some(expected) = ExpectedObject::from_object_key(&self.options.prefix, &ok)
                else {
                    return false;
                };
                classify_with(t, covered, &ok.resource, obj, &env, &expected, plain)
            }
        };
        let mut read_with = None;
        if matches!(status, Status::UnknownKey | Status::Undecryptable) {
            if let Some(r) = self
                .extra
                .and_then(|x| x.read(obj.value, obj.key, &self.options.prefix))
            {
                status = Status::Stale;
                detail = Some(format!(
                    "read only with {}: the config cannot read it ({}); to restore it into the cluster, add that key back to the config as a further key after the writer, restart kube-apiserver and rewrite it",
                    r.key,
                    detail.unwrap_or_default()
                ));
                read_with = Some(r.key.file.display().to_string());
            }
        }
        set_str(&mut out.key, ok.key);
        out.resource.clear();
        write!(out.resource, "{}", ok.resource).ok();
        set_opt_str(&mut out.namespace, ok.namespace);
        set_str(&mut out.name, ok.name);
        out.mod_revision = obj.mod_revision;
        out.provider = env.provider.name();
        set_opt_str(&mut out.key_name, key_name.as_deref());
        out.status = status;
        out.detail = detail;
        out.read_with = read_with;
        true
    }
}

/// `dst = s`, in the memory `dst` has.
fn set_str(dst: &mut String, s: &str) {
    dst.clear();
    dst.push_str(s);
}

/// `dst = s`, in the memory `dst` has.
fn set_opt_str(dst: &mut Option<String>, s: Option<&str>) {
    match (dst.as_mut(), s) {
        (Some(d), Some(s)) => set_str(d, s),
        (None, Some(s)) => *dst = Some(s.to_string()),
        (_, None) => *dst = None,
    }
}

/// The chain lookups an [`Auditor`] keeps between objects (see
/// [`Auditor::cache`]); `None` inside when auditing without a config.
pub struct AuditCache<'t>(Option<ChainCache<'t>>);

/// The longest key name configured in `t` whose whole prefix
/// (`k8s:enc:<provider>:v1:<name>:`) starts `value` (the last of equals),
/// borrowed from `value`, where it is spelled the same.
fn configured_key_name<'v>(t: &Transformer, value: &'v [u8]) -> Option<&'v str> {
    let mut found: Option<std::ops::Range<usize>> = None;
    t.for_each_key(|k| {
        let (Some(prefix), Some(name)) = (k.provider.prefix(), k.key_name.as_ref()) else {
            return;
        };
        let matches = value
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(name.as_bytes()))
            .is_some_and(|after| after.starts_with(b":"));
        if matches && found.as_ref().is_none_or(|f| name.len() >= f.len()) {
            found = Some(prefix.len()..prefix.len() + name.len());
        }
    });
    // The bytes equal a configured name, which is a `str`.
    found.and_then(|r| std::str::from_utf8(value.get(r)?).ok())
}

fn classify_with(
    t: &Transformer,
    covered: bool,
    gr: &GroupResource,
    obj: &StoredObject<'_>,
    env: &Envelope<'_>,
    expected: &ExpectedObject<'_>,
    plain: Option<&mut Option<Vec<u8>>>,
) -> (Status, Option<String>) {
    let writes_identity = t.write_key().provider == ProviderKind::Identity;
    if env.provider == ProviderKind::Identity {
        // The same test checked-mode reads apply: the whole object decodes and
        // is the one the key names.
        if let Err(e) = verify_object(obj.value, expected) {
            let what = if obj.value.is_empty() {
                "empty value".to_string()
            } else {
                format!("stored unencrypted, but {e}")
            };
            return (Status::Malformed, Some(what));
        }
        if writes_identity {
            return (Status::Current, None);
        }
        let detail = if t.reads_plaintext() {
            format!(
                "stored in plaintext; the config writes {} for {gr}: rewrite it",
                t.write_key()
            )
        } else {
            format!("stored in plaintext and the config for {gr} has no identity provider: kube-apiserver cannot read it; add `- identity: {{}}` last, then rewrite")
        };
        return (Status::Plaintext, Some(detail));
    }
    match t.read(obj.value, obj.key, ReadMode::Checked(*expected)) {
        Ok(r) if r.stale => {
            let detail = match (&r.stale_detail, r.by.provider_index) {
                (Some(d), 0) => format!("read with {}: {d}: rewrite it", r.by),
                _ => format!("read with {}, but {} writes {}: rewrite it", r.by, gr, t.write_key()),
            };
            if let Some(p) = plain {
                *p = Some(r.plaintext.into_owned());
            }
            (Status::Stale, Some(detail))
        }
        Ok(_) => (Status::Current, None),
        Err(ReadError::NoMatchingProvider { .. }) if !covered => (
            Status::UnknownKey,
            Some(format!("encrypted, but the config does not cover {gr} (kube-apiserver reads it with identity and fails)")),
        ),
        Err(e @ ReadError::NoMatchingProvider { .. }) => (Status::UnknownKey, Some(e.to_string())),
        Err(ReadError::AllFailed { attempts }) => {
            // KMS values cannot be decrypted here: classify by the matching
            // plugin's position, and say that it was not verified.
            let kms_only = attempts
                .iter()
                .all(|a| matches!(a.error, AttemptError::Decrypt(DecryptError::KmsUnsupported(_))));
            if kms_only {
                if let Some(a) = attempts.first() {
                    let note = "not decrypted: KMS values need the plugin".to_string();
                    return if a.by.provider_index == 0 {
                        (Status::Current, Some(note))
                    } else {
                        (Status::Stale, Some(format!("{note}; read by {}, which is not the write provider", a.by)))
                    };
                }
            }
            (Status::Undecryptable, Some(ReadError::AllFailed { attempts }.to_string()))
        }
    }
}

/// Counts for the JSON `summary` and the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects audited.
    pub objects: u64,
    /// Count by status name.
    pub by_status: BTreeMap<Status, u64>,
    /// Count by resource.
    pub by_resource: BTreeMap<String, u64>,
    /// Count by (resource, provider, key name, status), for the table.
    pub cells: BTreeMap<(String, &'static str, Option<String>, Status), u64>,
}

impl Summary {
    /// Count one report.
    pub fn add(&mut self, r: &ObjectReport) {
        self.objects += 1;
        *self.by_status.entry(r.status).or_default() += 1;
        // Look up before inserting: the keys are copied only the first time.
        match self.by_resource.get_mut(&r.resource) {
            Some(n) => *n += 1,
            None => {
                self.by_resource.insert(r.resource.clone(), 1);
            }
        }
        // There are few cells: find this one without building its key.
        if self.cells.len() <= 64 {
            let found = self.cells.iter_mut().find(|((res, prov, key, st), _)| {
                *st == r.status && *prov == r.provider && *res == r.resource && *key == r.key_name
            });
            if let Some((_, n)) = found {
                *n += 1;
                return;
            }
        }
        let cell = (r.resource.clone(), r.provider, r.key_name.clone(), r.status);
        *self.cells.entry(cell).or_default() += 1;
    }

    /// Merge another summary (from another thread or page).
    pub fn merge(&mut self, other: Summary) {
        self.objects += other.objects;
        for (k, v) in other.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        for (k, v) in other.by_resource {
            *self.by_resource.entry(k).or_default() += v;
        }
        for (k, v) in other.cells {
            *self.cells.entry(k).or_default() += v;
        }
    }

    /// The JSON `summary` object: `{"objects", "by_status", "by_resource"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "objects": self.objects,
            "by_status": self.by_status.iter().map(|(k, v)| (k.name().to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "by_resource": self.by_resource,
        })
    }

    /// Whether the audit found anything that needs action. With a config: any
    /// status but `current`; without: any plaintext Secret (`plaintext_secrets`).
    pub fn needs_action(&self, with_config: bool) -> bool {
        if with_config {
            self.by_status
                .iter()
                .any(|(s, n)| *n > 0 && s.needs_action())
        } else {
            self.cells.iter().any(|((res, _, _, st), n)| {
                *n > 0 && *st == Status::Plaintext && plaintext_is_finding_without_config(res)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EncryptionConfiguration;

    /// `v1 Secret ns/a` as kube-apiserver stores it (protobuf).
    const OBJ: &[u8] =
        b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x09\x0a\x07\x0a\x01a\x1a\x02ns";

    fn cfg(yaml_providers: &str) -> EncryptionConfiguration {
        EncryptionConfiguration::from_yaml_str(&format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n{yaml_providers}"
        ))
        .unwrap()
    }

    const K1: &str = "      - aescbc: {keys: [{name: k1, secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=}]}\n";
    const K2_K1: &str = "      - aescbc: {keys: [{name: k2, secret: AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=}, {name: k1, secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=}]}\n";
    const K1_WRONG: &str = "      - aescbc: {keys: [{name: k1, secret: CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=}]}\n";
    const ID: &str = "      - identity: {}\n";

    fn status(c: &EncryptionConfiguration, key: &[u8], value: &[u8]) -> Status {
        let ts = Transformers::new(c).unwrap();
        let a = Auditor::new(Some(&ts), AuditOptions::default());
        a.classify(&StoredObject {
            key,
            value,
            mod_revision: 5,
        })
        .unwrap()
        .status
    }

    fn encrypt(c: &EncryptionConfiguration, key: &[u8]) -> Vec<u8> {
        Transformer::from_providers(&c.resources[0].providers)
            .unwrap()
            .write(OBJ, key)
            .unwrap()
    }

    /// A key named `old:1` is reported as `old:1`, not cut at its `:`, and a
    /// shorter configured name that is a prefix of it does not win.
    #[test]
    fn key_names_with_colons_are_matched_whole() {
        let c = cfg("      - aescbc: {keys: [{name: old, secret: AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=}, {name: 'old:1', secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=}]}\n");
        let writer = cfg("      - aescbc: {keys: [{name: 'old:1', secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=}]}\n");
        let key = b"/registry/secrets/ns/a";
        let value = encrypt(&writer, key);
        assert!(value.starts_with(b"k8s:enc:aescbc:v1:old:1:"));
        let ts = Transformers::new(&c).unwrap();
        let a = Auditor::new(Some(&ts), AuditOptions::default());
        let r = a
            .classify(&StoredObject {
                key,
                value: &value,
                mod_revision: 5,
            })
            .unwrap();
        assert_eq!(r.key_name.as_deref(), Some("old:1"));
        assert_eq!(r.status, Status::Stale);
    }

    #[test]
    fn every_status() {
        let key: &[u8] = b"/registry/secrets/ns/a";
        let k1 = cfg(&format!("{K1}{ID}"));
        let rotated = cfg(&format!("{K2_K1}{ID}"));
        let stored_k1 = encrypt(&k1, key);
        assert_eq!(status(&k1, key, &stored_k1), Status::Current);
        assert_eq!(status(&rotated, key, &stored_k1), Status::Stale);
        assert_eq!(status(&k1, key, OBJ), Status::Plaintext);
        assert_eq!(status(&cfg(K1), key, OBJ), Status::Plaintext);
        assert_eq!(
            status(&cfg(&format!("{ID}{K1}")), key, OBJ),
            Status::Current
        );
        assert_eq!(
            status(&cfg(&format!("{ID}{K1}")), key, &stored_k1),
            Status::Stale
        );
        let stored_k2 = encrypt(&rotated, key);
        assert_eq!(status(&k1, key, &stored_k2), Status::UnknownKey);
        assert_eq!(
            status(&cfg(K1_WRONG), key, &stored_k1),
            Status::Undecryptable
        );
        let mut corrupt = stored_k1.clone();
        let n = corrupt.len();
        corrupt.truncate(n - 3);
        assert_eq!(status(&k1, key, &corrupt), Status::Undecryptable);
        assert_eq!(status(&k1, key, b"garbage"), Status::Malformed);
        assert_eq!(status(&k1, key, b""), Status::Malformed);
        // Not covered by the config: plaintext is current, encrypted cannot be read.
        let cm: &[u8] = b"/registry/configmaps/ns/a";
        assert_eq!(status(&k1, cm, OBJ), Status::Current);
        assert_eq!(status(&k1, cm, &stored_k1), Status::UnknownKey);
    }

    /// One report filled object after object gives what `classify` gives for
    /// each: nothing of the previous object (namespace, key name, detail) stays.
    #[test]
    fn a_reused_report_equals_a_fresh_one() {
        let k1 = cfg(&format!("{K1}{ID}"));
        let ts = Transformers::new(&k1).unwrap();
        let a = Auditor::new(Some(&ts), AuditOptions::default());
        let key: &[u8] = b"/registry/secrets/ns/a";
        let stored_k1 = encrypt(&k1, key);
        let objects: [(&[u8], &[u8]); 5] = [
            (key, &stored_k1),
            (b"/registry/namespaces/ns", b"garbage"),
            (key, OBJ),
            (b"/registry/configmaps/ns/a", &stored_k1),
            (key, &stored_k1),
        ];
        let mut cache = a.cache();
        let mut reused = ObjectReport::blank();
        for (key, value) in objects {
            let obj = StoredObject {
                key,
                value,
                mod_revision: 5,
            };
            assert!(a.classify_into(&obj, &mut cache, &mut reused));
            assert_eq!(Some(&reused), a.classify(&obj).as_ref());
        }
        let outside = StoredObject {
            key: b"/elsewhere/x",
            value: OBJ,
            mod_revision: 1,
        };
        assert!(!a.classify_into(&outside, &mut cache, &mut reused));
    }

    /// A stale object comes with the plaintext the config read (the object
    /// itself); a current or plaintext one without, and the report is the
    /// same as `classify`'s.
    #[test]
    fn stale_objects_keep_their_plaintext() {
        let key: &[u8] = b"/registry/secrets/ns/a";
        let rotated = cfg(&format!("{K2_K1}{ID}"));
        let ts = Transformers::new(&rotated).unwrap();
        let a = Auditor::new(Some(&ts), AuditOptions::default());
        let stored_k1 = encrypt(&cfg(K1), key);
        let stored_k2 = encrypt(&rotated, key);
        for (value, status, plain) in [
            (&stored_k1[..], Status::Stale, Some(OBJ.to_vec())),
            (&stored_k2[..], Status::Current, None),
            (OBJ, Status::Plaintext, None),
        ] {
            let obj = StoredObject {
                key,
                value,
                mod_revision: 5,
            };
            let (r, p) = a.classify_with_plaintext(&obj).unwrap();
            assert_eq!((r.status, p), (status, plain));
            assert_eq!(Some(r), a.classify(&obj));
        }
    }

    #[test]
    fn without_config_and_filters() {
        let a = Auditor::new(
            None,
            AuditOptions {
                prefix: "/registry".into(),
                resources: Some(vec![GroupResource::new("", "secrets")]),
            },
        );
        let r = a
            .classify(&StoredObject {
                key: b"/registry/secrets/ns/a",
                value: OBJ,
                mod_revision: 1,
            })
            .unwrap();
        assert_eq!(
            (
                r.status,
                r.provider,
                r.namespace.as_deref(),
                r.name.as_str()
            ),
            (Status::Plaintext, "identity", Some("ns"), "a")
        );
        let r = a
            .classify(&StoredObject {
                key: b"/registry/secrets/ns/a",
                value: b"k8s:enc:aesgcm:v1:g:xxxx",
                mod_revision: 1,
            })
            .unwrap();
        assert_eq!(
            (r.status, r.key_name.as_deref()),
            (Status::Encrypted, Some("g"))
        );
        assert!(a
            .classify(&StoredObject {
                key: b"/registry/configmaps/ns/a",
                value: OBJ,
                mod_revision: 1
            })
            .is_none());
        assert!(a
            .classify(&StoredObject {
                key: b"compact_rev_key",
                value: b"",
                mod_revision: 1
            })
            .is_none());
        let mut line = Vec::new();
        r.write_json(&mut line);
        assert_eq!(line, serde_json::to_vec(&r).unwrap());
        let odd = ObjectReport {
            key: "/registry/secrets/a\"b/c\\d\n".into(),
            namespace: None,
            key_name: Some("k:1".into()),
            detail: Some("tab\there \u{1} é".into()),
            mod_revision: -3,
            status: Status::UnknownKey,
            read_with: Some("/etc/old \"keys\".yaml".into()),
            ..r.clone()
        };
        line.clear();
        odd.write_json(&mut line);
        assert_eq!(line, serde_json::to_vec(&odd).unwrap());
        let mut s = Summary::default();
        s.add(&r);
        assert!(!s.needs_action(false));
        s.add(&ObjectReport {
            status: Status::Plaintext,
            ..r.clone()
        });
        assert!(s.needs_action(false));
        assert_eq!(s.to_json()["by_status"]["plaintext"], 1);
    }

    /// Without a config, the report, the summary and the hygiene scans agree:
    /// plaintext is a finding for Secrets only (not ConfigMaps, not a CRD named
    /// `secrets` in another group).
    #[test]
    fn without_config_only_plaintext_secrets_are_findings() {
        let a = Auditor::new(None, AuditOptions::default());
        for (key, finding) in [
            (&b"/registry/secrets/ns/a"[..], true),
            (b"/registry/configmaps/ns/a", false),
            (b"/registry/example.com/secrets/ns/a", false),
        ] {
            let r = a
                .classify(&StoredObject {
                    key,
                    value: OBJ,
                    mod_revision: 1,
                })
                .unwrap();
            assert_eq!(r.status, Status::Plaintext, "{r:?}");
            assert_eq!(r.is_finding(false), finding, "{r:?}");
            let mut s = Summary::default();
            s.add(&r);
            assert_eq!(s.needs_action(false), finding, "{r:?}");
            let gr = parse_object_key(key, "/registry").unwrap().resource;
            assert_eq!(
                crate::hygiene::should_be_encrypted(None, &gr),
                finding,
                "{gr}"
            );
        }
    }
}
