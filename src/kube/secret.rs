//! `v1.Secret` and `v1.ConfigMap`, the two types whose contents we fully decode.
//!
//! Field numbers from `kubernetes/api core/v1/generated.proto`:
//! - Secret: metadata = 1, data = 2 (`map<string, bytes>`), type = 3,
//!   stringData = 4 (`map<string, string>`, write-only: the API server folds it into
//!   `data` before storing), immutable = 5.
//!
//! kube-apiserver reads a stored Secret through its storage codec, which
//! defaults the object (`SetDefaults_Secret`, `pkg/apis/core/v1/defaults.go`: an
//! empty `type` is `Opaque`) and converts it to the internal type
//! (`Convert_v1_Secret_To_core_Secret`, `pkg/apis/core/v1/conversion.go`:
//! `stringData` overwrites `data`, byte for byte, and is gone). So kubectl never
//! shows `stringData` or an empty `type`; [`Secret::decode`] does the same.
//! - ConfigMap: metadata = 1, data = 2 (`map<string, string>`),
//!   binaryData = 3 (`map<string, bytes>`), immutable = 4.
//!
//! JSON follows `core/v1/types.go`: every field is `omitempty`, bytes are standard
//! base64 (Go's `encoding/json` for `[]byte`).
//!
//! A field number not listed above (a field of a newer Kubernetes) cannot be
//! printed; it is listed by [`Secret::undecoded_fields`] /
//! [`ConfigMap::undecoded_fields`] so that the manifest is never silently short.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value};

use super::emit::{ordered_entries, str_entry, Emitter};
use super::meta::{
    emit_string_map, note_not_utf8, note_undecoded, with_metadata_undecoded, ObjectMeta,
    OBJECT_METADATA,
};
use super::{KubeError, ManifestOptions};
use crate::wire::{bytes_entry, map_entry, string_entry_ref, Reader};

const SECRET_DATA: u32 = 2;
const SECRET_TYPE: u32 = 3;
const SECRET_STRING_DATA: u32 = 4;
const SECRET_IMMUTABLE: u32 = 5;
/// `v1.SecretTypeOpaque`, the default type.
const SECRET_TYPE_OPAQUE: &str = "Opaque";

const CONFIG_MAP_DATA: u32 = 2;
const CONFIG_MAP_BINARY_DATA: u32 = 3;
const CONFIG_MAP_IMMUTABLE: u32 = 4;

/// A decoded `v1.Secret`. `data` values are the secret bytes themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secret {
    pub metadata: ObjectMeta,
    /// With any stored `stringData` folded in (see the module documentation).
    pub data: BTreeMap<String, Vec<u8>>,
    /// `Opaque` when stored empty (see the module documentation).
    pub type_: String,
    pub immutable: Option<bool>,
    /// Top-level fields that are not decoded (`Secret field 6`), each once.
    pub undecoded: Vec<String>,
}

/// A decoded `v1.ConfigMap`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigMap {
    pub metadata: ObjectMeta,
    pub data: BTreeMap<String, String>,
    pub binary_data: BTreeMap<String, Vec<u8>>,
    pub immutable: Option<bool>,
    /// Top-level fields that are not decoded (`ConfigMap field 5`), each once.
    pub undecoded: Vec<String>,
}

impl Secret {
    /// Decode the typed object bytes (`runtime.Unknown.raw`) at absolute `offset`,
    /// as kube-apiserver reads it (defaulted, `stringData` folded into `data`).
    pub fn decode(raw: &[u8], offset: usize) -> Result<Self, KubeError> {
        let mut r = Reader::with_base(raw, offset, "Secret");
        let mut s = Secret::default();
        // Go's map: a later entry for a key replaces an earlier one.
        let mut string_data: BTreeMap<String, &[u8]> = BTreeMap::new();
        while let Some(f) = r.next_field()? {
            match f.number {
                OBJECT_METADATA => s.metadata.merge_from(&f)?,
                SECRET_DATA => {
                    let (k, v) = bytes_entry(&f, "Secret.data entry")?;
                    note_not_utf8(&mut s.undecoded, || format!("Secret data key {k:?}"), &k);
                    s.data.insert(k.into_owned(), v.to_vec());
                }
                SECRET_TYPE => {
                    let t = f.str_lossy()?;
                    note_not_utf8(&mut s.undecoded, || "Secret type".into(), &t);
                    s.type_ = t.into_owned();
                }
                SECRET_STRING_DATA => {
                    // A string, but `[]byte(v)` in the conversion keeps its bytes.
                    let (k, v) = map_entry(&f, "Secret.stringData entry")?;
                    let key = k.map(|k| k.str_lossy()).transpose()?.unwrap_or_default();
                    let value = v.map(|v| v.bytes()).transpose()?.unwrap_or_default();
                    let list = &mut s.undecoded;
                    note_not_utf8(list, || format!("Secret stringData key {key:?}"), &key);
                    string_data.insert(key.into_owned(), value);
                }
                SECRET_IMMUTABLE => s.immutable = Some(f.bool()?),
                other => note_undecoded(&mut s.undecoded, "Secret", &[other]),
            }
        }
        for (k, v) in string_data {
            s.data.insert(k, v.to_vec());
        }
        if s.type_.is_empty() {
            s.type_ = SECRET_TYPE_OPAQUE.to_string();
        }
        Ok(s)
    }

    /// The fields after `apiVersion`/`kind`, as the API server prints them.
    pub fn to_json(&self, api_version: &str, kind: &str) -> Value {
        let mut m = type_meta(api_version, kind);
        m.insert("metadata".into(), self.metadata.to_json());
        if let Some(i) = self.immutable {
            m.insert("immutable".into(), i.into());
        }
        if !self.data.is_empty() {
            m.insert("data".into(), base64_map(&self.data));
        }
        if !self.type_.is_empty() {
            m.insert("type".into(), self.type_.clone().into());
        }
        Value::Object(m)
    }
}

impl Secret {
    /// Every stored field that is not decoded, so missing from the manifest.
    pub fn undecoded_fields(&self) -> Vec<String> {
        with_metadata_undecoded(&self.undecoded, &self.metadata)
    }

    /// Emit what [`super::decode_manifest`] prints for this Secret, keys sorted.
    pub fn emit<E: Emitter + ?Sized>(
        &self,
        e: &mut E,
        type_meta: (&str, &str),
        opts: &ManifestOptions,
    ) {
        let before_kind = |e: &mut E| {
            if !self.data.is_empty() {
                e.key("data");
                emit_bytes_map(e, &self.data);
            }
            emit_immutable(e, self.immutable);
        };
        let after_metadata = |e: &mut E| {
            if !self.type_.is_empty() {
                str_entry(e, "type", &self.type_);
            }
        };
        emit_object(
            e,
            type_meta,
            (&self.metadata, opts),
            before_kind,
            after_metadata,
        );
    }
}

impl ConfigMap {
    /// Decode the typed object bytes (`runtime.Unknown.raw`) at absolute `offset`.
    pub fn decode(raw: &[u8], offset: usize) -> Result<Self, KubeError> {
        let mut r = Reader::with_base(raw, offset, "ConfigMap");
        let mut c = ConfigMap::default();
        while let Some(f) = r.next_field()? {
            match f.number {
                OBJECT_METADATA => c.metadata.merge_from(&f)?,
                CONFIG_MAP_DATA => {
                    let (k, v) = string_entry_ref(&f, "ConfigMap.data entry")?;
                    let list = &mut c.undecoded;
                    note_not_utf8(list, || format!("ConfigMap data key {k:?}"), &k);
                    note_not_utf8(list, || format!("ConfigMap data[{k:?}]"), &v);
                    c.data.insert(k.into_owned(), v.into_owned());
                }
                CONFIG_MAP_BINARY_DATA => {
                    let (k, v) = bytes_entry(&f, "ConfigMap.binaryData entry")?;
                    note_not_utf8(
                        &mut c.undecoded,
                        || format!("ConfigMap binaryData key {k:?}"),
                        &k,
                    );
                    c.binary_data.insert(k.into_owned(), v.to_vec());
                }
                CONFIG_MAP_IMMUTABLE => c.immutable = Some(f.bool()?),
                other => note_undecoded(&mut c.undecoded, "ConfigMap", &[other]),
            }
        }
        Ok(c)
    }

    /// The object as the API server prints it.
    pub fn to_json(&self, api_version: &str, kind: &str) -> Value {
        let mut m = type_meta(api_version, kind);
        m.insert("metadata".into(), self.metadata.to_json());
        if let Some(i) = self.immutable {
            m.insert("immutable".into(), i.into());
        }
        if !self.data.is_empty() {
            let d = self
                .data
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            m.insert("data".into(), Value::Object(d));
        }
        if !self.binary_data.is_empty() {
            m.insert("binaryData".into(), base64_map(&self.binary_data));
        }
        Value::Object(m)
    }
}

impl ConfigMap {
    /// Every stored field that is not decoded, so missing from the manifest.
    pub fn undecoded_fields(&self) -> Vec<String> {
        with_metadata_undecoded(&self.undecoded, &self.metadata)
    }

    /// Emit what [`super::decode_manifest`] prints for this ConfigMap, keys sorted.
    pub fn emit<E: Emitter + ?Sized>(
        &self,
        e: &mut E,
        type_meta: (&str, &str),
        opts: &ManifestOptions,
    ) {
        let before_kind = |e: &mut E| {
            if !self.binary_data.is_empty() {
                e.key("binaryData");
                emit_bytes_map(e, &self.binary_data);
            }
            if !self.data.is_empty() {
                e.key("data");
                emit_string_map(e, &self.data);
            }
            emit_immutable(e, self.immutable);
        };
        emit_object(e, type_meta, (&self.metadata, opts), before_kind, |_| {});
    }
}

/// Type and metadata of an object whose other fields are not decoded.
pub(crate) fn emit_meta_only<E: Emitter + ?Sized>(
    e: &mut E,
    type_meta: (&str, &str),
    metadata: &ObjectMeta,
    opts: &ManifestOptions,
) {
    emit_object(e, type_meta, (metadata, opts), |_| {}, |_| {});
}

/// One object's map in key order: `apiVersion`, the type's fields that sort
/// before `kind`, `kind`, `metadata`, then the fields that sort after it
/// (`apiVersion` and `kind` are `omitempty` in `runtime.TypeMeta`).
fn emit_object<E: Emitter + ?Sized>(
    e: &mut E,
    (api_version, kind): (&str, &str),
    (metadata, opts): (&ObjectMeta, &ManifestOptions),
    before_kind: impl FnOnce(&mut E),
    after_metadata: impl FnOnce(&mut E),
) {
    e.begin_map();
    if !api_version.is_empty() {
        str_entry(e, "apiVersion", api_version);
    }
    before_kind(e);
    if !kind.is_empty() {
        str_entry(e, "kind", kind);
    }
    e.key("metadata");
    metadata.emit(e, opts);
    after_metadata(e);
    e.end_map();
}

fn emit_immutable<E: Emitter + ?Sized>(e: &mut E, immutable: Option<bool>) {
    if let Some(i) = immutable {
        e.key("immutable");
        e.bool(i);
    }
}

fn emit_bytes_map<E: Emitter + ?Sized>(e: &mut E, map: &BTreeMap<String, Vec<u8>>) {
    let entries = ordered_entries(e, map.iter().map(|(k, v)| (k.as_str(), v)));
    e.begin_map();
    for (k, v) in entries {
        e.key(k);
        e.base64(v);
    }
    e.end_map();
}

/// `kind` and `apiVersion` (both `omitempty` in `runtime.TypeMeta`).
pub(crate) fn type_meta(api_version: &str, kind: &str) -> Map<String, Value> {
    let mut m = Map::new();
    if !kind.is_empty() {
        m.insert("kind".into(), kind.into());
    }
    if !api_version.is_empty() {
        m.insert("apiVersion".into(), api_version.into());
    }
    m
}

fn base64_map(map: &BTreeMap<String, Vec<u8>>) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(b64.encode(v))))
            .collect(),
    )
}
