//! In-order iteration over a bucket's B+tree (bbolt `cursor.go`, read-only).
//!
//! The cursor keeps the path from the bucket's root to the current leaf. Every
//! step re-checks what the file claims: child pages must be branch or leaf pages
//! below the high-water mark, not already on the path (a cycle), not deeper than
//! [`MAX_TREE_DEPTH`](super::MAX_TREE_DEPTH), non-empty, and keys must strictly
//! increase. Together these bound the work to the size of the file.

use super::bucket::{Bucket, Entry};
use super::page::{Page, PageKind};
use super::{BoltError, Referrer, MAX_TREE_DEPTH};

/// Iterator over `(key, entry)` pairs of a bucket in key order.
pub struct BucketIter<'a> {
    bucket: Bucket<'a>,
    started: bool,
    done: bool,
    stack: Vec<(Page<'a>, usize)>,
    last_key: Option<&'a [u8]>,
}

type Item<'a> = (&'a [u8], Entry<'a>);

impl<'a> BucketIter<'a> {
    pub(crate) fn new(bucket: Bucket<'a>) -> Self {
        BucketIter {
            bucket,
            started: false,
            done: false,
            stack: Vec::new(),
            last_key: None,
        }
    }

    /// Like `next`, calling `on_page` for every page the cursor enters.
    pub(crate) fn next_with(
        &mut self,
        on_page: &mut dyn FnMut(&Page<'a>, bool) -> Result<(), BoltError>,
    ) -> Option<Result<Item<'a>, BoltError>> {
        if self.done {
            return None;
        }
        match self.advance(on_page) {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                self.stack.clear();
                Some(Err(e))
            }
        }
    }

    fn advance(
        &mut self,
        on_page: &mut dyn FnMut(&Page<'a>, bool) -> Result<(), BoltError>,
    ) -> Result<Option<Item<'a>>, BoltError> {
        if !self.started {
            self.started = true;
            let root = self.bucket.load_root()?;
            on_page(&root, self.bucket.is_inline())?;
            self.stack.push((root, 0));
        }
        loop {
            let Some((page, index)) = self.stack.last_mut() else {
                return Ok(None);
            };
            let page = *page;
            if *index >= page.count {
                self.stack.pop();
                continue;
            }
            let i = *index;
            *index += 1;
            match page.kind {
                PageKind::Leaf => {
                    let elem = page.leaf_element(i)?;
                    if self.last_key.is_some_and(|prev| elem.key <= prev) {
                        return Err(BoltError::KeysOutOfOrder {
                            pgid: page.pgid,
                            offset: page.element_offset(i),
                            index: i,
                        });
                    }
                    self.last_key = Some(elem.key);
                    let entry = self.bucket.entry(&page, i, &elem)?;
                    return Ok(Some((elem.key, entry)));
                }
                PageKind::Branch => {
                    let child = page.branch_element(i)?.child;
                    let from = Referrer {
                        pgid: page.pgid,
                        offset: page.element_offset(i),
                    };
                    if self.stack.iter().any(|(p, _)| p.pgid == child) {
                        return Err(BoltError::PageCycle {
                            pgid: child,
                            from_pgid: from.pgid,
                            offset: from.offset,
                        });
                    }
                    if self.stack.len() >= MAX_TREE_DEPTH {
                        return Err(BoltError::TreeTooDeep {
                            pgid: child,
                            offset: from.offset,
                            depth: self.stack.len(),
                        });
                    }
                    let child_page = self.bucket.file.page(child, from)?;
                    if child_page.count == 0 {
                        return Err(BoltError::EmptyPage {
                            pgid: child_page.pgid,
                            offset: child_page.offset,
                        });
                    }
                    on_page(&child_page, false)?;
                    self.stack.push((child_page, 0));
                }
            }
        }
    }
}

impl<'a> Iterator for BucketIter<'a> {
    type Item = Result<(&'a [u8], Entry<'a>), BoltError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_with(&mut |_, _| Ok(()))
    }
}
