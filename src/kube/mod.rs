//! Kubernetes objects as kube-apiserver stores them in etcd, decoded into manifests.
//!
//! A stored (decrypted) value is one of:
//! - protobuf: `k8s\x00` + `runtime.Unknown` (`apimachinery
//!   pkg/runtime/serializer/protobuf/protobuf.go`); all built-in types.
//! - JSON: custom resources, and clusters that store JSON.
//! - CBOR: `d9 d9 f7` (self-described CBOR tag), when the CBOR storage gate is on.
//!   Recognised, not decoded.
//!
//! [`decode_manifest`] prints what `kubectl get -o json` would: `v1.Secret` and
//! `v1.ConfigMap` in full, any other protobuf type as `apiVersion`, `kind` and its
//! full `metadata` only (the rest of the object is left out: the caller should say
//! so), JSON objects as stored. Keys are sorted at every level, like kubectl (byte
//! order; [`emit::YamlEmitter`] uses the order `kubectl get -o yaml` prints).

pub mod emit;
mod manifest;
mod meta;
mod secret;
mod verify;

use serde::Deserialize;
use serde_json::{Map, Value};

pub use manifest::{clean, list_manifest, to_yaml, CLEAN_METADATA_FIELDS, MAX_YAML_DEPTH};
pub use meta::{format_rfc3339, ManagedFieldsEntry, ObjectMeta, OwnerReference, PROTOBUF_MAGIC};
pub use secret::{ConfigMap, Secret};
pub use verify::{verify_object, ExpectedObject, VerifyError};

pub use crate::envelope::CBOR_MAGIC;
use crate::wire::WireError;

/// How a stored object is serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
    Cbor,
}

impl Encoding {
    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Protobuf => "protobuf",
            Encoding::Json => "json",
            Encoding::Cbor => "cbor",
        }
    }
}

/// Why a stored value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeError {
    #[error("the value is empty; an object in etcd is never empty, so this key holds no object")]
    Empty,
    #[error(
        "the value starts with {prefix}, not a Kubernetes object (protobuf `k8s\\x00`, JSON `{{` \
         or CBOR `d9d9f7`); if it was decrypted, the key or provider is probably wrong"
    )]
    NotAnObject { prefix: String },
    /// The protobuf framing is broken (the reader's error names what and where).
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the protobuf object has no kind in runtime.Unknown.typeMeta; it is corrupt or not written by kube-apiserver")]
    MissingTypeMeta,
    #[error("runtime.Unknown.contentEncoding is {0:?}; only unencoded objects are supported")]
    UnsupportedContentEncoding(String),
    #[error("invalid JSON object: {0}")]
    Json(String),
    #[error("the JSON value is not an object (it has no kind or metadata)")]
    JsonNotObject,
    #[error("{0} objects are recognised but not decoded; read this object through kube-apiserver instead")]
    Unsupported(&'static str),
    #[error("the value nests deeper than {limit} levels; refusing to print it")]
    TooDeep { limit: usize },
}

/// A wire-format error keeps its message, under the matching `KubeError` variant.
/// Which serialization `plaintext` uses, from its first bytes only.
pub fn detect(plaintext: &[u8]) -> Option<Encoding> {
    if plaintext.starts_with(PROTOBUF_MAGIC) {
        return Some(Encoding::Protobuf);
    }
    if plaintext.starts_with(CBOR_MAGIC) {
        return Some(Encoding::Cbor);
    }
    let first = plaintext
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    (*first == b'{').then_some(Encoding::Json)
}

/// Whether a decryption result looks like a Kubernetes object (magic bytes only).
pub use crate::envelope::looks_like_object;

/// Identity of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// `None` for cluster-scoped objects (empty namespace).
    pub namespace: Option<String>,
    pub encoding: Encoding,
}

/// Options for [`decode_manifest`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ManifestOptions {
    /// etcd `mod_revision` of the key: becomes `metadata.resourceVersion` (the API
    /// server stores it empty and fills it from etcd on read). `None` leaves what is stored.
    pub resource_version: Option<i64>,
    /// Drop the server-owned metadata fields in [`CLEAN_METADATA_FIELDS`] (uid,
    /// resourceVersion, creationTimestamp, generation, selfLink, managedFields,
    /// deletionTimestamp, deletionGracePeriodSeconds) so the manifest can be applied
    /// to a cluster as is. Everything else, including ownerReferences, is kept.
    pub clean: bool,
}

fn not_an_object(plaintext: &[u8]) -> KubeError {
    if plaintext.is_empty() {
        return KubeError::Empty;
    }
    let shown: Vec<String> = plaintext
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    KubeError::NotAnObject {
        prefix: format!("bytes {}", shown.join(" ")),
    }
}

/// The fields of a JSON object that identify it (serde skips everything else).
#[derive(Deserialize)]
struct JsonHead {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<JsonHeadMeta>,
}

#[derive(Deserialize)]
struct JsonHeadMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

/// Identify a stored object of any type without decoding its contents (for protobuf,
/// only `metadata.name` and `metadata.namespace` are read, so this can succeed on an
/// object whose other metadata [`decode_manifest`] rejects).
pub fn object_info(plaintext: &[u8]) -> Result<ObjectInfo, KubeError> {
    match detect(plaintext) {
        Some(Encoding::Protobuf) => {
            let unknown = meta::parse_unknown(plaintext)?;
            let (name, namespace) = meta::parse_name_namespace(unknown.raw, unknown.raw_offset)?;
            Ok(ObjectInfo {
                api_version: unknown.api_version.into_owned(),
                kind: unknown.kind.into_owned(),
                name,
                namespace: Some(namespace).filter(|ns| !ns.is_empty()),
                encoding: Encoding::Protobuf,
            })
        }
        Some(Encoding::Json) => {
            let head: JsonHead =
                serde_json::from_slice(plaintext).map_err(|e| KubeError::Json(e.to_string()))?;
            let meta = head.metadata.unwrap_or(JsonHeadMeta {
                name: None,
                namespace: None,
            });
            Ok(ObjectInfo {
                api_version: head.api_version.unwrap_or_default(),
                kind: head.kind.unwrap_or_default(),
                name: meta.name.unwrap_or_default(),
                namespace: meta.namespace.filter(|ns| !ns.is_empty()),
                encoding: Encoding::Json,
            })
        }
        Some(Encoding::Cbor) => Err(KubeError::Unsupported("CBOR")),
        None => Err(not_an_object(plaintext)),
    }
}

/// Decode a stored object into the manifest `kubectl get -o json` would print.
pub fn decode_manifest(plaintext: &[u8], opts: &ManifestOptions) -> Result<Value, KubeError> {
    let mut object = match detect(plaintext) {
        Some(Encoding::Protobuf) => decode_protobuf(plaintext)?,
        Some(Encoding::Json) => {
            let v: Value =
                serde_json::from_slice(plaintext).map_err(|e| KubeError::Json(e.to_string()))?;
            if !v.is_object() {
                return Err(KubeError::JsonNotObject);
            }
            v
        }
        Some(Encoding::Cbor) => return Err(KubeError::Unsupported("CBOR")),
        None => return Err(not_an_object(plaintext)),
    };
    if let Some(rv) = opts.resource_version {
        if let Value::Object(obj) = &mut object {
            let meta = obj
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(meta) = meta {
                meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
            }
        }
    }
    if opts.clean {
        clean(&mut object);
    }
    manifest::sort_keys(&mut object);
    Ok(object)
}

fn decode_protobuf(plaintext: &[u8]) -> Result<Value, KubeError> {
    let u = meta::parse_unknown(plaintext)?;
    let (api_version, kind) = (&*u.api_version, &*u.kind);
    Ok(match (api_version, kind) {
        ("v1", "Secret") => Secret::decode(u.raw, u.raw_offset)?.to_json(api_version, kind),
        ("v1", "ConfigMap") => ConfigMap::decode(u.raw, u.raw_offset)?.to_json(api_version, kind),
        _ => {
            let m = meta::parse_object_meta(u.raw, u.raw_offset)?;
            let mut obj = secret::type_meta(api_version, kind);
            obj.insert("metadata".into(), m.to_json());
            Value::Object(obj)
        }
    })
}

/// Write what [`decode_manifest`] returns through `e`, without building the value:
/// the same document, byte for byte, for every input [`decode_manifest`] accepts
/// (in YAML, with map keys in the order `kubectl get -o yaml` prints them; see
/// [`emit::Emitter::yaml_key_order`]). An error leaves `e` untouched.
pub fn emit_manifest<E: emit::Emitter + ?Sized>(
    plaintext: &[u8],
    opts: &ManifestOptions,
    e: &mut E,
) -> Result<(), KubeError> {
    emit_manifest_noting(plaintext, opts, e).map(|_| ())
}

/// What a manifest written by [`emit_manifest_noting`] leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Omissions {
    /// Only `apiVersion`, `kind` and `metadata` were printed: a protobuf type
    /// other than Secret and ConfigMap (see [`fully_decoded`]).
    pub metadata_only: bool,
    /// What of the stored protobuf object the manifest does not hold as stored:
    /// fields that are not decoded (of a newer Kubernetes: `Secret field 6`,
    /// `metadata field 18`, `metadata.ownerReferences[0] field 8`), strings that
    /// are not UTF-8 (`ConfigMap data["k"] (not UTF-8: ...)`, printed with U+FFFD
    /// as kube-apiserver does), a `fieldsV1` held as CBOR. For a `metadata_only`
    /// object, only its metadata's. Empty for JSON objects (printed as stored).
    pub undecoded: Vec<String>,
}

/// [`emit_manifest`], returning what the manifest leaves out of the stored object.
pub fn emit_manifest_noting<E: emit::Emitter + ?Sized>(
    plaintext: &[u8],
    opts: &ManifestOptions,
    e: &mut E,
) -> Result<Omissions, KubeError> {
    if detect(plaintext) != Some(Encoding::Protobuf) {
        let v = decode_manifest(plaintext, opts)?;
        emit::emit_value(e, &v);
        return Ok(Omissions::default());
    }
    let u = meta::parse_unknown(plaintext)?;
    let type_meta = (&*u.api_version, &*u.kind);
    Ok(match type_meta {
        ("v1", "Secret") => {
            let s = Secret::decode(u.raw, u.raw_offset)?;
            s.emit(e, type_meta, opts);
            Omissions {
                metadata_only: false,
                undecoded: s.undecoded_fields(),
            }
        }
        ("v1", "ConfigMap") => {
            let c = ConfigMap::decode(u.raw, u.raw_offset)?;
            c.emit(e, type_meta, opts);
            Omissions {
                metadata_only: false,
                undecoded: c.undecoded_fields(),
            }
        }
        _ => {
            let m = meta::parse_object_meta(u.raw, u.raw_offset)?;
            secret::emit_meta_only(e, type_meta, &m, opts);
            Omissions {
                metadata_only: true,
                undecoded: m.undecoded,
            }
        }
    })
}

/// Whether [`decode_manifest`] prints this type in full (otherwise only its metadata).
pub fn fully_decoded(info: &ObjectInfo) -> bool {
    info.encoding == Encoding::Json
        || (info.api_version == "v1" && matches!(info.kind.as_str(), "Secret" | "ConfigMap"))
}

#[cfg(test)]
mod tests;
