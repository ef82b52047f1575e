//! An ordered, bounded, parallel map over chunks of records.
//!
//! Workers take chunks in order from a shared counter, turn each into a result
//! (decrypt, decode, classify, format into bytes) and hand it to the calling
//! thread, which emits the results strictly in chunk order. At most
//! `threads * WINDOW_PER_THREAD` chunks are in flight (taken but not yet emitted),
//! so memory stays bounded whatever the number of chunks; a worker that runs too far
//! ahead of the emitter waits. With one thread the work runs on the calling thread
//! alone, chunk after chunk: the reference that the parallel run must equal byte
//! for byte.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

/// Chunks each worker may be ahead of the emitter.
const WINDOW_PER_THREAD: usize = 4;

/// The number of worker threads to use when the caller does not say:
/// the number of CPUs available to this process.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Map `work` over chunks `0..count` on `threads` threads and pass each result
/// to `emit` in chunk order. `emit` runs on the calling thread; its first error
/// stops the workers (chunks not yet started are skipped) and is returned.
pub fn ordered_map<T, E>(
    count: usize,
    threads: usize,
    work: impl Fn(usize) -> T + Sync,
    emit: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E>
where
    T: Send,
{
    ordered_map_paced(count, threads, None, work, emit)
}

/// [`ordered_map`], with all workers but the first waiting while `hold_back`
/// is set: a snapshot's sha256 check runs on a thread of its own, and nothing
/// is released before it passes, so until then one worker is enough to keep
/// the output coming, and the check gets a core to itself (it finishes
/// sooner, and less output has to be held back meanwhile).
pub fn ordered_map_paced<T, E>(
    count: usize,
    threads: usize,
    hold_back: Option<&AtomicBool>,
    work: impl Fn(usize) -> T + Sync,
    mut emit: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E>
where
    T: Send,
{
    let threads = threads.max(1).min(count.max(1));
    if threads == 1 {
        for i in 0..count {
            emit(work(i))?;
        }
        return Ok(());
    }
    let window = threads * WINDOW_PER_THREAD;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // The index of the next chunk to emit, and a signal when it moves.
    let emitted = Mutex::new(0usize);
    let moved = Condvar::new();
    let (tx, rx) = mpsc::channel::<(usize, T)>();
    std::thread::scope(|s| {
        for worker in 0..threads {
            let tx = tx.clone();
            let (work, next, stop, emitted, moved) = (&work, &next, &stop, &emitted, &moved);
            s.spawn(move || loop {
                // Held back: wait, unless the run stopped or every chunk is
                // taken (the flag is only a hint; nothing waits on it for good).
                if worker > 0 {
                    while hold_back.is_some_and(|h| h.load(Ordering::Acquire))
                        && !stop.load(Ordering::Relaxed)
                        && next.load(Ordering::Relaxed) < count
                    {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || stop.load(Ordering::Relaxed) {
                    return;
                }
                {
                    let mut e = lock(emitted);
                    while i >= *e + window && !stop.load(Ordering::Relaxed) {
                        e = moved.wait(e).unwrap_or_else(|p| p.into_inner());
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if tx.send((i, work(i))).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, T> = BTreeMap::new();
        let mut want = 0usize;
        let mut result = Ok(());
        while want < count {
            let Ok((i, t)) = rx.recv() else { break };
            pending.insert(i, t);
            while let Some(t) = pending.remove(&want) {
                if let Err(e) = emit(t) {
                    result = Err(e);
                    break;
                }
                want += 1;
                *lock(&emitted) = want;
                moved.notify_all();
            }
            if result.is_err() {
                break;
            }
        }
        if result.is_err() {
            stop.store(true, Ordering::Relaxed);
            // Wake workers waiting for the window so they can see `stop`.
            let _guard = lock(&emitted);
            moved.notify_all();
        }
        drop(rx);
        result
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order_whatever_the_thread_count() {
        for threads in [1, 2, 3, 8] {
            let mut seen = Vec::new();
            ordered_map(
                100,
                threads,
                |i| {
                    // Uneven work so that later chunks often finish first.
                    if i % 7 == 0 {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    i * 10
                },
                |v| {
                    seen.push(v);
                    Ok::<(), ()>(())
                },
            )
            .unwrap();
            assert_eq!(seen, (0..100).map(|i| i * 10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn held_back_workers_wait_until_the_flag_clears() {
        let hold = AtomicBool::new(true);
        let mut seen = Vec::new();
        ordered_map_paced(
            40,
            3,
            Some(&hold),
            |i| {
                std::thread::sleep(std::time::Duration::from_millis(1));
                (i, std::thread::current().id())
            },
            |v| {
                if v.0 == 15 {
                    hold.store(false, Ordering::Release);
                }
                seen.push(v);
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert_eq!(
            seen.iter().map(|v| v.0).collect::<Vec<_>>(),
            (0..40).collect::<Vec<_>>()
        );
        // Until chunk 15 was emitted, one worker took every chunk.
        assert!(seen[..=15].iter().all(|v| v.1 == seen[0].1));
    }

    /// A flag that never clears (a check that died) does not hang the run:
    /// the first worker does every chunk and the others leave.
    #[test]
    fn a_flag_that_never_clears_only_slows_the_run() {
        let hold = AtomicBool::new(true);
        let mut seen = Vec::new();
        ordered_map_paced(
            30,
            3,
            Some(&hold),
            |i| i,
            |v| {
                seen.push(v);
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn an_emit_error_stops_the_run_and_bounds_the_work() {
        let started = AtomicUsize::new(0);
        let r = ordered_map(
            10_000,
            4,
            |i| {
                started.fetch_add(1, Ordering::Relaxed);
                i
            },
            |v| if v == 5 { Err(v) } else { Ok(()) },
        );
        assert_eq!(r, Err(5));
        // Workers never run more than the window past the emitter.
        assert!(started.load(Ordering::Relaxed) <= 6 + 4 * WINDOW_PER_THREAD + 4);
    }
}
