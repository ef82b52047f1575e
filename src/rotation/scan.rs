//! The full scan that fills a [`KeyUsage`]: every object under kube-apiserver's
//! `--etcd-prefix`, from a snapshot or from a live etcd read at one revision,
//! through the source layer ([`crate::source`]), classified on worker threads and
//! counted in key order.
//!
//! The objects are classified as `atrest audit` does ([`Auditor`]) with the config
//! being edited, so a count means what kube-apiserver with that config would read.
//! Progress is a callback; nothing here draws or prints.

use super::KeyUsage;
use crate::audit::{AuditOptions, Auditor};
use crate::etcd::{Etcd, EtcdError};
use crate::keyring::ExtraKeys;
use crate::rewrite::scan_ranges;
use crate::source::{default_threads, live, ordered_map, Progress, Record, SnapshotSource};
use crate::transformer::Transformers;
use std::convert::Infallible;

/// Within a page of a live etcd, this many records at a time per worker.
const PAGE_CHUNK: usize = 64;

/// A scan of every object under one `--etcd-prefix`, classified with one config.
pub struct UsageScan<'a> {
    auditor: Auditor<'a>,
    ts: &'a Transformers,
    prefix: String,
}

impl<'a> UsageScan<'a> {
    /// Classify with the transformers `ts` of the config being edited, trying the
    /// keys of `extra` (read only) on objects it cannot read: such objects stay at
    /// risk. A proof for `retire` takes no extra keys (`ExtraKeys::default()`).
    pub fn new(ts: &'a Transformers, extra: &'a ExtraKeys, prefix: &str) -> UsageScan<'a> {
        let auditor = Auditor::new(
            Some(ts),
            AuditOptions {
                prefix: prefix.to_string(),
                resources: None,
            },
        )
        .with_extra_keys(extra);
        UsageScan {
            auditor,
            ts,
            prefix: prefix.to_string(),
        }
    }

    /// The usage of `records` alone (one chunk of a scan; see [`KeyUsage::merge`]).
    pub fn records(&self, records: &[Record<'_>]) -> KeyUsage {
        KeyUsage::scan(&self.auditor, self.ts, records.iter().map(Record::stored))
    }

    /// Every key of `source` (a snapshot at one revision), chunks classified
    /// in parallel and merged in key order; `progress` counts the records done.
    pub fn snapshot(&self, source: &SnapshotSource<'_>, progress: Progress<'_>) -> KeyUsage {
        let mut usage = KeyUsage::default();
        let done: Result<(), Infallible> = source.par_map(
            default_threads(),
            None,
            progress,
            |records| self.records(records),
            |chunk| {
                usage = std::mem::take(&mut usage).merge(chunk);
                Ok(())
            },
        );
        match done {
            Ok(()) => usage,
            Err(never) => match never {},
        }
    }

    /// The key ranges a live scan reads: the whole prefix (for progress totals).
    pub fn ranges(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        scan_ranges(&self.prefix, None)
    }

    /// Every key of the live `etcd` under the prefix at `revision`, `page_size`
    /// keys per range request. Every page is read at that one revision, so the
    /// result is about one state of the keyspace whatever kube-apiserver writes
    /// meanwhile (take it from [`Etcd::revision`] just before); a revision compacted
    /// during the scan fails it.
    pub async fn live(
        &self,
        etcd: &Etcd,
        revision: i64,
        page_size: usize,
        progress: Progress<'_>,
    ) -> Result<KeyUsage, EtcdError> {
        let mut usage = KeyUsage::default();
        live::scan(
            etcd,
            self.ranges(),
            revision,
            page_size,
            progress,
            |records| {
                let chunks: Vec<&[Record<'_>]> = records.chunks(PAGE_CHUNK).collect();
                ordered_map(
                    chunks.len(),
                    default_threads(),
                    |i| self.records(chunks[i]),
                    |page| {
                        usage = std::mem::take(&mut usage).merge(page);
                        Ok::<(), Infallible>(())
                    },
                )
            },
        )
        .await
        .map_err(|e| match e {
            live::ScanError::Etcd(e) => e,
            live::ScanError::Consumer(never) => match never {},
        })?;
        Ok(usage)
    }
}
