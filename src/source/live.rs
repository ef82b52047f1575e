//! The live half of the source layer: key ranges of a running etcd, all read at
//! one revision, in pages of `page_size` keys (etcd `RangeRequest` with
//! `revision`, `limit`; `api/etcdserverpb/rpc.proto`), the next page fetched
//! while the current one is handed over.

use super::Record;
use crate::etcd::{Etcd, EtcdError, ReadAt};

/// Pages fetched ahead of the one being handed over.
const PAGES_AHEAD: usize = 4;

/// What went wrong scanning a live etcd: the read, or the consumer.
#[derive(Debug)]
pub enum ScanError<E> {
    /// etcd could not be read.
    Etcd(EtcdError),
    /// The consumer of a page stopped the scan.
    Consumer(E),
}

/// How many keys `ranges` hold at `revision` (for progress totals).
pub async fn count(
    etcd: &Etcd,
    ranges: &[(Vec<u8>, Vec<u8>)],
    revision: i64,
) -> Result<u64, EtcdError> {
    let mut total = 0;
    for (start, end) in ranges {
        total += etcd.count(start, end, revision).await?;
    }
    Ok(total)
}

/// Hand every key of `ranges` at `revision` to `on_chunk`, a page at a time,
/// in key order within each range and ranges in the order given (the next page
/// is read while `on_chunk` works on this one); `progress` is told how many
/// records each page held. The pages together are the keyspace as it was at
/// `revision`: a key written meanwhile is read as it was, and a revision
/// compacted meanwhile fails the read.
pub async fn scan<E>(
    etcd: &Etcd,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
    revision: i64,
    page_size: usize,
    progress: super::Progress<'_>,
    on_chunk: impl FnMut(&[Record<'_>]) -> Result<(), E>,
) -> Result<(), ScanError<E>> {
    scan_tiles(
        etcd,
        ranges,
        Vec::new(),
        revision,
        page_size,
        progress,
        on_chunk,
    )
    .await
}

/// [`scan`], reading range `i` in tiles that start at `tiles[i]` (where the
/// pages of an earlier read of the range began: see
/// [`Etcd::prefetch`]) instead of scanning for them; a range
/// without an entry is scanned.
pub async fn scan_tiles<E>(
    etcd: &Etcd,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
    tiles: Vec<Vec<Vec<u8>>>,
    revision: i64,
    page_size: usize,
    progress: super::Progress<'_>,
    mut on_chunk: impl FnMut(&[Record<'_>]) -> Result<(), E>,
) -> Result<(), ScanError<E>> {
    let mut tiles = tiles.into_iter();
    for (start, end) in ranges {
        let at = ReadAt::Fixed(revision);
        let mut pages = etcd.prefetch(start, end, at, page_size, PAGES_AHEAD, tiles.next());
        while let Some(page) = pages.recv().await {
            let page = page.map_err(ScanError::Etcd)?;
            let records: Vec<Record<'_>> = page.kvs.iter().map(Record::from_etcd).collect();
            on_chunk(&records).map_err(ScanError::Consumer)?;
            progress(records.len() as u64);
        }
    }
    Ok(())
}
