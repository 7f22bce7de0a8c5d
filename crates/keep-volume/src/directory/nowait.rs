//! File reads that never wait for the disk, tried on the async worker
//! before a trip to a blocking thread.
//!
//! A trip to tokio's blocking pool and back costs two thread wake-ups and
//! the context switches around them: for a 4 KiB block already in the page
//! cache that is most of the node's CPU per request. So a read is first
//! tried in place with the kernel's "do not block" flags:
//! `openat2(RESOLVE_CACHED)` resolves the path from the dentry cache only,
//! and `preadv2(RWF_NOWAIT)` copies only from the page cache. Whenever the
//! kernel would have to wait (`EAGAIN`), or does not know the flags (an old
//! kernel: then the fast path is switched off for good), these functions
//! answer [`Attempt::WouldBlock`] and the caller takes the blocking path,
//! which gives the same result. Nothing here may block: no `fsync`, no path lookups
//! outside the cache, no reads that miss the cache.

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::{Errno, ReadWriteFlags};

/// Whether a volume's file system takes the flags. Switched off for good,
/// for that volume only, the first time the kernel refuses them.
#[derive(Debug)]
pub(crate) struct Gate {
    /// The folder relative paths start from (the volume root), so a lookup
    /// walks two components instead of the whole absolute path.
    root: OwnedFd,
    unsupported: AtomicBool,
}

/// What an attempt gave.
pub(crate) enum Attempt<T> {
    /// Done without waiting.
    Done(T),
    /// The kernel would have waited: use the blocking path.
    WouldBlock,
}

impl Gate {
    /// A gate whose relative paths start at `root`.
    pub(crate) fn new(root: &Path) -> io::Result<Gate> {
        let fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Gate {
            root: fd,
            unsupported: AtomicBool::new(false),
        })
    }

    /// Whether the fast path is on.
    pub(crate) fn enabled(&self) -> bool {
        !self.unsupported.load(Ordering::Relaxed)
    }

    /// Classifies a failed call: `EAGAIN` means "would block"; an unknown
    /// syscall or flag switches the fast path off; anything else is a real
    /// answer.
    fn classify<T>(&self, e: Errno) -> io::Result<Attempt<T>> {
        match e {
            Errno::AGAIN => Ok(Attempt::WouldBlock),
            Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP => {
                self.unsupported.store(true, Ordering::Relaxed);
                Ok(Attempt::WouldBlock)
            }
            e => Err(io::Error::from(e)),
        }
    }

    /// Opens `path` (relative to the root, or absolute) for reading if the
    /// kernel can resolve it from its
    /// caches alone. A missing file is an `Err(NotFound)` only when the
    /// kernel knows for sure (a cached negative entry); otherwise it is
    /// `WouldBlock`. The file is opened with `O_NOATIME`, so reading it
    /// never updates its access time (which would open a file-system
    /// transaction, and may wait); where that flag is not allowed (a file
    /// of another user, without `CAP_FOWNER`), the blocking path reads it.
    pub(crate) fn open(&self, path: &Path) -> io::Result<Attempt<File>> {
        if !self.enabled() {
            return Ok(Attempt::WouldBlock);
        }
        match rustix::fs::openat2(
            self.root.as_fd(),
            path,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOATIME,
            Mode::empty(),
            ResolveFlags::CACHED,
        ) {
            Ok(fd) => Ok(Attempt::Done(File::from(fd))),
            Err(Errno::PERM) => Ok(Attempt::WouldBlock),
            Err(e) => self.classify(e),
        }
    }

    /// Reads `len` bytes at `offset` if they are all in the page cache.
    /// Ends early only at the end of the file.
    pub(crate) fn read_at(
        &self,
        file: &File,
        offset: u64,
        len: usize,
    ) -> io::Result<Attempt<Bytes>> {
        let mut buf = BytesMut::zeroed(len);
        let (filled, blocked) = self.fill(file, offset, &mut buf)?;
        if blocked {
            return Ok(Attempt::WouldBlock);
        }
        buf.truncate(filled);
        Ok(Attempt::Done(buf.freeze()))
    }

    /// Fills `buf` from `offset` with what the page cache holds: the bytes
    /// read (fewer than `buf.len()` only at the end of the file), and
    /// whether the kernel stopped early because the rest would have to come
    /// from the disk.
    pub(crate) fn fill(
        &self,
        file: &File,
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<(usize, bool)> {
        if !self.enabled() {
            return Ok((0, true));
        }
        let mut filled = 0;
        while filled < buf.len() {
            let mut slices = [IoSliceMut::new(&mut buf[filled..])];
            match rustix::io::preadv2(
                file,
                &mut slices,
                offset + filled as u64,
                ReadWriteFlags::NOWAIT,
            ) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(Errno::INTR) => {}
                Err(e) => {
                    return match self.classify::<()>(e)? {
                        Attempt::WouldBlock => Ok((filled, true)),
                        Attempt::Done(()) => unreachable!("classify never answers Done"),
                    };
                }
            }
        }
        Ok((filled, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_cached_file_and_knows_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"hello, world").unwrap();
        // Just written: its dentry and pages are cached.
        let gate = Gate::new(dir.path()).unwrap();
        let Attempt::Done(file) = gate.open(Path::new("f")).unwrap() else {
            assert!(!gate.enabled(), "a fresh file must open from the cache");
            return;
        };
        let Attempt::Done(data) = gate.read_at(&file, 7, 100).unwrap() else {
            panic!("a just-written file is in the page cache");
        };
        assert_eq!(&data[..], b"world");
        let Attempt::Done(all) = gate.read_at(&file, 0, 12).unwrap() else {
            panic!("cached");
        };
        assert_eq!(&all[..], b"hello, world");
        // A name just looked up and missed is a cached negative entry, or
        // unknown to the cache: never a wrong answer.
        assert!(std::fs::metadata(dir.path().join("nope")).is_err());
        match gate.open(Path::new("nope")) {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            Ok(Attempt::WouldBlock) => {}
            Ok(Attempt::Done(_)) => panic!("opened a missing file"),
        }
    }
}
