//! Output held back until it is known to be right: until a snapshot's sha256
//! check has passed, and, for a command that reads through a KMS plugin, until
//! the whole run is complete.
//!
//! Hashing a large snapshot takes as long as auditing it, so the check runs on
//! its own thread while the data is read. Nothing reaches the real output before
//! the check has passed: output is held in memory (up to [`HOLD_LIMIT`], then the
//! writer waits for the hash), and on a mismatch it is dropped and the command
//! fails with the mismatch (exit 2).
//!
//! A KMS plugin can become unusable in the middle of a run (it dies, hangs or
//! turns unhealthy: [`atrest::kms::KmsError::is_fatal`]); the command then stops
//! with exit 2 and must not leave part of a report behind. With
//! [`GatedWriter::hold_to_end`] nothing is released before [`GatedWriter::open`],
//! which a command calls only once its run is complete. Past [`HOLD_LIMIT`] the
//! held bytes go to an anonymous temporary file (mode 0600, unlinked as it is
//! created, so nothing is left behind even if the process is killed), keeping
//! memory bounded; on failure it is dropped unread.
//!
//! What is held may be decrypted plaintext: the buffer is allocated once at its
//! limit (so it never reallocates and leaves copies behind) and wiped as soon as
//! it has been released or dropped; a temporary file is overwritten with zeros
//! before it is closed (best effort: a copy-on-write file system may keep the
//! old blocks until they are reused).

use atrest::snapshot::{HashCheck, SnapshotError};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::atomic::AtomicBool;
use std::thread::ScopedJoinHandle;
use zeroize::{Zeroize, Zeroizing};

/// Most bytes held back in memory.
pub const HOLD_LIMIT: usize = 64 << 20;

type Check<'s> = ScopedJoinHandle<'s, Result<HashCheck, SnapshotError>>;

/// A writer that holds output until the snapshot's hash check has passed (and,
/// with [`GatedWriter::hold_to_end`], until [`GatedWriter::open`]).
pub struct GatedWriter<'s, W: Write> {
    inner: W,
    check: Option<Check<'s>>,
    held: Vec<u8>,
    /// Hold everything until `open`, whatever the check says meanwhile.
    to_end: bool,
    /// Held bytes that did not fit in memory (they come before `held`).
    spool: Option<Spool>,
    /// Most bytes held in memory ([`HOLD_LIMIT`]; smaller in tests).
    limit: usize,
    /// Set while the hash check runs (see [`GatedWriter::hashing`]).
    hashing: Option<&'s AtomicBool>,
}

impl<'s, W: Write> GatedWriter<'s, W> {
    /// Gate `inner` on `check` (`None`: nothing to wait for).
    pub fn new(inner: W, check: Option<Check<'s>>) -> Self {
        GatedWriter {
            inner,
            check,
            held: Vec::new(),
            to_end: false,
            spool: None,
            limit: HOLD_LIMIT,
            hashing: None,
        }
    }

    /// Say which flag is set while the check runs, for the workers to pace
    /// themselves by ([`GatedWriter::hash_running`]).
    pub fn hashing(mut self, flag: &'s AtomicBool) -> Self {
        self.hashing = Some(flag);
        self
    }

    /// The flag set while the hash check runs, if there is one.
    pub fn hash_running(&self) -> Option<&'s AtomicBool> {
        self.hashing
    }

    /// With `yes`, hold every byte until [`GatedWriter::open`] (spooled to a
    /// temporary file past [`HOLD_LIMIT`]); dropped unreleased otherwise.
    pub fn hold_to_end(mut self, yes: bool) -> Self {
        self.to_end = yes;
        self
    }

    /// Wait for the check, then release what was held: the output is complete.
    pub fn open(&mut self) -> io::Result<()> {
        if let Some(h) = self.check.take() {
            let result = h.join().map_err(|_| {
                io::Error::other("the sha256 check of the snapshot stopped unexpectedly")
            })?;
            if let Err(e) = result {
                self.wipe();
                return Err(io::Error::other(e));
            }
        }
        self.to_end = false;
        let mut released = Ok(());
        if let Some(spool) = &mut self.spool {
            released = spool.copy_to(&mut self.inner);
        }
        if released.is_ok() {
            released = self.inner.write_all(&self.held);
        }
        self.wipe();
        released
    }

    /// Wipe what is held and free the buffer.
    fn wipe(&mut self) {
        // Only `len` bytes were ever written: the buffer never reallocated.
        self.held.as_mut_slice().zeroize();
        self.held = Vec::new();
        // Dropping the spool wipes it.
        self.spool = None;
    }

    /// Hold `buf` in memory, or past the limit in the temporary file.
    fn hold(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.held.capacity() < self.limit {
            // Once, before anything is held (untouched pages cost no memory).
            debug_assert!(self.held.is_empty());
            self.held.reserve_exact(self.limit);
        }
        if self.held.len() + buf.len() > self.limit {
            let spool = match &mut self.spool {
                Some(s) => s,
                None => self.spool.insert(Spool::new()?),
            };
            spool.append(&self.held)?;
            self.held.as_mut_slice().zeroize();
            self.held.clear();
            if buf.len() > self.limit {
                return spool.append(buf);
            }
        }
        self.held.extend_from_slice(buf);
        Ok(())
    }
}

impl<W: Write> Drop for GatedWriter<'_, W> {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl<W: Write> Write for GatedWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.to_end {
            self.hold(buf)?;
            return Ok(buf.len());
        }
        if let Some(h) = &self.check {
            if !h.is_finished() && self.held.len() + buf.len() <= self.limit {
                self.hold(buf)?;
                return Ok(buf.len());
            }
            self.open()?;
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.to_end {
            return Ok(());
        }
        if self.check.as_ref().is_some_and(|h| h.is_finished()) {
            self.open()?;
        }
        if self.check.is_none() {
            self.inner.flush()?;
        }
        Ok(())
    }
}

/// Held output past [`HOLD_LIMIT`]: an anonymous temporary file.
struct Spool {
    file: File,
    len: u64,
}

/// Chunk size for copying and wiping a spool.
const SPOOL_CHUNK: usize = 1 << 16;

impl Spool {
    fn new() -> io::Result<Spool> {
        // tempfile(): O_TMPFILE (or created and unlinked at once), mode 0600.
        let file = tempfile::tempfile().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot hold the output in a temporary file under {}: {e}; set TMPDIR to a writable directory",
                    std::env::temp_dir().display()
                ),
            )
        })?;
        Ok(Spool { file, len: 0 })
    }

    fn append(&mut self, b: &[u8]) -> io::Result<()> {
        self.file.write_all(b)?;
        self.len += b.len() as u64;
        Ok(())
    }

    fn copy_to(&mut self, out: &mut impl Write) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        let mut buf = Zeroizing::new(vec![0u8; SPOOL_CHUNK]);
        let mut left = self.len;
        while left > 0 {
            let n = usize::try_from(left).map_or(SPOOL_CHUNK, |l| l.min(SPOOL_CHUNK));
            self.file.read_exact(&mut buf[..n])?;
            out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // Best effort: overwrite with zeros, then truncate.
        let zeros = vec![0u8; SPOOL_CHUNK];
        if self.file.seek(SeekFrom::Start(0)).is_ok() {
            let mut left = self.len;
            while left > 0 {
                let n = usize::try_from(left).map_or(SPOOL_CHUNK, |l| l.min(SPOOL_CHUNK));
                if self.file.write_all(&zeros[..n]).is_err() {
                    break;
                }
                left -= n as u64;
            }
            let _ = self.file.sync_data();
        }
        let _ = self.file.set_len(0);
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

    /// Held to the end: nothing is written before `open`, even with no check
    /// to wait for; past the limit the bytes go through the temporary file and
    /// come out whole and in order.
    #[test]
    fn held_to_end_spools_past_the_limit_and_releases_in_order() {
        let mut out = Vec::new();
        let mut expected = Vec::new();
        {
            let mut g = GatedWriter::new(&mut out, None).hold_to_end(true);
            g.limit = 1000;
            for i in 0..50u8 {
                let chunk = vec![i; 37 + usize::from(i) * 13];
                g.write_all(&chunk).unwrap();
                g.flush().unwrap();
                expected.extend_from_slice(&chunk);
            }
            g.write_all(&[200; 2500]).unwrap();
            expected.extend_from_slice(&[200; 2500]);
            assert!(g.spool.as_ref().is_some_and(|s| s.len > 0), "spooled");
            assert!(g.held.len() <= 1000);
            g.open().unwrap();
            assert!(g.spool.is_none() && g.held.is_empty());
            // Released: later writes pass straight through.
            g.write_all(b"tail").unwrap();
            expected.extend_from_slice(b"tail");
        }
        assert_eq!(out, expected);
    }

    /// Dropped without `open` (the run failed): nothing reaches the output.
    #[test]
    fn held_to_end_and_dropped_releases_nothing() {
        let mut out = Vec::new();
        std::thread::scope(|s| {
            let check = s.spawn(|| Ok(HashCheck::Verified));
            let mut g = GatedWriter::new(&mut out, Some(check)).hold_to_end(true);
            g.limit = 100;
            while g.check.as_ref().is_some_and(|h| !h.is_finished()) {
                std::thread::yield_now();
            }
            g.write_all(&[1; 1000]).unwrap();
            g.flush().unwrap();
            g.write_all(b"{\"partial\":").unwrap();
        });
        assert!(out.is_empty(), "{} bytes released", out.len());
    }
}
