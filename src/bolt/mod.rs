//! Read-only reader for bolt (bbolt) database files, the storage format of etcd's
//! `member/snap/db` and of `etcdctl snapshot save` output.
//!
//! Format: `etcd-io/bbolt` `internal/common/{page,meta,bucket,inode}.go` and `db.go`.
//! The reader never writes, never locks, and works on a read-only memory map, so it
//! can open the db of a running etcd or a backup copy. Every page id, element,
//! key and value range is checked where it is read; damage is reported as a
//! [`BoltError`] naming the page id and file offset, never as a panic. Keys and
//! values are borrowed from the file.
//!
//! etcd does not store a freelist (the meta freelist id is all ones), so unlike
//! bbolt this reader does not need one.

mod bucket;
mod check;
mod cursor;
pub mod meta;
pub mod page;

pub use bucket::{Bucket, Entry};
pub use check::CheckReport;
pub use cursor::BucketIter;
pub use meta::{Meta, MetaProblem};

use page::{flags_name, read_header, Page, PageKind};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Deepest branch/leaf tree accepted inside one bucket. A bolt tree of 4 KiB
/// pages is a handful of levels deep; anything near this is damage.
pub const MAX_TREE_DEPTH: usize = 64;
/// Deepest nesting of buckets inside buckets accepted.
pub const MAX_BUCKET_DEPTH: usize = 64;

/// Everything that can be wrong with a bolt file.
#[derive(Debug, thiserror::Error)]
pub enum BoltError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot map {path} into memory: {source}")]
    Map {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the file is empty")]
    Empty,
    #[error("the file is only {len} bytes, shorter than one bolt meta page ({needed} bytes)")]
    TooShort { len: usize, needed: usize },
    #[error("{0}")]
    NotBolt(MetaProblem),
    #[error(
        "both bolt meta pages are unusable (page 0: {meta0}; page 1: {meta1}); \
         the file is damaged or truncated, restore it from another copy"
    )]
    NoValidMeta {
        meta0: MetaProblem,
        meta1: MetaProblem,
    },
    #[error(
        "page {pgid}, referenced from page {from_pgid} at offset {offset}, is at or past \
         the high-water mark {high_water}: the reference is damaged"
    )]
    PageOutOfRange {
        pgid: u64,
        from_pgid: u64,
        offset: u64,
        high_water: u64,
    },
    #[error(
        "page {pgid} (offset {offset}, {span} bytes) runs past the end of the file \
         ({file_len} bytes): the file is truncated"
    )]
    PageBeyondFile {
        pgid: u64,
        offset: u64,
        span: u64,
        file_len: usize,
    },
    #[error("page {pgid} at offset {offset} has id {found} in its header: the page is damaged or misplaced")]
    PageIdMismatch { pgid: u64, offset: u64, found: u64 },
    #[error("page {pgid} at offset {offset} is only {len} bytes, shorter than a page header")]
    PageTooSmall { pgid: u64, offset: u64, len: usize },
    #[error("page {pgid} at offset {offset} is a {found} page (flags {flags:#06x}) where a {expected} page belongs")]
    UnexpectedPageType {
        pgid: u64,
        offset: u64,
        flags: u16,
        found: &'static str,
        expected: &'static str,
    },
    #[error("page {pgid} at offset {offset} claims {count} elements, more than fit in its {page_len} bytes")]
    ElementArrayOutOfBounds {
        pgid: u64,
        offset: u64,
        count: usize,
        page_len: usize,
    },
    #[error("page {pgid}, element {index} at offset {offset}: {what}")]
    ElementOutOfBounds {
        pgid: u64,
        offset: u64,
        index: usize,
        what: &'static str,
    },
    #[error("page {pgid} at offset {offset} has no elements but is not a bucket's root")]
    EmptyPage { pgid: u64, offset: u64 },
    #[error("page {pgid}, element {index} at offset {offset}: key is not greater than the key before it")]
    KeysOutOfOrder {
        pgid: u64,
        offset: u64,
        index: usize,
    },
    #[error("page {pgid} at offset {offset} is {depth} levels below its bucket's root, deeper than any real tree")]
    TreeTooDeep {
        pgid: u64,
        offset: u64,
        depth: usize,
    },
    #[error("bucket in page {pgid} at offset {offset} is nested {depth} buckets deep, deeper than allowed")]
    BucketsTooDeep {
        pgid: u64,
        offset: u64,
        depth: usize,
    },
    #[error("page {pgid}, referenced from page {from_pgid} at offset {offset}, is already on the path from the root: the tree has a cycle")]
    PageCycle {
        pgid: u64,
        from_pgid: u64,
        offset: u64,
    },
    #[error("bucket value in page {pgid} at offset {offset} is {len} bytes, shorter than a 16-byte bucket header")]
    BadBucketHeader { pgid: u64, offset: u64, len: usize },
    #[error(
        "page {pgid} at offset {offset} is reachable from more than one place: the tree is damaged"
    )]
    PageReferencedTwice { pgid: u64, offset: u64 },
}

/// Where a page reference was found (for error messages).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Referrer {
    pub pgid: u64,
    pub offset: u64,
}

enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

/// An open bolt file: its bytes, page size and the chosen meta page.
pub struct BoltFile {
    backing: Backing,
    /// Bytes of the bolt file proper (a snapshot's hash trailer is excluded).
    len: usize,
    meta: Meta,
    meta_index: u8,
}

impl std::fmt::Debug for BoltFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoltFile")
            .field("len", &self.len)
            .field("meta", &self.meta)
            .field("meta_index", &self.meta_index)
            .finish()
    }
}

impl BoltFile {
    /// Open a bolt file read-only. No lock is taken and nothing is ever written.
    ///
    /// The file is read into memory, not mapped: a bare bolt file is typically a
    /// member's `db`, which a running etcd may truncate or rewrite, and a mapped
    /// file that shrinks kills the reader with SIGBUS (see [`map_read_only`]). A
    /// read that races a writer may see damage, which is reported as an error.
    pub fn open(path: &Path) -> Result<BoltFile, BoltError> {
        BoltFile::from_bytes(read_whole(path)?)
    }

    /// Open a bolt file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<BoltFile, BoltError> {
        let len = bytes.len();
        BoltFile::from_backing(Backing::Owned(bytes), len)
    }

    /// Use only the first `len` bytes of a mapped file (a snapshot without its trailer).
    pub(crate) fn from_mmap_prefix(mmap: memmap2::Mmap, len: usize) -> Result<BoltFile, BoltError> {
        let len = len.min(mmap.len());
        BoltFile::from_backing(Backing::Mmap(mmap), len)
    }

    fn from_backing(backing: Backing, len: usize) -> Result<BoltFile, BoltError> {
        let (len, choice) = {
            let all: &[u8] = match &backing {
                Backing::Mmap(m) => m,
                Backing::Owned(v) => v,
            };
            let bytes = all.get(..len).unwrap_or(all);
            if bytes.is_empty() {
                return Err(BoltError::Empty);
            }
            let needed = meta::META_OFFSET + meta::META_SIZE;
            if bytes.len() < needed {
                return Err(BoltError::TooShort {
                    len: bytes.len(),
                    needed,
                });
            }
            let choice = meta::choose_meta(bytes).map_err(|(meta0, meta1)| match meta0 {
                MetaProblem::BadMagic { .. }
                    if matches!(
                        meta1,
                        MetaProblem::BadMagic { .. } | MetaProblem::Missing { .. }
                    ) =>
                {
                    BoltError::NotBolt(meta0)
                }
                _ => BoltError::NoValidMeta { meta0, meta1 },
            })?;
            (bytes.len(), choice)
        };
        Ok(BoltFile {
            backing,
            len,
            meta: choice.meta,
            meta_index: choice.index,
        })
    }

    /// The bytes of the bolt file.
    pub fn bytes(&self) -> &[u8] {
        let all: &[u8] = match &self.backing {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        };
        &all[..self.len]
    }

    /// Page size recorded in the meta page.
    pub fn page_size(&self) -> u32 {
        self.meta.page_size
    }

    /// Transaction id of the chosen meta page.
    pub fn txid(&self) -> u64 {
        self.meta.txid
    }

    /// The chosen meta page.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Which meta page (0 or 1) was chosen.
    pub fn meta_page(&self) -> u8 {
        self.meta_index
    }

    /// The root bucket, whose entries are etcd's top-level buckets (`key`, `meta`, ...).
    pub fn root(&self) -> Bucket<'_> {
        Bucket::from_page_root(
            self,
            self.meta.root,
            self.meta.sequence,
            0,
            Referrer {
                pgid: u64::from(self.meta_index),
                offset: u64::from(self.meta_index) * u64::from(self.meta.page_size)
                    + meta::META_OFFSET as u64,
            },
        )
    }

    /// Walk every bucket and page reachable from the root, checking that each page
    /// is used exactly once. Bounded by the file size even for hostile input.
    pub fn check(&self) -> Result<CheckReport, BoltError> {
        check::check(self)
    }

    /// Page ids that hold no data in use: pages below the high-water mark that
    /// nothing references (etcd keeps no freelist on disk), and the pages between
    /// the high-water mark and the end of the file. Old values can survive there.
    pub fn free_pages(&self) -> Result<Vec<u64>, BoltError> {
        let (report, seen) = check::check_pages(self)?;
        let page_size = u64::from(self.meta.page_size).max(1);
        let total = self.bytes().len() as u64 / page_size;
        let mut free: Vec<u64> = (0..report.high_water.min(total))
            .filter(|id| !seen.contains(id))
            .collect();
        free.extend(report.high_water..total);
        Ok(free)
    }

    /// Load page `pgid`, referenced from `from`, and check it is a branch or leaf
    /// page that lies below the high-water mark and inside the file.
    pub(crate) fn page(&self, pgid: u64, from: Referrer) -> Result<Page<'_>, BoltError> {
        let out_of_range = || BoltError::PageOutOfRange {
            pgid,
            from_pgid: from.pgid,
            offset: from.offset,
            high_water: self.meta.pgid,
        };
        if pgid >= self.meta.pgid {
            return Err(out_of_range());
        }
        let bytes = self.bytes();
        let page_size = u64::from(self.meta.page_size);
        // pgid < high water < 2^64 and page_size <= 2^24: use u128 to be safe.
        let offset = u128::from(pgid) * u128::from(page_size);
        let beyond = |span: u64| BoltError::PageBeyondFile {
            pgid,
            offset: u64::try_from(offset).unwrap_or(u64::MAX),
            span,
            file_len: bytes.len(),
        };
        let start = usize::try_from(offset)
            .ok()
            .filter(|&o| o < bytes.len())
            .ok_or_else(|| beyond(page_size))?;
        let header = read_header(&bytes[start..]).ok_or_else(|| beyond(page_size))?;
        if header.id != pgid {
            return Err(BoltError::PageIdMismatch {
                pgid,
                offset: start as u64,
                found: header.id,
            });
        }
        let last_page = pgid.checked_add(u64::from(header.overflow));
        if !matches!(last_page, Some(last) if last < self.meta.pgid) {
            return Err(out_of_range());
        }
        let span = (u64::from(header.overflow) + 1) * page_size;
        let end = usize::try_from(span)
            .ok()
            .and_then(|s| start.checked_add(s))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| beyond(span))?;
        Page::parse(pgid, start as u64, &bytes[start..end])
    }
}

/// Memory-map `path` read-only (`File::open` opens for reading only).
///
/// The map is not populated up front: a snapshot's hash check reads every page
/// on its own thread while the keyspace walk reads them on another, so the page
/// faults (the kernel maps pages around each fault, 64 KiB at a time) are shared
/// by two threads at work, where a populated map costs one serial pass before
/// either can start.
pub(crate) fn map_read_only(path: &Path) -> Result<memmap2::Mmap, BoltError> {
    let file = File::open(path).map_err(|source| BoltError::Open {
        path: path.to_owned(),
        source,
    })?;
    let len = file
        .metadata()
        .map_err(|source| BoltError::Open {
            path: path.to_owned(),
            source,
        })?
        .len();
    if len == 0 {
        return Err(BoltError::Empty);
    }
    // SAFETY: the map is read-only and every read is bounds-checked against the
    // length it had when mapped. That is all a map can promise: the kernel does
    // not keep the file from changing under us. Bytes changed by another process
    // show through (wrong data, or damage the reader reports as an error); and if
    // another process *truncates* the file, touching a page past its new end
    // raises SIGBUS, which kills this process. So only files that nothing
    // writes are mapped: `etcdctl snapshot save` output, recognised by its sha256
    // trailer (`crate::snapshot`). A member's `db`, which a running etcd
    // may truncate (compaction, defrag), is read into memory ([`read_whole`]).
    unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(|source| BoltError::Map {
        path: path.to_owned(),
        source,
    })
}

/// Read a whole file into memory (for files that may change while we read:
/// a copy cannot fault, where a map of a shrinking file raises SIGBUS).
pub(crate) fn read_whole(path: &Path) -> Result<Vec<u8>, BoltError> {
    use std::io::Read;
    let open_err = |source| BoltError::Open {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(open_err)?;
    let len = file.metadata().map_err(open_err)?.len();
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(open_err)?;
    if bytes.is_empty() {
        return Err(BoltError::Empty);
    }
    Ok(bytes)
}

/// Label a page for error messages when it is used where `kind` is expected.
pub(crate) fn expect_kind(page: &Page<'_>, kind: PageKind) -> Result<(), BoltError> {
    if page.kind == kind {
        return Ok(());
    }
    let (flags, expected) = match kind {
        PageKind::Branch => (page::LEAF_PAGE_FLAG, "branch"),
        PageKind::Leaf => (page::BRANCH_PAGE_FLAG, "leaf"),
    };
    Err(BoltError::UnexpectedPageType {
        pgid: page.pgid,
        offset: page.offset,
        flags,
        found: flags_name(flags),
        expected,
    })
}
