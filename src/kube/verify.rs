//! The test a stored value must pass before atrest trusts it as the object its
//! etcd key holds: it decodes as a whole Kubernetes object, and its
//! `metadata.namespace` and `metadata.name` are the ones the key names.
//!
//! kube-apiserver builds every object's key from the object itself
//! (`<prefix>/<resource>/[<namespace>/]<name>`: apiserver
//! `pkg/registry/generic/registry/store.go`, `NamespaceKeyFunc` and `NoNamespaceKeyFunc`),
//! so a value whose name or namespace differs from its key is not what kube-apiserver
//! wrote there: a wrong aescbc key whose padding happened to be valid (aescbc has no
//! MAC), a truncated or damaged value, or bytes that are no object at all.
//!
//! A few values kube-apiserver keeps for itself are stored without a name; they are
//! accepted only under their own storage paths and with their own kind:
//! - `ranges/serviceips`, `ranges/servicenodeports`: `v1 RangeAllocation`
//!   (kubernetes `pkg/registry/core/service/allocator/storage/storage.go`);
//! - `masterleases/<ip>[/<port>]` and `peerserverleases/<id>`: `v1 Endpoints`
//!   (`pkg/controlplane/reconcilers/lease.go`, `peer_endpoint_lease.go`).

use std::borrow::Cow;

use super::meta::{check_object_meta, parse_unknown};
use super::{detect, Encoding, KubeError};
use crate::etcd_key::parse_object_key;
use serde::Deserialize;

/// What an etcd key says its object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectedObject<'a> {
    /// The key after `--etcd-prefix` and its `/`, e.g. `secrets/default/db`.
    pub path: &'a str,
    /// The namespace segment, for namespaced objects.
    pub namespace: Option<&'a str>,
    /// The name segment.
    pub name: &'a str,
}

impl<'a> ExpectedObject<'a> {
    /// The expectation for an etcd key under `prefix` (kube-apiserver's
    /// `--etcd-prefix`); `None` when the key is not an object key under it.
    pub fn from_key(etcd_key: &'a [u8], prefix: &str) -> Option<Self> {
        let ok = parse_object_key(etcd_key, prefix)?;
        Self::from_object_key(prefix, &ok)
    }

    /// The expectation for an etcd key already split by
    /// [`parse_object_key`] (`ok`) under `prefix`: the same as
    /// [`ExpectedObject::from_key`] without splitting it again.
    pub fn from_object_key(prefix: &str, ok: &crate::etcd_key::ObjectKey<'a>) -> Option<Self> {
        let path = ok
            .key
            .strip_prefix(prefix.trim_end_matches('/'))?
            .strip_prefix('/')?;
        Some(ExpectedObject {
            path,
            namespace: ok.namespace,
            name: ok.name,
        })
    }

    fn describe(&self) -> String {
        match self.namespace {
            Some(ns) => format!("namespace `{ns}`, name `{}`", self.name),
            None => format!("no namespace, name `{}`", self.name),
        }
    }
}

/// Why a value is not the object its key names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The value does not decode as a whole Kubernetes object.
    #[error("it does not decode as a Kubernetes object: {0}")]
    Decode(#[from] KubeError),
    /// A JSON value without `apiVersion` or `kind`.
    #[error("the JSON object has no apiVersion or kind, which kube-apiserver always stores")]
    NoTypeMeta,
    /// The object inside is another one than the key names.
    #[error(
        "the object inside is {found}, but its etcd key `{path}` names {expected}; \
         kube-apiserver never stores an object under another object's key"
    )]
    Mismatch {
        /// The key after the prefix.
        path: String,
        /// What the object's metadata says.
        found: String,
        /// What the key says.
        expected: String,
    },
}

/// The fields a JSON object is identified by (serde still checks the whole document).
#[derive(Deserialize)]
struct JsonHead {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: JsonMeta,
}

#[derive(Deserialize, Default)]
struct JsonMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

/// Identity of a verified object, borrowed from the value where it can be.
struct Decoded<'a> {
    api_version: Cow<'a, str>,
    kind: Cow<'a, str>,
    name: Cow<'a, str>,
    namespace: Cow<'a, str>,
}

/// Decode the whole stored value: protobuf (`k8s\x00` + `runtime.Unknown` whose
/// `raw` frames as a message and whose `metadata` decodes in full) or a JSON
/// object. CBOR is recognised but not decoded, so it never verifies.
fn decode_whole(plaintext: &[u8]) -> Result<Decoded<'_>, VerifyError> {
    match detect(plaintext) {
        Some(Encoding::Protobuf) => {
            let u = parse_unknown(plaintext)?;
            // Walks every top-level field of the typed object (each must frame)
            // and its ObjectMeta in full (labels, owners, managed fields), as
            // decoding does, keeping only the name and namespace.
            let id = check_object_meta(u.raw, u.raw_offset)?;
            Ok(Decoded {
                api_version: u.api_version,
                kind: u.kind,
                name: id.name,
                namespace: id.namespace,
            })
        }
        Some(Encoding::Json) => {
            let head: JsonHead =
                serde_json::from_slice(plaintext).map_err(|e| KubeError::Json(e.to_string()))?;
            if head.api_version.is_empty() || head.kind.is_empty() {
                return Err(VerifyError::NoTypeMeta);
            }
            Ok(Decoded {
                api_version: head.api_version.into(),
                kind: head.kind.into(),
                name: head.metadata.name.into(),
                namespace: head.metadata.namespace.into(),
            })
        }
        Some(Encoding::Cbor) => Err(KubeError::Unsupported("CBOR").into()),
        None => Err(super::not_an_object(plaintext).into()),
    }
}

/// Nameless values kube-apiserver keeps for itself: (first path segment, kind).
const NAMELESS: &[(&str, &str)] = &[
    ("ranges", "RangeAllocation"),
    ("masterleases", "Endpoints"),
    ("peerserverleases", "Endpoints"),
];

/// Check that `plaintext` is, in full, the object `expected` names.
pub fn verify_object(plaintext: &[u8], expected: &ExpectedObject<'_>) -> Result<(), VerifyError> {
    let d = decode_whole(plaintext)?;
    let ns = Some(&*d.namespace).filter(|n| !n.is_empty());
    if !d.name.is_empty() && d.name == expected.name && ns == expected.namespace {
        return Ok(());
    }
    if d.name.is_empty() && ns.is_none() && d.api_version == "v1" {
        let first = expected.path.split('/').next().unwrap_or("");
        if NAMELESS
            .iter()
            .any(|(seg, kind)| *seg == first && *kind == d.kind)
        {
            return Ok(());
        }
    }
    let found = match ns {
        Some(ns) => format!("{} `{ns}/{}`", d.kind, d.name),
        None if d.name.is_empty() => format!("a {} without a name", d.kind),
        None => format!("{} `{}` (no namespace)", d.kind, d.name),
    };
    Err(VerifyError::Mismatch {
        path: expected.path.to_string(),
        found,
        expected: expected.describe(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `k8s\0` + Unknown{typeMeta{v1, kind}, raw{metadata{name, namespace}}}.
    fn proto(kind: &str, name: &str, ns: &str) -> Vec<u8> {
        fn ld(field: u8, body: &[u8]) -> Vec<u8> {
            let mut v = vec![(field << 3) | 2, body.len() as u8];
            v.extend_from_slice(body);
            v
        }
        let mut tm = ld(1, b"v1");
        tm.extend(ld(2, kind.as_bytes()));
        let mut meta = ld(1, name.as_bytes());
        meta.extend(ld(3, ns.as_bytes()));
        let raw = ld(1, &meta);
        let mut out = b"k8s\x00".to_vec();
        out.extend(ld(1, &tm));
        out.extend(ld(2, &raw));
        out
    }

    fn exp(key: &str) -> ExpectedObject<'_> {
        ExpectedObject::from_key(key.as_bytes(), "/registry").unwrap()
    }

    #[test]
    fn name_and_namespace_must_match_the_key() {
        let s = proto("Secret", "db", "prod");
        assert_eq!(verify_object(&s, &exp("/registry/secrets/prod/db")), Ok(()));
        for key in [
            "/registry/secrets/prod/other",
            "/registry/secrets/dev/db",
            "/registry/secrets2/db",
        ] {
            let e = verify_object(&s, &exp(key)).unwrap_err();
            assert!(matches!(e, VerifyError::Mismatch { .. }), "{key}: {e}");
        }
        let ns = proto("Namespace", "prod", "");
        assert_eq!(
            verify_object(&ns, &exp("/registry/namespaces/prod")),
            Ok(())
        );
        let e = verify_object(&ns, &exp("/registry/namespaces/x/prod")).unwrap_err();
        assert!(e.to_string().contains("no namespace"), "{e}");
    }

    #[test]
    fn prefix_and_json_form() {
        let key = b"/kubernetes.io/example.com/widgets/ns/w1";
        let e = ExpectedObject::from_key(key, "/kubernetes.io/").unwrap();
        assert_eq!(e.path, "example.com/widgets/ns/w1");
        let json =
            br#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1","namespace":"ns"},"spec":{}}"#;
        assert_eq!(verify_object(json, &e), Ok(()));
        let cut = &json[..json.len() - 3];
        assert!(matches!(
            verify_object(cut, &e),
            Err(VerifyError::Decode(KubeError::Json(_)))
        ));
        assert_eq!(
            verify_object(br#"{"metadata":{"name":"w1","namespace":"ns"}}"#, &e),
            Err(VerifyError::NoTypeMeta)
        );
    }

    #[test]
    fn truncated_and_foreign_values_do_not_verify() {
        let s = proto("Secret", "db", "prod");
        let e = exp("/registry/secrets/prod/db");
        for n in 4..s.len() {
            assert!(verify_object(&s[..n], &e).is_err(), "cut at {n}");
        }
        assert!(verify_object(b"", &e).is_err());
        assert!(verify_object(b"\x8a\x11garbage", &e).is_err());
        assert!(verify_object(&[0xd9, 0xd9, 0xf7, 0xa0], &e).is_err());
    }

    #[test]
    fn nameless_internal_values_only_where_kube_apiserver_keeps_them() {
        let ranges = proto("RangeAllocation", "", "");
        assert_eq!(
            verify_object(&ranges, &exp("/registry/ranges/serviceips")),
            Ok(())
        );
        let ep = proto("Endpoints", "", "");
        assert_eq!(
            verify_object(&ep, &exp("/registry/masterleases/10.0.0.1")),
            Ok(())
        );
        assert!(verify_object(&ep, &exp("/registry/services/endpoints/default/x")).is_err());
        assert!(verify_object(&ranges, &exp("/registry/masterleases/10.0.0.1")).is_err());
        assert!(verify_object(
            &proto("Secret", "", ""),
            &exp("/registry/ranges/serviceips")
        )
        .is_err());
    }
}
