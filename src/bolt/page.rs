//! Bolt pages: the 16-byte page header and the branch/leaf element arrays.
//!
//! Layout from `etcd-io/bbolt` `internal/common/page.go` (little-endian):
//! header `id u64 | flags u16 | count u16 | overflow u32`, then `count` 16-byte
//! elements. A page spans `(overflow + 1) * page_size` bytes. Element key and
//! value positions are relative to the element's own address.

use super::BoltError;

/// Size of the page header (`PageHeaderSize` in page.go).
pub(crate) const PAGE_HEADER_SIZE: usize = 16;
/// Size of one branch element: `pos u32 | ksize u32 | pgid u64` (`BranchPageElementSize`).
pub(crate) const BRANCH_ELEMENT_SIZE: usize = 16;
/// Size of one leaf element: `flags u32 | pos u32 | ksize u32 | vsize u32` (`LeafPageElementSize`).
pub(crate) const LEAF_ELEMENT_SIZE: usize = 16;
// Element offsets are computed with one size for both kinds.
const _: () = assert!(BRANCH_ELEMENT_SIZE == LEAF_ELEMENT_SIZE);

/// Page flag: branch page (`BranchPageFlag`).
pub const BRANCH_PAGE_FLAG: u16 = 0x01;
/// Page flag: leaf page (`LeafPageFlag`).
pub const LEAF_PAGE_FLAG: u16 = 0x02;
/// Page flag: meta page (`MetaPageFlag`).
pub(crate) const META_PAGE_FLAG: u16 = 0x04;
/// Page flag: freelist page (`FreelistPageFlag`).
pub(crate) const FREELIST_PAGE_FLAG: u16 = 0x10;

/// Leaf element flag: the value is a nested bucket header (`BucketLeafFlag`).
pub(crate) const BUCKET_LEAF_FLAG: u32 = 0x01;

/// Byte offsets inside the page header.
const HDR_ID: usize = 0;
const HDR_FLAGS: usize = 8;
const HDR_COUNT: usize = 10;
const HDR_OVERFLOW: usize = 12;

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}
pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Describe page flags for error messages.
pub(crate) fn flags_name(flags: u16) -> &'static str {
    match flags {
        BRANCH_PAGE_FLAG => "branch",
        LEAF_PAGE_FLAG => "leaf",
        META_PAGE_FLAG => "meta",
        FREELIST_PAGE_FLAG => "freelist",
        0 => "free (no flags)",
        _ => "unknown",
    }
}

/// What kind of page a reference must lead to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageKind {
    Branch,
    Leaf,
}

/// A branch or leaf page, header parsed and element array bounds-checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Page<'a> {
    /// Page id used in error messages: the page's own id, or for an inline
    /// bucket page, the id of the page holding the bucket value.
    pub pgid: u64,
    /// Absolute file offset of `bytes[0]`.
    pub offset: u64,
    pub kind: PageKind,
    pub count: usize,
    pub overflow: u32,
    /// The whole page span (header included).
    pub bytes: &'a [u8],
}

/// A parsed leaf element.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeafElement<'a> {
    pub flags: u32,
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// Absolute file offset of the value (for bucket headers and errors).
    pub value_offset: u64,
}

/// A parsed branch element.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BranchElement<'a> {
    pub key: &'a [u8],
    pub child: u64,
}

/// Raw header fields of the page starting at `bytes[0]`.
pub(crate) struct Header {
    pub id: u64,
    pub flags: u16,
    pub count: u16,
    pub overflow: u32,
}

pub(crate) fn read_header(bytes: &[u8]) -> Option<Header> {
    Some(Header {
        id: u64_at(bytes, HDR_ID)?,
        flags: u16_at(bytes, HDR_FLAGS)?,
        count: u16_at(bytes, HDR_COUNT)?,
        overflow: u32_at(bytes, HDR_OVERFLOW)?,
    })
}

impl<'a> Page<'a> {
    /// Interpret `bytes` (a whole page span) as a branch or leaf page.
    /// `pgid`/`offset` are only used to label errors.
    pub fn parse(pgid: u64, offset: u64, bytes: &'a [u8]) -> Result<Page<'a>, BoltError> {
        let hdr = read_header(bytes).ok_or(BoltError::PageTooSmall {
            pgid,
            offset,
            len: bytes.len(),
        })?;
        let kind = match hdr.flags {
            BRANCH_PAGE_FLAG => PageKind::Branch,
            LEAF_PAGE_FLAG => PageKind::Leaf,
            other => {
                return Err(BoltError::UnexpectedPageType {
                    pgid,
                    offset,
                    flags: other,
                    found: flags_name(other),
                    expected: "branch or leaf",
                })
            }
        };
        let count = usize::from(hdr.count);
        // Both element kinds are 16 bytes; the array must fit in the page.
        let array_end = count
            .checked_mul(LEAF_ELEMENT_SIZE)
            .and_then(|n| n.checked_add(PAGE_HEADER_SIZE));
        if !matches!(array_end, Some(end) if end <= bytes.len()) {
            return Err(BoltError::ElementArrayOutOfBounds {
                pgid,
                offset,
                count,
                page_len: bytes.len(),
            });
        }
        Ok(Page {
            pgid,
            offset,
            kind,
            count,
            overflow: hdr.overflow,
            bytes,
        })
    }

    fn element_base(&self, index: usize) -> Result<usize, BoltError> {
        if index >= self.count {
            return Err(self.element_error(index, "element index past the page's count"));
        }
        // Cannot overflow: checked against the page length in `parse`.
        Ok(PAGE_HEADER_SIZE + index * LEAF_ELEMENT_SIZE)
    }

    fn element_error(&self, index: usize, what: &'static str) -> BoltError {
        BoltError::ElementOutOfBounds {
            pgid: self.pgid,
            offset: self.offset + (PAGE_HEADER_SIZE + index * LEAF_ELEMENT_SIZE) as u64,
            index,
            what,
        }
    }

    /// Slice `len` bytes starting `pos` bytes after the element at `base`.
    fn slice_from(&self, base: usize, pos: u32, len: u32) -> Option<(&'a [u8], usize)> {
        let start = base.checked_add(usize::try_from(pos).ok()?)?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        Some((self.bytes.get(start..end)?, start))
    }

    /// The leaf element at `index`; key and value ranges are checked against the page.
    pub fn leaf_element(&self, index: usize) -> Result<LeafElement<'a>, BoltError> {
        debug_assert_eq!(self.kind, PageKind::Leaf);
        let base = self.element_base(index)?;
        let field = |at| {
            u32_at(self.bytes, base + at).ok_or_else(|| self.element_error(index, "element header"))
        };
        let flags = field(0)?;
        let pos = field(4)?;
        let ksize = field(8)?;
        let vsize = field(12)?;
        let total = ksize
            .checked_add(vsize)
            .ok_or_else(|| self.element_error(index, "key and value sizes overflow"))?;
        let (kv, start) = self.slice_from(base, pos, total).ok_or_else(|| {
            self.element_error(index, "key/value range runs past the end of the page")
        })?;
        let (key, value) = kv.split_at(ksize as usize);
        Ok(LeafElement {
            flags,
            key,
            value,
            value_offset: self.offset + (start + ksize as usize) as u64,
        })
    }

    /// The branch element at `index`; the key range is checked against the page.
    pub fn branch_element(&self, index: usize) -> Result<BranchElement<'a>, BoltError> {
        debug_assert_eq!(self.kind, PageKind::Branch);
        let base = self.element_base(index)?;
        let pos =
            u32_at(self.bytes, base).ok_or_else(|| self.element_error(index, "element header"))?;
        let ksize = u32_at(self.bytes, base + 4)
            .ok_or_else(|| self.element_error(index, "element header"))?;
        let child = u64_at(self.bytes, base + 8)
            .ok_or_else(|| self.element_error(index, "element header"))?;
        let (key, _) = self
            .slice_from(base, pos, ksize)
            .ok_or_else(|| self.element_error(index, "key range runs past the end of the page"))?;
        Ok(BranchElement { key, child })
    }

    /// Absolute file offset of element `index` (for error messages).
    pub fn element_offset(&self, index: usize) -> u64 {
        self.offset + (PAGE_HEADER_SIZE + index.min(self.count) * LEAF_ELEMENT_SIZE) as u64
    }
}
