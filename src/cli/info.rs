//! `atrest info`: what an etcd snapshot or db file holds, at a glance.

use super::output::{print_structured, write_stdout, Align, OutputFormat, Table};
use super::transformers;
use super::{CmdResult, Failure};
use atrest::etcd_key::DEFAULT_PREFIX;
use atrest::info::{snapshot_info, InfoOptions, SnapshotInfo};
use atrest::snapshot::{Snapshot, SnapshotOptions};
use std::path::PathBuf;

pub const EXAMPLES: &str = "\
Examples:
  # Is this backup sound, how recent is it, what is in it?
  atrest info --snapshot /var/backups/etcd-2026-11-29.db

  # The same as JSON, with objects counted by provider and audit status
  atrest info --snapshot backup.db --config /etc/kubernetes/enc/encryption-config.yaml -o json

The file is read whatever its sha256 trailer says: a trailer that does not match is
reported (JSON `hash.ok` false) and the exit code is 1.
Exit codes: 0 the file is readable and its trailer (if any) matches, 1 the trailer does
not match, 2 the file or config cannot be read.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// etcd snapshot (`etcdctl snapshot save`) or member db file to read.
    #[arg(long, value_name = "FILE")]
    snapshot: PathBuf,
    /// EncryptionConfiguration: also count objects by provider and audit status.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// kube-apiserver's --etcd-prefix.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_PREFIX, value_parser = super::flags::etcd_prefix)]
    etcd_prefix: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: OutputFormat,
}

pub fn run(a: Args) -> CmdResult {
    let ts = transformers(a.config.as_deref())?;
    let options = SnapshotOptions {
        skip_hash_check: false,
        defer_hash_check: true,
    };
    let snap = Snapshot::open(&a.snapshot, options).map_err(Failure::usage)?;
    let info = snapshot_info(
        &snap,
        InfoOptions {
            prefix: &a.etcd_prefix,
            transformers: ts.as_ref(),
        },
    )
    .map_err(Failure::usage)?;
    match a.output {
        OutputFormat::Table => write_stdout(table(&a, &info).as_bytes())?,
        format => {
            let value = serde_json::to_value(&info).map_err(Failure::usage)?;
            print_structured(&value, format)?;
        }
    }
    if info.hash_mismatch() {
        return Err(Failure::findings(format!(
            "{}: the sha256 trailer does not match the contents; the backup is damaged \
             (the figures above come from what is left). Use another backup if you have one",
            a.snapshot.display()
        )));
    }
    Ok(())
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn table(a: &Args, info: &SnapshotInfo) -> String {
    // Names in a column of 18, values after them.
    let mut s = Table::new(&[Align::Left, Align::Left])
        .gap("")
        .min_widths(&[18]);
    let mut line = |k: &str, v: String| s.row([k.to_string(), v]);
    line("file", a.snapshot.display().to_string());
    let recorded = info
        .storage_version_recorded
        .as_deref()
        .map_or(String::new(), |r| format!(" (storageVersion {r:?})"));
    line(
        "storage version",
        format!("{}{recorded}", info.storage_version),
    );
    line("revision", opt(info.revision));
    line("compacted at", opt(info.compact_revision));
    line("consistent index", opt(info.consistent_index));
    line("term", opt(info.term));
    let hash = match info.hash.ok {
        Some(true) => "sha256 trailer verified",
        Some(false) => "sha256 trailer DOES NOT MATCH: the backup is damaged",
        None if info.hash.present => "sha256 trailer not checked",
        None => "no sha256 trailer (a member db file, not `etcdctl snapshot save` output)",
    };
    line("hash", hash.to_owned());
    line(
        "size",
        format!(
            "{} bytes, {}-byte pages: {} used, {} free",
            info.file_size, info.page_size, info.pages.used, info.pages.free
        ),
    );
    line("leases", info.leases.to_string());
    if info.members.is_empty() {
        line("members", "none recorded".to_owned());
    }
    for (i, m) in info.members.iter().enumerate() {
        let learner = if m.is_learner { " (learner)" } else { "" };
        line(
            if i == 0 { "members" } else { "" },
            format!(
                "{} {}{learner} peer {} client {}",
                m.id,
                if m.name.is_empty() { "-" } else { &m.name },
                m.peer_urls.join(","),
                m.client_urls.join(",")
            ),
        );
    }
    if !info.removed_members.is_empty() {
        line("removed members", info.removed_members.join(", "));
    }
    let total: u64 = info.objects.values().sum();
    line("objects", format!("{total} under {}", info.etcd_prefix));
    let mut objects = Table::new(&[Align::Left, Align::Right])
        .gap(" ")
        .min_widths(&[0, 8]);
    let mut by_providers = Vec::new();
    for (resource, n) in &info.objects {
        let by_provider = info
            .providers
            .as_ref()
            .and_then(|p| p.get(resource))
            .map(|p| {
                let cells: Vec<String> = p.iter().map(|(k, n)| format!("{k} {n}")).collect();
                format!("  ({})", cells.join(", "))
            })
            .unwrap_or_default();
        objects.row([resource.clone(), n.to_string()]);
        by_providers.push(by_provider);
    }
    for (l, by_provider) in objects.render().lines().zip(by_providers) {
        line("", format!("{l}{by_provider}"));
    }
    if let Some(statuses) = &info.statuses {
        let cells: Vec<String> = statuses.iter().map(|(k, n)| format!("{k} {n}")).collect();
        line("statuses", cells.join(", "));
    }
    s.render()
}
