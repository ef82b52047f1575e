//! Where stored objects come from: an etcd snapshot (or db file) at one revision,
//! or a live etcd read at one revision, page by page.
//!
//! Both halves hand the commands the same [`Record`] (the fields of etcd's
//! `mvccpb.KeyValue`, `api/mvccpb/kv.proto` in `etcd-io/etcd`) in key order, in
//! chunks, and report progress through a callback, never through a terminal:
//! - [`snapshot::SnapshotSource`]: the keys of a bolt file at the latest or
//!   a given revision ([`crate::mvcc`]);
//! - [`live::scan`]: ranges of a running etcd at one revision, in pages.
//!
//! [`pipeline::ordered_map`] runs the work on those chunks in parallel and emits
//! the results in key order.

pub mod live;
pub mod pipeline;
pub mod snapshot;

pub use pipeline::{default_threads, ordered_map};
pub use snapshot::SnapshotSource;

/// One key's value at the revision read: etcd's `mvccpb.KeyValue`, borrowed
/// from the file or from a page of a range response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Record<'a> {
    /// The etcd key.
    pub key: &'a [u8],
    /// The stored value.
    pub value: &'a [u8],
    /// Revision of the key's creation (since its last delete).
    pub create_revision: i64,
    /// Revision of the value's last change.
    pub mod_revision: i64,
    /// Changes since the key's creation.
    pub version: i64,
    /// Lease ID attached to the key (0: none).
    pub lease: i64,
}

impl<'a> Record<'a> {
    /// The record for an `mvccpb.KeyValue` read from a bolt file.
    pub fn from_kv(kv: &crate::mvcc::KeyValue<'a>) -> Record<'a> {
        Record {
            key: kv.key,
            value: kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }

    /// The record for a key-value of a range response.
    pub fn from_etcd(kv: &'a crate::etcd::KeyValue) -> Record<'a> {
        Record {
            key: &kv.key,
            value: &kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }

    /// Ask the CPU to start loading the first bytes of the key and of the value
    /// (a hint only: it changes no result). See [`prefetching`].
    #[inline]
    fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: prefetching is a hint; it never faults, even on an invalid
            // address, and these point into live slices.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(self.key.as_ptr().cast());
                _mm_prefetch::<_MM_HINT_T0>(self.value.as_ptr().cast());
                _mm_prefetch::<_MM_HINT_T0>(self.value.as_ptr().wrapping_add(64).cast());
            }
        }
    }

    /// The (key, value, mod_revision) an audit or a dump classifies.
    pub fn stored(&self) -> crate::audit::StoredObject<'a> {
        crate::audit::StoredObject {
            key: self.key,
            value: self.value,
            mod_revision: self.mod_revision,
        }
    }
}

/// How many records ahead of the one at work [`prefetching`] asks for.
const PREFETCH_AHEAD: usize = 4;

/// The records of a chunk in order, each one's first bytes asked for a few
/// records before it is handed out. Records of a snapshot lie scattered over
/// the file in key order: the loads then overlap with the work on the records
/// before, instead of stalling it.
pub fn prefetching<'r, 'a>(records: &'r [Record<'a>]) -> impl Iterator<Item = &'r Record<'a>> {
    records.iter().enumerate().map(move |(i, record)| {
        if let Some(ahead) = records.get(i + PREFETCH_AHEAD) {
            ahead.prefetch();
        }
        record
    })
}

/// Progress of a scan: called with the number of records handed over since the
/// last call. Commands draw a bar with it; the library never does.
pub type Progress<'p> = &'p (dyn Fn(u64) + Sync);
