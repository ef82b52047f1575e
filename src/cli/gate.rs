//! Output that waits for a snapshot's sha256 check.
//!
//! Hashing a large snapshot takes as long as auditing it, so the check runs on
//! its own thread while the data is read. Nothing reaches the real output before
//! the check has passed: output is held in memory (up to [`HOLD_LIMIT`], then the
//! writer waits for the hash), and on a mismatch it is dropped and the command
//! fails with the mismatch (exit 2).
//!
//! What is held is decrypted plaintext: the buffer is allocated once at its
//! limit (so it never reallocates and leaves copies behind) and wiped as soon as
//! it has been released or dropped.

use atrest::snapshot::{HashCheck, SnapshotError};
use std::io::{self, Write};
use std::thread::ScopedJoinHandle;
use zeroize::Zeroize;

/// Most bytes held back while the hash is still being computed.
pub const HOLD_LIMIT: usize = 64 << 20;

type Check<'s> = ScopedJoinHandle<'s, Result<HashCheck, SnapshotError>>;

/// A writer that holds output until the snapshot's hash check has passed.
pub struct GatedWriter<'s, W: Write> {
    inner: W,
    check: Option<Check<'s>>,
    held: Vec<u8>,
}

impl<'s, W: Write> GatedWriter<'s, W> {
    /// Gate `inner` on `check` (`None`: nothing to wait for).
    pub fn new(inner: W, check: Option<Check<'s>>) -> Self {
        GatedWriter {
            inner,
            check,
            held: Vec::new(),
        }
    }

    /// Wait for the check, then release what was held.
    pub fn open(&mut self) -> io::Result<()> {
        if let Some(h) = self.check.take() {
            let result = h.join().map_err(|_| {
                io::Error::other("the sha256 check of the snapshot stopped unexpectedly")
            })?;
            if let Err(e) = result {
                self.wipe();
                return Err(io::Error::other(e));
            }
            let written = self.inner.write_all(&self.held);
            self.wipe();
            written?;
        }
        Ok(())
    }

    /// Wipe what is held and free the buffer.
    fn wipe(&mut self) {
        // Only `len` bytes were ever written: the buffer never reallocated.
        self.held.as_mut_slice().zeroize();
        self.held = Vec::new();
    }
}

impl<W: Write> Drop for GatedWriter<'_, W> {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl<W: Write> Write for GatedWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(h) = &self.check {
            if !h.is_finished() && self.held.len() + buf.len() <= HOLD_LIMIT {
                if self.held.capacity() < HOLD_LIMIT {
                    // Once, before anything is held (untouched pages cost no memory).
                    debug_assert!(self.held.is_empty());
                    self.held.reserve_exact(HOLD_LIMIT);
                }
                self.held.extend_from_slice(buf);
                return Ok(buf.len());
            }
            self.open()?;
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.check.as_ref().is_some_and(|h| h.is_finished()) {
            self.open()?;
        }
        if self.check.is_none() {
            self.inner.flush()?;
        }
        Ok(())
    }
}

/// The snapshot error behind an I/O error from a [`GatedWriter`], if any.
pub fn snapshot_error(e: &io::Error) -> Option<&SnapshotError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<SnapshotError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held plaintext sits in one buffer that never moves (no reallocated
    /// copies left behind) and is released in full once the check passes.
    #[test]
    fn held_output_never_reallocates_and_is_released() {
        let mut out = Vec::new();
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let check = s.spawn(move || {
                let _ = rx.recv();
                Ok(HashCheck::Verified)
            });
            let mut g = GatedWriter::new(&mut out, Some(check));
            g.write_all(b"first").unwrap();
            let at = g.held.as_ptr();
            for _ in 0..1000 {
                g.write_all(&[7u8; 1000]).unwrap();
            }
            assert_eq!(g.held.as_ptr(), at, "the held buffer moved");
            assert_eq!(g.held.len(), 5 + 1_000_000);
            tx.send(()).unwrap();
            g.open().unwrap();
            assert!(g.held.is_empty() && g.held.capacity() == 0);
        });
        assert_eq!(out.len(), 5 + 1_000_000);
        assert!(out.starts_with(b"first"));
    }
}
