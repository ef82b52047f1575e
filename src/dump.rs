//! Break-glass recovery: decrypt stored objects back into Kubernetes manifests.
//!
//! Each object is read in checked mode (a wrong aescbc key that yields valid
//! padding is not mistaken for data), decoded by [`crate::kube`], and given its
//! etcd `mod_revision` as `metadata.resourceVersion`, as kube-apiserver would.
//! Output is a `v1.List` (streamed item by item, so memory stays flat however
//! many objects there are) or one file per object.

use crate::audit::StoredObject;
use crate::envelope::{Envelope, ProviderKind};
use crate::etcd_key::GroupResource;
use crate::keyring::{ExtraKey, ExtraKeys};
use crate::kube::emit::{Emitter, JsonEmitter, YamlEmitter};
use crate::kube::{self, ExpectedObject, KubeError, ManifestOptions};
use crate::transformer::{ChainCache, ReadError, ReadMode};
use serde_json::Value;
use std::io::{self, Write};

/// Why one object could not be recovered.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// No configured key could read it.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Read as plaintext, but not a Kubernetes object.
    #[error("stored unencrypted, but not a Kubernetes object ({0})")]
    Malformed(String),
    /// Decrypted, but the object could not be decoded.
    #[error("decrypted, but the object cannot be decoded: {0}")]
    Decode(#[from] KubeError),
}

/// What [`recover`] did with one object.
#[derive(Debug, Default)]
pub struct Recovery<'k> {
    /// The extra key (further config, archive) that read it, if not the config.
    pub read_with: Option<&'k ExtraKey>,
    /// What the manifest leaves out of the stored object: all but its metadata
    /// (a type atrest does not decode), fields of a newer Kubernetes.
    pub omitted: kube::Omissions,
}

/// Decrypt and decode one stored object into a manifest, written through `e`;
/// when the config cannot read it, the `extra` keys (further configs, key
/// archives) are tried, and the one that read it is returned, with the stored
/// fields the manifest lacks.
///
/// `expected` is what the object's etcd key names ([`ExpectedObject::from_key`]):
/// a value that is not that object, in full, is not recovered. On an error nothing
/// has been written through `e`.
pub fn recover<'k, E: Emitter + ?Sized>(
    (chains, extra): (&mut ChainCache<'_>, &'k ExtraKeys),
    gr: &GroupResource,
    expected: &ExpectedObject<'_>,
    obj: &StoredObject<'_>,
    clean: bool,
    e: &mut E,
) -> Result<Recovery<'k>, RecoverError> {
    let opts = ManifestOptions {
        resource_version: Some(obj.mod_revision),
        clean,
    };
    let err = match read_checked(chains, gr, expected, obj) {
        Ok(plaintext) => match kube::emit_manifest_noting(&plaintext, &opts, e) {
            Ok(omitted) => {
                return Ok(Recovery {
                    read_with: None,
                    omitted,
                })
            }
            Err(err) => RecoverError::Decode(err),
        },
        Err(err @ RecoverError::Malformed(_)) => return Err(err),
        Err(err) => err,
    };
    let Some(r) = extra.read_expecting(obj.value, obj.key, *expected) else {
        return Err(err);
    };
    let omitted = kube::emit_manifest_noting(&r.plaintext, &opts, e)?;
    Ok(Recovery {
        read_with: Some(r.key),
        omitted,
    })
}

/// The plaintext of one stored object, read in checked mode with the config's keys.
fn read_checked<'v>(
    chains: &mut ChainCache<'_>,
    gr: &GroupResource,
    expected: &ExpectedObject<'_>,
    obj: &StoredObject<'v>,
) -> Result<std::borrow::Cow<'v, [u8]>, RecoverError> {
    let (t, _) = chains.get(gr);
    if Envelope::parse(obj.value).provider == ProviderKind::Identity {
        if let Err(e) = kube::verify_object(obj.value, expected) {
            let what = if obj.value.is_empty() {
                "empty value".to_string()
            } else {
                e.to_string()
            };
            return Err(RecoverError::Malformed(what));
        }
    }
    Ok(t.read(obj.value, obj.key, ReadMode::Checked(*expected))?
        .plaintext)
}

/// One recovered object serialised in `format`: as an item of the List
/// [`ListWriter`] writes (`as_item`), or as a whole document of its own.
/// Returns what [`recover`] does.
pub fn recover_serialized<'k>(
    keys: (&mut ChainCache<'_>, &'k ExtraKeys),
    gr: &GroupResource,
    expected: &ExpectedObject<'_>,
    obj: &StoredObject<'_>,
    clean: bool,
    (format, as_item): (ListFormat, bool),
    out: &mut Vec<u8>,
) -> Result<Recovery<'k>, SerializeError> {
    match format {
        ListFormat::Json => {
            let newline: &[u8] = if as_item { ITEM_NEWLINE } else { b"\n" };
            let start = out.len();
            if as_item {
                out.extend_from_slice(ITEM_NEWLINE);
            }
            let mut e = JsonEmitter::new(out, newline);
            match recover((&mut *keys.0, keys.1), gr, expected, obj, clean, &mut e) {
                Ok(by) => {
                    if !as_item {
                        out.push(b'\n');
                    }
                    Ok(by)
                }
                Err(err) => {
                    out.truncate(start);
                    Err(SerializeError::Recover(err))
                }
            }
        }
        ListFormat::Yaml => {
            let mut e = YamlEmitter::new();
            let by = recover((&mut *keys.0, keys.1), gr, expected, obj, clean, &mut e)?;
            let text = e.finish().map_err(SerializeError::Yaml)?;
            if as_item {
                yaml_item(out, &text);
            } else {
                out.extend_from_slice(text.as_bytes());
            }
            Ok(by)
        }
    }
}

/// Why [`recover_serialized`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum SerializeError {
    /// The object could not be recovered.
    #[error(transparent)]
    Recover(#[from] RecoverError),
    /// Recovered, but it cannot be written as YAML (nested too deep).
    #[error(transparent)]
    Yaml(KubeError),
}

/// Line break and indentation of a JSON List item's lines.
const ITEM_NEWLINE: &[u8] = b"\n        ";

/// A YAML document as an item of the List's `items:` sequence.
fn yaml_item(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 64);
    for (i, line) in text.lines().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n- " } else { b"\n  " });
        out.extend_from_slice(line.as_bytes());
    }
}

/// Output syntax of a dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    /// `kubectl get -o json` style (4-space indentation).
    Json,
    /// `kubectl get -o yaml` style.
    Yaml,
}

/// Writes a `v1.List` one item at a time: the same document
/// [`kube::list_manifest`] would build, without holding every item in memory.
pub struct ListWriter<W: Write> {
    out: W,
    format: ListFormat,
    items: usize,
}

impl<W: Write> ListWriter<W> {
    /// Start the list (writes its header).
    pub fn new(mut out: W, format: ListFormat) -> io::Result<Self> {
        match format {
            ListFormat::Json => {
                out.write_all(b"{\n    \"apiVersion\": \"v1\",\n    \"items\": [")?
            }
            ListFormat::Yaml => out.write_all(b"apiVersion: v1\nitems:")?,
        }
        Ok(ListWriter {
            out,
            format,
            items: 0,
        })
    }

    /// Serialise one item (may run on any thread) into the bytes `push_serialized` takes.
    pub fn serialize_item(format: ListFormat, item: &Value) -> Result<Vec<u8>, KubeError> {
        match format {
            ListFormat::Json => {
                let mut out = Vec::with_capacity(1024);
                out.extend_from_slice(ITEM_NEWLINE);
                write_json_pretty(&mut out, item, ITEM_NEWLINE);
                Ok(out)
            }
            ListFormat::Yaml => {
                let text = kube::to_yaml(item)?;
                let mut out = Vec::new();
                yaml_item(&mut out, &text);
                Ok(out)
            }
        }
    }

    /// Append one item serialised by [`ListWriter::serialize_item`].
    pub fn push_serialized(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.format == ListFormat::Json && self.items > 0 {
            self.out.write_all(b",")?;
        }
        self.out.write_all(bytes)?;
        self.items += 1;
        Ok(())
    }

    /// Number of items written.
    pub fn len(&self) -> usize {
        self.items
    }

    /// True before the first item.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// Close the list and flush.
    pub fn finish(mut self) -> io::Result<W> {
        match self.format {
            ListFormat::Json => {
                if self.items > 0 {
                    self.out.write_all(b"\n    ")?;
                }
                self.out.write_all(b"],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n")?;
            }
            ListFormat::Yaml => {
                if self.items == 0 {
                    self.out.write_all(b" []")?;
                }
                self.out
                    .write_all(b"\nkind: List\nmetadata:\n  resourceVersion: \"\"\n")?;
            }
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// JSON with 4-space indentation, as kubectl prints it.
pub fn to_json_pretty(v: &Value) -> String {
    let mut buf = Vec::new();
    write_json_pretty(&mut buf, v, b"\n");
    // Only whole UTF-8 strings and ASCII were written.
    String::from_utf8(buf).unwrap_or_default()
}

/// Append `v` as JSON with 4-space indentation, byte for byte what
/// `serde_json`'s `PrettyFormatter::with_indent(b"    ")` writes, with
/// `newline` (a line break and any base indentation) at every line break.
/// Written straight into `out`, without an intermediate string.
pub fn write_json_pretty(out: &mut Vec<u8>, v: &Value, newline: &[u8]) {
    write_pretty(out, v, newline, 0);
}

fn write_pretty(out: &mut Vec<u8>, v: &Value, newline: &[u8], depth: usize) {
    let line = |out: &mut Vec<u8>, depth: usize| {
        out.extend_from_slice(newline);
        for _ in 0..depth {
            out.extend_from_slice(b"    ");
        }
    };
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            // serde_json's own number formatting (integers and shortest floats).
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Value::String(s) => crate::json::write_str(out, s),
        Value::Array(items) if items.is_empty() => out.extend_from_slice(b"[]"),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                line(out, depth + 1);
                write_pretty(out, item, newline, depth + 1);
            }
            line(out, depth);
            out.push(b']');
        }
        Value::Object(map) if map.is_empty() => out.extend_from_slice(b"{}"),
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                line(out, depth + 1);
                crate::json::write_str(out, k);
                out.extend_from_slice(b": ");
                write_pretty(out, item, newline, depth + 1);
            }
            line(out, depth);
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(format: ListFormat, items: &[Value]) -> Vec<u8> {
        let mut w = ListWriter::new(Vec::new(), format).unwrap();
        for it in items {
            let b = ListWriter::<Vec<u8>>::serialize_item(format, it).unwrap();
            w.push_serialized(&b).unwrap();
        }
        w.finish().unwrap()
    }

    /// The direct writer is byte for byte serde_json's pretty printer.
    #[test]
    fn pretty_json_is_serde_json_pretty() {
        let v = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "a\"b", "namespace": "n", "labels": {}, "finalizers": [],
                "generation": 3, "neg": -4, "ratio": 0.5, "big": u64::MAX, "ok": true, "none": null},
            "data": {"k": "dg==", "\u{1}ctl": "tab\tnl\n é ✓"},
            "list": [1, [], {}, [2, {"x": [null]}]]
        });
        let mut want = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut want, fmt);
        serde::Serialize::serialize(&v, &mut ser).unwrap();
        assert_eq!(to_json_pretty(&v).as_bytes(), want.as_slice());
        for scalar in [json!(null), json!("s"), json!(7), json!([]), json!({})] {
            assert_eq!(
                to_json_pretty(&scalar),
                serde_json::to_string_pretty(&scalar).unwrap()
            );
        }
        // In a list: every line after a break indented by 8 more spaces.
        let item = ListWriter::<Vec<u8>>::serialize_item(ListFormat::Json, &v).unwrap();
        let mut lines = String::new();
        for l in String::from_utf8(want).unwrap().lines() {
            lines.push_str("\n        ");
            lines.push_str(l);
        }
        assert_eq!(String::from_utf8(item).unwrap(), lines);
    }

    #[test]
    fn streamed_list_equals_built_list() {
        let items = [
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a", "namespace": "n"}, "data": {"k": "dg=="}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"x": "line1\nline2\n"}}),
        ];
        for n in [0, 1, 2] {
            let want = kube::list_manifest(items[..n].to_vec());
            let got: Value = serde_json::from_slice(&list(ListFormat::Json, &items[..n])).unwrap();
            assert_eq!(got, want);
            let yaml = String::from_utf8(list(ListFormat::Yaml, &items[..n])).unwrap();
            let parsed: Value = serde_saphyr::from_str(&yaml).unwrap();
            assert_eq!(parsed, want, "{yaml}");
        }
    }
}
