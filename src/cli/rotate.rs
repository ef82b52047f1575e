//! `atrest rotate status|prepare|promote|retire`: the key rotation procedure, one
//! checked config edit at a time. Decisions live in `atrest::rotation`.

use super::etcd::{suggested_flags, EtcdArgs};
use super::flags::KeyProvider;
use super::output::{shell_word, structured_text, write_stdout, Align, OutputFormat, Table};
use super::{load_config, CmdResult, Failure};
use atrest::config::LoadedConfig;
use atrest::etcd::ConnectOptions;
use atrest::etcd_key::DEFAULT_PREFIX;
use atrest::keyring::ExtraKeys;
use atrest::rewrite::DEFAULT_PAGE_SIZE;
use atrest::rotation::{
    self, Change, ItemStage, KeyUsage, KeyedProvider, NextStep, PrepareOptions, RetireTarget,
    RotationError, Scope, StatusReport, UsageScan,
};
use atrest::snapshot::{HashCheck, Snapshot, SnapshotOptions};
use atrest::source::SnapshotSource;
use atrest::transformer::Transformers;
use clap::Subcommand;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub const EXAMPLES: &str = "\
The procedure (on one node; copy the file to every control-plane node after each edit):
  1. atrest rotate prepare --config FILE      new key reads, does not write; restart every kube-apiserver
  2. atrest rotate promote --config FILE      new key writes; restart every kube-apiserver
  3. atrest rewrite --endpoints URL,... --config FILE --resource secrets
                                              every object is rewritten with the new key
  4. atrest rotate retire  --config FILE --key OLD --archive ARCHIVE --endpoints URL,...
                                              old key removed once a scan proves nothing uses it,
                                              after it was appended to the key archive (or --no-archive)
`atrest rotate status` says where a config is and prints the next command, with the
etcd flags it was given (never a password).

status and retire read the objects from a live etcd (--endpoints or ETCDCTL_ENDPOINTS,
TLS and auth flags as for etcdctl; every page at one revision) or from a snapshot
(--snapshot FILE). In `rotate retire`, --key is the key to remove: the etcd client key
is --client-key there (or ETCDCTL_KEY).

Exit codes: 0 done or nothing to do; 1 refused (unsafe step, drift between nodes) or
data at risk; 2 usage or I/O error, or a config kube-apiserver would refuse.";

pub const STATUS_EXAMPLES: &str = "\
Examples:
  # Where is this node's config in the procedure?
  atrest rotate status --config /etc/kubernetes/enc/encryption-config.yaml

  # With the data: how many objects each key still protects, and the next command
  # (a live etcd, from a control-plane node; kubeadm paths)
  atrest rotate status --config /etc/kubernetes/enc/encryption-config.yaml \\
    --endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt \\
    --cert /etc/kubernetes/pki/apiserver-etcd-client.crt \\
    --key /etc/kubernetes/pki/apiserver-etcd-client.key

  # The same from a snapshot
  atrest rotate status --config enc.yaml --snapshot /var/backups/etcd-now.db

  # A KMS plugin writes: objects per key ID after a KEK rotation, with the plugin
  # reached on another socket than the config's
  atrest rotate status --config enc.yaml --endpoints https://127.0.0.1:2379 \\
    --kms-endpoint vault=unix:///run/kms/vault.sock

  # The copies from all control-plane nodes: no next step while they differ
  atrest rotate status --config cp1.yaml --config cp2.yaml --config cp3.yaml -o json

Exit codes: 0 (whatever the stage); 1 objects cannot be read with the config (keys it
lacks, undecryptable, plaintext without identity) or the configs differ; 2 usage or I/O.";

pub const PREPARE_EXAMPLES: &str = "\
Examples:
  # Add a fresh key of the current provider as a reader (named key-YYYYMMDDTHHMMSSZ)
  atrest rotate prepare --config /etc/kubernetes/enc/encryption-config.yaml

  # Enable encryption on an identity-only config, or switch provider: the new
  # provider goes right after the current writer and only reads for now
  atrest rotate prepare --config enc.yaml --provider aesgcm

  # See what would change without writing
  atrest rotate prepare --config enc.yaml --key-name key2 --dry-run

Then copy the file to every control-plane node, restart every kube-apiserver, and run
`atrest rotate promote`.";

pub const PROMOTE_EXAMPLES: &str = "\
Examples:
  # Make the prepared key the writer (only after every kube-apiserver runs the prepared config)
  atrest rotate promote --config /etc/kubernetes/enc/encryption-config.yaml

  # Name the key when atrest cannot tell the prepared key from an old one
  atrest rotate promote --config enc.yaml --key key-blue

Then copy the file to every node, restart every kube-apiserver, and rewrite the data.";

pub const RETIRE_EXAMPLES: &str = "\
Examples:
  # Remove the old key once a scan of the live etcd (at one revision) proves no object
  # uses it, keeping it in a key archive for older backups (kept with the backups, not
  # on the nodes); the client key is --client-key here, as --key names the key to remove
  atrest rotate retire --config /etc/kubernetes/enc/encryption-config.yaml --key key1 \\
    --archive /srv/backups/etcd/key-archive.yaml \\
    --endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt \\
    --cert /etc/kubernetes/pki/apiserver-etcd-client.crt \\
    --client-key /etc/kubernetes/pki/apiserver-etcd-client.key

  # The same from a fresh snapshot
  ETCDCTL_API=3 etcdctl --endpoints https://127.0.0.1:2379 \\
    --cacert /etc/kubernetes/pki/etcd/ca.crt \\
    --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt \\
    --key /etc/kubernetes/pki/etcd/healthcheck-client.key \\
    snapshot save /var/backups/after-rewrite.db
  atrest rotate retire --config /etc/kubernetes/enc/encryption-config.yaml \\
    --key key1 --no-archive --snapshot /var/backups/after-rewrite.db

  # Stop reading plaintext once every object is encrypted
  atrest rotate retire --config enc.yaml --key identity --snapshot after-rewrite.db

  # A key name used by two providers
  atrest rotate retire --config enc.yaml --key aescbc/key1 --archive keys.yaml --snapshot after-rewrite.db

A key (not identity) needs --archive FILE or --no-archive: the archive gets the key
(provider, name, secret, fingerprint, resources, time, config) before the config is
edited; entries are only appended, the file is written atomically with mode 0600.

There is no way to skip the proof. A key is removed only when a complete scan (the
live etcd at one revision, or a snapshot whose sha256 trailer verifies) shows that no
object of any resource is stored under the key's prefix k8s:enc:PROVIDER:v1:NAME:, that
no object is unreadable with the config, and that it saw the data: an object of every
resource the key's items cover and an object stored as they write now (under their
current write key, or in plaintext where identity writes).";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: RotateCommand,
}

#[derive(Debug, Subcommand)]
enum RotateCommand {
    /// Which stage a config is in, how many objects each key protects, and the next command.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Add a fresh key that reads but does not write yet.
    #[command(after_help = PREPARE_EXAMPLES)]
    Prepare(PrepareArgs),
    /// Make the prepared key the one that writes.
    #[command(after_help = PROMOTE_EXAMPLES)]
    Promote(PromoteArgs),
    /// Remove a key (or identity) once a full scan proves no object uses it.
    #[command(after_help = RETIRE_EXAMPLES)]
    Retire(RetireArgs),
}

/// Where the objects come from: a snapshot file or a live etcd, not both (as `atrest
/// audit`: without either flag, ETCDCTL_ENDPOINTS names a live etcd).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").args(["snapshot", "endpoints"])))]
struct SourceArgs {
    /// etcd snapshot (`etcdctl snapshot save`) or member db file to scan.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    /// Read a snapshot whose sha256 trailer does not match, as far as it goes.
    #[arg(long, requires = "snapshot")]
    skip_hash_check: bool,
    /// Live etcd: keys per range request.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PAGE_SIZE)]
    page_size: usize,
    /// kube-apiserver's --etcd-prefix.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_PREFIX, value_parser = super::flags::etcd_prefix)]
    etcd_prefix: String,
    #[arg(long = "kms-endpoint", value_name = "NAME=ENDPOINT", help = super::kms::HELP)]
    kms_endpoint: Vec<String>,
    #[command(flatten)]
    etcd: EtcdArgs,
}

enum Source {
    Snapshot {
        path: PathBuf,
        skip_hash_check: bool,
    },
    Live {
        conn: ConnectOptions,
        page_size: usize,
    },
}

impl SourceArgs {
    /// The source given, if any: `--snapshot`, else `--endpoints` or ETCDCTL_ENDPOINTS.
    fn source(&self) -> Result<Option<Source>, Failure> {
        if let Some(p) = &self.snapshot {
            return Ok(Some(Source::Snapshot {
                path: p.clone(),
                skip_hash_check: self.skip_hash_check,
            }));
        }
        if self.etcd.endpoints().is_none() {
            return Ok(None);
        }
        Ok(Some(Source::Live {
            conn: self.etcd.options()?,
            page_size: self.page_size,
        }))
    }
}

/// The data a scan read, as flags of the commands atrest suggests next.
struct SourceFlags {
    /// For `rotate status`: `--snapshot FILE`, or the connection.
    status: String,
    /// For `rotate retire`, where the client key is `--client-key`.
    retire: String,
    /// The connection for `atrest rewrite`; `None` after a snapshot.
    rewrite: Option<String>,
    /// `--user` was given: the suggested commands need its password (never printed).
    password: bool,
}

impl SourceFlags {
    fn new(src: &Source, prefix: &str, kms: &[String]) -> SourceFlags {
        let with_prefix = |mut f: String| {
            if prefix != DEFAULT_PREFIX {
                f = format!("{f} --etcd-prefix {}", shell_word(prefix));
            }
            for k in kms {
                f = format!("{f} --kms-endpoint {}", shell_word(k));
            }
            f
        };
        match src {
            Source::Snapshot { path, .. } => {
                let f = with_prefix(format!(
                    "--snapshot {}",
                    shell_word(&path.display().to_string())
                ));
                SourceFlags {
                    status: f.clone(),
                    retire: f,
                    rewrite: None,
                    password: false,
                }
            }
            Source::Live { conn, .. } => {
                let (f, password) = suggested_flags(conn, "--key");
                let (r, _) = suggested_flags(conn, "--client-key");
                SourceFlags {
                    status: with_prefix(f.clone()),
                    retire: with_prefix(r),
                    rewrite: Some(with_prefix(f)),
                    password,
                }
            }
        }
    }
}

/// A finished scan.
struct Scan {
    /// The source in reports: the snapshot file, or the endpoints.
    name: String,
    /// How to read the same source again.
    flags: SourceFlags,
    revision: i64,
    usage: KeyUsage,
    /// The sha256 check of a snapshot; `None` for a live etcd.
    hash: Option<HashCheck>,
}

fn scan(
    src: &Source,
    ts: &Transformers,
    extra: &ExtraKeys,
    prefix: &str,
    kms: &[String],
) -> Result<Scan, Failure> {
    let scanner = UsageScan::new(ts, extra, prefix);
    match src {
        Source::Snapshot {
            path,
            skip_hash_check,
        } => {
            let snap = Snapshot::open(
                path,
                SnapshotOptions {
                    skip_hash_check: *skip_hash_check,
                    ..Default::default()
                },
            )
            .map_err(Failure::usage)?;
            let source = SnapshotSource::open(snap.bolt(), None)
                .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
            let progress = super::progress::Progress::new(source.len() as u64, "scanning");
            let usage = scanner.snapshot(&source, &|n| progress.inc(n));
            progress.finish();
            Ok(Scan {
                name: path.display().to_string(),
                flags: SourceFlags::new(src, prefix, kms),
                revision: source.revision(),
                usage,
                hash: Some(snap.hash_check()),
            })
        }
        Source::Live { conn, page_size } => {
            let rt = super::etcd::runtime()?;
            let (revision, usage) = rt.block_on(async {
                let etcd = super::etcd::connect(conn).await?;
                // One revision for every page: the proof is about one state of the
                // keyspace, whatever kube-apiserver writes meanwhile.
                let revision = etcd.revision().await.map_err(Failure::usage)?;
                let progress =
                    super::etcd::scan_progress(&etcd, &scanner.ranges(), revision, "scanning")
                        .await?;
                let usage = scanner
                    .live(&etcd, revision, *page_size, &|n| progress.inc(n))
                    .await
                    .map_err(Failure::usage)?;
                progress.finish();
                Ok::<_, Failure>((revision, usage))
            })?;
            Ok(Scan {
                name: conn.endpoints_string(),
                flags: SourceFlags::new(src, prefix, kms),
                revision,
                usage,
                hash: None,
            })
        }
    }
}

/// Flags shared by the commands that edit the file.
#[derive(Debug, clap::Args)]
struct EditArgs {
    /// EncryptionConfiguration file to edit (YAML or JSON; the form is kept).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Only the resources[] items listing these names, comma-separated (default: every
    /// item that encrypts, or every item when none does yet).
    #[arg(long, value_name = "R,...", value_delimiter = ',')]
    resource: Vec<String>,
    /// Print what would change and the new file's summary; write nothing.
    #[arg(long)]
    dry_run: bool,
}

impl EditArgs {
    fn scope(&self) -> Scope {
        Scope {
            resources: self
                .resource
                .iter()
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect(),
        }
    }
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// EncryptionConfiguration file; repeat for the copies on every control-plane node.
    #[arg(long, value_name = "FILE", required = true)]
    config: Vec<PathBuf>,
    /// Only the resources[] items listing these names, comma-separated.
    #[arg(long, value_name = "R,...", value_delimiter = ',')]
    resource: Vec<String>,
    /// Key archive whose keys are tried, read only, on objects the config cannot
    /// read (repeatable; such objects stay at risk, with the file named); the first is
    /// also the archive of the suggested `rotate retire`.
    #[arg(long, value_name = "FILE")]
    archive: Vec<PathBuf>,
    #[command(flatten)]
    source: SourceArgs,
    /// Output format (json and yaml: the fields documented in `status_json`).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: OutputFormat,
}

#[derive(Debug, clap::Args)]
struct PrepareArgs {
    #[command(flatten)]
    edit: EditArgs,
    /// Provider of the new key (default: the current write provider; aescbc when
    /// encryption is not enabled). A different provider is added as a new provider.
    #[arg(long, value_enum)]
    provider: Option<KeyProvider>,
    /// Name of the new key (default: key-YYYYMMDDTHHMMSSZ, UTC now).
    #[arg(long, value_name = "NAME")]
    key_name: Option<String>,
}

#[derive(Debug, clap::Args)]
struct PromoteArgs {
    #[command(flatten)]
    edit: EditArgs,
    /// The reader to promote, when atrest cannot tell the prepared key from an old one
    /// (or to make an older key write again on purpose).
    #[arg(long, value_name = "NAME")]
    key: Option<String>,
}

/// `--key` names the key to retire here, so the etcd client key is `--client-key`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("key", |a| a.long("client-key").visible_alias(None)))]
struct RetireArgs {
    #[command(flatten)]
    edit: EditArgs,
    /// Key to remove: NAME, PROVIDER/NAME, or `identity`.
    #[arg(id = "target", long = "key", value_name = "NAME|identity")]
    key: RetireTarget,
    /// Append the retired key to this key archive (created mode 0600) before the config
    /// is edited, so that older backups stay readable; keep it with the backups, not on
    /// the nodes.
    #[arg(long, value_name = "FILE", conflicts_with = "no_archive")]
    archive: Option<PathBuf>,
    /// Retire without keeping the key: backups taken before the rotation can no longer
    /// be read.
    #[arg(long)]
    no_archive: bool,
    #[command(flatten)]
    source: SourceArgs,
}

pub fn run(a: Args) -> CmdResult {
    match a.command {
        RotateCommand::Status(a) => status(a),
        RotateCommand::Prepare(a) => prepare(a),
        RotateCommand::Promote(a) => promote(a),
        RotateCommand::Retire(a) => retire(a),
    }
}

fn refused(e: RotationError) -> Failure {
    if e.is_usage() {
        Failure::usage(e)
    } else {
        Failure::findings(e)
    }
}

fn config_word(p: &Path) -> String {
    shell_word(&p.display().to_string())
}

/// Print the change, then write (or, with --dry-run, only describe) the new file.
fn apply(
    loaded: &LoadedConfig,
    new: &atrest::config::EncryptionConfiguration,
    change: &Change,
    dry_run: bool,
    next: &str,
) -> CmdResult {
    let path = loaded.path.as_deref().unwrap_or(Path::new("-"));
    let mut out = String::new();
    let _ = writeln!(out, "changes to {}:", path.display());
    for e in &change.edits {
        let _ = writeln!(out, "  {e}");
    }
    if dry_run {
        rotation::check_valid(new).map_err(refused)?;
        let _ = writeln!(
            out,
            "\ndry run: {} was not changed; the new file would be:",
            path.display()
        );
        for line in rotation::describe(new).lines() {
            let _ = writeln!(out, "  {line}");
        }
        return write_stdout(out.as_bytes());
    }
    let written = rotation::write_config(loaded, new, SystemTime::now()).map_err(refused)?;
    // The file keeps its mode (and owner and group): say which it is.
    let mode = std::fs::metadata(&written.path)
        .map(|m| {
            format!(
                " (mode {:04o})",
                std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\nwrote {}{mode}; the previous file is kept as {}",
        written.path.display(),
        written.backup.display()
    );
    let _ = writeln!(out, "new file:");
    for line in rotation::describe(new).lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "\nnext: {next}");
    write_stdout(out.as_bytes())
}

const COPY_AND_RESTART: &str = "copy the file to the same path on every control-plane node, check the copies agree (`atrest validate FILE1 FILE2 ...` or `atrest rotate status --config ... --config ...`), and restart kube-apiserver on each node, one at a time";

fn prepare(a: PrepareArgs) -> CmdResult {
    let loaded = load_config(&a.edit.config)?;
    let opts = PrepareOptions {
        provider: a.provider.map(KeyedProvider::from),
        key_name: a.key_name.clone(),
        scope: a.edit.scope(),
    };
    let (new, change) =
        rotation::prepare(&loaded.config, &opts, SystemTime::now()).map_err(refused)?;
    let next = format!(
        "{COPY_AND_RESTART}; then `atrest rotate promote --config {}`",
        config_word(&a.edit.config)
    );
    apply(&loaded, &new, &change, a.edit.dry_run, &next)
}

fn promote(a: PromoteArgs) -> CmdResult {
    let loaded = load_config(&a.edit.config)?;
    let (new, change) =
        rotation::promote(&loaded.config, a.key.as_deref(), &a.edit.scope()).map_err(refused)?;
    let items = rotation::stage(&new, &a.edit.scope()).map_err(refused)?;
    let next = format!(
        "{COPY_AND_RESTART}; then rewrite every object with the new key (`atrest rewrite --endpoints URL,... --config {c} {}`, with the TLS flags as for etcdctl, or `kubectl get secrets -A -o json | kubectl replace -f -`) and run `atrest rotate status --config {c}{} --endpoints URL,...`",
        rewrite_scope(&items),
        scope_flag(&a.edit.scope()),
        c = config_word(&a.edit.config)
    );
    apply(&loaded, &new, &change, a.edit.dry_run, &next)
}

/// Where the key archive goes, in advice.
const ARCHIVE_ADVICE: &str =
    "keep the archive with the etcd backups (it can read them), not on the control-plane nodes";

fn retire(a: RetireArgs) -> CmdResult {
    if matches!(a.key, RetireTarget::Key { .. }) && a.archive.is_none() && !a.no_archive {
        return Err(Failure::usage(format!(
            "retiring {} removes it for good, and backups taken before the rotation need it: pass --archive FILE to keep it in a key archive ({ARCHIVE_ADVICE}), or --no-archive to drop it",
            a.key
        )));
    }
    let loaded = load_config(&a.edit.config)?;
    let Some(src) = a.source.source()? else {
        return Err(Failure::usage(
            "retire needs a full scan to prove the key is unused: pass --endpoints URL,... (the live etcd, read at one revision) or --snapshot FILE (a snapshot taken after the rewrite)",
        ));
    };
    let ts = super::kms::transformers(&loaded.config, &a.edit.config, &a.source.kms_endpoint)?;
    // The proof is about what kube-apiserver reads: no extra keys here.
    let scanned = scan(
        &src,
        &ts,
        &ExtraKeys::default(),
        &a.source.etcd_prefix,
        &a.source.kms_endpoint,
    )?;
    super::kms::check(Some(&ts))?;
    if let (Source::Snapshot { path, .. }, Some(hash)) = (&src, scanned.hash) {
        rotation::check_snapshot(path, hash).map_err(refused)?;
    }
    let (new, change) = rotation::retire(&loaded.config, &a.key, &scanned.usage, &a.edit.scope())
        .map_err(refused)?;
    let next = format!(
        "{COPY_AND_RESTART}; then `atrest rotate status --config {}`",
        config_word(&a.edit.config)
    );
    eprintln!(
        "scan of {} at revision {}: {} objects; none uses {}",
        scanned.name, scanned.revision, scanned.usage.summary.objects, a.key
    );
    let retired = atrest::archive::removed_keys(
        &loaded.config,
        &new,
        &std::fs::canonicalize(&a.edit.config).unwrap_or_else(|_| a.edit.config.clone()),
        SystemTime::now(),
    );
    let mut out = String::new();
    match (&a.archive, retired.is_empty()) {
        (_, true) => {}
        (None, false) => {
            let _ = writeln!(
                out,
                "--no-archive: {} not kept anywhere; backups taken before now cannot be read without it\n",
                retired.iter().map(|k| k.describe()).collect::<Vec<_>>().join(", ")
            );
        }
        (Some(file), false) if a.edit.dry_run => {
            for k in &retired {
                let _ = writeln!(
                    out,
                    "dry run: would archive {} to {}",
                    k.describe(),
                    file.display()
                );
            }
            out.push('\n');
        }
        (Some(file), false) => {
            // Archived before the config is edited: a failure here leaves the config as it was.
            let done = atrest::archive::append(file, &retired).map_err(Failure::usage)?;
            for k in &done.added {
                let _ = writeln!(out, "archived {k} to {} (mode 0600)", done.path.display());
            }
            for k in &done.already {
                let _ = writeln!(out, "{k} was already in {}", done.path.display());
            }
            let _ = writeln!(
                out,
                "{ARCHIVE_ADVICE}; read old backups with `atrest dump --archive {}`\n",
                config_word(&done.path)
            );
        }
    }
    if !out.is_empty() {
        write_stdout(out.as_bytes())?;
    }
    apply(&loaded, &new, &change, a.edit.dry_run, &next)
}

fn status(a: StatusArgs) -> CmdResult {
    let mut loaded = Vec::new();
    for p in &a.config {
        loaded.push(load_config(p)?);
    }
    let first = &loaded[0];
    let mut drift = Vec::new();
    for (p, l) in a.config.iter().zip(&loaded).skip(1) {
        for d in atrest::config::drift(&first.config, &l.config) {
            drift.push(format!(
                "{} vs {}: {}",
                a.config[0].display(),
                p.display(),
                d
            ));
        }
    }
    let scope = Scope {
        resources: a
            .resource
            .iter()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect(),
    };
    let scanned = match a.source.source()? {
        Some(src) => {
            let ts = super::kms::transformers(&first.config, &a.config[0], &a.source.kms_endpoint)?;
            // The other --config files are copies of this one (compared for drift), so
            // only the archives add keys.
            // An archive that does not exist yet is the one the next retire creates.
            let existing: Vec<PathBuf> = a
                .archive
                .iter()
                .filter(|p| p.symlink_metadata().is_ok())
                .cloned()
                .collect();
            let extra = super::keys::extra_keys(&[], &[], &existing)?;
            let scanned = scan(
                &src,
                &ts,
                &extra,
                &a.source.etcd_prefix,
                &a.source.kms_endpoint,
            )?;
            super::kms::check(Some(&ts))?;
            // Each v2 plugin's current key ID, from the Status asked for the scan.
            let kms = rotation::kms_key_ids(&first.config, &scanned.usage, |name| {
                ts.kms()
                    .and_then(|k| k.get(atrest::kms::ApiVersion::V2, name))
                    .and_then(|p| p.status().ok().map(|s| s.key_id.clone()))
            });
            Some((scanned, kms))
        }
        None => None,
    };
    let (scanned, kms) = match scanned {
        Some((s, k)) => (Some(s), k),
        None => (None, Vec::new()),
    };
    let mut report = rotation::status(&first.config, &scope, scanned.as_ref().map(|s| &s.usage))
        .map_err(refused)?;
    if let Some(s) = &scanned {
        report = report.with_kms(&first.config, &scope, &s.usage, kms);
    }
    let cfg_words: Vec<String> = a.config.iter().map(|p| config_word(p)).collect();
    let (next, advice) = if drift.is_empty() {
        let archive = a
            .archive
            .first()
            .map_or_else(|| "FILE".to_string(), |p| config_word(p));
        next_command(&report, &cfg_words[0], &scope, scanned.as_ref(), &archive)
    } else {
        (
            None,
            format!(
                "the configs differ, so no step is safe yet: make every node's file identical (copy the one you want everywhere), then check with `atrest validate {}`",
                cfg_words.join(" ")
            ),
        )
    };
    let at_risk = scanned.as_ref().map_or(0, |s| s.usage.at_risk_total);
    let text = match a.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let v = status_json(
                &a.config,
                &report,
                scanned.as_ref(),
                &drift,
                next.as_deref(),
                &advice,
            );
            structured_text(&v, a.output)?
        }
        OutputFormat::Table => status_table(
            &a.config,
            &report,
            scanned.as_ref(),
            &drift,
            next.as_deref(),
            &advice,
        ),
    };
    write_stdout(text.as_bytes())?;
    if at_risk > 0 || !drift.is_empty() {
        return Err(Failure::silent_findings());
    }
    Ok(())
}

/// `--resource R,...` for the rotate commands, when status was narrowed to some items.
fn scope_flag(scope: &Scope) -> String {
    if scope.resources.is_empty() {
        String::new()
    } else {
        format!(" --resource {}", shell_word(&scope.resources.join(",")))
    }
}

/// The resources `atrest rewrite` must cover for `items`: `--resource R,...`, or
/// `--all-resources` when an item names them by wildcard (`*.apps`, `*.*`).
fn rewrite_scope(items: &[ItemStage]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for n in items.iter().flat_map(|s| s.resources.iter()) {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    if names.is_empty() || names.iter().any(|n| n.contains('*')) {
        "--all-resources".to_string()
    } else {
        format!("--resource {}", shell_word(&names.join(",")))
    }
}

/// The next command (when there is a safe one) and why. The commands that read data
/// carry the flags of the source `scan` read (without a password).
fn next_command(
    r: &StatusReport,
    cfg: &str,
    scope: &Scope,
    scan: Option<&Scan>,
    archive: &str,
) -> (Option<String>, String) {
    let sc = scope_flag(scope);
    let password_note = if scan.is_some_and(|s| s.flags.password) {
        " (the password of --user is not printed: set ETCDCTL_PASSWORD or add --password)"
    } else {
        ""
    };
    match &r.next {
        NextStep::FixAtRisk => (
            None,
            format!(
                "{} object(s) cannot be read with this config (listed under at risk): add the keys that wrote them back to the config (as further keys after the writer), or restore them from a backup; nothing else is safe until then",
                scan.map_or(0, |s| s.usage.at_risk_total)
            ),
        ),
        NextStep::Prepare { enable: true } => (
            Some(format!("atrest rotate prepare --config {cfg}{sc} --provider aescbc")),
            "encryption is not enabled: add a key that reads only, then promote it on every node".to_string(),
        ),
        NextStep::Prepare { enable: false } | NextStep::Done => (
            Some(format!("atrest rotate prepare --config {cfg}{sc}")),
            "one key writes and no other key reads: nothing to do; the command starts the next rotation".to_string(),
        ),
        NextStep::Promote => (
            Some(format!("atrest rotate promote --config {cfg}{sc}")),
            format!("a new key reads but does not write; promote it only once every kube-apiserver runs this config ({COPY_AND_RESTART}), otherwise nodes without the key cannot read what the others write"),
        ),
        NextStep::PromoteWhich { readers } => (
            Some(format!(
                "atrest rotate promote --config {cfg}{sc} --key {}",
                readers.first().map_or("NAME", String::as_str)
            )),
            format!(
                "a key writes and {} read(s), and the names do not say which is newer: if it is the key you prepared, promote it by name; if it is an old key, rewrite and retire it",
                readers.join(", ")
            ),
        ),
        NextStep::Scan => (
            Some(format!("atrest rotate status --config {cfg}{sc} --endpoints URL,...")),
            "old keys (or identity) are still configured: a scan of the data tells whether objects still use them (of the live etcd with --endpoints and the TLS flags as for etcdctl, or of a fresh snapshot with --snapshot FILE)".to_string(),
        ),
        NextStep::Rewrite { objects } => {
            let live = scan.and_then(|s| s.flags.rewrite.as_deref());
            let conn = live.unwrap_or("--endpoints URL,...");
            let then = match (live, scan) {
                (Some(_), Some(s)) => format!("then run `atrest rotate status --config {cfg}{sc} {}` again", s.flags.status),
                _ => "then take a new snapshot and run status again".to_string(),
            };
            (
                Some(format!("atrest rewrite {conn} --config {cfg} {}", rewrite_scope(&r.items))),
                format!("{objects} object(s) are still under old keys or in plaintext: once every kube-apiserver runs this config, rewrite them (or `kubectl get secrets -A -o json | kubectl replace -f -` per resource), {then}{password_note}"),
            )
        }
        NextStep::Retire { target } => {
            let (archive_flag, archive_note) = if target == "identity" {
                (String::new(), String::new())
            } else {
                (
                    format!(" --archive {archive}"),
                    format!("; the key goes to the key archive {archive} first ({ARCHIVE_ADVICE}; --no-archive drops it for good)"),
                )
            };
            (
                Some(format!(
                    "atrest rotate retire --config {cfg}{sc} --key {}{archive_flag} {}",
                    shell_word(target),
                    scan.map_or("--endpoints URL,...", |s| s.flags.retire.as_str())
                )),
                format!("no object of the scanned data uses {target} any more: remove it{archive_note}{password_note}"),
            )
        }
        NextStep::ProofIncomplete { target, why } => (
            None,
            format!("no scanned object uses {target}, but retire would refuse this scan as proof: {why}"),
        ),
        NextStep::Mixed => (
            None,
            "the resources[] items are at different stages: bring them to the same stage with --resource, or edit the file".to_string(),
        ),
        NextStep::Kms => (
            None,
            "a KMS plugin writes: rotate its key (KEK) in the KMS; then a scan (--endpoints URL,... or --snapshot FILE, with --kms-endpoint NAME=ENDPOINT for a plugin elsewhere) counts the objects under each key ID".to_string(),
        ),
        NextStep::KmsRewrite { objects } => {
            let conn = scan
                .and_then(|s| s.flags.rewrite.as_deref())
                .unwrap_or("--endpoints URL,...");
            (
                Some(format!("atrest rewrite {conn} --config {cfg} {}", rewrite_scope(&r.items))),
                format!("{objects} object(s) are under old key IDs of the KMS plugin or under other providers: rewrite them through the plugin (keep the old KEKs enabled in the KMS until then), then run status again{password_note}"),
            )
        }
        NextStep::KmsDone => (
            None,
            "every kms object is under its plugin's current key ID: no object of the scanned data is under an old key ID any more, so the old KEKs protect nothing here (keep them in the KMS while backups taken before the rotation may need restoring)".to_string(),
        ),
    }
}

fn key_json(k: &rotation::KeyId) -> Value {
    json!({
        "provider": k.provider,
        "name": k.name,
        "fingerprint": k.fingerprint.map(|f| f.to_string()),
    })
}

/// The JSON report of `rotate status`:
///
/// ```text
/// {
///   "configs": ["FILE", ...],
///   "stage": "no-encryption|prepared|writing|clean|ambiguous|kms|mixed",
///   "resources": [{"item": 0, "resources": ["secrets"], "stage": "...",
///                  "writer": KEY|null (null: identity writes), "prepared": KEY|null,
///                  "old": [KEY], "identity_reads": bool}],
///   "keys": [{"provider", "name", "fingerprint", "role": "writer|reader", "objects": N|null}],
///   "plaintext_objects": N|null,          (null: no scan)
///   "at_risk": [audit object report], "at_risk_total": N,
///   "source": {"name": "FILE"|"URL,...", "revision": N,     (null: no scan)
///              "flags": "--snapshot FILE"|"--endpoints URL,... --cacert ..."}|null,
///   "kms": [{"name", "provider": "kms-v2"|"kms", "current_key_id": "ID"|null,
///            "objects": N, "by_key_id": {"ID": N}, "old_key_id_objects": N}],
///                                         (per kms provider; empty without a scan)
///   "drift": ["..."],                     (differences between the configs)
///   "next": "<command>"|null,             (null: no safe step)
///   "advice": "why, and what to check first"
/// }
/// ```
/// KEY is `{"provider", "name", "fingerprint"}`; fingerprints are null for kms.
fn status_json(
    configs: &[PathBuf],
    r: &StatusReport,
    scan: Option<&Scan>,
    drift: &[String],
    next: Option<&str>,
    advice: &str,
) -> Value {
    json!({
        "configs": configs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "stage": r.stage.map_or("mixed", |s| s.name()),
        "resources": r.items.iter().map(|s| json!({
            "item": s.item,
            "resources": s.resources,
            "stage": s.stage.name(),
            "writer": s.writer.as_ref().map(key_json),
            "prepared": s.prepared.as_ref().map(key_json),
            "old": s.old.iter().map(key_json).collect::<Vec<_>>(),
            "identity_reads": s.identity_reads,
        })).collect::<Vec<_>>(),
        "keys": r.keys.iter().map(|k| json!({
            "provider": k.key.provider,
            "name": k.key.name,
            "fingerprint": k.key.fingerprint.map(|f| f.to_string()),
            "role": if k.writer { "writer" } else { "reader" },
            "objects": k.objects,
        })).collect::<Vec<_>>(),
        "plaintext_objects": r.plaintext_objects,
        "at_risk": scan.map(|s| json!(s.usage.at_risk)).unwrap_or_else(|| json!([])),
        "at_risk_total": scan.map_or(0, |s| s.usage.at_risk_total),
        "source": scan.map(|s| json!({"name": s.name, "flags": s.flags.status, "revision": s.revision})),
        "kms": r.kms.iter().map(|k| json!({
            "name": k.name,
            "provider": k.provider,
            "current_key_id": k.current_key_id,
            "objects": k.objects,
            "by_key_id": k.by_key_id,
            "old_key_id_objects": k.old_key_id_objects(),
        })).collect::<Vec<_>>(),
        "drift": drift,
        "next": next,
        "advice": advice,
    })
}

fn status_table(
    configs: &[PathBuf],
    r: &StatusReport,
    scan: Option<&Scan>,
    drift: &[String],
    next: Option<&str>,
    advice: &str,
) -> String {
    let mut t = String::new();
    for c in configs {
        let _ = writeln!(t, "config: {}", c.display());
    }
    if let Some(s) = scan {
        let _ = writeln!(
            t,
            "scanned: {} (revision {}, {} objects)",
            s.name, s.revision, s.usage.summary.objects
        );
    }
    let _ = writeln!(t, "stage: {}", r.stage.map_or("mixed", |s| s.name()));
    for s in &r.items {
        let writer = s
            .writer
            .as_ref()
            .map_or_else(|| "identity".to_string(), |w| w.to_string());
        let _ = write!(
            t,
            "  resources[{}] ({}): {}; writes: {writer}",
            s.item,
            s.resources.join(", "),
            s.stage
        );
        if let Some(p) = &s.prepared {
            let _ = write!(t, "; prepared: {p}");
        }
        if !s.old.is_empty() {
            let label = if s.stage == rotation::Stage::Ambiguous {
                "also reads"
            } else {
                "old"
            };
            let old: Vec<String> = s.old.iter().map(|k| k.to_string()).collect();
            let _ = write!(t, "; {label}: {}", old.join(", "));
        }
        if s.identity_reads {
            let _ = write!(t, "; identity reads plaintext");
        }
        t.push('\n');
    }
    if !r.keys.is_empty() {
        let mut keys = Table::new(&[
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Right,
        ])
        .head(&["PROVIDER", "KEY", "FINGERPRINT", "ROLE", "OBJECTS"]);
        for k in &r.keys {
            keys.row([
                k.key.provider.to_string(),
                k.key.name.clone(),
                k.key
                    .fingerprint
                    .map_or_else(|| "-".to_string(), |f| f.to_string()),
                if k.writer { "writer" } else { "reader" }.to_string(),
                k.objects.map_or_else(|| "-".to_string(), |n| n.to_string()),
            ]);
        }
        t.push('\n');
        t.push_str(&keys.render());
    }
    if let Some(n) = r.plaintext_objects {
        let _ = writeln!(t, "plaintext objects: {n}");
    }
    for k in &r.kms {
        let current = k
            .current_key_id
            .as_deref()
            .map_or_else(String::new, |id| format!(", current key ID {id:?}"));
        let _ = writeln!(
            t,
            "\nkms provider `{}` ({}{current}): {} object(s)",
            k.name, k.provider, k.objects
        );
        for (id, n) in &k.by_key_id {
            let role = if Some(id.as_str()) == k.current_key_id.as_deref() {
                "current"
            } else {
                "old"
            };
            let _ = writeln!(t, "  key ID {id:?} ({role}): {n} object(s)");
        }
        if k.provider == "kms-v2" && k.current_key_id.is_some() {
            match k.old_key_id_objects() {
                0 => {
                    let _ = writeln!(t, "  no object under an old key ID");
                }
                n => {
                    let _ = writeln!(t, "  {n} object(s) under old key IDs: rewrite them");
                }
            }
        }
    }
    if let Some(s) = scan {
        if s.usage.at_risk_total > 0 {
            let _ = writeln!(t, "\nat risk ({}):", s.usage.at_risk_total);
            for o in &s.usage.at_risk {
                let key = o
                    .key_name
                    .as_deref()
                    .map(|k| format!("/{k}"))
                    .unwrap_or_default();
                let read_with = o
                    .read_with
                    .as_deref()
                    .map(|f| format!("; only {f} has its key"))
                    .unwrap_or_default();
                let _ = writeln!(
                    t,
                    "  {:<13} {} ({}{key}{read_with})",
                    o.status.name(),
                    o.key,
                    o.provider
                );
            }
            if s.usage.at_risk_total > s.usage.at_risk.len() as u64 {
                let _ = writeln!(
                    t,
                    "  ... and {} more (see `atrest audit`)",
                    s.usage.at_risk_total - s.usage.at_risk.len() as u64
                );
            }
        }
    }
    if !drift.is_empty() {
        let _ = writeln!(t, "\nthe configs differ:");
        for d in drift {
            let _ = writeln!(t, "  {d}");
        }
    }
    let _ = writeln!(t, "\nnext: {}", next.unwrap_or("(none)"));
    let _ = writeln!(t, "  {advice}");
    t
}
