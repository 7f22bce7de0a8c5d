//! Writing journaled blocks into their files, on a thread of its own, so
//! that placing one batch overlaps flushing the journal for the next.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender};

use bytes::Bytes;
use keep_locator::BlockHash;
use rustix::fs::{self, AtFlags, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use tokio::sync::oneshot;

use super::super::{Stripes, layout, set_times_now, xsum};
use super::{Shared, lock};

/// Writes waiting to be journaled, answered together (one block for a
/// plain write, a few for [`super::Journal::write_many`]).
pub(crate) type Pending = (Vec<(BlockHash, Bytes)>, oneshot::Sender<io::Result<()>>);

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
    let at = match Root::open(root) {
        Ok(at) => at,
        Err(e) => {
            tracing::error!(error = %e, "could not open the volume's folder for the journal placer");
            shared.fail("placement", &e);
            return;
        }
    };
    for job in jobs {
        match job {
            Job::Place(batch) => place_batch(&at, &stripes, &shared, batch),
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Places each block of a journaled batch; a block placed is no longer
/// served from memory. Run by the placer thread, and by the journal thread
/// when the placer's queue is full (see `Writer::commit`).
pub(crate) fn place_batch(
    at: &Root,
    stripes: &Stripes,
    shared: &Shared,
    batch: Vec<(BlockHash, Bytes)>,
) {
    for (hash, data) in batch {
        match place(at, stripes, shared, &hash, &data) {
            Ok(()) => {
                lock(&shared.unplaced).remove(&hash);
            }
            // It stays readable from memory, and in the journal for the
            // next open.
            Err(e) => {
                tracing::error!(block = %hash, error = %e, "could not place a journaled block");
                shared.fail("placement", &e);
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

/// The volume's folder, opened once: the placer names each file relative
/// to it, so a block's calls walk two path components instead of the
/// whole root path.
pub(crate) struct Root {
    path: PathBuf,
    fd: OwnedFd,
}

impl Root {
    pub(crate) fn open(path: PathBuf) -> io::Result<Root> {
        let fd = fs::open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { path, fd })
    }
}

/// A temporary file named relative to the root, removed when dropped
/// unless renamed into place.
struct Temp<'a> {
    root: &'a Root,
    name: String,
    file: File,
    armed: bool,
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::unlinkat(&self.root.fd, &self.name, AtFlags::empty());
        }
    }
}

/// Creates a temporary file for `hash` in its folder, making the folder if
/// missing (recorded in `shared.new_dirs` first: the checkpoint's `syncfs`
/// makes it durable, and a replay makes it again; until then a plain
/// write into it flushes the root itself, see `Journal::dir_is_new`).
fn create_temp<'a>(root: &'a Root, shared: &Shared, hash: &BlockHash) -> io::Result<Temp<'a>> {
    let hex = hash.to_hex();
    let name = format!("{}/{}", &hex[..3], layout::temp_name(hash));
    let create = || {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        fs::openat(&root.fd, &name, flags, Mode::from_bits_truncate(0o666))
    };
    let fd = match create() {
        Err(Errno::NOENT) => {
            lock(&shared.new_dirs).insert(root.path.join(&hex[..3]));
            match fs::mkdirat(&root.fd, &hex[..3], Mode::from_bits_truncate(0o777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            create()?
        }
        other => other?,
    };
    Ok(Temp {
        root,
        name,
        file: File::from(fd),
        armed: true,
    })
}

/// Places a journaled block's file without flushing it: an unnamed file
/// linked in ([`link_new`]; where that cannot be done, a temporary file
/// renamed) if no file has the block's name. A file already
/// holding these bytes is only touched (its mtime set to now), as a plain
/// write of an existing block would do; any other file there is replaced.
fn place(
    root: &Root,
    stripes: &Stripes,
    shared: &Shared,
    hash: &BlockHash,
    data: &[u8],
) -> io::Result<()> {
    #[cfg(test)]
    if let Some(errno) = lock(&shared.faults).placing.take() {
        return Err(errno.into());
    }
    let sum = blake3::hash(data);
    let name = layout::block_rel(hash);
    let linked = if shared.named_temps.load(Ordering::Relaxed) {
        Linked::Unsupported
    } else {
        link_new(root, stripes, shared, hash, data, &sum, &name)?
    };
    let named = |root| -> io::Result<Temp<'_>> {
        let t = create_temp(root, shared, hash)?;
        (&t.file).write_all(data)?;
        xsum::keep(&t.file, hash, sum.as_bytes());
        Ok(t)
    };
    let mut tmp = match linked {
        Linked::Placed => return Ok(()),
        Linked::Taken => None,
        Linked::Unsupported => {
            if !shared.named_temps.swap(true, Ordering::Relaxed) {
                tracing::debug!(
                    "no unnamed files here: the journal's placer names its temporary files"
                );
            }
            Some(named(root)?)
        }
    };
    let _guard = stripes.lock(hash);
    if let Some(t) = &mut tmp {
        match fs::renameat_with(&root.fd, &t.name, &root.fd, &name, RenameFlags::NOREPLACE) {
            Ok(()) => {
                t.armed = false;
                return Ok(());
            }
            // Taken (or a file system without `RENAME_NOREPLACE`).
            Err(Errno::EXIST | Errno::INVAL) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let path = root.path.join(&name);
    if holds(&path, data) && File::open(&path).and_then(|f| set_times_now(&f)).is_ok() {
        return Ok(());
    }
    let mut t = match tmp {
        Some(t) => t,
        None => named(root)?,
    };
    fs::renameat(&root.fd, &t.name, &root.fd, &name)?;
    t.armed = false;
    Ok(())
}

/// What [`link_new`] did.
enum Linked {
    /// The block's file is in place.
    Placed,
    /// A file has the block's name already; nothing was linked.
    Taken,
    /// This system cannot make unnamed files or link them in.
    Unsupported,
}

/// Writes `data` (and its sum) into a new unnamed file in the block's
/// folder (`O_TMPFILE`, making the folder if missing, as [`create_temp`]
/// does) and links it in under `name` unless that is taken: the file
/// appears whole at once, as a renamed temporary file does, for one
/// directory entry instead of two and a rename. A crash before the link
/// leaves nothing behind.
fn link_new(
    root: &Root,
    stripes: &Stripes,
    shared: &Shared,
    hash: &BlockHash,
    data: &[u8],
    sum: &blake3::Hash,
    name: &str,
) -> io::Result<Linked> {
    let dir = &name[..3];
    let unnamed = || {
        let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
        fs::openat(&root.fd, dir, flags, Mode::from_bits_truncate(0o666))
    };
    let fd = match unnamed() {
        Err(Errno::NOENT) => {
            lock(&shared.new_dirs).insert(root.path.join(dir));
            match fs::mkdirat(&root.fd, dir, Mode::from_bits_truncate(0o777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            unnamed()
        }
        other => other,
    };
    let fd = match fd {
        Ok(fd) => fd,
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => return Ok(Linked::Unsupported),
        Err(e) => return Err(e.into()),
    };
    let file = File::from(fd);
    (&file).write_all(data)?;
    xsum::keep(&file, hash, sum.as_bytes());
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    let _guard = stripes.lock(hash);
    match fs::linkat(fs::CWD, &proc_path, &root.fd, name, AtFlags::SYMLINK_FOLLOW) {
        Ok(()) => Ok(Linked::Placed),
        Err(Errno::EXIST) => Ok(Linked::Taken),
        // No `/proc`, or not allowed to link this way.
        Err(Errno::NOENT | Errno::PERM | Errno::ACCESS) => Ok(Linked::Unsupported),
        Err(e) => Err(e.into()),
    }
}

/// Whether the file at `path` holds exactly `data`.
pub(super) fn holds(path: &Path, data: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|existing| existing == data)
}

/// Writes `data` as `hash`'s file the crash-safe way (at open, for a
/// record whose file is missing or wrong): a temporary file, flushed and
/// renamed into place under the block's lock, then its folder (and the
/// root, for a new folder) flushed. A failure of that last step carries no
/// OS error code: whatever it was, the journal may not come back without
/// a reopen (see `recover`), since the block's name may be in place while
/// the flush that would have made it durable failed.
pub(super) fn write_file(
    root: &Path,
    stripes: &Stripes,
    hash: &BlockHash,
    data: &[u8],
) -> io::Result<()> {
    let tmp = layout::create_temp(root, hash)?;
    tmp.file().write_all(data)?;
    xsum::keep(tmp.file(), hash, blake3::hash(data).as_bytes());
    let _guard = stripes.lock(hash);
    tmp.commit(&layout::block_path(root, hash))
        .map_err(|e| io::Error::other(format!("could not make {hash}'s file durable: {e}")))
}
