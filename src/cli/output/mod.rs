//! The CLI's one output layer: the `-o` formats, the table writer, the object
//! line of findings, and the JSON/YAML writers. Commands build their data and
//! hand it here; they print nothing themselves.

mod table;

pub use table::{Align, Table};

use atrest::audit::ObjectReport;
use clap::ValueEnum;

/// `-o table|json|yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable summary.
    Table,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// `-o yaml|json` for Kubernetes manifests (like `kubectl get -o`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ManifestFormat {
    /// Like `kubectl get -o yaml`.
    Yaml,
    /// Like `kubectl get -o json`.
    Json,
}

/// A report as one pretty-printed JSON document, ending in a newline.
pub fn json_text(value: &serde_json::Value) -> Result<String, super::Failure> {
    Ok(serde_json::to_string_pretty(value).map_err(super::Failure::usage)? + "\n")
}

/// A report as one YAML document in the style of `kubectl get -o yaml`.
pub fn yaml_text(value: &serde_json::Value) -> Result<String, super::Failure> {
    atrest::kube::to_yaml(value).map_err(super::Failure::usage)
}

/// A report as JSON (also for `table`) or as YAML, with [`yaml_text`].
pub fn structured_text(
    value: &serde_json::Value,
    format: OutputFormat,
) -> Result<String, super::Failure> {
    match format {
        OutputFormat::Yaml => yaml_text(value),
        OutputFormat::Json | OutputFormat::Table => json_text(value),
    }
}

/// Print a serialisable report as JSON or YAML on stdout. Its YAML is
/// serde_saphyr's (`info`, `validate`, `keys list`), kept as it was.
pub fn print_structured(
    value: &serde_json::Value,
    format: OutputFormat,
) -> Result<(), super::Failure> {
    let text = match format {
        OutputFormat::Json | OutputFormat::Table => json_text(value)?,
        OutputFormat::Yaml => serde_saphyr::to_string(value).map_err(super::Failure::usage)?,
    };
    write_stdout(text.as_bytes())
}

/// The indentation of an object line's detail under it.
pub const DETAIL_INDENT: &str = "                ";

/// One object of a report on one line: status, key, provider/key and revision.
pub fn object_line(r: &ObjectReport) -> String {
    let key = r
        .key_name
        .as_deref()
        .map(|k| format!("/{k}"))
        .unwrap_or_default();
    format!(
        "{:<13} {} ({}{key}, rev {})",
        r.status.name(),
        r.key,
        r.provider,
        r.mod_revision
    )
}

/// `  LINE` for each object, with its detail, if any, on the next line.
pub fn object_lines(out: &mut String, objects: &[ObjectReport]) {
    for r in objects {
        out.push_str("  ");
        out.push_str(&object_line(r));
        out.push('\n');
        if let Some(d) = &r.detail {
            out.push_str(DETAIL_INDENT);
            out.push_str(d);
            out.push('\n');
        }
    }
}

/// `k1 n1, k2 n2` of counts, or `-` when there are none.
pub fn counts_list<K: std::fmt::Display, N: std::fmt::Display>(
    counts: impl IntoIterator<Item = (K, N)>,
) -> String {
    let cells: Vec<String> = counts
        .into_iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if cells.is_empty() {
        "-".into()
    } else {
        cells.join(", ")
    }
}

/// Write bytes to stdout; a closed pipe is not an error worth a panic.
pub fn write_stdout(bytes: &[u8]) -> Result<(), super::Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(super::Failure::usage(format!(
            "cannot write to stdout: {e}"
        ))),
    }
}

/// `s` as one word of a POSIX shell command line (quoted when it needs it).
pub fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
