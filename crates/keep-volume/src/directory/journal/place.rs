//! Writing journaled blocks into their files, on a thread of its own, so
//! that placing one batch overlaps flushing the journal for the next.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use bytes::Bytes;
use keep_locator::BlockHash;
use tokio::sync::oneshot;

use super::super::{Stripes, layout, set_times_now, xsum};
use super::{Shared, lock};

/// A write waiting to be journaled and answered.
pub(crate) type Pending = (BlockHash, Bytes, oneshot::Sender<io::Result<()>>);

/// What the placer thread is asked to do.
pub(crate) enum Job {
    /// Write these journaled (and answered) blocks' files.
    Place(Vec<(BlockHash, Bytes)>),
    /// Answer once every earlier job is done.
    Barrier(SyncSender<()>),
}

/// Runs the placer until its queue closes.
pub(crate) fn run(root: PathBuf, stripes: Arc<Stripes>, shared: Arc<Shared>, jobs: Receiver<Job>) {
    yield_to_writes();
    for job in jobs {
        match job {
            Job::Place(batch) => {
                for (hash, data) in batch {
                    match place(&root, &stripes, &shared, &hash, &data) {
                        Ok(()) => {
                            lock(&shared.unplaced).remove(&hash);
                        }
                        // It stays readable from memory, and in the journal
                        // for the next open.
                        Err(e) => {
                            tracing::error!(block = %hash, error = %e, "could not place a journaled block");
                            shared.fail("placement", &e);
                        }
                    }
                }
            }
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// How much nicer than the rest of the process the placer runs.
const PLACER_NICE: i32 = 5;

/// Lowers this thread's CPU priority. Placing is off every write's wait
/// (the writes are answered already) and bounded by its queue, so when the
/// cores are busy it should come after the threads a client is waiting on:
/// on the development VM, 4 KiB PUTs went from 12.9k to 14.7k/s (mean of
/// three alternating runs each). If the queue fills, the journal waits for
/// the placer, which then still gets its share of the CPU.
fn yield_to_writes() {
    let me = rustix::thread::gettid();
    let nice = rustix::process::getpriority_process(Some(me)).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(me), nice + PLACER_NICE) {
        tracing::debug!(error = %e, "could not lower the journal placer's priority");
    }
}

/// Places a journaled block's file without flushing it. A file already
/// holding these bytes is only touched (its mtime set to now), as a plain
/// write of an existing block would do.
fn place(
    root: &Path,
    stripes: &Stripes,
    shared: &Shared,
    hash: &BlockHash,
    data: &[u8],
) -> io::Result<()> {
    let path = layout::block_path(root, hash);
    if holds(&path, data) {
        let _guard = stripes.lock(hash);
        if File::open(&path).and_then(|f| set_times_now(&f)).is_ok() {
            return Ok(());
        }
    }
    // A new folder needs no flush now: the checkpoint's `syncfs` makes it
    // durable, and a replay makes it again. Until then a plain write into
    // it flushes the root itself (see `Journal::dir_is_new`).
    let record = |dir: &Path| {
        lock(&shared.new_dirs).insert(dir.to_owned());
    };
    write_file(root, stripes, hash, data, Some(&record))
}

/// Whether the file at `path` holds exactly `data`.
pub(super) fn holds(path: &Path, data: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|existing| existing == data)
}

/// Writes `data` as `hash`'s file: a temporary file, renamed into place
/// under the block's lock. With `defer_dir`, nothing is flushed (new
/// folders are handed to it); without, the file, its folder and any new
/// folder are flushed the crash-safe way.
pub(super) fn write_file(
    root: &Path,
    stripes: &Stripes,
    hash: &BlockHash,
    data: &[u8],
    defer_dir: Option<&dyn Fn(&Path)>,
) -> io::Result<()> {
    let tmp = layout::create_temp(root, hash, defer_dir)?;
    tmp.file().write_all(data)?;
    // Without it the block is checked by MD5: no reason to fail the write.
    if let Err(e) = xsum::set(tmp.file(), data) {
        tracing::debug!(block = %hash, error = %e, "could not keep the block's sum");
    }
    let _guard = stripes.lock(hash);
    let path = layout::block_path(root, hash);
    match defer_dir {
        Some(_) => tmp.commit_unsynced(&path),
        None => tmp.commit(&path),
    }
}
