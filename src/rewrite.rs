//! In-place re-encryption of a live etcd: every object that is `plaintext` or
//! `stale` under an EncryptionConfiguration is decrypted and written back under
//! its resource's write key, as kube-apiserver would store it now.
//!
//! This is what the Kubernetes docs do with `kubectl get secrets -A -o json |
//! kubectl replace -f -` after a key rotation, done on the stored bytes: objects
//! are not decoded, re-validated or touched by admission, and their
//! resourceVersion changes exactly once.
//!
//! Safety rules:
//! - every write is a compare-and-swap on the key's `mod_revision`, so a value
//!   kube-apiserver wrote after we read it is never overwritten; such a key is
//!   re-read, re-classified and retried (a bounded number of times), and a key
//!   deleted meanwhile is skipped;
//! - the key's lease is kept;
//! - objects already `current` are not written, so a second run writes nothing
//!   and an interrupted run can be run again;
//! - `unknown-key`, `undecryptable` and `malformed` objects are never written:
//!   they are returned as failures;
//! - a batch of keys goes in one transaction (all or nothing), bounded by etcd's
//!   operation and request-size limits;
//! - a KMS write provider is made ready to write (v2: its seed `Encrypt`ed by the
//!   plugin) before anything is read, and a KMS plugin that fails during the run
//!   stops it before the next batch: nothing is written through a plugin that
//!   cannot be trusted to read it back ([`Outcome::kms_failure`]).

use crate::audit::{AuditOptions, Auditor, ObjectReport, Status, StoredObject, Summary};
use crate::etcd::{
    prefix_range_end, BatchOutcome, CasWrite, Etcd, EtcdError, FailureKind, KeyValue, ReadAt,
    MAX_TXN_BYTES, MAX_TXN_OPS,
};
use crate::etcd_key::{core_storage_path, GroupResource};
use crate::kms::KmsError;
use crate::kube::ExpectedObject;
use crate::transformer::{ReadMode, Transformers};
use rayon::prelude::*;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default keys per transaction.
pub const DEFAULT_BATCH: usize = 100;
/// Default keys per range page: fewer, larger requests cost etcd less per key;
/// with a few pages read ahead, memory stays a few MiB for typical objects.
pub const DEFAULT_PAGE_SIZE: usize = 1000;
/// Default transactions in flight.
pub const DEFAULT_IN_FLIGHT: u32 = 8;
/// Pages the scan reads at the same time, ahead of the writes.
const SCAN_AHEAD: usize = 2;

/// What to rewrite and how fast.
#[derive(Clone, Debug)]
pub struct RewriteOptions {
    /// kube-apiserver's `--etcd-prefix`.
    pub prefix: String,
    /// Only these resources (every resource under the prefix when `None`).
    pub resources: Option<Vec<GroupResource>>,
    /// Classify and report, write nothing.
    pub dry_run: bool,
    /// Keys per transaction (1..=128).
    pub batch: usize,
    /// Payload bytes per transaction.
    pub batch_bytes: usize,
    /// Objects written per second at most.
    pub max_rate: Option<f64>,
    /// Keys per range page.
    pub page_size: usize,
    /// Transactions in flight at once.
    pub in_flight: usize,
    /// Attempts per key when it keeps changing under us.
    pub max_attempts: u32,
}

impl Default for RewriteOptions {
    fn default() -> Self {
        RewriteOptions {
            prefix: crate::etcd_key::DEFAULT_PREFIX.to_string(),
            resources: None,
            dry_run: false,
            batch: DEFAULT_BATCH,
            batch_bytes: MAX_TXN_BYTES,
            max_rate: None,
            page_size: DEFAULT_PAGE_SIZE,
            in_flight: DEFAULT_IN_FLIGHT as usize,
            max_attempts: 5,
        }
    }
}

/// The counts a run reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Objects looked at (under the prefix, in the resource filter).
    pub scanned: u64,
    /// Objects written under the write key (dry run: that would be).
    pub rewritten: u64,
    /// Objects already stored as the config writes them (not touched).
    pub already_current: u64,
    /// Writes that found the key changed since it was read, and were retried.
    pub conflicts_retried: u64,
    /// Keys deleted between the read and the write.
    pub skipped: u64,
    /// Objects that cannot be rewritten (unknown key, undecryptable, malformed,
    /// KMS, or changing faster than we could write).
    pub failed: u64,
}

impl Counts {
    fn merge(&mut self, o: &Counts) {
        self.scanned += o.scanned;
        self.rewritten += o.rewritten;
        self.already_current += o.already_current;
        self.conflicts_retried += o.conflicts_retried;
        self.skipped += o.skipped;
        self.failed += o.failed;
    }
}

/// The audit after a run: what the rewritten resources look like now.
#[derive(Clone, Debug)]
pub struct Verification {
    /// The revision it read at.
    pub revision: i64,
    /// Counts by status.
    pub summary: Summary,
    /// Objects that still need action.
    pub findings: Vec<ObjectReport>,
    /// How long the audit took.
    pub elapsed: Duration,
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The counts.
    pub counts: Counts,
    /// The objects that were not rewritten, with why.
    pub failed: Vec<ObjectReport>,
    /// Stopped early on request (nothing half-written: each key is one transaction).
    pub interrupted: bool,
    /// The audit afterwards (not for dry runs, interrupted or stopped runs).
    pub verification: Option<Verification>,
    /// A KMS plugin became unusable: the run stopped (the batches already
    /// committed stay, each a complete transaction; nothing after it was written).
    pub kms_failure: Option<KmsError>,
    /// How long the scan and the writes took (without the verification).
    pub elapsed: Duration,
}

impl Outcome {
    /// Whether anything needs the admin's attention (exit code 1).
    pub fn needs_action(&self) -> bool {
        self.kms_failure.is_some()
            || self.counts.failed > 0
            || self
                .verification
                .as_ref()
                .is_some_and(|v| v.summary.needs_action(true))
    }
}

/// What a run reports while it goes (for progress and dry-run listings).
#[derive(Debug)]
pub enum Event<'a> {
    /// Counts so far, after each page.
    Progress(&'a Counts),
    /// Dry run: this object would be rewritten.
    WouldRewrite(&'a ObjectReport),
    /// This object cannot be rewritten.
    Failed(&'a ObjectReport),
}

/// The key ranges to read for a resource filter: one per core-group resource,
/// or the whole prefix when any other resource (or all) is wanted.
pub fn scan_ranges(prefix: &str, resources: Option<&[GroupResource]>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let base = format!("{}/", prefix.trim_end_matches('/'));
    let whole = || vec![(base.as_bytes().to_vec(), prefix_range_end(base.as_bytes()))];
    let Some(list) = resources else {
        return whole();
    };
    let mut paths = Vec::new();
    for gr in list {
        match core_storage_path(gr) {
            Some(p) => paths.push(format!("{base}{p}/")),
            None => return whole(),
        }
    }
    paths.sort();
    paths.dedup();
    // A path that is a prefix of another covers it.
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        if !out.iter().any(|q| p.starts_with(q.as_str())) {
            out.push(p);
        }
    }
    out.into_iter()
        .map(|p| {
            let end = prefix_range_end(p.as_bytes());
            (p.into_bytes(), end)
        })
        .collect()
}

enum Prepared {
    Outside,
    Current,
    Write(CasWrite, ObjectReport),
    Fail(ObjectReport),
}

/// Classify one stored object and, if it needs it, compute its new value.
fn prepare(auditor: &Auditor<'_>, ts: &Transformers, kv: &KeyValue) -> Prepared {
    let Some((mut report, read)) = auditor.classify_with_plaintext(&StoredObject {
        key: &kv.key,
        value: &kv.value,
        mod_revision: kv.mod_revision,
    }) else {
        return Prepared::Outside;
    };
    match report.status {
        Status::Current => return Prepared::Current,
        Status::Plaintext | Status::Stale => {}
        _ => return Prepared::Fail(report),
    }
    let (Some(ok), Some(expected)) = (
        auditor.select(&kv.key),
        ExpectedObject::from_key(&kv.key, &auditor.options().prefix),
    ) else {
        return Prepared::Outside;
    };
    let (t, _) = ts.for_resource(&ok.resource);
    // `classify` verified the object (whole, and the one its key names) before
    // calling it plaintext or stale, and kept what it decrypted with the config;
    // a value it read otherwise (extra keys) is read here with the same test.
    let plain = match (report.status, read) {
        (Status::Plaintext, _) => std::borrow::Cow::Borrowed(&kv.value[..]),
        (_, Some(p)) => std::borrow::Cow::Owned(p),
        (_, None) => match t.read(&kv.value, &kv.key, ReadMode::Checked(expected)) {
            Ok(r) => r.plaintext,
            Err(e) => {
                report.detail = Some(format!("cannot decrypt to rewrite it: {e}"));
                return Prepared::Fail(report);
            }
        },
    };
    match t.write(&plain, &kv.key) {
        Ok(value) => Prepared::Write(
            CasWrite {
                key: kv.key.clone(),
                value: value.into(),
                expect_mod_revision: kv.mod_revision,
                lease: kv.lease,
            },
            report,
        ),
        Err(e) => {
            report.detail = Some(format!("cannot encrypt it: {e}"));
            Prepared::Fail(report)
        }
    }
}

struct Pending {
    write: CasWrite,
    report: ObjectReport,
    attempts: u32,
}

#[derive(Default)]
struct BatchResult {
    counts: Counts,
    failed: Vec<ObjectReport>,
}

/// Write one batch: a transaction for all of it; on conflicts, re-read the keys
/// that changed, re-classify them and try again with the rest.
async fn run_batch(
    etcd: Etcd,
    ts: Arc<Transformers>,
    audit: AuditOptions,
    mut todo: Vec<Pending>,
    max_attempts: u32,
) -> Result<BatchResult, EtcdError> {
    let auditor = Auditor::new(Some(&ts), audit);
    let mut res = BatchResult::default();
    while !todo.is_empty() {
        let writes: Vec<CasWrite> = todo.iter().map(|p| p.write.clone()).collect();
        let outcome = match etcd.cas_batch(&writes).await {
            Ok(o) => o,
            Err(e) if e.kind == FailureKind::Other && todo.len() > 1 => {
                // One write the server refuses (too large, lease gone): find it by
                // writing the keys one at a time.
                for p in std::mem::take(&mut todo) {
                    let single = Box::pin(run_batch(
                        etcd.clone(),
                        Arc::clone(&ts),
                        auditor.options().clone(),
                        vec![p],
                        max_attempts,
                    ))
                    .await?;
                    res.counts.merge(&single.counts);
                    res.failed.extend(single.failed);
                }
                return Ok(res);
            }
            Err(e) if e.kind == FailureKind::Other => {
                if let Some(p) = todo.pop() {
                    let mut r = p.report;
                    r.detail = Some(format!("etcd refused the write: {}", e.detail));
                    res.counts.failed += 1;
                    res.failed.push(r);
                }
                return Ok(res);
            }
            Err(e) => return Err(e),
        };
        let conflicts = match outcome {
            BatchOutcome::Committed { .. } => {
                res.counts.rewritten += todo.len() as u64;
                return Ok(res);
            }
            BatchOutcome::Conflicts(c) => c,
        };
        let mut changed = vec![None; todo.len()];
        for (i, now) in &conflicts {
            if let Some(slot) = changed.get_mut(*i) {
                *slot = Some(*now);
            }
        }
        let mut next = Vec::with_capacity(todo.len());
        for (p, ch) in todo.into_iter().zip(changed) {
            let Some(now) = ch else {
                next.push(p);
                continue;
            };
            res.counts.conflicts_retried += 1;
            let fresh = match now {
                None => None,
                Some(_) => etcd.get(&p.write.key).await?,
            };
            let Some(kv) = fresh else {
                res.counts.skipped += 1;
                continue;
            };
            match prepare(&auditor, &ts, &kv) {
                Prepared::Outside => res.counts.skipped += 1,
                Prepared::Current => res.counts.already_current += 1,
                Prepared::Fail(r) => {
                    res.counts.failed += 1;
                    res.failed.push(r);
                }
                Prepared::Write(w, mut r) => {
                    if p.attempts + 1 >= max_attempts {
                        r.detail = Some(format!(
                            "the key changed under every one of {max_attempts} attempts; run again later"
                        ));
                        res.counts.failed += 1;
                        res.failed.push(r);
                    } else {
                        next.push(Pending {
                            write: w,
                            report: r,
                            attempts: p.attempts + 1,
                        });
                    }
                }
            }
        }
        todo = next;
    }
    Ok(res)
}

/// Spaces submissions to at most `rate` objects per second.
struct Pacer {
    start: Instant,
    rate: Option<f64>,
    sent: u64,
}

impl Pacer {
    async fn wait(&mut self, n: usize) {
        self.sent += n as u64;
        if let Some(rate) = self.rate.filter(|r| *r > 0.0) {
            let due = self.start + Duration::from_secs_f64(self.sent as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

struct Engine<'a> {
    etcd: &'a Etcd,
    ts: Arc<Transformers>,
    opts: &'a RewriteOptions,
    audit: AuditOptions,
    tasks: tokio::task::JoinSet<Result<BatchResult, EtcdError>>,
    counts: Counts,
    failed: Vec<ObjectReport>,
    pacer: Pacer,
}

impl Engine<'_> {
    fn absorb(&mut self, r: BatchResult, observer: &mut dyn FnMut(Event<'_>)) {
        self.counts.merge(&r.counts);
        for f in r.failed {
            observer(Event::Failed(&f));
            self.failed.push(f);
        }
    }

    async fn join_one(&mut self, observer: &mut dyn FnMut(Event<'_>)) -> Result<(), EtcdError> {
        if let Some(done) = self.tasks.join_next().await {
            let r = done.map_err(|e| EtcdError {
                op: "txn",
                endpoints: self.etcd.endpoints().to_string(),
                kind: FailureKind::Other,
                detail: format!("write task failed: {e}"),
            })??;
            self.absorb(r, observer);
        }
        Ok(())
    }

    async fn submit(
        &mut self,
        batch: Vec<Pending>,
        observer: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), EtcdError> {
        if batch.is_empty() {
            return Ok(());
        }
        while self.tasks.len() >= self.opts.in_flight.max(1) {
            self.join_one(observer).await?;
        }
        self.pacer.wait(batch.len()).await;
        self.tasks.spawn(run_batch(
            self.etcd.clone(),
            Arc::clone(&self.ts),
            self.audit.clone(),
            batch,
            self.opts.max_attempts.max(1),
        ));
        Ok(())
    }
}

/// Rewrite every `plaintext` or `stale` object in the selected resources.
/// `cancel` stops the run between transactions (the ones in flight finish).
pub async fn rewrite(
    etcd: &Etcd,
    ts: Arc<Transformers>,
    opts: &RewriteOptions,
    cancel: &AtomicBool,
    observer: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome, EtcdError> {
    let audit = AuditOptions {
        prefix: opts.prefix.clone(),
        resources: opts.resources.clone(),
    };
    let batch_keys = opts.batch.clamp(1, MAX_TXN_OPS);
    let batch_bytes = opts.batch_bytes.max(1);
    let mut eng = Engine {
        etcd,
        ts: Arc::clone(&ts),
        opts,
        audit: audit.clone(),
        tasks: tokio::task::JoinSet::new(),
        counts: Counts::default(),
        failed: Vec::new(),
        pacer: Pacer {
            start: Instant::now(),
            rate: opts.max_rate,
            sent: 0,
        },
    };
    let auditor = Auditor::new(Some(&ts), audit.clone());
    let started = Instant::now();
    if !opts.dry_run {
        if let Some(k) = ts.kms() {
            if let Err(e) = k.prepare_writes(ts.config()) {
                return Ok(Outcome {
                    counts: Counts::default(),
                    failed: Vec::new(),
                    interrupted: false,
                    verification: None,
                    elapsed: started.elapsed(),
                    kms_failure: Some(e),
                });
            }
        }
    }
    let mut interrupted = false;
    let mut kms_failure = None;
    let mut batch: Vec<Pending> = Vec::new();
    let mut bytes = 0usize;
    // Per range, where each page but the first began: the verification reads
    // the same tiles without scanning for them again.
    let mut tiles: Vec<Vec<Vec<u8>>> = Vec::new();
    'ranges: for (start, end) in scan_ranges(&opts.prefix, opts.resources.as_deref()) {
        // Each page at the latest revision: every write is checked by its own
        // compare, and a long run must not fail when etcd compacts meanwhile.
        let mut pages = etcd.prefetch(start, end, ReadAt::Latest, opts.page_size, SCAN_AHEAD, None);
        let mut page_starts = Vec::new();
        while let Some(page) = pages.recv().await {
            if cancel.load(Ordering::SeqCst) {
                interrupted = true;
                break 'ranges;
            }
            let page = page?;
            page_starts.extend(page.kvs.first().map(|kv| kv.key.clone()));
            let prepared: Vec<Prepared> = page
                .kvs
                .par_iter()
                .map(|kv| prepare(&auditor, &ts, kv))
                .collect();
            // A plugin that failed while this page was read: stop before writing any of it.
            if let Some(e) = ts.kms_failure() {
                kms_failure = Some(e);
                break 'ranges;
            }
            for p in prepared {
                match p {
                    Prepared::Outside => continue,
                    Prepared::Current => eng.counts.already_current += 1,
                    Prepared::Fail(r) => {
                        eng.counts.failed += 1;
                        observer(Event::Failed(&r));
                        eng.failed.push(r);
                    }
                    Prepared::Write(w, r) => {
                        if opts.dry_run {
                            eng.counts.rewritten += 1;
                            observer(Event::WouldRewrite(&r));
                        } else {
                            let n = w.request_bytes();
                            if !batch.is_empty()
                                && (batch.len() >= batch_keys || bytes + n > batch_bytes)
                            {
                                if cancel.load(Ordering::SeqCst) {
                                    interrupted = true;
                                    break 'ranges;
                                }
                                eng.submit(std::mem::take(&mut batch), observer).await?;
                                bytes = 0;
                            }
                            bytes += n;
                            batch.push(Pending {
                                write: w,
                                report: r,
                                attempts: 0,
                            });
                        }
                    }
                }
                eng.counts.scanned += 1;
            }
            while let Some(done) = eng.tasks.try_join_next() {
                let r = done.map_err(|e| EtcdError {
                    op: "txn",
                    endpoints: etcd.endpoints().to_string(),
                    kind: FailureKind::Other,
                    detail: format!("write task failed: {e}"),
                })??;
                eng.absorb(r, observer);
            }
            observer(Event::Progress(&eng.counts));
        }
        // The first page starts where the range does.
        tiles.push(page_starts.into_iter().skip(1).collect());
    }
    if !interrupted && cancel.load(Ordering::SeqCst) {
        interrupted = true;
    }
    if !interrupted && kms_failure.is_none() {
        eng.submit(std::mem::take(&mut batch), observer).await?;
    }
    while !eng.tasks.is_empty() {
        eng.join_one(observer).await?;
    }
    observer(Event::Progress(&eng.counts));
    let elapsed = started.elapsed();
    if kms_failure.is_none() {
        kms_failure = ts.kms_failure();
    }
    let verification = if opts.dry_run || interrupted || kms_failure.is_some() {
        None
    } else {
        Some(verify(etcd, &ts, &audit, opts.page_size, tiles).await?)
    };
    Ok(Outcome {
        counts: eng.counts,
        failed: eng.failed,
        interrupted,
        verification,
        elapsed,
        kms_failure,
    })
}

/// Audit the selected resources at one revision (the check after a rewrite),
/// reading range `i` of [`scan_ranges`] in tiles that start at `tiles[i]`
/// (where a previous read's pages began) instead of scanning for them; a
/// range without an entry is scanned.
pub async fn verify(
    etcd: &Etcd,
    ts: &Transformers,
    audit: &AuditOptions,
    page_size: usize,
    tiles: Vec<Vec<Vec<u8>>>,
) -> Result<Verification, EtcdError> {
    let started = Instant::now();
    let auditor = Auditor::new(Some(ts), audit.clone());
    let mut summary = Summary::default();
    let mut findings = Vec::new();
    let revision = etcd.revision().await?;
    let ranges = scan_ranges(&audit.prefix, audit.resources.as_deref());
    crate::source::live::scan_tiles(
        etcd,
        ranges,
        tiles,
        revision,
        page_size,
        &|_| {},
        |records| {
            let reports: Vec<ObjectReport> = records
                .par_iter()
                .filter_map(|r| {
                    auditor.classify(&StoredObject {
                        key: r.key,
                        value: r.value,
                        mod_revision: r.mod_revision,
                    })
                })
                .collect();
            for r in reports {
                summary.add(&r);
                if r.status.needs_action() {
                    findings.push(r);
                }
            }
            Ok::<(), std::convert::Infallible>(())
        },
    )
    .await
    .map_err(|e| match e {
        crate::source::live::ScanError::Etcd(e) => e,
        crate::source::live::ScanError::Consumer(never) => match never {},
    })?;
    Ok(Verification {
        revision,
        summary,
        findings,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_the_filter() {
        let r = |res: Option<Vec<&str>>| {
            let v: Option<Vec<GroupResource>> =
                res.map(|l| l.into_iter().map(GroupResource::parse).collect());
            scan_ranges("/registry", v.as_deref())
                .into_iter()
                .map(|(s, e)| (String::from_utf8(s).unwrap(), String::from_utf8(e).unwrap()))
                .collect::<Vec<_>>()
        };
        let whole = vec![("/registry/".to_string(), "/registry0".to_string())];
        assert_eq!(r(None), whole);
        assert_eq!(
            r(Some(vec!["secrets"])),
            vec![(
                "/registry/secrets/".to_string(),
                "/registry/secrets0".to_string()
            )]
        );
        assert_eq!(
            r(Some(vec!["services", "secrets"]))
                .into_iter()
                .map(|x| x.0)
                .collect::<Vec<_>>(),
            vec!["/registry/secrets/", "/registry/services/specs/"]
        );
        assert_eq!(r(Some(vec!["secrets", "deployments.apps"])), whole);
    }
}
