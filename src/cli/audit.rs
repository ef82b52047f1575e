//! `atrest audit`: classify every object of an etcd snapshot (or db file) or of a
//! live etcd read at one revision; both share the classification and the report.

use super::etcd::EtcdArgs;
use super::flags::{resource_filter, threads};
use super::gate::GatedWriter;
use super::output::{counts_list, object_lines, yaml_text, Align, OutputFormat, Table};
use super::snapshot::{open_snapshot, release, with_verified_stdout};
use super::{CmdResult, Failure};
use atrest::audit::{
    scan_free_pages, superseded_plaintext, AuditOptions, Auditor, FreePageFinding, HistoryFinding,
    ObjectReport, Summary,
};
use atrest::etcd_key::DEFAULT_PREFIX;
use atrest::mvcc::KeyspaceView;
use atrest::rewrite::{scan_ranges, DEFAULT_PAGE_SIZE};
use atrest::source::{live, ordered_map, prefetching, Record, SnapshotSource};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

pub const EXAMPLES: &str = "\
Examples:
  # What is encrypted, and can this config read all of it? (the sample shipped with atrest)
  atrest audit --snapshot testdata/sample/snapshot.db --config testdata/sample/encryption-config.yaml

  # A backup from a control-plane node, Secrets only, as JSON for scripts
  atrest audit --snapshot /var/backups/etcd-2026-11-29.db \\
    --config /etc/kubernetes/enc/encryption-config.yaml --resource secrets -o json

  # Without a config: only plaintext vs encrypted (exit 1 if any Secret is plaintext)
  atrest audit --snapshot snapshot.db

  # Also look for plaintext left in old revisions and in free pages of the file
  atrest audit --snapshot snapshot.db --config enc.yaml --history --deep

  # A live cluster over TLS, from a control-plane node (kubeadm paths)
  atrest audit --endpoints https://127.0.0.1:2379 \\
    --cacert /etc/kubernetes/pki/etcd/ca.crt \\
    --cert /etc/kubernetes/pki/apiserver-etcd-client.crt \\
    --key /etc/kubernetes/pki/apiserver-etcd-client.key \\
    --config /etc/kubernetes/enc/encryption-config.yaml

Statuses (with --config): current, plaintext, stale, unknown-key, undecryptable, malformed.
A live audit reads the whole keyspace at one revision (the latest, or --revision), in
pages of --page-size keys; the JSON `source` is the endpoints, `revision` that revision.

Exit codes: 0 nothing needs action, 1 some object needs action (without --config: a
plaintext Secret), 2 the snapshot, etcd or config cannot be read.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// etcd snapshot (`etcdctl snapshot save`) or member db file to read.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    /// Live etcd: keys per range request.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PAGE_SIZE)]
    page_size: usize,
    /// EncryptionConfiguration: decrypt every object and say whether it is current.
    /// Repeat it to also read with the keys of older configs (tried after the first's,
    /// read only: objects they read are `stale`, with `read_with` naming the file).
    #[arg(long, value_name = "FILE")]
    config: Vec<PathBuf>,
    /// Key archive (`rotate retire --archive`) whose keys are tried after the
    /// configs', read only (repeatable).
    #[arg(long, value_name = "FILE", requires = "config")]
    archive: Vec<PathBuf>,
    /// Only these resources, comma-separated (e.g. secrets,configmaps,deployments.apps).
    #[arg(long, value_name = "R,...", value_delimiter = ',')]
    resource: Vec<String>,
    /// kube-apiserver's --etcd-prefix.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_PREFIX, value_parser = super::flags::etcd_prefix)]
    etcd_prefix: String,
    /// Audit the keyspace as it was at this revision (default: the latest).
    #[arg(long, value_name = "N")]
    revision: Option<i64>,
    /// Also report superseded revisions that still hold plaintext (snapshots).
    #[arg(long)]
    history: bool,
    /// Also scan free pages of the file for leftover plaintext Secrets (snapshots).
    #[arg(long)]
    deep: bool,
    /// Read a backup whose sha256 trailer does not match, as far as it goes.
    #[arg(long)]
    skip_hash_check: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: OutputFormat,
    /// Worker threads that decrypt and classify (0: one per CPU). The output is
    /// the same whatever the number.
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    #[arg(long = "kms-endpoint", value_name = "NAME=ENDPOINT", help = super::kms::HELP)]
    kms_endpoint: Vec<String>,
    #[command(flatten)]
    etcd: EtcdArgs,
}

pub fn run(a: Args) -> CmdResult {
    let flag_endpoints = a.etcd.endpoints.is_some();
    match (&a.snapshot, flag_endpoints) {
        (Some(_), true) => Err(Failure::usage(
            "--snapshot and --endpoints are mutually exclusive: audit a snapshot file or a live etcd",
        )),
        (Some(_), false) => run_snapshot(a),
        (None, _) => {
            if a.etcd.endpoints().is_none() {
                return Err(Failure::usage(
                    "audit needs --snapshot FILE or --endpoints URL,... (or ETCDCTL_ENDPOINTS)",
                ));
            }
            if a.history || a.deep || a.skip_hash_check {
                return Err(Failure::usage(
                    "--history, --deep and --skip-hash-check read a snapshot file: use them with --snapshot",
                ));
            }
            run_live(a)
        }
    }
}

/// Keys a page of a live audit is split into for the workers.
const LIVE_CHUNK: usize = 256;

/// The audit of one chunk of records, made on a worker thread: its counts, its
/// objects as JSON text (`-o json`), and the reports the other formats keep
/// (YAML: all; table: the findings).
struct ChunkReport {
    summary: Summary,
    json: Vec<u8>,
    kept: Vec<ObjectReport>,
}

impl ChunkReport {
    fn classify(auditor: &Auditor<'_>, format: OutputFormat, records: &[Record<'_>]) -> Self {
        let with_config = auditor.has_config();
        let mut out = ChunkReport {
            summary: Summary::default(),
            json: Vec::new(),
            kept: Vec::new(),
        };
        if format == OutputFormat::Json {
            out.json.reserve(records.len() * 256);
        }
        let mut cache = auditor.cache();
        let mut r = atrest::ObjectReport::blank();
        for record in prefetching(records) {
            if !auditor.classify_into(&record.stored(), &mut cache, &mut r) {
                continue;
            }
            out.summary.add(&r);
            match format {
                OutputFormat::Json => {
                    out.json.extend_from_slice(b",\n    ");
                    r.write_json(&mut out.json);
                }
                OutputFormat::Yaml => out.kept.push(r.clone()),
                OutputFormat::Table => {
                    if r.is_finding(with_config) {
                        out.kept.push(r.clone());
                    }
                }
            }
        }
        out
    }
}

fn run_snapshot(a: Args) -> CmdResult {
    let (ts, extra) = super::keys::read_keys(&a.config, &a.archive, &a.kms_endpoint)?;
    let Some(path) = a.snapshot.clone() else {
        return Err(Failure::usage("--snapshot FILE is missing"));
    };
    let snap = open_snapshot(&path, a.skip_hash_check)?;
    let auditor = Auditor::new(
        ts.as_ref(),
        AuditOptions {
            prefix: a.etcd_prefix.clone(),
            resources: resource_filter(&a.resource),
        },
    )
    .with_extra_keys(&extra);
    let label = path.display().to_string();
    let damaged = |e: &dyn std::fmt::Display| Failure::usage(format!("{}: {e}", path.display()));
    let threads = threads(a.threads);
    // The hash is checked while the keyspace is read and audited. Through a KMS
    // plugin, the report is held until the run is complete: a plugin that
    // fails mid-run leaves no partial report.
    let hold = super::kms::in_use(ts.as_ref());
    with_verified_stdout(&snap, hold, |gate| {
        let gate_hashing = gate.hash_running();
        let source = SnapshotSource::open(snap.bolt(), a.revision).map_err(|e| damaged(&e))?;
        // History is what the file holds besides its latest keyspace, whatever
        // revision is read: a value newer than `--revision` is not superseded,
        // and one superseded only later still sits in the backup.
        let history = if a.history {
            let latest;
            let keyspace = match a.revision {
                None => &source.view().entries,
                Some(_) => {
                    latest = KeyspaceView::build(snap.bolt(), None).map_err(|e| damaged(&e))?;
                    &latest.entries
                }
            };
            Some(
                superseded_plaintext(snap.bolt(), keyspace, &auditor, ts.as_ref())
                    .map_err(|e| damaged(&e))?,
            )
        } else {
            None
        };
        let deep = if a.deep {
            Some(scan_free_pages(snap.bolt(), &a.etcd_prefix).map_err(|e| damaged(&e))?)
        } else {
            None
        };
        let progress = super::progress::Progress::new(source.len() as u64, "auditing");
        let mut report = Report::begin(
            &mut *gate,
            a.output,
            &label,
            source.revision(),
            ts.is_some(),
        )?;
        let format = report.format;
        source.par_map(
            threads,
            gate_hashing,
            &|n| progress.inc(n),
            |records| ChunkReport::classify(&auditor, format, records),
            |chunk| {
                super::kms::check(ts.as_ref())?;
                report.add_chunk(chunk)
            },
        )?;
        progress.finish();
        super::kms::check(ts.as_ref())?;
        let result = report.finish(history.as_deref(), deep.as_deref());
        // Nothing is released before the snapshot's hash has been verified.
        release(gate, result)
    })
}

fn run_live(a: Args) -> CmdResult {
    let (ts, extra) = super::keys::read_keys(&a.config, &a.archive, &a.kms_endpoint)?;
    let opts = a.etcd.options()?;
    let source = opts.endpoints_string();
    let resources = resource_filter(&a.resource);
    let auditor = Auditor::new(
        ts.as_ref(),
        AuditOptions {
            prefix: a.etcd_prefix.clone(),
            resources: resources.clone(),
        },
    )
    .with_extra_keys(&extra);
    let rt = super::etcd::runtime()?;
    rt.block_on(async {
        let etcd = super::etcd::connect(&opts).await?;
        let revision = match a.revision {
            Some(r) => r,
            None => etcd.revision().await.map_err(Failure::usage)?,
        };
        let ranges = scan_ranges(&a.etcd_prefix, resources.as_deref());
        // The report is held until the scan is complete: etcd failing mid-scan
        // (a member lost, the revision compacted), or a KMS plugin failing,
        // prints nothing on stdout, never part of a report.
        let mut gate = GatedWriter::new(std::io::stdout().lock(), None).hold_to_end(true);
        let mut report = Report::begin(&mut gate, a.output, &source, revision, ts.is_some())?;
        let format = report.format;
        let threads = threads(a.threads);
        let progress = super::etcd::scan_progress(&etcd, &ranges, revision, "auditing").await?;
        live::scan(
            &etcd,
            ranges,
            revision,
            a.page_size,
            &|n| progress.inc(n),
            |records| {
                // A page is split into chunks classified in parallel, in order.
                let chunks: Vec<&[Record<'_>]> = records.chunks(LIVE_CHUNK).collect();
                ordered_map(
                    chunks.len(),
                    threads,
                    |i| ChunkReport::classify(&auditor, format, chunks[i]),
                    |chunk| {
                        super::kms::check(ts.as_ref())?;
                        report.add_chunk(chunk)
                    },
                )
            },
        )
        .await
        .map_err(|e| match e {
            live::ScanError::Etcd(e) => Failure::usage(e),
            live::ScanError::Consumer(f) => f,
        })?;
        progress.finish();
        super::kms::check(ts.as_ref())?;
        let result = report.finish(None, None);
        release(&mut gate, result)
    })
}

/// The audit report as it is produced: JSON is streamed object by object; YAML
/// and the table are printed at the end.
struct Report<W: Write> {
    format: OutputFormat,
    with_config: bool,
    source: String,
    revision: i64,
    summary: Summary,
    findings: Vec<ObjectReport>,
    all_reports: Vec<ObjectReport>,
    out: std::io::BufWriter<W>,
    first: bool,
}

impl<W: Write> Report<W> {
    fn begin(
        out: W,
        format: OutputFormat,
        source: &str,
        revision: i64,
        with_config: bool,
    ) -> Result<Report<W>, Failure> {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
        if format == OutputFormat::Json {
            write!(
                out,
                "{{\n  \"source\": {},\n  \"revision\": {},\n  \"objects\": [",
                serde_json::to_string(source).unwrap_or_default(),
                revision
            )
            .map_err(Failure::output)?;
        }
        Ok(Report {
            format,
            with_config,
            source: source.to_string(),
            revision,
            summary: Summary::default(),
            findings: Vec::new(),
            all_reports: Vec::new(),
            out,
            first: true,
        })
    }

    /// Append a chunk classified by [`ChunkReport::classify`].
    fn add_chunk(&mut self, chunk: ChunkReport) -> CmdResult {
        self.summary.merge(chunk.summary);
        match self.format {
            OutputFormat::Json => {
                // Every object in the chunk's text starts with `,\n    `; the
                // first of the document has no comma.
                let mut text = chunk.json.as_slice();
                if self.first && !text.is_empty() {
                    text = &text[1..];
                    self.first = false;
                }
                self.out.write_all(text).map_err(Failure::output)?;
            }
            OutputFormat::Yaml => self.all_reports.extend(chunk.kept),
            OutputFormat::Table => self.findings.extend(chunk.kept),
        }
        Ok(())
    }

    fn finish(
        mut self,
        history: Option<&[HistoryFinding]>,
        deep: Option<&[FreePageFinding]>,
    ) -> CmdResult {
        let io = Failure::output;
        let history_n = history.map_or(0, <[_]>::len);
        let deep_n = deep.map_or(0, <[_]>::len);
        match self.format {
            OutputFormat::Json => {
                self.out
                    .write_all(if self.first { b"],\n" } else { b"\n  ],\n" })
                    .map_err(io)?;
                let mut tail = serde_json::Map::new();
                tail.insert("summary".into(), summary_json(&self.summary, history, deep));
                if let Some(h) = history {
                    tail.insert("history".into(), json!(h));
                }
                if let Some(d) = deep {
                    tail.insert("free_pages".into(), json!(d));
                }
                let tail = serde_json::to_string_pretty(&serde_json::Value::Object(tail))
                    .unwrap_or_default();
                // Splice the tail object's members into the open document.
                let inner = tail
                    .trim()
                    .trim_start_matches('{')
                    .trim_end_matches('}')
                    .trim_matches('\n');
                self.out.write_all(inner.as_bytes()).map_err(io)?;
                self.out.write_all(b"\n}\n").map_err(io)?;
                self.out.flush().map_err(io)?;
            }
            OutputFormat::Yaml => {
                let mut doc = json!({
                    "source": self.source,
                    "revision": self.revision,
                    "objects": self.all_reports,
                    "summary": summary_json(&self.summary, history, deep),
                });
                if let Some(h) = history {
                    doc["history"] = json!(h);
                }
                if let Some(d) = deep {
                    doc["free_pages"] = json!(d);
                }
                let text = yaml_text(&doc)?;
                self.out.write_all(text.as_bytes()).map_err(io)?;
            }
            OutputFormat::Table => {
                let text = table(
                    &self.source,
                    self.revision,
                    &self.summary,
                    &self.findings,
                    history,
                    deep,
                    self.with_config,
                );
                self.out.write_all(text.as_bytes()).map_err(io)?;
            }
        }
        self.out.flush().map_err(io)?;
        if self.summary.needs_action(self.with_config) || history_n > 0 || deep_n > 0 {
            return Err(Failure::silent_findings());
        }
        Ok(())
    }
}

fn summary_json(
    s: &Summary,
    history: Option<&[HistoryFinding]>,
    deep: Option<&[FreePageFinding]>,
) -> serde_json::Value {
    let mut v = s.to_json();
    if let Some(h) = history {
        v["history_plaintext"] = json!(h.len());
    }
    if let Some(d) = deep {
        v["free_page_plaintext"] = json!(d.len());
    }
    v
}

/// The human report: counts by resource × provider/key × status, then findings.
pub fn table(
    source: &str,
    revision: i64,
    s: &Summary,
    findings: &[ObjectReport],
    history: Option<&[HistoryFinding]>,
    deep: Option<&[FreePageFinding]>,
    with_config: bool,
) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(t, "source: {source} (revision {revision})");
    let _ = writeln!(t, "objects: {}", s.objects);
    let mut cells = Table::new(&[Align::Left, Align::Left, Align::Left, Align::Right]).head(&[
        "RESOURCE",
        "PROVIDER/KEY",
        "STATUS",
        "OBJECTS",
    ]);
    for ((res, prov, key, st), n) in &s.cells {
        let pk = match key {
            Some(k) => format!("{prov}/{k}"),
            None => prov.to_string(),
        };
        cells.row([res.clone(), pk, st.to_string(), n.to_string()]);
    }
    t.push('\n');
    t.push_str(&cells.render());
    let _ = writeln!(t, "\nby status: {}", counts_list(&s.by_status));
    if !findings.is_empty() {
        let _ = writeln!(t, "\nfindings ({}):", findings.len());
        object_lines(&mut t, findings);
    } else if with_config {
        let _ = writeln!(
            t,
            "\nno findings: every object is stored as the config writes it"
        );
    }
    if let Some(h) = history {
        let _ = writeln!(t, "\nsuperseded revisions holding plaintext: {}", h.len());
        for f in h {
            let state = if f.key_live {
                ""
            } else {
                " (key deleted since)"
            };
            let _ = writeln!(t, "  {} at revision {}{state}", f.key, f.mod_revision);
        }
        if !h.is_empty() {
            let _ = writeln!(t, "  these stay in every backup until etcd compacts past them (etcdctl compact <rev>, then defrag)");
        }
    }
    if let Some(d) = deep {
        let _ = writeln!(t, "\nplaintext Secrets in free pages: {}", d.len());
        for f in d {
            let _ = writeln!(
                t,
                "  page {} offset {}: {}",
                f.page,
                f.offset,
                f.key.as_deref().unwrap_or("(key not found)")
            );
        }
        if !d.is_empty() {
            let _ = writeln!(t, "  `etcdctl defrag` rewrites the db without free pages; take a new snapshot afterwards");
        }
    }
    t
}
