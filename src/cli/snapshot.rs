//! Reading a snapshot from the CLI: open it (exit 2 on failure) and release
//! output only once its sha256 trailer has been verified.

use super::gate::GatedWriter;
use super::{CmdResult, Failure};
use atrest::snapshot::{HashCheck, Snapshot, SnapshotOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Open a snapshot; every failure is exit 2 with the file named. The sha256
/// trailer is checked later, on another thread: see [`with_verified_stdout`].
pub fn open_snapshot(path: &std::path::Path, skip_hash_check: bool) -> Result<Snapshot, Failure> {
    let options = SnapshotOptions {
        skip_hash_check,
        defer_hash_check: true,
    };
    Snapshot::open(path, options).map_err(Failure::usage)
}

/// Run `f` with a writer to stdout that releases output only once the
/// snapshot's sha256 trailer has been verified (on a thread of its own), and
/// with `hold_to_end` only when `f` calls [`GatedWriter::open`] at its end.
pub fn with_verified_stdout<R>(
    snap: &Snapshot,
    hold_to_end: bool,
    f: impl FnOnce(&mut GatedWriter<'_, std::io::StdoutLock<'static>>) -> R,
) -> R {
    let hashing = AtomicBool::new(snap.hash_check() == HashCheck::Pending);
    std::thread::scope(|s| {
        let check = (snap.hash_check() == HashCheck::Pending).then(|| {
            s.spawn(|| {
                // Cleared however the check ends (a panic included): workers
                // held back by it must not wait for good.
                struct Done<'a>(&'a AtomicBool);
                impl Drop for Done<'_> {
                    fn drop(&mut self) {
                        self.0.store(false, Ordering::Release);
                    }
                }
                let _done = Done(&hashing);
                snap.verify_hash()
            })
        });
        let mut gate = GatedWriter::new(std::io::stdout().lock(), check)
            .hold_to_end(hold_to_end)
            .hashing(&hashing);
        f(&mut gate)
    })
}

/// Release held output once a run has produced `result`: a report with
/// findings (exit 1) is released, an error (exit 2) drops what was held.
pub fn release<W: Write>(gate: &mut GatedWriter<'_, W>, result: CmdResult) -> CmdResult {
    if matches!(&result, Err(f) if f.code == 2) {
        return result;
    }
    gate.open().map_err(Failure::output)?;
    gate.flush().map_err(Failure::output)?;
    result
}
