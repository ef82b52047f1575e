//! Bolt buckets: the 16-byte bucket header and inline buckets.
//!
//! Layout from `etcd-io/bbolt` `internal/common/bucket.go` (`InBucket`): a bucket
//! value is `root u64 | sequence u64`; `root == 0` means an inline bucket whose
//! leaf page follows the header inside the value. Lookup follows `cursor.go`
//! (`seek`/`search`): in a branch page, descend into the last element whose key
//! is not greater than the key sought.

use super::cursor::BucketIter;
use super::page::{u64_at, LeafElement, Page, PageKind, BUCKET_LEAF_FLAG};
use super::{BoltError, BoltFile, Referrer, MAX_BUCKET_DEPTH, MAX_TREE_DEPTH};

/// Size of the bucket header at the start of a bucket value (`BucketHeaderSize`).
pub const BUCKET_HEADER_SIZE: usize = 16;

/// A bucket: the root bucket of a file or one nested in another.
#[derive(Clone, Copy, Debug)]
pub struct Bucket<'a> {
    pub(crate) file: &'a BoltFile,
    pub(crate) root: Root<'a>,
    sequence: u64,
    /// Nesting depth: 0 for the file's root bucket.
    pub(crate) depth: usize,
    /// Where the reference to the root page sits.
    pub(crate) from: Referrer,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Root<'a> {
    Page(u64),
    Inline(Page<'a>),
}

/// What a key in a bucket holds.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    Value(&'a [u8]),
    Bucket(Bucket<'a>),
}

impl<'a> Bucket<'a> {
    pub(crate) fn from_page_root(
        file: &'a BoltFile,
        root: u64,
        sequence: u64,
        depth: usize,
        from: Referrer,
    ) -> Self {
        Bucket {
            file,
            root: Root::Page(root),
            sequence,
            depth,
            from,
        }
    }

    /// Turn leaf element `elem` (of `holder`, at `index`) into an entry of this bucket.
    pub(crate) fn entry(
        &self,
        holder: &Page<'a>,
        index: usize,
        elem: &LeafElement<'a>,
    ) -> Result<Entry<'a>, BoltError> {
        if elem.flags & BUCKET_LEAF_FLAG == 0 {
            return Ok(Entry::Value(elem.value));
        }
        let depth = self.depth + 1;
        if depth > MAX_BUCKET_DEPTH {
            return Err(BoltError::BucketsTooDeep {
                pgid: holder.pgid,
                offset: elem.value_offset,
                depth,
            });
        }
        let bad_header = || BoltError::BadBucketHeader {
            pgid: holder.pgid,
            offset: elem.value_offset,
            len: elem.value.len(),
        };
        let root = u64_at(elem.value, 0).ok_or_else(bad_header)?;
        let sequence = u64_at(elem.value, 8).ok_or_else(bad_header)?;
        let root = if root == 0 {
            let inline_offset = elem.value_offset + BUCKET_HEADER_SIZE as u64;
            let page = Page::parse(
                holder.pgid,
                inline_offset,
                &elem.value[BUCKET_HEADER_SIZE..],
            )?;
            super::expect_kind(&page, PageKind::Leaf)?;
            Root::Inline(page)
        } else {
            Root::Page(root)
        };
        Ok(Entry::Bucket(Bucket {
            file: self.file,
            root,
            sequence,
            depth,
            from: Referrer {
                pgid: holder.pgid,
                offset: holder.element_offset(index),
            },
        }))
    }

    /// The bucket's sequence counter (`NextSequence` in bbolt).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Root page id, or `None` for an inline bucket.
    pub fn root_page(&self) -> Option<u64> {
        match self.root {
            Root::Page(id) => Some(id),
            Root::Inline(_) => None,
        }
    }

    /// True when the bucket's contents are stored inside its parent's leaf page.
    pub fn is_inline(&self) -> bool {
        matches!(self.root, Root::Inline(_))
    }

    /// Nesting depth: 0 for the file's root bucket.
    pub fn depth(&self) -> usize {
        self.depth
    }

    pub(crate) fn load_root(&self) -> Result<Page<'a>, BoltError> {
        match self.root {
            Root::Page(id) => self.file.page(id, self.from),
            Root::Inline(page) => Ok(page),
        }
    }

    /// Look up `key`: its value, its nested bucket, or `None`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Entry<'a>>, BoltError> {
        let mut page = self.load_root()?;
        let mut path = Vec::new();
        loop {
            // Number of elements whose key is <= `key`.
            let mut lo = 0;
            let mut hi = page.count;
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let mid_key = match page.kind {
                    PageKind::Leaf => page.leaf_element(mid)?.key,
                    PageKind::Branch => page.branch_element(mid)?.key,
                };
                if mid_key <= key {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            match page.kind {
                PageKind::Leaf => {
                    if lo == 0 {
                        return Ok(None);
                    }
                    let elem = page.leaf_element(lo - 1)?;
                    if elem.key != key {
                        return Ok(None);
                    }
                    return self.entry(&page, lo - 1, &elem).map(Some);
                }
                PageKind::Branch => {
                    if page.count == 0 {
                        return Err(BoltError::EmptyPage {
                            pgid: page.pgid,
                            offset: page.offset,
                        });
                    }
                    let index = lo.saturating_sub(1);
                    let child = page.branch_element(index)?.child;
                    let from = Referrer {
                        pgid: page.pgid,
                        offset: page.element_offset(index),
                    };
                    path.push(page.pgid);
                    if path.contains(&child) {
                        return Err(BoltError::PageCycle {
                            pgid: child,
                            from_pgid: from.pgid,
                            offset: from.offset,
                        });
                    }
                    if path.len() >= MAX_TREE_DEPTH {
                        return Err(BoltError::TreeTooDeep {
                            pgid: child,
                            offset: from.offset,
                            depth: path.len(),
                        });
                    }
                    page = self.file.page(child, from)?;
                }
            }
        }
    }

    /// The nested bucket called `name`; `None` if there is no such key or it holds a plain value.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'a>>, BoltError> {
        Ok(match self.get(name)? {
            Some(Entry::Bucket(b)) => Some(b),
            _ => None,
        })
    }

    /// Every key in order, with its value or nested bucket. Stops after the first error.
    pub fn iter(&self) -> BucketIter<'a> {
        BucketIter::new(*self)
    }
}
