//! `atrest keys list|find`, and loading the key files (`--config` repeated,
//! `--archive`) that `decrypt`, `audit`, `dump` and `rotate status` read with.

use super::flags::resource_filter;
use super::output::{print_structured, structured_text, Align, OutputFormat, Table};
use super::snapshot::{open_snapshot, with_verified_stdout};
use super::{load_config, CmdResult, Failure};
use atrest::archive::{KeyArchive, LoadedArchive};
use atrest::audit::{AuditOptions, Auditor};
use atrest::config::LoadedConfig;
use atrest::etcd_key::DEFAULT_PREFIX;
use atrest::keyring::{needs, ExtraKey, ExtraKeys, Origin};
use atrest::mvcc::KeyspaceView;
use atrest::transformer::Transformers;
use clap::Subcommand;
use serde_json::json;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub const EXAMPLES: &str = "\
Examples:
  # Every key a config and an archive hold (never the secrets)
  atrest keys list --config /etc/kubernetes/enc/encryption-config.yaml \\
    --archive /srv/backups/etcd/key-archive.yaml

  # Can this backup be restored with the files at hand?
  atrest keys find --snapshot /srv/backups/etcd/2026-11-01.db \\
    --config /etc/kubernetes/enc/encryption-config.yaml --archive /srv/backups/etcd/key-archive.yaml

Exit codes: 0 every object can be read (keys find) or every file is fine (keys list);
1 objects need a key that is not at hand (keys find names each by provider/name);
2 usage or I/O error, or a file that is not a valid config or archive.";

pub const FIND_EXAMPLES: &str = "\
Examples:
  # Which keys does a backup need, and do the config and the archive cover them?
  atrest keys find --snapshot backup.db --config enc.yaml --archive key-archive.yaml -o json

States: covered (a key at hand read every object), missing (no key of that
provider/name at hand), unreadable (a key of that name is at hand, but it does not
read every object: another key of the same name), plaintext (no key needed),
not-checked (KMS: the plugin holds the key).
Exit codes: 0 nothing missing, 1 some object needs a key that is missing or
unreadable, 2 usage or I/O error.";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Every key of the given configs and archives: provider, name, fingerprint, resources, retired-at.
    List(ListArgs),
    /// Which keys the objects of a snapshot need, and whether the given files have them.
    #[command(after_help = FIND_EXAMPLES)]
    Find(FindArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// EncryptionConfiguration file (repeatable).
    #[arg(long, value_name = "FILE")]
    config: Vec<PathBuf>,
    /// Key archive written by `atrest rotate retire --archive` (repeatable).
    #[arg(long, value_name = "FILE")]
    archive: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: OutputFormat,
}

#[derive(Debug, clap::Args)]
struct FindArgs {
    /// etcd snapshot (`etcdctl snapshot save`) or member db file to check.
    #[arg(long, value_name = "FILE")]
    snapshot: PathBuf,
    /// EncryptionConfiguration file (repeatable).
    #[arg(long, value_name = "FILE")]
    config: Vec<PathBuf>,
    /// Key archive (repeatable).
    #[arg(long, value_name = "FILE")]
    archive: Vec<PathBuf>,
    /// Only these resources, comma-separated (default: every object).
    #[arg(long, value_name = "R,...", value_delimiter = ',')]
    resource: Vec<String>,
    /// The keyspace as it was at this revision (default: the latest).
    #[arg(long, value_name = "N")]
    revision: Option<i64>,
    /// kube-apiserver's --etcd-prefix.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_PREFIX, value_parser = super::flags::etcd_prefix)]
    etcd_prefix: String,
    /// Read a backup whose sha256 trailer does not match, as far as it goes.
    #[arg(long)]
    skip_hash_check: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: OutputFormat,
}

pub fn run(a: Args) -> CmdResult {
    match a.command {
        KeysCommand::List(a) => list(a),
        KeysCommand::Find(a) => find(a),
    }
}

/// Load and check key archives; loose permissions are a warning on stderr.
pub fn load_archives(paths: &[PathBuf]) -> Result<Vec<LoadedArchive>, Failure> {
    let mut out = Vec::new();
    for p in paths {
        let l = KeyArchive::load(p).map_err(Failure::usage)?;
        if let Some(w) = l.permission_warning() {
            eprintln!("atrest: warning: {w}");
        }
        out.push(l);
    }
    Ok(out)
}

fn load_configs(paths: &[PathBuf]) -> Result<Vec<LoadedConfig>, Failure> {
    paths.iter().map(|p| load_config(p)).collect()
}

/// The keys of `configs` after the first, then of `archives`, for reading only.
pub fn extra_keys(
    configs: &[PathBuf],
    loaded: &[LoadedConfig],
    archives: &[PathBuf],
) -> Result<ExtraKeys, Failure> {
    let archives = load_archives(archives)?;
    let pairs: Vec<(&Path, &atrest::config::EncryptionConfiguration)> = configs
        .iter()
        .zip(loaded)
        .skip(1)
        .map(|(p, l)| (p.as_path(), &l.config))
        .collect();
    ExtraKeys::new(&pairs, &archives).map_err(Failure::usage)
}

/// The primary config's chains (the first `--config`, if any) and the extra keys
/// of the other configs and the archives.
pub fn read_keys(
    configs: &[PathBuf],
    archives: &[PathBuf],
    kms_endpoints: &[String],
) -> Result<(Option<Transformers>, ExtraKeys), Failure> {
    if configs.is_empty() && !kms_endpoints.is_empty() {
        return Err(Failure::usage(
            "--kms-endpoint needs --config: the KMS providers come from the config",
        ));
    }
    let loaded = load_configs(configs)?;
    let ts = match (configs.first(), loaded.first()) {
        (Some(p), Some(l)) => Some(super::kms::transformers(&l.config, p, kms_endpoints)?),
        _ => None,
    };
    Ok((ts, extra_keys(configs, &loaded, archives)?))
}

/// Every key of every file, in file order (configs first).
fn catalog(configs: &[PathBuf], archives: &[PathBuf]) -> Result<Vec<ExtraKey>, Failure> {
    let loaded = load_configs(configs)?;
    let archives = load_archives(archives)?;
    let pairs: Vec<(&Path, &atrest::config::EncryptionConfiguration)> = configs
        .iter()
        .zip(&loaded)
        .map(|(p, l)| (p.as_path(), &l.config))
        .collect();
    Ok(ExtraKeys::catalog(&pairs, &archives))
}

fn need_files(configs: &[PathBuf], archives: &[PathBuf]) -> CmdResult {
    if configs.is_empty() && archives.is_empty() {
        return Err(Failure::usage(
            "give the key files: --config FILE and/or --archive FILE (each repeatable)",
        ));
    }
    Ok(())
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Config => "config",
        Origin::Archive => "archive",
    }
}

/// Columns padded to the widest cell, lines trimmed.
fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = Table::new(&vec![Align::Left; head.len()])
        .head(head)
        .trim_lines();
    for r in rows {
        t.row(r.iter().map(String::as_str));
    }
    t.render()
}

fn list(a: ListArgs) -> CmdResult {
    need_files(&a.config, &a.archive)?;
    let keys = catalog(&a.config, &a.archive)?;
    if a.output != OutputFormat::Table {
        let v = json!({
            "keys": keys.iter().map(|k| json!({
                "provider": k.provider.name(),
                "name": k.name,
                "fingerprint": k.fingerprint.to_string(),
                "resources": k.resources,
                "retired_at": k.retired_at,
                "file": k.file.display().to_string(),
                "origin": origin_name(k.origin),
            })).collect::<Vec<_>>(),
        });
        return print_structured(&v, a.output);
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.provider.name().to_string(),
                k.name.clone(),
                k.fingerprint.to_string(),
                k.resources.join(","),
                k.retired_at.clone().unwrap_or_else(|| "-".to_string()),
                k.file.display().to_string(),
            ]
        })
        .collect();
    let text = table(
        &[
            "PROVIDER",
            "KEY",
            "FINGERPRINT",
            "RESOURCES",
            "RETIRED",
            "FILE",
        ],
        &rows,
    );
    super::output::write_stdout(text.as_bytes())
}

fn find(a: FindArgs) -> CmdResult {
    need_files(&a.config, &a.archive)?;
    let loaded = load_configs(&a.config)?;
    let archives = load_archives(&a.archive)?;
    let pairs: Vec<(&Path, &atrest::config::EncryptionConfiguration)> = a
        .config
        .iter()
        .zip(&loaded)
        .map(|(p, l)| (p.as_path(), &l.config))
        .collect();
    // Every file's keys are equal here: the question is what the backup needs.
    let at_hand = ExtraKeys::new(&pairs, &archives).map_err(Failure::usage)?;
    let snap = open_snapshot(&a.snapshot, a.skip_hash_check)?;
    let view = KeyspaceView::build(snap.bolt(), a.revision)
        .map_err(|e| Failure::usage(format!("{}: {e}", a.snapshot.display())))?;
    let selector = Auditor::new(
        None,
        AuditOptions {
            prefix: a.etcd_prefix.clone(),
            resources: resource_filter(&a.resource),
        },
    );
    let progress = super::progress::Progress::new(view.entries.len() as u64, "checking");
    let found = needs(
        &at_hand,
        &a.etcd_prefix,
        view.entries.iter().filter_map(|e| {
            progress.inc(1);
            selector.select(e.key).map(|_| (e.key, e.kv.value))
        }),
    );
    progress.finish();
    let objects: u64 = found.iter().map(|n| n.objects).sum();
    let missing: Vec<_> = found.iter().filter(|n| n.is_missing(&at_hand)).collect();
    let source = a.snapshot.display().to_string();
    let text = if a.output == OutputFormat::Table {
        let rows: Vec<Vec<String>> = found
            .iter()
            .map(|n| {
                vec![
                    n.provider.to_string(),
                    n.name.clone().unwrap_or_else(|| "-".to_string()),
                    n.objects.to_string(),
                    n.state(&at_hand).to_string(),
                    if n.files.is_empty() {
                        "-".to_string()
                    } else {
                        n.files
                            .iter()
                            .map(|f| f.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                ]
            })
            .collect();
        let mut t = format!(
            "snapshot: {source} (revision {}, {objects} objects)\n",
            view.revision
        );
        t.push_str(&table(
            &["PROVIDER", "KEY", "OBJECTS", "STATE", "READ WITH"],
            &rows,
        ));
        for n in &missing {
            let _ = writeln!(
                t,
                "\n{} object(s) need {}/{} ({}), e.g. {}",
                n.objects - n.read,
                n.provider,
                n.name.as_deref().unwrap_or(""),
                n.state(&at_hand),
                n.unread_examples.first().map_or("", String::as_str)
            );
        }
        t
    } else {
        let v = json!({
            "source": source,
            "revision": view.revision,
            "objects": objects,
            "keys": found.iter().map(|n| json!({
                "provider": n.provider,
                "name": n.name,
                "objects": n.objects,
                "read": n.read,
                "state": n.state(&at_hand),
                "read_with": n.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                "unread_examples": n.unread_examples,
            })).collect::<Vec<_>>(),
        });
        structured_text(&v, a.output)?
    };
    with_verified_stdout(&snap, false, |gate| {
        gate.write_all(text.as_bytes()).map_err(Failure::output)?;
        gate.open().map_err(Failure::output)?;
        gate.flush().map_err(Failure::output)
    })?;
    if !missing.is_empty() {
        let names: Vec<String> = missing
            .iter()
            .map(|n| format!("{}/{}", n.provider, n.name.as_deref().unwrap_or("")))
            .collect();
        return Err(Failure::findings(format!(
            "this backup cannot be fully restored with the files given: objects need {}; find the config or key archive that holds them (`atrest keys list` shows what a file holds) and pass it with --config or --archive",
            names.join(", ")
        )));
    }
    Ok(())
}
