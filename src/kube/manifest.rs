//! Manifest output: key order, `--clean`, `List` wrapping and YAML like kubectl prints.
//!
//! `kubectl get -o json` and `-o yaml` both print objects decoded into
//! `unstructured.Unstructured` (a Go `map[string]interface{}`), and Go marshals map
//! keys in sorted byte order. So both outputs have every object's keys sorted
//! (`apiVersion`, `data`, `kind`, `metadata`, `type`), at every level. We do the same.
//! YAML goes through go-yaml v2, whose key order differs from byte order where keys
//! hold digits or punctuation (`key2` before `key10`): the YAML emitter follows it
//! (see [`yaml_key_less`]); [`to_yaml`] keeps the value's order.
//!
//! YAML is written by hand, in the block style `kubectl` (go-yaml) uses: two-space
//! indentation, sequences at their key's indentation, `{}`/`[]` for empties, `|`
//! literal blocks for multi-line text. A string is left plain only when no YAML 1.1 or
//! 1.2 reader could take it for anything else; otherwise it is double-quoted.

use serde_json::{Map, Value};

use super::KubeError;

/// Deepest nesting `to_yaml` writes; deeper values are refused, not overflowed.
pub const MAX_YAML_DEPTH: usize = 256;

/// YAML's limit on the length of an implicit (`key: value`) mapping key.
const MAX_IMPLICIT_KEY: usize = 1024;

/// What [`clean`] removes from `metadata`: fields the API server owns, which
/// `kubectl apply` / `create` of a restored object must not carry.
pub const CLEAN_METADATA_FIELDS: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "selfLink",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Remove the server-owned metadata fields listed in [`CLEAN_METADATA_FIELDS`].
pub fn clean(object: &mut Value) {
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        for key in CLEAN_METADATA_FIELDS {
            meta.shift_remove(*key);
        }
    }
}

/// Sort every object's keys, as kubectl's output does.
pub fn sort_keys(value: &mut Value) {
    value.sort_all_objects();
}

/// Whether map key `a` goes before `b` in `kubectl get -o yaml`, which is not byte order:
/// sigs.k8s.io/yaml `JSONToYAML` reads the JSON into Go maps and go-yaml v2
/// marshals a map with its keys sorted by `keyList.Less` (`sorter.go`): runs of
/// digits compare as numbers (`key2` before `key10`), and at the first difference a
/// character that is not a letter sorts before a letter (`a_b` before `aB`).
/// Characters outside ASCII are classed with Rust's Unicode properties, close to
/// Go's `unicode.IsLetter` (letters); only ASCII digits count as digits (Go also
/// counts other decimal digits, such as U+0663). go-yaml's comparison is not
/// transitive for some key sets (`a12` < `a1b` < `a5` < `a12`): kubectl then
/// prints such keys in an order that changes from run to run (Go's map order),
/// and here in the one this merge sort gives; for every other set of keys, the
/// order is kubectl's.
fn yaml_key_less(a: &[char], b: &[char]) -> bool {
    let letter = |c: char| {
        if c.is_ascii() {
            c.is_ascii_alphabetic()
        } else {
            c.is_alphabetic()
        }
    };
    let digit = |c: &char| c.is_ascii_digit();
    for (i, (&ca, &cb)) in a.iter().zip(b).enumerate() {
        if ca == cb {
            continue;
        }
        match (letter(ca), letter(cb)) {
            (true, true) => return ca < cb,
            (true, false) => return false,
            (false, true) => return true,
            (false, false) => {}
        }
        // Neither is a letter: the digit runs starting here, as numbers. A run
        // starting with 0 inside a number already begun (the 0 of "10") counts
        // from 1, so it does not compare as a leading zero.
        let inside = (ca == '0' || cb == '0')
            && a[..i]
                .iter()
                .rev()
                .take_while(|c| digit(c))
                .any(|&c| c != '0');
        let number = |run: &[char]| {
            run.iter()
                .take_while(|c| digit(c))
                .fold((i64::from(inside), 0usize), |(n, len), &c| {
                    (
                        n.wrapping_mul(10).wrapping_add(i64::from(c as u8 - b'0')),
                        len + 1,
                    )
                })
        };
        let ((an, alen), (bn, blen)) = (number(&a[i..]), number(&b[i..]));
        if an != bn {
            return an < bn;
        }
        if alen != blen {
            return alen < blen;
        }
        return ca < cb;
    }
    a.len() < b.len()
}

/// `entries` in [`yaml_key_less`] order. A merge sort: stable, and it cannot
/// panic whatever the comparison does (go-yaml's is not obviously a total order).
pub(crate) fn sort_yaml_entries<'k, V>(entries: Vec<(&'k str, V)>) -> Vec<(&'k str, V)> {
    let keyed: Vec<(Vec<char>, (&'k str, V))> = entries
        .into_iter()
        .map(|(k, v)| (k.chars().collect(), (k, v)))
        .collect();
    merge_sort(keyed, &|x: &(Vec<char>, _), y: &(Vec<char>, _)| {
        yaml_key_less(&x.0, &y.0)
    })
    .into_iter()
    .map(|(_, entry)| entry)
    .collect()
}

fn merge_sort<T>(mut items: Vec<T>, less: &impl Fn(&T, &T) -> bool) -> Vec<T> {
    if items.len() <= 1 {
        return items;
    }
    let right = items.split_off(items.len() / 2);
    let (left, right) = (merge_sort(items, less), merge_sort(right, less));
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let take_right = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => less(r, l),
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (None, None) => break,
        };
        let next = if take_right {
            right.next()
        } else {
            left.next()
        };
        out.extend(next);
    }
    out
}

/// Every object's keys in the order `kubectl get -o yaml` prints them
/// ([`yaml_key_less`]), for comparing with what the YAML emitter writes.
#[cfg(test)]
pub(crate) fn sort_keys_yaml(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(sort_keys_yaml),
        Value::Object(map) => {
            let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            let refs: Vec<(&str, usize)> = entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.as_str(), i))
                .collect();
            let order: Vec<usize> = sort_yaml_entries(refs)
                .into_iter()
                .map(|(_, i)| i)
                .collect();
            let mut slots: Vec<Option<(String, Value)>> = entries.into_iter().map(Some).collect();
            for i in order {
                if let Some((k, mut v)) = slots[i].take() {
                    sort_keys_yaml(&mut v);
                    map.insert(k, v);
                }
            }
        }
        _ => {}
    }
}

/// Wrap objects in a `v1.List`, as `kubectl get` does for several objects:
/// `{"apiVersion":"v1","items":[...],"kind":"List","metadata":{"resourceVersion":""}}`.
pub fn list_manifest(items: Vec<Value>) -> Value {
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), Value::String(String::new()));
    let mut m = Map::new();
    m.insert("apiVersion".into(), "v1".into());
    m.insert("items".into(), Value::Array(items));
    m.insert("kind".into(), "List".into());
    m.insert("metadata".into(), Value::Object(meta));
    Value::Object(m)
}

/// Render a value as a YAML document in kubectl's style (keys in the value's order;
/// values from [`super::decode_manifest`] are already sorted).
pub fn to_yaml(value: &Value) -> Result<String, KubeError> {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0, false, 1)?,
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0, false, 1)?,
        scalar => {
            write_scalar(&mut out, scalar, 2);
        }
    }
    Ok(out)
}

pub(crate) fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn check_depth(depth: usize) -> Result<(), KubeError> {
    if depth > MAX_YAML_DEPTH {
        return Err(KubeError::TooDeep {
            limit: MAX_YAML_DEPTH,
        });
    }
    Ok(())
}

/// A block mapping at `indent`; with `inline_first` the first key follows a `- `
/// already written on the current line.
fn write_map(
    out: &mut String,
    map: &Map<String, Value>,
    indent: usize,
    inline_first: bool,
    depth: usize,
) -> Result<(), KubeError> {
    check_depth(depth)?;
    for (i, (key, value)) in map.iter().enumerate() {
        if !(i == 0 && inline_first) {
            push_indent(out, indent);
        }
        write_key(out, key, indent);
        out.push(':');
        write_after_key(out, value, indent, depth)?;
    }
    Ok(())
}

fn write_after_key(
    out: &mut String,
    value: &Value,
    indent: usize,
    depth: usize,
) -> Result<(), KubeError> {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, indent + 2, false, depth + 1)
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(out, a, indent, false, depth + 1)
        }
        scalar => {
            out.push(' ');
            write_scalar(out, scalar, indent + 2);
            Ok(())
        }
    }
}

fn write_seq(
    out: &mut String,
    items: &[Value],
    indent: usize,
    inline_first: bool,
    depth: usize,
) -> Result<(), KubeError> {
    check_depth(depth)?;
    for (i, item) in items.iter().enumerate() {
        if !(i == 0 && inline_first) {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => write_map(out, m, indent + 2, true, depth + 1)?,
            Value::Array(a) if !a.is_empty() => write_seq(out, a, indent + 2, true, depth + 1)?,
            scalar => write_scalar(out, scalar, indent + 2),
        }
    }
    Ok(())
}

/// A scalar (or empty collection) and its line break. Literal block content goes at
/// `content_indent`.
fn write_scalar(out: &mut String, value: &Value, content_indent: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => return write_str_scalar(out, s, content_indent),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
    out.push('\n');
}

/// A string scalar and its line break; literal block content goes at `content_indent`.
pub(crate) fn write_str_scalar(out: &mut String, s: &str, content_indent: usize) {
    if literal_ok(s) {
        write_literal(out, s, content_indent);
        return;
    }
    if plain_ok(s) {
        out.push_str(s);
    } else {
        double_quote(out, s);
    }
    out.push('\n');
}

/// A mapping key (not its `:`), as an explicit `? key` past YAML's implicit-key
/// length, in which case the `:` goes on the next line at `indent`.
pub(crate) fn write_key(out: &mut String, key: &str, indent: usize) {
    let key_text = key_scalar(key);
    if key_text.len() > MAX_IMPLICIT_KEY {
        out.push_str("? ");
        out.push_str(&key_text);
        out.push('\n');
        push_indent(out, indent);
    } else {
        out.push_str(&key_text);
    }
}

fn key_scalar(key: &str) -> String {
    if plain_ok(key) {
        key.to_string()
    } else {
        let mut s = String::new();
        double_quote(&mut s, key);
        s
    }
}

/// Characters YAML lets us write unescaped (its `c-printable`, less the line and
/// paragraph separators and byte-order mark that some readers treat specially).
fn printable(c: char) -> bool {
    matches!(c, ' '..='~')
        || (matches!(c, '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
            && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}'))
}

/// Multi-line text kubectl would print as a `|` block, when that is unambiguous:
/// printable, no tabs or carriage returns, no trailing spaces on a line, and not
/// starting with a space or an empty line (so the indentation is detected right).
fn literal_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && s.chars().all(|c| c == '\n' || printable(c))
        && s.split('\n').all(|line| !line.ends_with(' '))
}

fn write_literal(out: &mut String, s: &str, indent: usize) {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    out.push_str(match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    });
    out.push('\n');
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        if !line.is_empty() {
            push_indent(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
}

/// Words that YAML 1.1 or 1.2 readers resolve to something other than a string.
fn reserved_word(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "true", "false", "yes", "no", "y", "n", "on", "off", "null", "~", "<<", "=",
    ];
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    WORDS.contains(&lower.as_str()) || unsigned == ".inf" || unsigned == ".nan"
}

/// Strings that may read as a number or timestamp in some YAML schema (ints in any
/// base, floats, sexagesimal `1:30`, dates): a digit (or `.digit`) after an optional
/// sign, and only characters those forms use. Underscores are ignored, as go-yaml v2
/// (`resolve.go`, which `kubectl apply` reads YAML with) removes every `_` from a
/// scalar starting with a sign or digit before it tries a number: `+_1` is the int 1.
fn number_like(s: &str) -> bool {
    if s.contains('_') {
        return number_like(&s.replace('_', ""));
    }
    let rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    let starts_numeric = rest.starts_with(|c: char| c.is_ascii_digit())
        || (rest.starts_with('.') && rest[1..].starts_with(|c: char| c.is_ascii_digit()));
    starts_numeric
        && rest
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "xXoO._:+-tTzZ ".contains(c))
}

/// Whether `s` can be written as a plain scalar and read back as the same string.
fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    !"-?:,[]{}#&*!|>'\"%@` ".contains(first)
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && s.chars().all(printable)
        && !reserved_word(s)
        && !number_like(s)
        && s != "---"
        && s != "..."
}

fn double_quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xff => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: &Value) -> String {
        let yaml = to_yaml(v).unwrap();
        let back: Value = serde_saphyr::from_str(&yaml)
            .unwrap_or_else(|e| panic!("YAML does not parse: {e}\n---\n{yaml}"));
        assert_eq!(&back, v, "YAML:\n{yaml}");
        yaml
    }

    #[test]
    fn kubectl_style_layout() {
        let v = json!({
            "apiVersion": "v1",
            "data": {"password": "czNjcjN0", "user": "YWRtaW4="},
            "kind": "Secret",
            "metadata": {
                "creationTimestamp": "2024-01-02T03:04:05Z",
                "finalizers": ["a", "b"],
                "labels": {"app": "db"},
                "managedFields": [{"fieldsV1": {"f:data": {".": {}, "f:password": {}}}, "manager": "kubectl"}],
                "name": "db",
            },
            "type": "Opaque",
        });
        let yaml = round_trip(&v);
        assert_eq!(
            yaml,
            "apiVersion: v1\n\
             data:\n  password: czNjcjN0\n  user: YWRtaW4=\n\
             kind: Secret\n\
             metadata:\n  creationTimestamp: \"2024-01-02T03:04:05Z\"\n  finalizers:\n  - a\n  - b\n\
             \x20 labels:\n    app: db\n\
             \x20 managedFields:\n  - fieldsV1:\n      f:data:\n        .: {}\n        f:password: {}\n    manager: kubectl\n\
             \x20 name: db\n\
             type: Opaque\n"
        );
    }

    #[test]
    fn strings_that_need_quotes_are_quoted() {
        for s in [
            "true",
            "False",
            "yes",
            "NO",
            "on",
            "y",
            "null",
            "~",
            "",
            " lead",
            "trail ",
            "123",
            "-1",
            "+1",
            "0x1f",
            "1e3",
            ".5",
            ".inf",
            "-.Inf",
            ".NaN",
            "1:30",
            "2024-01-02",
            "*alias",
            "&anchor",
            "!tag",
            "- item",
            "a: b",
            "a #c",
            "key:",
            "{x}",
            "[x]",
            "'q'",
            "\"q\"",
            "%p",
            "@x",
            "`x`",
            "|",
            ">",
            "#c",
            "---",
            "...",
            "tab\there",
            "cr\r",
            "nul\u{0}",
            "del\u{7f}",
            "ls\u{2028}",
            "bom\u{feff}",
            "<<",
            "=",
            "?",
            ":",
        ] {
            let yaml = to_yaml(&json!({ "k": s })).unwrap();
            assert!(yaml.starts_with("k: \""), "{s:?} not quoted: {yaml}");
            round_trip(&json!({ "k": s, s: 1 }));
        }
    }

    /// go-yaml v2 (`resolve.go`: `plain := strings.Replace(in, "_", "", -1)` before
    /// `strconv.ParseInt`/`ParseFloat`, for any scalar starting with a sign or digit),
    /// which `kubectl apply` reads YAML with through sigs.k8s.io/yaml `YAMLToJSON`,
    /// reads plain `+_1` as the int 1; as a map key `YAMLToJSON` then turns it into
    /// the key "1". Such strings must be quoted.
    #[test]
    fn underscored_numbers_after_a_sign_are_quoted() {
        for s in [
            "+_1", "+_2_", "+__0", "+_837.", "+._5", "+_0x_1f", "+_1_0e5",
        ] {
            let yaml = to_yaml(&json!({ "k": s })).unwrap();
            assert!(yaml.starts_with("k: \""), "{s:?} not quoted: {yaml}");
            let yaml = to_yaml(&json!({ s: "v" })).unwrap();
            assert!(yaml.starts_with('"'), "key {s:?} not quoted: {yaml}");
        }
        // Underscores elsewhere leave a string plain.
        assert_eq!(to_yaml(&json!({"k": "a_1"})).unwrap(), "k: a_1\n");
    }

    #[test]
    fn plain_strings_stay_plain() {
        for s in [
            "Opaque",
            "kubernetes.io/tls",
            "YWRtaW4=",
            "+abc/==",
            "/x",
            "f:metadata",
            "k:{\"uid\":\"1\"}",
            "héllo",
            "a-b",
            "v1.2.3x",
        ] {
            let yaml = to_yaml(&json!({ "k": s })).unwrap();
            assert_eq!(yaml, format!("k: {s}\n"));
            round_trip(&json!({ "k": s }));
        }
    }

    #[test]
    fn multi_line_strings() {
        for s in [
            "a\nb",
            "a\nb\n",
            "a\n\n",
            "a\n\nb",
            "a\n  indented\nb",
            "x\n\n\n",
            " lead\nx",
            "\nx",
            "trailing \nspace",
            "tab\t\nx",
            "cr\r\nx",
        ] {
            round_trip(&json!({ "k": s, "list": [s, {"k": s}] }));
        }
        assert_eq!(
            to_yaml(&json!({"k": "a\nb\n"})).unwrap(),
            "k: |\n  a\n  b\n"
        );
        assert_eq!(to_yaml(&json!(["a\nb"])).unwrap(), "- |-\n  a\n  b\n");
    }

    #[test]
    fn nesting_and_empties() {
        round_trip(&json!({
            "a": [], "b": {}, "c": null, "d": [[1, 2], [], [{}], [[true]]],
            "e": [{"x": [1], "y": {"z": []}}], "f": 1.5, "g": -7, "h": false
        }));
        round_trip(&json!([1, "two", {"three": 3}]));
        round_trip(&json!("top"));
        round_trip(&json!({}));
        round_trip(&json!([]));
    }

    #[test]
    fn long_keys_use_explicit_syntax() {
        let long = "k".repeat(2000);
        round_trip(&json!({ long.clone(): {"a": 1}, "b": [long.clone()] }));
    }

    #[test]
    fn too_deep_is_an_error() {
        let mut v = json!(1);
        for _ in 0..MAX_YAML_DEPTH + 5 {
            v = json!([v]);
        }
        assert!(matches!(to_yaml(&v), Err(KubeError::TooDeep { .. })));
        let mut v = json!(1);
        for _ in 0..MAX_YAML_DEPTH + 5 {
            v = json!({ "a": v });
        }
        assert!(matches!(to_yaml(&v), Err(KubeError::TooDeep { .. })));
    }

    #[test]
    fn list_matches_kubectl() {
        let list = list_manifest(vec![json!({"kind": "Secret"})]);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"{"apiVersion":"v1","items":[{"kind":"Secret"}],"kind":"List","metadata":{"resourceVersion":""}}"#
        );
    }
}
