//! `atrest rewrite`: re-encrypt plaintext and stale objects of a live etcd in place.

use super::etcd::{EtcdArgs, Interrupt};
use super::flags::resource_filter;
use super::output::{
    counts_list, object_line, object_lines, structured_text, write_stdout, Align, OutputFormat,
    Table,
};
use super::{load_config, CmdResult, Failure};
use atrest::audit::ObjectReport;
use atrest::etcd::MAX_TXN_OPS;
use atrest::etcd_key::GroupResource;
use atrest::etcd_key::DEFAULT_PREFIX;
use atrest::rewrite::{
    Counts, Event, Outcome, RewriteOptions, DEFAULT_BATCH, DEFAULT_IN_FLIGHT, DEFAULT_PAGE_SIZE,
};
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

pub const EXAMPLES: &str = "\
Examples:
  # After making a new key first in the config and restarting every kube-apiserver:
  # what would be rewritten?
  atrest rewrite --endpoints https://127.0.0.1:2379 --cacert ca.crt --cert client.crt \\
    --key client.key --config /etc/kubernetes/enc/encryption-config.yaml \\
    --resource secrets --dry-run

  # Rewrite them, at most 2000 objects/s, through any of three members
  atrest rewrite --endpoints https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379 \\
    --cacert ca.crt --cert client.crt --key client.key \\
    --config encryption-config.yaml --resource secrets,configmaps --max-rate 2000

  # Every resource the config names (the default without --resource)
  atrest rewrite --endpoints 127.0.0.1:2379 --config encryption-config.yaml

  # Every resource under the prefix (any stale object, whatever the config names)
  atrest rewrite --endpoints 127.0.0.1:2379 --config encryption-config.yaml --all-resources

  # After a KEK rotation in the KMS (the plugin reports a new key_id): move every
  # kms object to it, through a plugin started on this machine
  atrest rewrite --endpoints 127.0.0.1:2379 --config encryption-config.yaml \\
    --kms-endpoint vault=unix:///run/kms/vault.sock

Every write is a compare-and-swap on the key's mod_revision (a newer value written by
kube-apiserver is never overwritten; the key is re-read and retried) and keeps the key's
lease. Objects already current are not written: a second run writes nothing, and an
interrupted run can simply be run again. unknown-key, undecryptable and malformed objects
are never written; they are listed. The run ends with an audit of the rewritten resources.

Exit codes: 0 everything is current, 1 some objects could not be rewritten or still
need action, 2 usage, config or connection error, 130/143 interrupted by SIGINT/SIGTERM
(the transactions in flight finish first; a second signal exits at once; nothing is
half-written either way: each key is written by one transaction). A KMS plugin that
cannot be reached or cannot write is exit 2, naming its endpoint: it is checked before
anything is written, and a plugin failing during the run stops it before the next batch.";

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").args(["resource", "all_resources"])))]
pub struct Args {
    /// EncryptionConfiguration of the kube-apiservers (its first provider/key writes).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Rewrite these resources, comma-separated (e.g. secrets,configmaps; wildcards as
    /// in the config: '*.apps', '*.*'). Default: every resource the config names, or
    /// all of them when it uses a wildcard.
    #[arg(long, value_name = "R,...", value_delimiter = ',')]
    resource: Vec<String>,
    /// Rewrite every resource under the prefix.
    #[arg(long)]
    all_resources: bool,
    /// Show what would be rewritten; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keys per transaction (at most 128, etcd's default --max-txn-ops); a
    /// transaction also stays under 1 MiB of values.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH as u32,
          value_parser = clap::value_parser!(u32).range(1..=MAX_TXN_OPS as i64))]
    batch: u32,
    /// Write at most N objects per second.
    #[arg(long, value_name = "N")]
    max_rate: Option<f64>,
    /// Keys per range request.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PAGE_SIZE)]
    page_size: usize,
    /// Transactions in flight at once (more keeps etcd busier; each waits for
    /// its fsync).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_IN_FLIGHT,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    in_flight: u32,
    /// kube-apiserver's --etcd-prefix.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_PREFIX, value_parser = super::flags::etcd_prefix)]
    etcd_prefix: String,
    /// Output format of the final report (table: text; json/yaml: one document).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: OutputFormat,
    #[arg(long = "kms-endpoint", value_name = "NAME=ENDPOINT", help = super::kms::HELP)]
    kms_endpoint: Vec<String>,
    #[command(flatten)]
    etcd: EtcdArgs,
}

pub fn run(a: Args) -> CmdResult {
    if let Some(r) = a.max_rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(Failure::usage("--max-rate must be a positive number"));
        }
    }
    let loaded = load_config(&a.config)?;
    let ts = Arc::new(super::kms::transformers(
        &loaded.config,
        &a.config,
        &a.kms_endpoint,
    )?);
    let conn = a.etcd.options()?;
    let source = conn.endpoints_string();
    let opts = RewriteOptions {
        prefix: a.etcd_prefix.clone(),
        resources: if a.all_resources {
            None
        } else if a.resource.is_empty() {
            ts.config().configured_resources()
        } else {
            let list = resource_filter(&a.resource);
            for gr in list.iter().flatten() {
                atrest::etcd_key::check_resource_name(gr)
                    .map_err(|e| Failure::usage(format!("--resource: {e}")))?;
            }
            list
        },
        dry_run: a.dry_run,
        batch: a.batch as usize,
        max_rate: a.max_rate,
        page_size: a.page_size,
        in_flight: a.in_flight as usize,
        ..RewriteOptions::default()
    };
    let table = a.output == OutputFormat::Table;
    let rt = super::etcd::runtime()?;
    let (outcome, interrupt, would) = rt.block_on(async {
        let interrupt = Interrupt::install();
        let etcd = super::etcd::connect(&conn).await?;
        let progress = super::progress::Progress::spinner("rewriting");
        let mut would = Vec::new();
        let mut observer = |ev: Event<'_>| match ev {
            Event::Progress(c) => progress.set(c.scanned, c.rewritten),
            Event::WouldRewrite(r) if table => {
                progress.println(&format!("would rewrite  {}", object_line(r)));
            }
            Event::WouldRewrite(r) => would.push(r.clone()),
            Event::Failed(_) => {}
        };
        let res = atrest::rewrite::rewrite(
            &etcd,
            Arc::clone(&ts),
            &opts,
            &interrupt.flag,
            &mut observer,
        )
        .await;
        progress.finish();
        let outcome = res.map_err(Failure::usage)?;
        if outcome.counts.scanned == 0 && !outcome.interrupted && outcome.kms_failure.is_none() {
            check_prefix(&etcd, &opts, &source).await?;
        }
        Ok::<_, Failure>((outcome, interrupt, would))
    })?;
    let text = match a.output {
        OutputFormat::Table => report_text(&source, &outcome, a.dry_run),
        OutputFormat::Json | OutputFormat::Yaml => {
            structured_text(&report_json(&source, &outcome, a.dry_run, &would), a.output)?
        }
    };
    if outcome.kms_failure.is_none() {
        // A plugin that failed during the verification audit.
        super::kms::check(Some(&ts))?;
    }
    if let Some(e) = &outcome.kms_failure {
        // The counts say what was committed before the plugin failed.
        let done = if outcome.counts.rewritten == 0 {
            "nothing was written".to_string()
        } else {
            format!(
                "{} object(s) were written before it (each batch a complete transaction); the rest were not",
                outcome.counts.rewritten
            )
        };
        return Err(Failure::usage(format!(
            "{e}; the rewrite stopped: {done}; run it again once the plugin works"
        )));
    }
    write_stdout(text.as_bytes())?;
    if outcome.interrupted {
        return Err(Failure {
            code: interrupt.exit_code(),
            message: "interrupted; run the same command again to finish".into(),
        });
    }
    if outcome.needs_action() {
        return Err(Failure::silent_findings());
    }
    Ok(())
}

/// After a run that found no object to look at: refuse it when nothing shows that
/// `--etcd-prefix` is kube-apiserver's. kube-apiserver always keeps its namespaces
/// under its prefix; without any, this is not its prefix (nothing there, or the
/// cluster under a longer one such as `/tenant/c1` for `/tenant`, or a shorter one
/// that parses it wrong such as `/`) or not its etcd, and the run would report
/// success over objects it never looked at. An etcd that kube-apiserver's
/// `--etcd-servers-overrides` gives the events holds only those: with
/// `--resource events`, any key under the prefix will do.
async fn check_prefix(
    etcd: &atrest::etcd::Etcd,
    opts: &RewriteOptions,
    source: &str,
) -> Result<(), Failure> {
    let events_only = opts.resources.as_ref().is_some_and(|l| {
        !l.is_empty()
            && l.iter()
                .all(|g| g.group.is_empty() && g.resource == "events")
    });
    let probe = (!events_only).then(|| vec![GroupResource::new("", "namespaces")]);
    let mut found = 0;
    for (start, end) in atrest::rewrite::scan_ranges(&opts.prefix, probe.as_deref()) {
        found += etcd.count(&start, &end, 0).await.map_err(Failure::usage)?;
    }
    if found > 0 {
        return Ok(());
    }
    let what = if events_only {
        "nothing is stored"
    } else {
        "no namespace is stored (kube-apiserver always keeps its namespaces there)"
    };
    Err(Failure::usage(format!(
        "no object to rewrite, and {what} under --etcd-prefix {} in {source}: it is not kube-apiserver's --etcd-prefix (default {DEFAULT_PREFIX}), or this is not its etcd (for an etcd that holds only events, pass --resource events); nothing was written",
        opts.prefix
    )))
}

fn counts_lines(t: &mut String, c: &Counts, dry_run: bool) {
    let rewritten = if dry_run {
        "would rewrite"
    } else {
        "rewritten"
    };
    let mut table = Table::new(&[Align::Left, Align::Right])
        .indent("  ")
        .gap(" ")
        .min_widths(&[18, 9]);
    for (name, n) in [
        ("objects scanned", c.scanned),
        (rewritten, c.rewritten),
        ("already current", c.already_current),
        ("conflicts retried", c.conflicts_retried),
        ("skipped (deleted)", c.skipped),
        ("failed", c.failed),
    ] {
        table.row([name.to_string(), n.to_string()]);
    }
    t.push_str(&table.render());
}

/// The human report.
pub fn report_text(source: &str, o: &Outcome, dry_run: bool) -> String {
    let mut t = String::new();
    let what = match (dry_run, o.interrupted) {
        (true, _) => "dry run (nothing written)",
        (false, true) => "interrupted (counts so far)",
        (false, false) => "done",
    };
    let _ = writeln!(t, "rewrite of {source}: {what}");
    counts_lines(&mut t, &o.counts, dry_run);
    let _ = writeln!(t, "  took {:.2} s", o.elapsed.as_secs_f64());
    if !o.failed.is_empty() {
        let _ = writeln!(t, "\nnot rewritten ({}):", o.failed.len());
        object_lines(&mut t, &o.failed);
    }
    if let Some(v) = &o.verification {
        let _ = writeln!(
            t,
            "\nverification (revision {}, {:.2} s): {} objects: {}",
            v.revision,
            v.elapsed.as_secs_f64(),
            v.summary.objects,
            counts_list(&v.summary.by_status)
        );
        if v.findings.is_empty() {
            let _ = writeln!(t, "every object is stored as the config writes it");
        } else {
            let _ = writeln!(t, "still needing action: {}", v.findings.len());
        }
    }
    t
}

/// The JSON/YAML report.
pub fn report_json(
    source: &str,
    o: &Outcome,
    dry_run: bool,
    would: &[ObjectReport],
) -> serde_json::Value {
    let mut doc = json!({
        "source": source,
        "dry_run": dry_run,
        "interrupted": o.interrupted,
        "counts": o.counts,
        "seconds": o.elapsed.as_secs_f64(),
        "failed": o.failed,
    });
    if dry_run {
        doc["would_rewrite"] = json!(would);
    }
    if let Some(v) = &o.verification {
        doc["verification"] = json!({
            "revision": v.revision,
            "seconds": v.elapsed.as_secs_f64(),
            "summary": v.summary.to_json(),
            "findings": v.findings,
        });
    }
    doc
}
