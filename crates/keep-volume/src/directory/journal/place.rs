//! Writing journaled blocks into their files, on a thread of its own, so
//! that placing one batch overlaps flushing the journal for the next.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::SystemTime;

use bytes::Bytes;
use keep_locator::BlockHash;
use tokio::sync::oneshot;

use super::super::{Stripes, layout};
use super::{Shared, lock};

/// A journaled write waiting for its file and its answer.
pub(crate) type Pending = (BlockHash, Bytes, oneshot::Sender<io::Result<()>>);

/// What the placer thread is asked to do.
pub(crate) enum Job {
    /// Write these blocks' files and answer each write.
    Place(Vec<Pending>),
    /// Answer once every earlier job is done.
    Barrier(SyncSender<()>),
}

/// Runs the placer until its queue closes.
pub(crate) fn run(root: PathBuf, stripes: Arc<Stripes>, shared: Arc<Shared>, jobs: Receiver<Job>) {
    for job in jobs {
        match job {
            Job::Place(batch) => {
                for (hash, data, done) in batch {
                    let _ = done.send(place(&root, &stripes, &shared, &hash, &data));
                }
            }
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Writes a journaled block's file: temporary file and rename, no flush.
/// A file already holding these bytes is only touched (its mtime set to
/// now), as a plain write of an existing block would do.
fn place(
    root: &Path,
    stripes: &Stripes,
    shared: &Shared,
    hash: &BlockHash,
    data: &[u8],
) -> io::Result<()> {
    let path = layout::block_path(root, hash);
    if let Ok(existing) = std::fs::read(&path)
        && existing == data
    {
        let _guard = stripes.lock(hash);
        let now = SystemTime::now();
        let times = std::fs::FileTimes::new()
            .set_modified(now)
            .set_accessed(now);
        if File::open(&path).and_then(|f| f.set_times(times)).is_ok() {
            return Ok(());
        }
    }
    // A new folder needs no flush now: the checkpoint's `syncfs` makes it
    // durable, and a replay makes it again. Until then a plain write into
    // it flushes the root itself (see `Journal::dir_is_new`).
    let (tmp, made_dir) = layout::create_temp(root, hash, false)?;
    if made_dir {
        lock(&shared.new_dirs).insert(layout::block_dir(root, hash));
    }
    tmp.file().write_all(data)?;
    let _guard = stripes.lock(hash);
    tmp.commit_unsynced(&path)
}
