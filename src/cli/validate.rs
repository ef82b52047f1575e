//! `atrest validate`: upstream's validation rules, atrest's lints, and drift
//! between the copies of a config on several control-plane nodes.

use super::output::{print_structured, OutputFormat};
use super::{CmdResult, Failure};
use atrest::config::{
    ConfigError, EncryptionConfiguration, LoadedConfig, ProviderConfig, Severity,
};
use serde_json::{json, Value};
use std::path::PathBuf;

pub const EXAMPLES: &str = "\
Examples:
  # Check the file kube-apiserver reads
  atrest validate /etc/kubernetes/enc/encryption-config.yaml

  # Compare the copies from three control-plane nodes (keys by name and fingerprint)
  atrest validate cp1.yaml cp2.yaml cp3.yaml

  # Machine-readable report
  atrest validate -o json config.yaml

  # A key archive written by `atrest rotate retire --archive` (warns when others can read it)
  atrest validate --archive /srv/backups/etcd/key-archive.yaml

Exit codes: 0 valid (warnings allowed), 1 errors or drift between files, 2 a file cannot be read.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// EncryptionConfiguration files (YAML or JSON).
    #[arg(required_unless_present = "archive", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Key archive to check (parse, keys, fingerprints; warns on loose permissions).
    #[arg(long, value_name = "FILE")]
    archive: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: OutputFormat,
}

struct FileReport {
    path: PathBuf,
    loaded: Option<LoadedConfig>,
    load_error: Option<String>,
    unreadable: bool,
    errors: Vec<(String, String)>,
    warnings: Vec<(String, String)>,
    /// Key archives: how many keys it holds.
    archived: usize,
}

impl FileReport {
    fn new(path: &std::path::Path) -> FileReport {
        FileReport {
            path: path.to_path_buf(),
            loaded: None,
            load_error: None,
            unreadable: false,
            errors: Vec::new(),
            warnings: Vec::new(),
            archived: 0,
        }
    }
}

pub fn run(a: Args) -> CmdResult {
    let mut reports = Vec::new();
    let mut archives: Vec<FileReport> = Vec::new();
    for path in &a.files {
        let mut r = FileReport::new(path);
        match EncryptionConfiguration::load(path) {
            Ok(l) => {
                for f in l.config.validate() {
                    let item = (f.path.clone(), f.message.clone());
                    match f.severity {
                        Severity::Error => r.errors.push(item),
                        Severity::Warning => r.warnings.push(item),
                    }
                }
                r.loaded = Some(l);
            }
            Err(e) => {
                r.unreadable = matches!(e.root(), ConfigError::Io { .. });
                r.load_error = Some(e.to_string());
            }
        }
        reports.push(r);
    }
    for path in &a.archive {
        let mut r = FileReport::new(path);
        match atrest::archive::KeyArchive::load(path) {
            Ok(l) => {
                if let Some(w) = l.permission_warning() {
                    r.warnings.push(("(file)".to_string(), w));
                }
                r.archived = l.archive.keys.len();
            }
            Err(e) => {
                r.unreadable = matches!(e, atrest::archive::ArchiveError::Io { .. });
                r.load_error = Some(e.to_string());
            }
        }
        archives.push(r);
    }
    let mut drift = Vec::new();
    if let Some(first) = reports.iter().find(|r| r.loaded.is_some()) {
        let base = first.loaded.as_ref().map(|l| &l.config);
        for other in reports.iter().filter(|r| !std::ptr::eq(*r, first)) {
            if let (Some(a), Some(b)) = (base, other.loaded.as_ref().map(|l| &l.config)) {
                let d = atrest::config::drift(a, b);
                if !d.is_empty() {
                    drift.push((first.path.clone(), other.path.clone(), d));
                }
            }
        }
    }

    match a.output {
        OutputFormat::Table => {
            print_table(&reports, &drift);
            print_archives(&archives);
        }
        fmt => {
            let mut v = to_json(&reports, &drift);
            if !archives.is_empty() {
                v["archives"] = archives_json(&archives);
            }
            print_structured(&v, fmt)?
        }
    }
    reports.extend(archives);

    if reports.iter().any(|r| r.unreadable) {
        return Err(Failure::usage(String::new()).with_code_only());
    }
    if reports
        .iter()
        .any(|r| r.load_error.is_some() || !r.errors.is_empty())
        || !drift.is_empty()
    {
        return Err(Failure::silent_findings());
    }
    Ok(())
}

impl Failure {
    fn with_code_only(mut self) -> Failure {
        self.message.clear();
        self
    }
}

/// Per-item summary of providers and keys, by name and fingerprint (never key bytes).
fn providers_json(cfg: &EncryptionConfiguration) -> Value {
    Value::Array(
        cfg.resources
            .iter()
            .map(|item| {
                json!({
                    "resources": item.resources,
                    "providers": item.providers.iter().map(provider_json).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn provider_json(p: &ProviderConfig) -> Value {
    match p {
        ProviderConfig::Kms(k) => {
            json!({"provider": "kms", "name": k.name, "apiVersion": k.effective_api_version()})
        }
        other => match other.keys() {
            Some(keys) => json!({
                "provider": other.kind_name(),
                "keys": keys.keys.iter().map(|k| json!({
                    "name": k.name,
                    "fingerprint": k.secret.fingerprint().to_string(),
                    "bytes": k.secret.len(),
                })).collect::<Vec<_>>(),
            }),
            None => json!({"provider": other.kind_name()}),
        },
    }
}

fn to_json(reports: &[FileReport], drift: &[(PathBuf, PathBuf, Vec<String>)]) -> Value {
    let pair = |(p, m): &(String, String)| json!({"path": p, "message": m});
    json!({
        "files": reports.iter().map(|r| {
            let mut errors: Vec<Value> = r.errors.iter().map(pair).collect();
            if let Some(e) = &r.load_error {
                errors.insert(0, json!({"path": "", "message": e}));
            }
            json!({
                "path": r.path.display().to_string(),
                "valid": r.load_error.is_none() && r.errors.is_empty(),
                "format": r.loaded.as_ref().map(|l| format!("{:?}", l.format).to_lowercase()),
                "errors": errors,
                "warnings": r.warnings.iter().map(pair).collect::<Vec<_>>(),
                "resources": r.loaded.as_ref().map(|l| providers_json(&l.config)),
            })
        }).collect::<Vec<_>>(),
        "drift": drift.iter().map(|(a, b, d)| json!({
            "a": a.display().to_string(),
            "b": b.display().to_string(),
            "differences": d,
        })).collect::<Vec<_>>(),
    })
}

fn archives_json(archives: &[FileReport]) -> Value {
    let pair = |(p, m): &(String, String)| json!({"path": p, "message": m});
    Value::Array(
        archives
            .iter()
            .map(|r| {
                json!({
                    "path": r.path.display().to_string(),
                    "valid": r.load_error.is_none(),
                    "keys": r.archived,
                    "errors": r.load_error.iter().map(|e| json!({"path": "", "message": e})).collect::<Vec<_>>(),
                    "warnings": r.warnings.iter().map(pair).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn print_archives(archives: &[FileReport]) {
    for r in archives {
        let path = r.path.display();
        match &r.load_error {
            Some(e) => println!("{path}: INVALID key archive\n  error: {e}"),
            None => println!("{path}: valid key archive ({} key(s))", r.archived),
        }
        for (_, m) in &r.warnings {
            println!("  warning: {m}");
        }
    }
}

fn print_table(reports: &[FileReport], drift: &[(PathBuf, PathBuf, Vec<String>)]) {
    for r in reports {
        let path = r.path.display();
        if let Some(e) = &r.load_error {
            println!("{path}: INVALID\n  error: {e}");
            continue;
        }
        let verdict = if r.errors.is_empty() {
            "valid"
        } else {
            "INVALID"
        };
        println!(
            "{path}: {verdict} ({} error{}, {} warning{})",
            r.errors.len(),
            if r.errors.len() == 1 { "" } else { "s" },
            r.warnings.len(),
            if r.warnings.len() == 1 { "" } else { "s" }
        );
        if let Some(l) = &r.loaded {
            for (i, item) in l.config.resources.iter().enumerate() {
                let provs: Vec<String> = item
                    .providers
                    .iter()
                    .map(|p| match p.keys() {
                        Some(k) => k
                            .keys
                            .iter()
                            .map(|k| {
                                format!("{} {} ({})", p.kind_name(), k.name, k.secret.fingerprint())
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        None => match p {
                            ProviderConfig::Kms(k) => {
                                format!("kms {} {}", k.effective_api_version(), k.name)
                            }
                            other => other.kind_name().to_string(),
                        },
                    })
                    .collect();
                println!(
                    "  resources[{i}] {}: {}",
                    item.resources.join(","),
                    provs.join(" | ")
                );
            }
        }
        for (p, m) in &r.errors {
            println!("  error: {p}: {m}");
        }
        for (p, m) in &r.warnings {
            println!("  warning: {p}: {m}");
        }
    }
    for (a, b, d) in drift {
        println!("drift between {} and {}:", a.display(), b.display());
        for line in d {
            println!("  {line}");
        }
    }
}
