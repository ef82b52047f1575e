//! Whole-file consistency walk, in the spirit of bbolt's `tx.Check` (`tx_check.go`):
//! every reachable page must be referenced exactly once. Visiting each page once
//! bounds the walk by the file size, whatever the file claims.

use super::bucket::{Bucket, Entry};
use super::meta::NO_FREELIST;
use super::page::read_header;
use super::{BoltError, BoltFile};
use std::collections::HashSet;

/// What a full walk of the file found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Pages in use according to the meta page (its high-water mark).
    pub high_water: u64,
    /// Pages reachable from the root: meta pages, freelist, branch, leaf and overflow pages.
    pub reachable_pages: u64,
    /// Buckets, not counting the root bucket.
    pub buckets: u64,
    /// Of those, buckets stored inline in their parent's leaf page.
    pub inline_buckets: u64,
    /// Plain key/value pairs in all buckets.
    pub values: u64,
    /// Pages below the high-water mark that nothing references: free pages, which
    /// can still hold old data.
    pub free_pages: u64,
}

pub(crate) fn check(file: &BoltFile) -> Result<CheckReport, BoltError> {
    check_pages(file).map(|(report, _)| report)
}

/// Like [`check`], also returning the set of reachable page ids.
pub(crate) fn check_pages(file: &BoltFile) -> Result<(CheckReport, HashSet<u64>), BoltError> {
    let mut seen: HashSet<u64> = HashSet::new();
    seen.insert(0);
    seen.insert(1);
    let meta = file.meta();
    // Only pages that exist in the file can be marked: a hostile meta page can
    // claim any high-water mark and any overflow count (a 185-byte file once
    // claimed 16 million freelist pages here).
    let file_pages = file.bytes().len() as u64 / u64::from(meta.page_size).max(1);
    let limit = meta.pgid.min(file_pages);
    if meta.freelist != NO_FREELIST && meta.freelist >= 2 && meta.freelist < limit {
        // Mark the freelist page and its overflow so a tree reference to it is caught.
        let offset = u128::from(meta.freelist) * u128::from(meta.page_size);
        let header = usize::try_from(offset)
            .ok()
            .and_then(|o| file.bytes().get(o..))
            .and_then(read_header);
        let overflow = header.map_or(0, |h| u64::from(h.overflow));
        let last = meta.freelist.saturating_add(overflow).min(limit - 1);
        for id in meta.freelist..=last {
            seen.insert(id);
        }
    }
    let mut report = CheckReport {
        high_water: meta.pgid,
        ..CheckReport::default()
    };
    walk(file.root(), &mut seen, &mut report)?;
    report.reachable_pages = seen.len() as u64;
    report.free_pages = meta.pgid.saturating_sub(report.reachable_pages);
    Ok((report, seen))
}

fn walk(
    bucket: Bucket<'_>,
    seen: &mut HashSet<u64>,
    report: &mut CheckReport,
) -> Result<(), BoltError> {
    let mut mark = |page: &super::page::Page<'_>, inline: bool| {
        if inline {
            return Ok(());
        }
        // `file.page` checked that pgid + overflow is below the high-water mark.
        for id in page.pgid..=page.pgid + u64::from(page.overflow) {
            if !seen.insert(id) {
                return Err(BoltError::PageReferencedTwice {
                    pgid: id,
                    offset: page.offset,
                });
            }
        }
        Ok(())
    };
    let mut children = Vec::new();
    let mut iter = bucket.iter();
    while let Some(item) = iter.next_with(&mut mark) {
        match item?.1 {
            Entry::Value(_) => report.values += 1,
            Entry::Bucket(b) => children.push(b),
        }
    }
    for child in children {
        report.buckets += 1;
        if child.is_inline() {
            report.inline_buckets += 1;
        }
        walk(child, seen, report)?;
    }
    Ok(())
}
