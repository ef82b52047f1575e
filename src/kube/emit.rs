//! Manifests written straight into bytes, event by event, without building a
//! `serde_json::Value` tree first.
//!
//! An [`Emitter`] takes the events of one document (maps, sequences, keys,
//! scalars) and writes them in one syntax:
//! - [`JsonEmitter`]: `kubectl get -o json`, i.e. Go's `json.MarshalIndent` with four
//!   spaces, byte for byte what `serde_json`'s `PrettyFormatter` writes;
//! - [`YamlEmitter`]: `kubectl get -o yaml` in the block style of
//!   [`super::to_yaml`] (whose rules, quoting included, it shares).
//!
//! Callers emit map keys already sorted, as kubectl prints them (Go marshals
//! `map[string]interface{}` keys in byte order); [`emit_value`] sorts the keys of
//! arbitrary JSON (stored JSON objects, `managedFields[].fieldsV1`) on the fly.

use serde_json::Value;

use super::manifest::{self, MAX_YAML_DEPTH};
use super::KubeError;

/// The events of one document. Map entries are `key` followed by one value.
pub trait Emitter {
    /// Open a map (`{` / a block mapping).
    fn begin_map(&mut self);
    /// Close the innermost map.
    fn end_map(&mut self);
    /// Open a sequence.
    fn begin_seq(&mut self);
    /// Close the innermost sequence.
    fn end_seq(&mut self);
    /// The key of the next map entry.
    fn key(&mut self, key: &str);
    /// A string value.
    fn str(&mut self, s: &str);
    /// Bytes, printed as standard base64 (Go's `encoding/json` for `[]byte`).
    fn base64(&mut self, bytes: &[u8]);
    /// An integer value.
    fn int(&mut self, n: i64);
    /// A JSON number as `serde_json` holds it (integers and floats of stored JSON).
    fn number(&mut self, n: &serde_json::Number);
    /// A boolean value.
    fn bool(&mut self, b: bool);
    /// `null`.
    fn null(&mut self);
    /// Whether maps' keys go in the order `kubectl get -o yaml` prints them
    /// (go-yaml's, see [`ordered_entries`]) rather than byte order (JSON: Go's
    /// `encoding/json` sorts map keys by bytes).
    fn yaml_key_order(&self) -> bool {
        false
    }
}

/// A map's entries, given in byte order of their keys, in the order `e` prints
/// them: as given, or go-yaml v2's order for YAML (`manifest::yaml_key_less`).
pub fn ordered_entries<'k, E: Emitter + ?Sized, V>(
    e: &E,
    entries: impl Iterator<Item = (&'k str, V)>,
) -> Vec<(&'k str, V)> {
    let entries: Vec<(&str, V)> = entries.collect();
    if e.yaml_key_order() {
        manifest::sort_yaml_entries(entries)
    } else {
        entries
    }
}

/// Emit `key: value` for a string.
pub fn str_entry<E: Emitter + ?Sized>(e: &mut E, key: &str, value: &str) {
    e.key(key);
    e.str(value);
}

/// Emit any JSON value, every map's keys in byte order (as kubectl prints
/// `unstructured` objects), without copying or re-sorting the value itself.
pub fn emit_value<E: Emitter + ?Sized>(e: &mut E, v: &Value) {
    match v {
        Value::Null => e.null(),
        Value::Bool(b) => e.bool(*b),
        Value::Number(n) => e.number(n),
        Value::String(s) => e.str(s),
        Value::Array(items) => {
            e.begin_seq();
            for item in items {
                emit_value(e, item);
            }
            e.end_seq();
        }
        Value::Object(map) => {
            let mut entries: Vec<(&str, &Value)> =
                map.iter().map(|(k, v)| (k.as_str(), v)).collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let entries = ordered_entries(e, entries.into_iter());
            e.begin_map();
            for (k, item) in entries {
                e.key(k);
                emit_value(e, item);
            }
            e.end_map();
        }
    }
}

/// Pretty JSON with 4-space indentation; every line break is `newline` (a line
/// break plus any base indentation, e.g. a List item's eight spaces).
pub struct JsonEmitter<'o> {
    out: &'o mut Vec<u8>,
    newline: &'o [u8],
    /// One entry per open container: whether it has no entry yet.
    open: Vec<bool>,
    /// The next value follows a key (`"k": `), not a sequence position.
    after_key: bool,
}

impl<'o> JsonEmitter<'o> {
    /// Write into `out`, breaking lines with `newline`.
    pub fn new(out: &'o mut Vec<u8>, newline: &'o [u8]) -> Self {
        JsonEmitter {
            out,
            newline,
            open: Vec::new(),
            after_key: false,
        }
    }

    fn line(&mut self, depth: usize) {
        self.out.extend_from_slice(self.newline);
        for _ in 0..depth {
            self.out.extend_from_slice(b"    ");
        }
    }

    /// Before a value: in a sequence, the separator and the line break.
    fn value(&mut self) {
        if std::mem::take(&mut self.after_key) {
            return;
        }
        let depth = self.open.len();
        if let Some(first) = self.open.last_mut() {
            if !std::mem::take(first) {
                self.out.push(b',');
            }
            self.line(depth);
        }
    }

    /// Start a map or sequence as a value.
    fn open_bracket(&mut self, bracket: u8) {
        self.value();
        self.out.push(bracket);
        self.open.push(true);
    }

    fn close(&mut self, bracket: u8, empty: &[u8]) {
        let was_empty = self.open.pop().unwrap_or(true);
        if was_empty {
            // `[` or `{` was the last byte written: make it `[]` / `{}`.
            self.out.pop();
            self.out.extend_from_slice(empty);
        } else {
            self.line(self.open.len());
            self.out.push(bracket);
        }
    }
}

impl Emitter for JsonEmitter<'_> {
    fn begin_map(&mut self) {
        self.open_bracket(b'{');
    }
    fn end_map(&mut self) {
        self.close(b'}', b"{}");
    }
    fn begin_seq(&mut self) {
        self.open_bracket(b'[');
    }
    fn end_seq(&mut self) {
        self.close(b']', b"[]");
    }
    fn key(&mut self, key: &str) {
        self.value();
        crate::json::write_str(self.out, key);
        self.out.extend_from_slice(b": ");
        self.after_key = true;
    }
    fn str(&mut self, s: &str) {
        self.value();
        crate::json::write_str(self.out, s);
    }
    fn base64(&mut self, bytes: &[u8]) {
        self.value();
        // Base64 never needs JSON escaping: encode straight into the output
        // (with the CPU's vector instructions: Secret data is most of a dump).
        self.out.push(b'"');
        base64_simd::STANDARD.encode_append(bytes, self.out);
        self.out.push(b'"');
    }
    fn int(&mut self, n: i64) {
        self.value();
        crate::json::write_i64(self.out, n);
    }
    fn number(&mut self, n: &serde_json::Number) {
        self.value();
        // serde_json's own number formatting (integers and shortest floats).
        let _ = serde_json::to_writer(&mut *self.out, n);
    }
    fn bool(&mut self, b: bool) {
        self.value();
        self.out
            .extend_from_slice(if b { b"true" } else { b"false" });
    }
    fn null(&mut self) {
        self.value();
        self.out.extend_from_slice(b"null");
    }
}

/// Where a YAML value goes, which decides what comes before it.
#[derive(Clone, Copy)]
enum Slot {
    /// The document itself.
    Top,
    /// After `key:` of a mapping whose keys are at this indentation.
    AfterKey(usize),
    /// After `- ` of a sequence whose dashes are at this indentation.
    Item(usize),
}

struct YamlFrame {
    is_map: bool,
    /// Where this container's entries go.
    indent: usize,
    /// The first entry follows a `- ` already on the line.
    inline_first: bool,
    entries: usize,
    /// Written before the first entry (a line break after `key:`).
    open: &'static str,
    /// Written instead of any entry when the container is empty.
    empty: &'static str,
}

/// kubectl-style block YAML: the bytes [`super::to_yaml`] writes for the same
/// document with its map keys in kubectl's YAML order (see
/// [`Emitter::yaml_key_order`]).
pub struct YamlEmitter {
    out: String,
    frames: Vec<YamlFrame>,
    next: Slot,
    error: Option<KubeError>,
}

impl Default for YamlEmitter {
    fn default() -> Self {
        YamlEmitter {
            out: String::new(),
            frames: Vec::new(),
            next: Slot::Top,
            error: None,
        }
    }
}

impl YamlEmitter {
    /// A new, empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// The document, or the first error (nesting deeper than [`MAX_YAML_DEPTH`]).
    pub fn finish(self) -> Result<String, KubeError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }

    /// A container at `depth` (1: the document's) holds entries: refuse it past
    /// [`MAX_YAML_DEPTH`], as [`super::to_yaml`] does.
    fn check_depth(error: &mut Option<KubeError>, depth: usize) {
        if depth > MAX_YAML_DEPTH && error.is_none() {
            *error = Some(KubeError::TooDeep {
                limit: MAX_YAML_DEPTH,
            });
        }
    }

    /// Start the next entry of the innermost container (`is_map`: a mapping
    /// key, else a sequence item): what comes before its first entry, and the
    /// indentation unless the entry follows a `- ` already on the line.
    /// Returns the container's indentation, `None` when there is no such container.
    fn start_entry(&mut self, is_map: bool) -> Option<usize> {
        let depth = self.frames.len();
        let f = self.frames.last_mut().filter(|f| f.is_map == is_map)?;
        Self::check_depth(&mut self.error, depth);
        if f.entries == 0 {
            self.out.push_str(f.open);
        }
        if !(f.entries == 0 && f.inline_first) {
            manifest::push_indent(&mut self.out, f.indent);
        }
        f.entries += 1;
        Some(f.indent)
    }

    /// The slot of the next value: a sequence's next item writes its `- ` here.
    fn slot(&mut self) -> Slot {
        let slot = self.next;
        if let Slot::AfterKey(_) = slot {
            return slot;
        }
        match self.start_entry(false) {
            Some(indent) => {
                self.out.push_str("- ");
                Slot::Item(indent)
            }
            None => slot,
        }
    }

    fn begin(&mut self, is_map: bool) {
        let slot = self.slot();
        let (indent, inline_first, open, empty) = match (slot, is_map) {
            (Slot::Top, true) => (0, false, "", "{}\n"),
            (Slot::Top, false) => (0, false, "", "[]\n"),
            (Slot::AfterKey(i), true) => (i + 2, false, "\n", " {}\n"),
            (Slot::AfterKey(i), false) => (i, false, "\n", " []\n"),
            (Slot::Item(i), true) => (i + 2, true, "", "{}\n"),
            (Slot::Item(i), false) => (i + 2, true, "", "[]\n"),
        };
        self.frames.push(YamlFrame {
            is_map,
            indent,
            inline_first,
            entries: 0,
            open,
            empty,
        });
        self.next = Slot::Item(0);
    }

    fn end(&mut self) {
        if let Some(f) = self.frames.pop() {
            if f.entries == 0 {
                self.out.push_str(f.empty);
            }
        }
        self.next = Slot::Item(0);
    }

    fn scalar(&mut self, write: impl FnOnce(&mut String, usize)) {
        match self.slot() {
            Slot::Top => write(&mut self.out, 2),
            Slot::AfterKey(i) => {
                self.out.push(' ');
                write(&mut self.out, i + 2);
            }
            Slot::Item(i) => write(&mut self.out, i + 2),
        }
        self.next = Slot::Item(0);
    }

    fn plain(&mut self, text: &str) {
        self.scalar(|out, _| {
            out.push_str(text);
            out.push('\n');
        });
    }
}

impl Emitter for YamlEmitter {
    fn begin_map(&mut self) {
        self.begin(true);
    }
    fn end_map(&mut self) {
        self.end();
    }
    fn begin_seq(&mut self) {
        self.begin(false);
    }
    fn end_seq(&mut self) {
        self.end();
    }
    fn key(&mut self, key: &str) {
        let Some(indent) = self.start_entry(true) else {
            return;
        };
        manifest::write_key(&mut self.out, key, indent);
        self.out.push(':');
        self.next = Slot::AfterKey(indent);
    }
    fn str(&mut self, s: &str) {
        self.scalar(|out, content_indent| manifest::write_str_scalar(out, s, content_indent));
    }
    fn base64(&mut self, bytes: &[u8]) {
        // The string rules decide the style: base64 text can look like a number
        // or a keyword (`123`, `null`) and is then quoted.
        let text = base64_simd::STANDARD.encode_to_string(bytes);
        self.str(&text);
    }
    fn int(&mut self, n: i64) {
        self.plain(&n.to_string());
    }
    fn number(&mut self, n: &serde_json::Number) {
        self.plain(&n.to_string());
    }
    fn bool(&mut self, b: bool) {
        self.plain(if b { "true" } else { "false" });
    }
    fn null(&mut self) {
        self.plain("null");
    }
    fn yaml_key_order(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn samples() -> Vec<Value> {
        vec![
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "a\"b", "namespace": "n", "labels": {}, "finalizers": [],
                    "generation": 3, "neg": -4, "ratio": 0.5, "big": u64::MAX, "ok": true, "none": null,
                    "managedFields": [{"fieldsV1": {"f:data": {".": {}, "f:x": {}}}, "manager": "m"}]},
                "data": {"k": "dg==", "\u{1}ctl": "tab\tnl\n é ✓", "ml": "a\nb\n", "blank": "a\n\nb"},
                "list": [1, [], {}, [2, {"x": [null]}], [[true]], "x\ny", {"k": "v", "e": []}],
                "zzz": "123", "yes": "yes", "": "empty key"
            }),
            json!({}),
            json!([]),
            json!("top"),
            json!("multi\nline\n"),
            json!(7),
            json!(null),
            json!([1, "two", {"three": 3}, [], {}]),
            json!({"a": [{"b": [{"c": {}}]}], "long": "k".repeat(1100), ("k".repeat(1100)): 1}),
        ]
    }

    /// Sorting keys as [`emit_value`] does, for the reference writers.
    fn sorted(v: &Value) -> Value {
        let mut v = v.clone();
        v.sort_all_objects();
        v
    }

    #[test]
    fn json_is_serde_json_pretty() {
        for v in samples() {
            let mut ours = Vec::new();
            emit_value(&mut JsonEmitter::new(&mut ours, b"\n"), &v);
            let mut reference = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut reference, fmt);
            serde::Serialize::serialize(&sorted(&v), &mut ser).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(reference).unwrap()
            );
        }
    }

    #[test]
    fn yaml_is_to_yaml() {
        for v in samples() {
            let mut e = YamlEmitter::new();
            emit_value(&mut e, &v);
            let mut want = v.clone();
            manifest::sort_keys_yaml(&mut want);
            assert_eq!(
                e.finish().unwrap(),
                manifest::to_yaml(&want).unwrap(),
                "{v}"
            );
        }
    }

    #[test]
    fn base64_matches_the_string_path() {
        let long: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for n in [
            0, 1, 2, 3, 31, 32, 33, 47, 48, 49, 95, 96, 97, 1000, 4999, 5000,
        ] {
            let mut ours = Vec::new();
            JsonEmitter::new(&mut ours, b"\n").base64(&long[..n]);
            let want =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &long[..n]);
            assert_eq!(ours, format!("\"{want}\"").into_bytes(), "{n} bytes");
        }
        for bytes in [&b""[..], b"x", b"\x00\xff\xfe", b"123", b"\xd7m\xf8"] {
            let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
            let mut a = Vec::new();
            let mut e = JsonEmitter::new(&mut a, b"\n");
            e.base64(bytes);
            let mut b = Vec::new();
            JsonEmitter::new(&mut b, b"\n").str(&text);
            assert_eq!(a, b);
            let mut y = YamlEmitter::new();
            y.base64(bytes);
            assert_eq!(
                y.finish().unwrap(),
                manifest::to_yaml(&json!(text)).unwrap()
            );
        }
    }

    #[test]
    fn yaml_too_deep_is_an_error() {
        let mut v = json!(1);
        for _ in 0..MAX_YAML_DEPTH + 5 {
            v = json!([v]);
        }
        let mut e = YamlEmitter::new();
        emit_value(&mut e, &v);
        assert!(matches!(e.finish(), Err(KubeError::TooDeep { .. })));
    }
}
