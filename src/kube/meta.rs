//! The protobuf envelope and metadata every stored built-in object carries.
//!
//! Layout, from upstream:
//! - `k8s\x00` magic, then a `runtime.Unknown` (`apimachinery pkg/runtime/generated.proto`,
//!   written by `pkg/runtime/serializer/protobuf/protobuf.go` through
//!   `Unknown.NestedMarshalTo` in `pkg/runtime/types_proto.go`):
//!   typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2, contentEncoding = 3, contentType = 4.
//! - `raw` is the typed object; every built-in type has `metadata` (ObjectMeta) at field 1.
//! - `ObjectMeta`, `OwnerReference`, `ManagedFieldsEntry`, `FieldsV1`, `Time`:
//!   `apimachinery pkg/apis/meta/v1/generated.proto`; `Time`'s protobuf and JSON forms:
//!   `pkg/apis/meta/v1/time_proto.go` and `time.go`.
//!
//! Decoding follows Go's generated `Unmarshal`: repeated occurrences of an embedded
//! message merge, later scalars win. Fields this decoder does not know (added by a
//! newer Kubernetes) cannot be printed, but are not dropped silently: each one is
//! listed in [`ObjectMeta::undecoded`] so the caller can say the manifest lacks it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::emit::{emit_value, ordered_entries, str_entry, Emitter};
use super::{KubeError, ManifestOptions};
use crate::wire::{map_entry, string_entry_ref, Field, Reader, WireError};

pub use crate::envelope::PROTOBUF_MAGIC;

// runtime.Unknown fields.
const UNKNOWN_TYPE_META: u32 = 1;
const UNKNOWN_RAW: u32 = 2;
const UNKNOWN_CONTENT_ENCODING: u32 = 3;
const UNKNOWN_CONTENT_TYPE: u32 = 4;
// runtime.TypeMeta fields.
const TYPE_META_API_VERSION: u32 = 1;
const TYPE_META_KIND: u32 = 2;
/// Field of `metadata` in every built-in object.
pub const OBJECT_METADATA: u32 = 1;

// ObjectMeta fields.
const META_NAME: u32 = 1;
const META_GENERATE_NAME: u32 = 2;
const META_NAMESPACE: u32 = 3;
const META_SELF_LINK: u32 = 4;
const META_UID: u32 = 5;
const META_RESOURCE_VERSION: u32 = 6;
const META_GENERATION: u32 = 7;
const META_CREATION_TIMESTAMP: u32 = 8;
const META_DELETION_TIMESTAMP: u32 = 9;
const META_DELETION_GRACE_PERIOD_SECONDS: u32 = 10;
const META_LABELS: u32 = 11;
const META_ANNOTATIONS: u32 = 12;
const META_OWNER_REFERENCES: u32 = 13;
const META_FINALIZERS: u32 = 14;
const META_MANAGED_FIELDS: u32 = 17;

// OwnerReference fields (note the numbering: kind = 1, apiVersion = 5).
const OWNER_KIND: u32 = 1;
const OWNER_NAME: u32 = 3;
const OWNER_UID: u32 = 4;
const OWNER_API_VERSION: u32 = 5;
const OWNER_CONTROLLER: u32 = 6;
const OWNER_BLOCK_OWNER_DELETION: u32 = 7;

// ManagedFieldsEntry fields (5 was the removed `fields`).
const MANAGED_MANAGER: u32 = 1;
const MANAGED_OPERATION: u32 = 2;
const MANAGED_API_VERSION: u32 = 3;
const MANAGED_TIME: u32 = 4;
const MANAGED_FIELDS_TYPE: u32 = 6;
const MANAGED_FIELDS_V1: u32 = 7;
const MANAGED_SUBRESOURCE: u32 = 8;
// FieldsV1 fields.
const FIELDS_V1_RAW: u32 = 1;

// Timestamp (the protobuf form of metav1.Time).
const TIMESTAMP_SECONDS: u32 = 1;

/// `time.Time{}.Unix()`: Go's zero time, which metav1.Time prints as `null`.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// The decoded `runtime.Unknown` wrapper.
#[derive(Debug, Clone)]
pub struct Unknown<'a> {
    pub api_version: Cow<'a, str>,
    pub kind: Cow<'a, str>,
    /// The typed object's protobuf bytes.
    pub raw: &'a [u8],
    /// Absolute offset of `raw` in the stored value.
    pub raw_offset: usize,
    pub content_encoding: Cow<'a, str>,
    pub content_type: Cow<'a, str>,
}

/// Parse `k8s\x00` + `runtime.Unknown`. The caller has checked the magic.
pub fn parse_unknown(plaintext: &[u8]) -> Result<Unknown<'_>, KubeError> {
    let body = plaintext
        .get(PROTOBUF_MAGIC.len()..)
        .ok_or(WireError::Truncated {
            message: "runtime.Unknown",
            what: "k8s magic",
            offset: 0,
        })?;
    let mut r = Reader::with_base(body, PROTOBUF_MAGIC.len(), "runtime.Unknown");
    let mut unknown = Unknown {
        api_version: Cow::Borrowed(""),
        kind: Cow::Borrowed(""),
        raw: &[],
        raw_offset: plaintext.len(),
        content_encoding: Cow::Borrowed(""),
        content_type: Cow::Borrowed(""),
    };
    let mut saw_type_meta = false;
    while let Some(f) = r.next_field()? {
        match f.number {
            UNKNOWN_TYPE_META => {
                saw_type_meta = true;
                let mut tm = f.message("runtime.TypeMeta")?;
                while let Some(f) = tm.next_field()? {
                    match f.number {
                        TYPE_META_API_VERSION => unknown.api_version = f.str_lossy()?,
                        TYPE_META_KIND => unknown.kind = f.str_lossy()?,
                        _ => {}
                    }
                }
            }
            UNKNOWN_RAW => {
                unknown.raw = f.bytes()?;
                unknown.raw_offset = f.value_offset;
            }
            UNKNOWN_CONTENT_ENCODING => unknown.content_encoding = f.str_lossy()?,
            UNKNOWN_CONTENT_TYPE => unknown.content_type = f.str_lossy()?,
            _ => {}
        }
    }
    if !saw_type_meta || unknown.kind.is_empty() {
        return Err(KubeError::MissingTypeMeta);
    }
    if !unknown.content_encoding.is_empty() {
        return Err(KubeError::UnsupportedContentEncoding(
            unknown.content_encoding.into_owned(),
        ));
    }
    Ok(unknown)
}

/// A `metav1.Time` as stored: `None` is Go's zero time (printed as `null`),
/// otherwise whole seconds since the Unix epoch. Nanoseconds are dropped on
/// decode, exactly as `Time.Unmarshal` in `time_proto.go` does.
pub type Time = Option<i64>;

/// Decode a `metav1.Time` message body.
fn parse_time(field: &Field<'_>) -> Result<Time, KubeError> {
    let bytes = field.bytes()?;
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut r = field.message("metav1.Time")?;
    let mut seconds = 0i64;
    while let Some(f) = r.next_field()? {
        if f.number == TIMESTAMP_SECONDS {
            seconds = f.int64()?;
        }
    }
    if seconds == GO_ZERO_TIME_UNIX {
        return Ok(None);
    }
    Ok(Some(seconds))
}

/// RFC 3339 in UTC with whole seconds, as `metav1.Time.MarshalJSON` prints it.
pub fn format_rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60,
    );
    if !(0..=9999).contains(&year) {
        let year = if year < 0 {
            format!("-{:04}", year.unsigned_abs())
        } else {
            format!("{year:04}")
        };
        return format!("{year}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z");
    }
    // The common case without the formatting machinery (every object has one).
    let digits = |n: i64, width: usize, out: &mut String| {
        let mut buf = [b'0'; 4];
        let mut n = n;
        for i in (0..width).rev() {
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend(buf[..width].iter().map(|&b| char::from(b)));
    };
    let mut out = String::with_capacity(20);
    digits(year, 4, &mut out);
    out.push('-');
    digits(i64::from(month), 2, &mut out);
    out.push('-');
    digits(i64::from(day), 2, &mut out);
    out.push('T');
    digits(h, 2, &mut out);
    out.push(':');
    digits(m, 2, &mut out);
    out.push(':');
    digits(s, 2, &mut out);
    out.push('Z');
    out
}

/// Proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year;
    // 146_097 days make one 400-year cycle.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146_096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // 0..=11, March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn time_json(t: Time) -> Value {
    match t {
        Some(s) => Value::String(format_rfc3339(s)),
        None => Value::Null,
    }
}

/// `metav1.OwnerReference`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub controller: Option<bool>,
    pub block_owner_deletion: Option<bool>,
}

/// `metav1.ManagedFieldsEntry`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    /// `Some(_)` when the field was present (Go's `*Time` is non-nil).
    pub time: Option<Time>,
    pub fields_type: String,
    /// `FieldsV1.Raw`: a JSON document. `Some` when the message was present.
    pub fields_v1: Option<Vec<u8>>,
    pub subresource: String,
}

/// `metav1.ObjectMeta`, with Go's presence rules so the JSON matches the API server's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub name: String,
    pub generate_name: String,
    pub namespace: String,
    pub self_link: String,
    pub uid: String,
    pub resource_version: String,
    pub generation: i64,
    pub creation_timestamp: Time,
    pub deletion_timestamp: Option<Time>,
    pub deletion_grace_period_seconds: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owner_references: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    pub managed_fields: Vec<ManagedFieldsEntry>,
    /// Fields of the stored metadata that are not decoded, so not printed (from a
    /// newer Kubernetes), by path: `metadata field 18`,
    /// `metadata.ownerReferences[0] field 8`; each listed once.
    pub undecoded: Vec<String>,
}

impl ObjectMeta {
    /// Merge one encoded `ObjectMeta` into `self` (Go merges repeated occurrences).
    pub fn merge_from(&mut self, field: &Field<'_>) -> Result<(), KubeError> {
        walk_meta::<true>(self, &mut MetaIdentity::default(), field)
    }

    /// The JSON form, with Go's `omitempty` rules (`creationTimestamp` is a struct,
    /// so it is always printed, as `null` when zero).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let mut put_str = |key: &str, v: &str| {
            if !v.is_empty() {
                m.insert(key.to_string(), Value::String(v.to_string()));
            }
        };
        put_str("name", &self.name);
        put_str("generateName", &self.generate_name);
        put_str("namespace", &self.namespace);
        put_str("selfLink", &self.self_link);
        put_str("uid", &self.uid);
        put_str("resourceVersion", &self.resource_version);
        if self.generation != 0 {
            m.insert("generation".into(), self.generation.into());
        }
        m.insert(
            "creationTimestamp".into(),
            time_json(self.creation_timestamp),
        );
        if let Some(t) = self.deletion_timestamp {
            m.insert("deletionTimestamp".into(), time_json(t));
        }
        if let Some(s) = self.deletion_grace_period_seconds {
            m.insert("deletionGracePeriodSeconds".into(), s.into());
        }
        if !self.labels.is_empty() {
            m.insert("labels".into(), string_map_json(&self.labels));
        }
        if !self.annotations.is_empty() {
            m.insert("annotations".into(), string_map_json(&self.annotations));
        }
        if !self.owner_references.is_empty() {
            let refs = self.owner_references.iter().map(owner_json).collect();
            m.insert("ownerReferences".into(), Value::Array(refs));
        }
        if !self.finalizers.is_empty() {
            let fins = self.finalizers.iter().cloned().map(Value::String).collect();
            m.insert("finalizers".into(), Value::Array(fins));
        }
        if !self.managed_fields.is_empty() {
            let entries = self.managed_fields.iter().map(managed_json).collect();
            m.insert("managedFields".into(), Value::Array(entries));
        }
        Value::Object(m)
    }
}

/// Decode the `metadata` (field 1) of a typed object's protobuf bytes.
pub fn parse_object_meta(raw: &[u8], raw_offset: usize) -> Result<ObjectMeta, KubeError> {
    let mut r = Reader::with_base(raw, raw_offset, "object");
    let mut meta = ObjectMeta::default();
    while let Some(f) = r.next_field()? {
        if f.number == OBJECT_METADATA {
            meta.merge_from(&f)?;
        }
    }
    Ok(meta)
}

/// The name and namespace an encoded `ObjectMeta` gives, borrowed from the value
/// where they are valid UTF-8 (lossy otherwise, as [`Field::string`] reads them).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct MetaIdentity<'a> {
    pub name: Cow<'a, str>,
    pub namespace: Cow<'a, str>,
}

/// Check the typed object's protobuf bytes as [`parse_object_meta`] decodes them
/// (every top-level field frames, `metadata` decodes in full, with the same
/// errors) without keeping anything but the name and namespace: the whole-object
/// test of [`super::verify`], without an allocation per field.
pub(crate) fn check_object_meta(
    raw: &[u8],
    raw_offset: usize,
) -> Result<MetaIdentity<'_>, KubeError> {
    let mut r = Reader::with_base(raw, raw_offset, "object");
    let mut unused = ObjectMeta::default();
    let mut id = MetaIdentity::default();
    while let Some(f) = r.next_field()? {
        if f.number == OBJECT_METADATA {
            walk_meta::<false>(&mut unused, &mut id, &f)?;
        }
    }
    Ok(id)
}

/// Read one encoded `ObjectMeta`: every field is framed and type-checked the same
/// way whatever `KEEP` says; with `KEEP` the values are merged into `meta`,
/// without it only `id` (name and namespace, later occurrences win) is updated.
/// Decoding and checking share this one walk, so they accept the same inputs.
fn walk_meta<'a, const KEEP: bool>(
    meta: &mut ObjectMeta,
    id: &mut MetaIdentity<'a>,
    field: &Field<'a>,
) -> Result<(), KubeError> {
    let mut r = field.message("ObjectMeta")?;
    while let Some(f) = r.next_field()? {
        if KEEP {
            let what = match f.number {
                META_NAME => Some("metadata.name"),
                META_GENERATE_NAME => Some("metadata.generateName"),
                META_NAMESPACE => Some("metadata.namespace"),
                META_FINALIZERS => Some("metadata.finalizers"),
                _ => None,
            };
            if let Some(what) = what {
                note_not_utf8(&mut meta.undecoded, || what.to_string(), &f.str_lossy()?);
            }
        }
        match f.number {
            META_NAME => keep_identity::<KEEP>(&mut meta.name, &mut id.name, &f)?,
            META_NAMESPACE => keep_identity::<KEEP>(&mut meta.namespace, &mut id.namespace, &f)?,
            META_GENERATE_NAME => keep_string::<KEEP>(&mut meta.generate_name, &f)?,
            META_SELF_LINK => keep_string::<KEEP>(&mut meta.self_link, &f)?,
            META_UID => keep_string::<KEEP>(&mut meta.uid, &f)?,
            META_RESOURCE_VERSION => keep_string::<KEEP>(&mut meta.resource_version, &f)?,
            META_GENERATION => meta.generation = f.int64()?,
            META_CREATION_TIMESTAMP => meta.creation_timestamp = parse_time(&f)?,
            META_DELETION_TIMESTAMP => meta.deletion_timestamp = Some(parse_time(&f)?),
            META_DELETION_GRACE_PERIOD_SECONDS => {
                meta.deletion_grace_period_seconds = Some(f.int64()?)
            }
            META_LABELS | META_ANNOTATIONS => {
                let (map, what) = if f.number == META_LABELS {
                    (&mut meta.labels, "ObjectMeta.labels entry")
                } else {
                    (&mut meta.annotations, "ObjectMeta.annotations entry")
                };
                if KEEP {
                    let (k, v) = string_entry_ref(&f, what)?;
                    let at = if f.number == META_LABELS {
                        "metadata.labels"
                    } else {
                        "metadata.annotations"
                    };
                    let list = &mut meta.undecoded;
                    note_not_utf8(list, || format!("{at} key {k:?}"), &k);
                    note_not_utf8(list, || format!("{at}[{k:?}]"), &v);
                    map.insert(k.into_owned(), v.into_owned());
                } else {
                    let (k, v) = map_entry(&f, what)?;
                    for f in [k, v].iter().flatten() {
                        f.bytes()?;
                    }
                }
            }
            META_OWNER_REFERENCES => {
                let (o, unknown) = parse_owner::<KEEP>(&f)?;
                if KEEP {
                    let at = format!("metadata.ownerReferences[{}]", meta.owner_references.len());
                    note_undecoded(&mut meta.undecoded, &at, &unknown);
                    meta.owner_references.push(o);
                }
            }
            META_FINALIZERS => {
                let mut v = String::new();
                keep_string::<KEEP>(&mut v, &f)?;
                if KEEP {
                    meta.finalizers.push(v);
                }
            }
            META_MANAGED_FIELDS => {
                let (m, unknown) = parse_managed::<KEEP>(&f)?;
                if KEEP {
                    let at = format!("metadata.managedFields[{}]", meta.managed_fields.len());
                    note_undecoded(&mut meta.undecoded, &at, &unknown);
                    if m.fields_v1.as_deref().is_some_and(is_cbor_fields_v1) {
                        push_once(
                            &mut meta.undecoded,
                            format!("{at}.fieldsV1 (CBOR, printed as text)"),
                        );
                    }
                    meta.managed_fields.push(m);
                }
            }
            other => {
                if KEEP {
                    note_undecoded(&mut meta.undecoded, "metadata", &[other]);
                }
            }
        }
    }
    Ok(())
}

/// Add to `list`, unless already listed, that the stored string `what()` names
/// is not UTF-8, when `text` (from [`Field::str_lossy`]) is `Cow::Owned`: it is
/// printed with U+FFFD for each invalid byte, as kube-apiserver's JSON has it, so
/// the manifest does not hold the stored bytes.
// The `Cow` variant, not the text, is what tells: a `&str` would lose it.
#[allow(clippy::ptr_arg)]
pub(crate) fn note_not_utf8(
    list: &mut Vec<String>,
    what: impl FnOnce() -> String,
    text: &Cow<'_, str>,
) {
    if let Cow::Owned(_) = text {
        let entry = format!(
            "{} (not UTF-8: printed with U+FFFD for each invalid byte, as kubectl prints it)",
            what()
        );
        push_once(list, entry);
    }
}

/// Add `<at> field <n>` to `list` for each field number, unless already listed.
pub(crate) fn note_undecoded(list: &mut Vec<String>, at: &str, numbers: &[u32]) {
    for n in numbers {
        push_once(list, format!("{at} field {n}"));
    }
}

/// Add `entry` to `list` unless it is there already.
fn push_once(list: &mut Vec<String>, entry: String) {
    if !list.contains(&entry) {
        list.push(entry);
    }
}

/// An object's undecoded fields (`own`) followed by its metadata's.
pub(crate) fn with_metadata_undecoded(own: &[String], meta: &ObjectMeta) -> Vec<String> {
    own.iter().chain(&meta.undecoded).cloned().collect()
}

/// Read the name or namespace into `kept` when `KEEP`, else borrow it into `id`.
fn keep_identity<'a, const KEEP: bool>(
    kept: &mut String,
    id: &mut Cow<'a, str>,
    f: &Field<'a>,
) -> Result<(), WireError> {
    let v = f.str_lossy()?;
    if KEEP {
        *kept = v.into_owned();
    } else {
        *id = v;
    }
    Ok(())
}

/// Read a `string` field into `dst` when `KEEP`; check its wire type either
/// way (a `string` is read lossily, so its bytes cannot fail otherwise).
fn keep_string<const KEEP: bool>(dst: &mut String, f: &Field<'_>) -> Result<(), WireError> {
    if KEEP {
        *dst = f.string()?;
    } else {
        f.bytes()?;
    }
    Ok(())
}

/// Only `metadata.name` and `metadata.namespace`: the cheap path for identifying an
/// object (labels, managed fields and the rest are skipped, not decoded).
pub fn parse_name_namespace(raw: &[u8], raw_offset: usize) -> Result<(String, String), KubeError> {
    let mut r = Reader::with_base(raw, raw_offset, "object");
    let (mut name, mut namespace) = (String::new(), String::new());
    while let Some(f) = r.next_field()? {
        if f.number != OBJECT_METADATA {
            continue;
        }
        let mut m = f.message("ObjectMeta")?;
        while let Some(f) = m.next_field()? {
            match f.number {
                META_NAME => name = f.string()?,
                META_NAMESPACE => namespace = f.string()?,
                _ => {}
            }
        }
    }
    Ok((name, namespace))
}

impl ObjectMeta {
    /// Emit the form [`ObjectMeta::to_json`] gives, as [`super::decode_manifest`]
    /// prints it: keys sorted, `resourceVersion` from `opts`, server-owned fields
    /// dropped with `opts.clean` (see [`super::CLEAN_METADATA_FIELDS`]).
    pub fn emit<E: Emitter + ?Sized>(&self, e: &mut E, opts: &ManifestOptions) {
        let keep = !opts.clean;
        let str_field = |e: &mut E, key: &str, v: &str| {
            if !v.is_empty() {
                str_entry(e, key, v);
            }
        };
        e.begin_map();
        if !self.annotations.is_empty() {
            e.key("annotations");
            emit_string_map(e, &self.annotations);
        }
        if keep {
            e.key("creationTimestamp");
            emit_time(e, self.creation_timestamp);
            if let Some(s) = self.deletion_grace_period_seconds {
                e.key("deletionGracePeriodSeconds");
                e.int(s);
            }
            if let Some(t) = self.deletion_timestamp {
                e.key("deletionTimestamp");
                emit_time(e, t);
            }
        }
        if !self.finalizers.is_empty() {
            e.key("finalizers");
            e.begin_seq();
            for f in &self.finalizers {
                e.str(f);
            }
            e.end_seq();
        }
        str_field(e, "generateName", &self.generate_name);
        if keep && self.generation != 0 {
            e.key("generation");
            e.int(self.generation);
        }
        if !self.labels.is_empty() {
            e.key("labels");
            emit_string_map(e, &self.labels);
        }
        if keep && !self.managed_fields.is_empty() {
            e.key("managedFields");
            e.begin_seq();
            for m in &self.managed_fields {
                emit_managed(e, m);
            }
            e.end_seq();
        }
        str_field(e, "name", &self.name);
        str_field(e, "namespace", &self.namespace);
        if !self.owner_references.is_empty() {
            e.key("ownerReferences");
            e.begin_seq();
            for o in &self.owner_references {
                emit_owner(e, o);
            }
            e.end_seq();
        }
        if keep {
            match opts.resource_version {
                Some(rv) => str_entry(e, "resourceVersion", &rv.to_string()),
                None => str_field(e, "resourceVersion", &self.resource_version),
            }
            str_field(e, "selfLink", &self.self_link);
            str_field(e, "uid", &self.uid);
        }
        e.end_map();
    }
}

/// A `map[string]string` (keys already in byte order in the `BTreeMap`).
pub(crate) fn emit_string_map<E: Emitter + ?Sized>(e: &mut E, map: &BTreeMap<String, String>) {
    let entries = ordered_entries(e, map.iter().map(|(k, v)| (k.as_str(), v)));
    e.begin_map();
    for (k, v) in entries {
        str_entry(e, k, v);
    }
    e.end_map();
}

fn emit_time<E: Emitter + ?Sized>(e: &mut E, t: Time) {
    match t {
        Some(s) => e.str(&format_rfc3339(s)),
        None => e.null(),
    }
}

fn emit_owner<E: Emitter + ?Sized>(e: &mut E, o: &OwnerReference) {
    e.begin_map();
    str_entry(e, "apiVersion", &o.api_version);
    if let Some(b) = o.block_owner_deletion {
        e.key("blockOwnerDeletion");
        e.bool(b);
    }
    if let Some(c) = o.controller {
        e.key("controller");
        e.bool(c);
    }
    str_entry(e, "kind", &o.kind);
    str_entry(e, "name", &o.name);
    str_entry(e, "uid", &o.uid);
    e.end_map();
}

fn emit_managed<E: Emitter + ?Sized>(e: &mut E, m: &ManagedFieldsEntry) {
    let str_field = |e: &mut E, key: &str, v: &str| {
        if !v.is_empty() {
            str_entry(e, key, v);
        }
    };
    e.begin_map();
    str_field(e, "apiVersion", &m.api_version);
    str_field(e, "fieldsType", &m.fields_type);
    if let Some(raw) = &m.fields_v1 {
        e.key("fieldsV1");
        emit_value(e, &fields_v1_json(raw));
    }
    str_field(e, "manager", &m.manager);
    str_field(e, "operation", &m.operation);
    str_field(e, "subresource", &m.subresource);
    if let Some(t) = m.time {
        e.key("time");
        emit_time(e, t);
    }
    e.end_map();
}

/// An owner reference, and the numbers of its fields that are not decoded.
fn parse_owner<const KEEP: bool>(
    field: &Field<'_>,
) -> Result<(OwnerReference, Vec<u32>), KubeError> {
    let mut r = field.message("OwnerReference")?;
    let mut o = OwnerReference::default();
    let mut unknown = Vec::new();
    while let Some(f) = r.next_field()? {
        match f.number {
            OWNER_KIND => keep_string::<KEEP>(&mut o.kind, &f)?,
            OWNER_NAME => keep_string::<KEEP>(&mut o.name, &f)?,
            OWNER_UID => keep_string::<KEEP>(&mut o.uid, &f)?,
            OWNER_API_VERSION => keep_string::<KEEP>(&mut o.api_version, &f)?,
            OWNER_CONTROLLER => o.controller = Some(f.bool()?),
            OWNER_BLOCK_OWNER_DELETION => o.block_owner_deletion = Some(f.bool()?),
            other => unknown.push(other),
        }
    }
    Ok((o, unknown))
}

/// A managed fields entry, and the numbers of its fields that are not decoded
/// (5 is the `fields` of Kubernetes before 1.15, removed since).
fn parse_managed<const KEEP: bool>(
    field: &Field<'_>,
) -> Result<(ManagedFieldsEntry, Vec<u32>), KubeError> {
    let mut r = field.message("ManagedFieldsEntry")?;
    let mut e = ManagedFieldsEntry::default();
    let mut unknown = Vec::new();
    while let Some(f) = r.next_field()? {
        match f.number {
            MANAGED_MANAGER => keep_string::<KEEP>(&mut e.manager, &f)?,
            MANAGED_OPERATION => keep_string::<KEEP>(&mut e.operation, &f)?,
            MANAGED_API_VERSION => keep_string::<KEEP>(&mut e.api_version, &f)?,
            MANAGED_TIME => e.time = Some(parse_time(&f)?),
            MANAGED_FIELDS_TYPE => keep_string::<KEEP>(&mut e.fields_type, &f)?,
            MANAGED_FIELDS_V1 => {
                let mut fr = f.message("FieldsV1")?;
                let raw = e.fields_v1.get_or_insert_with(Vec::new);
                while let Some(f) = fr.next_field()? {
                    if f.number == FIELDS_V1_RAW {
                        let b = f.bytes()?;
                        if KEEP {
                            raw.clear();
                            raw.extend_from_slice(b);
                        }
                    }
                }
            }
            MANAGED_SUBRESOURCE => keep_string::<KEEP>(&mut e.subresource, &f)?,
            other => unknown.push(other),
        }
    }
    Ok((e, unknown))
}

fn string_map_json(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn owner_json(o: &OwnerReference) -> Value {
    // apiVersion, kind, name and uid have no `omitempty` in types.go.
    let mut m = Map::new();
    m.insert("apiVersion".into(), o.api_version.clone().into());
    m.insert("kind".into(), o.kind.clone().into());
    m.insert("name".into(), o.name.clone().into());
    m.insert("uid".into(), o.uid.clone().into());
    if let Some(c) = o.controller {
        m.insert("controller".into(), c.into());
    }
    if let Some(b) = o.block_owner_deletion {
        m.insert("blockOwnerDeletion".into(), b.into());
    }
    Value::Object(m)
}

fn managed_json(e: &ManagedFieldsEntry) -> Value {
    let mut m = Map::new();
    for (key, v) in [
        ("manager", &e.manager),
        ("operation", &e.operation),
        ("apiVersion", &e.api_version),
        ("fieldsType", &e.fields_type),
        ("subresource", &e.subresource),
    ] {
        if !v.is_empty() {
            m.insert(key.into(), v.clone().into());
        }
    }
    if let Some(t) = e.time {
        m.insert("time".into(), time_json(t));
    }
    if let Some(raw) = &e.fields_v1 {
        m.insert("fieldsV1".into(), fields_v1_json(raw));
    }
    Value::Object(m)
}

/// Whether `FieldsV1.Raw` holds CBOR, by its first byte, as apimachinery
/// `pkg/apis/meta/v1/helpers.go` `getContentType` tells: CBOR `null`, a map or a
/// tag. With CBOR serving on, the API server can keep CBOR there, and prints it
/// transcoded to JSON (`FieldsV1.MarshalJSON`); atrest does not decode CBOR.
fn is_cbor_fields_v1(raw: &[u8]) -> bool {
    raw.first()
        .is_some_and(|&b| b == 0xf6 || (0xa0..=0xbf).contains(&b) || (0xc6..=0xdb).contains(&b))
}

/// `FieldsV1` prints its raw bytes as JSON. Bytes that are not JSON (CBOR, see
/// [`is_cbor_fields_v1`], which is reported as not decoded) are kept as a string
/// rather than failing the whole object.
fn fields_v1_json(raw: &[u8]) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_go() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1), "1970-01-01T00:00:01Z");
        assert_eq!(format_rfc3339(1_704_164_645), "2024-01-02T03:04:05Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format_rfc3339(GO_ZERO_TIME_UNIX), "0001-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(-62_198_755_200), "-0001-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(253_402_300_800), "10000-01-01T00:00:00Z");
        // Days from year 1 to 9908 agree with the formatting machinery.
        for day in (-719_000i64..2_900_000).step_by(997) {
            let t = day * 86_400 + (day.rem_euclid(86_400));
            let (y, mo, d) = civil_from_days(t.div_euclid(86_400));
            let sod = t.rem_euclid(86_400);
            assert_eq!(
                format_rfc3339(t),
                format!(
                    "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
                    sod / 3600,
                    sod % 3600 / 60,
                    sod % 60
                )
            );
        }
        // Extremes must not panic.
        let _ = format_rfc3339(i64::MAX);
        let _ = format_rfc3339(i64::MIN);
    }
}
