//! The snapshot half of the source layer: the keys of an etcd bolt file at
//! one revision (the latest, or one given), in key order ([`crate::mvcc::KeyspaceView`]),
//! handed over in chunks.

use super::pipeline::ordered_map_paced;
use super::{Progress, Record};
use crate::bolt::BoltFile;
use crate::mvcc::{KeyspaceEntry, KeyspaceView, MvccError};
use std::sync::atomic::AtomicBool;

/// Most records per chunk: large enough that handing a chunk to a worker costs
/// nothing next to its work, small enough that the few chunks per thread in
/// flight stay a few MiB.
pub const CHUNK: usize = 1024;

/// Records per chunk for `threads` workers: [`CHUNK`], or less on small
/// keyspaces so that every worker gets several chunks.
fn chunk_size(len: usize, threads: usize) -> usize {
    (len / threads.max(1).saturating_mul(16)).clamp(1, CHUNK)
}

/// The keyspace of a snapshot at one revision.
#[derive(Clone, Debug)]
pub struct SnapshotSource<'f> {
    view: KeyspaceView<'f>,
}

impl<'f> SnapshotSource<'f> {
    /// The keys of `file` at revision `at` (`None`: the latest).
    pub fn open(file: &'f BoltFile, at: Option<i64>) -> Result<Self, MvccError> {
        Ok(SnapshotSource {
            view: KeyspaceView::build(file, at)?,
        })
    }

    /// The revision read.
    pub fn revision(&self) -> i64 {
        self.view.revision
    }

    /// Number of keys at the revision read.
    pub fn len(&self) -> usize {
        self.view.entries.len()
    }

    /// True when no key exists at the revision read.
    pub fn is_empty(&self) -> bool {
        self.view.entries.is_empty()
    }

    /// The view underneath (for history scans that compare revisions).
    pub fn view(&self) -> &KeyspaceView<'f> {
        &self.view
    }

    /// Chunk `i` of `size` records.
    fn chunk(&self, i: usize, size: usize) -> Vec<Record<'f>> {
        let entries = &self.view.entries;
        let start = i.saturating_mul(size).min(entries.len());
        let end = start.saturating_add(size).min(entries.len());
        entries[start..end]
            .iter()
            .map(|e: &KeyspaceEntry<'f>| Record::from_kv(&e.kv))
            .collect()
    }

    /// Hand every record to `on_chunk`, in key order, a chunk at a time.
    pub fn scan<E>(
        &self,
        progress: Progress<'_>,
        mut on_chunk: impl FnMut(&[Record<'f>]) -> Result<(), E>,
    ) -> Result<(), E> {
        for i in 0..self.len().div_ceil(CHUNK) {
            let records = self.chunk(i, CHUNK);
            on_chunk(&records)?;
            progress(records.len() as u64);
        }
        Ok(())
    }

    /// Run `work` on every chunk on `threads` threads and hand the results to
    /// `emit` in key order (see [`super::ordered_map`]). `progress` counts records as
    /// their chunk's result is emitted. While `hold_back` is set (the file's
    /// hash check is running), one thread works (see [`ordered_map_paced`]).
    pub fn par_map<T: Send, E>(
        &self,
        threads: usize,
        hold_back: Option<&AtomicBool>,
        progress: Progress<'_>,
        work: impl Fn(&[Record<'f>]) -> T + Sync,
        mut emit: impl FnMut(T) -> Result<(), E>,
    ) -> Result<(), E> {
        let total = self.view.entries.len();
        let size = chunk_size(total, threads);
        let mut done = 0usize;
        ordered_map_paced(
            total.div_ceil(size),
            threads,
            hold_back,
            |i| work(&self.chunk(i, size)),
            |t| {
                emit(t)?;
                let n = size.min(total - done);
                done += n;
                progress(n as u64);
                Ok(())
            },
        )
    }
}
