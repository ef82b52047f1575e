//! Bolt meta pages: the two copies of the database root at pages 0 and 1.
//!
//! Layout from `etcd-io/bbolt` `internal/common/meta.go`; the meta struct starts
//! right after the 16-byte page header. Selection rule and page-size probing from
//! `db.go` (`meta()`, `getPageSize`/`getPageSizeFromSecondMeta`).

use super::page::{u32_at, u64_at, PAGE_HEADER_SIZE};

/// Marks a file as a bolt database (`Magic` in meta.go).
pub(crate) const MAGIC: u32 = 0xED0C_DAED;
/// The only data-file format version bbolt writes (`Version`).
pub(crate) const VERSION: u32 = 2;
/// Offset of the meta struct inside its page.
pub const META_OFFSET: usize = PAGE_HEADER_SIZE;
/// Bytes covered by the checksum: everything before the `checksum` field.
pub const META_CHECKSUM_SPAN: usize = 56;
/// Size of the meta struct.
pub(crate) const META_SIZE: usize = 64;
/// A freelist page id of all ones: no freelist stored (etcd's `NoFreelistSync`).
pub(crate) const NO_FREELIST: u64 = u64::MAX;
/// Page sizes bbolt probes for the second meta page: 1 KiB up to 16 MiB (db.go).
pub(crate) const MIN_PAGE_SIZE: u32 = 1024;
pub(crate) const MAX_PAGE_SIZE: u32 = 16 << 20;
/// The page size etcd uses on every common platform (`os.Getpagesize()`).
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 4096;

// Field offsets inside the meta struct.
const M_MAGIC: usize = 0;
const M_VERSION: usize = 4;
const M_PAGE_SIZE: usize = 8;
const M_FLAGS: usize = 12;
const M_ROOT: usize = 16;
const M_SEQUENCE: usize = 24;
const M_FREELIST: usize = 32;
const M_PGID: usize = 40;
const M_TXID: usize = 48;
const M_CHECKSUM: usize = 56;

/// A validated meta page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub page_size: u32,
    pub flags: u32,
    /// Root page of the root bucket.
    pub root: u64,
    /// Sequence of the root bucket.
    pub sequence: u64,
    /// Freelist page id, or `NO_FREELIST` (`u64::MAX`).
    pub freelist: u64,
    /// High-water mark: every page in use has an id below this.
    pub pgid: u64,
    pub txid: u64,
    pub checksum: u64,
}

/// Why one meta page was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetaProblem {
    #[error("meta page at offset {offset} is past the end of the file")]
    Missing { offset: u64 },
    #[error("bad magic at offset {offset}: found {found:#010x}, a bolt file has {MAGIC:#010x}")]
    BadMagic { offset: u64, found: u32 },
    #[error("unsupported bolt version {found} at offset {offset} (only version {VERSION} exists)")]
    BadVersion { offset: u64, found: u32 },
    #[error(
        "checksum mismatch at offset {offset}: stored {stored:#018x}, computed {computed:#018x}"
    )]
    BadChecksum {
        offset: u64,
        stored: u64,
        computed: u64,
    },
    #[error("page size {found} at offset {offset} is not a power of two between 1 KiB and 16 MiB")]
    BadPageSize { offset: u64, found: u32 },
    #[error("page size {found} at offset {offset} disagrees with the page size {expected} it was found at")]
    PageSizeDisagrees {
        offset: u64,
        found: u32,
        expected: u32,
    },
    #[error("high-water mark {pgid} at offset {offset} is below 2: the meta pages themselves are not covered")]
    BadHighWater { offset: u64, pgid: u64 },
}

/// FNV-1a 64-bit, as Go's `hash/fnv.New64a` used by `Meta.Sum64`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// Parse and validate the meta page whose page starts at `page_offset` in `file`.
pub(crate) fn read_meta(file: &[u8], page_offset: usize) -> Result<Meta, MetaProblem> {
    let at = page_offset.saturating_add(META_OFFSET);
    let offset = at as u64;
    let m = at
        .checked_add(META_SIZE)
        .and_then(|end| file.get(at..end))
        .ok_or(MetaProblem::Missing { offset })?;
    let field32 = |o| u32_at(m, o).unwrap_or_default();
    let field64 = |o| u64_at(m, o).unwrap_or_default();
    let magic = field32(M_MAGIC);
    if magic != MAGIC {
        return Err(MetaProblem::BadMagic {
            offset,
            found: magic,
        });
    }
    let version = field32(M_VERSION);
    if version != VERSION {
        return Err(MetaProblem::BadVersion {
            offset: offset + M_VERSION as u64,
            found: version,
        });
    }
    let stored = field64(M_CHECKSUM);
    let computed = fnv1a64(&m[..META_CHECKSUM_SPAN]);
    if stored != computed {
        return Err(MetaProblem::BadChecksum {
            offset: offset + M_CHECKSUM as u64,
            stored,
            computed,
        });
    }
    let page_size = field32(M_PAGE_SIZE);
    if !page_size.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(MetaProblem::BadPageSize {
            offset: offset + M_PAGE_SIZE as u64,
            found: page_size,
        });
    }
    let pgid = field64(M_PGID);
    if pgid < 2 {
        return Err(MetaProblem::BadHighWater {
            offset: offset + M_PGID as u64,
            pgid,
        });
    }
    Ok(Meta {
        page_size,
        flags: field32(M_FLAGS),
        root: field64(M_ROOT),
        sequence: field64(M_SEQUENCE),
        freelist: field64(M_FREELIST),
        pgid,
        txid: field64(M_TXID),
        checksum: stored,
    })
}

/// The outcome of looking at both meta pages.
pub(crate) struct MetaChoice {
    pub meta: Meta,
    /// Which meta page (0 or 1) was chosen.
    pub index: u8,
}

/// Find both meta pages and choose as bbolt does: the valid one with the higher
/// txid; if only one is valid, that one. Errors carry both problems.
pub(crate) fn choose_meta(file: &[u8]) -> Result<MetaChoice, (MetaProblem, MetaProblem)> {
    let meta0 = read_meta(file, 0);
    let meta1 = match &meta0 {
        Ok(m0) => read_meta(file, m0.page_size as usize).and_then(|m1| {
            if m1.page_size == m0.page_size {
                Ok(m1)
            } else {
                Err(MetaProblem::PageSizeDisagrees {
                    offset: u64::from(m0.page_size) + META_OFFSET as u64,
                    found: m1.page_size,
                    expected: m0.page_size,
                })
            }
        }),
        Err(_) => probe_second_meta(file),
    };
    match (meta0, meta1) {
        (Ok(m0), Ok(m1)) if m1.txid > m0.txid => Ok(MetaChoice { meta: m1, index: 1 }),
        (Ok(m0), _) => Ok(MetaChoice { meta: m0, index: 0 }),
        (Err(_), Ok(m1)) => Ok(MetaChoice { meta: m1, index: 1 }),
        (Err(p0), Err(p1)) => Err((p0, p1)),
    }
}

/// Meta page 0 is unusable, so its page size is unknown: look for a valid
/// second meta page at each candidate page size.
fn probe_second_meta(file: &[u8]) -> Result<Meta, MetaProblem> {
    // Report the most telling problem: one past the magic check if any, else
    // the bad magic where a 4 KiB-page file keeps its second meta page.
    let mut best: Option<MetaProblem> = None;
    let mut size = MIN_PAGE_SIZE;
    while size <= MAX_PAGE_SIZE {
        let problem = match read_meta(file, size as usize) {
            Ok(m) if m.page_size == size => return Ok(m),
            Ok(m) => MetaProblem::PageSizeDisagrees {
                offset: u64::from(size) + META_OFFSET as u64,
                found: m.page_size,
                expected: size,
            },
            Err(MetaProblem::Missing { .. }) => break,
            Err(e) => e,
        };
        let replace = match &best {
            None => true,
            Some(MetaProblem::BadMagic { .. }) => {
                !matches!(problem, MetaProblem::BadMagic { .. }) || size == DEFAULT_PAGE_SIZE
            }
            Some(_) => false,
        };
        if replace {
            best = Some(problem);
        }
        size <<= 1;
    }
    Err(best.unwrap_or(MetaProblem::Missing {
        offset: u64::from(DEFAULT_PAGE_SIZE) + META_OFFSET as u64,
    }))
}
