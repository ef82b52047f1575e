//! Output that waits for a snapshot's sha256 check.
//!
//! Hashing a large snapshot takes as long as auditing it, so the check runs on
//! its own thread while the data is read. Nothing reaches the real output before
//! the check has passed: output is held in memory (up to [`HOLD_LIMIT`], then the
//! writer waits for the hash), and on a mismatch it is dropped and the command
//! fails with the mismatch (exit 2).

use atrest::snapshot::{HashCheck, SnapshotError};
use std::io::{self, Write};
use std::thread::ScopedJoinHandle;

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
                self.held = Vec::new();
                return Err(io::Error::other(e));
            }
            let held = std::mem::take(&mut self.held);
            self.inner.write_all(&held)?;
        }
        Ok(())
    }
}

impl<W: Write> Write for GatedWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(h) = &self.check {
            if !h.is_finished() && self.held.len() + buf.len() <= HOLD_LIMIT {
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
