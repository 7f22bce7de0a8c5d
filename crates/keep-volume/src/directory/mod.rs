//! The directory backend: blocks as files on a local filesystem.
//!
//! Layout and naming follow Arvados, so an existing Arvados volume
//! directory is served as it is. Blocks over 64 KiB are written through
//! [`crate::crashsafe`]: visible whole or not at all. Blocks up to 64 KiB go
//! through the volume's journal (`journal`): durable in the journal when
//! acknowledged, readable at once (from memory until the journal's placer
//! has written their files, whole, moments later), and flushed in place by
//! the next checkpoint; its file carries the block's BLAKE3 (`xsum`), which
//! reads check instead of the MD5. A crash can leave such a file empty or short
//! under its final name until the next open replays the journal, so a
//! directory handed back to Arvados's keepstore must first have been closed
//! cleanly by this one (the close checkpoints).
//! One process serves a directory at a time: it holds an exclusive lock on
//! `<root>/.keepstore.lock`, which the kernel releases if the process dies.

mod buffers;
mod journal;
mod layout;
mod nowait;
mod read;
mod scan;
mod xsum;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use keep_locator::BlockHash;

use crate::crashsafe::{self, TempFile};
use crate::error::not_found_or_io;
use crate::volume::to_unix_nanos;
use crate::{
    BlockBody, BlockReader, CHUNK_SIZE, ChunkSummer, ChunkSums, CopyId, EmptyTrashStats, Frames,
    IndexSender, Presence, Volume, VolumeError, VolumeParams, VolumeStatus,
};

/// Blocks of at least this size get a checksum sidecar (see
/// [`crate::sums`]): a GET then checks BLAKE3 sums instead of the MD5, at
/// a quarter of the CPU (measured at 256 KiB and 1 MiB). The sidecar takes
/// 4 KiB on disk: about 3% of a block of this size, more below it.
pub(crate) const SIDECAR_MIN: u64 = 128 << 10;

/// Sidecars written after reads at once, per volume ([`Volume::keep_sums`]).
/// Each takes a blocking thread for a small file's create and rename; a
/// read that finds them all busy skips taking its sums.
const SUM_WRITES: usize = 4;

/// Striped locks that serialise touch, trash and commit of the same block.
const LOCK_STRIPES: usize = 64;

/// The free space under which a directory volume counts as full: one
/// largest block, as Arvados.
pub const DEFAULT_MIN_FREE: u64 = 64 << 20;

/// How to open a directory volume.
#[derive(Debug, Clone)]
pub struct DirOptions {
    /// The volume's root folder; created if missing.
    pub root: PathBuf,
    /// Policy settings.
    pub params: VolumeParams,
    /// Below this many free bytes the volume is full.
    pub min_free_bytes: u64,
}

/// A volume in a local folder.
#[derive(Debug, Clone)]
pub struct DirVolume {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    params: VolumeParams,
    device_id: String,
    min_free: u64,
    stripes: Arc<Stripes>,
    /// Small writes go through here (see [`journal`]). Dropped before
    /// `_lock`, so its final checkpoint runs while the volume is still ours.
    journal: journal::Journal,
    /// Whether this file system takes the no-wait read flags.
    nowait: Arc<nowait::Gate>,
    /// The last `statvfs` answer and when it was taken.
    status: Mutex<Option<(Instant, VolumeStatus)>>,
    /// Sidecars being written after reads ([`Volume::keep_sums`]): up to
    /// [`SUM_WRITES`] at a time; more are skipped.
    sum_writes: Arc<tokio::sync::Semaphore>,
    _lock: File,
}

/// How long a free-space reading is reused (every write asks).
const STATUS_FRESH: Duration = Duration::from_secs(1);

impl Inner {
    fn cached_status(&self) -> Option<VolumeStatus> {
        let cached = *self.status.lock().unwrap_or_else(|p| p.into_inner());
        cached
            .filter(|(at, _)| at.elapsed() < STATUS_FRESH)
            .map(|(_, st)| st)
    }

    fn lock(&self, hash: &BlockHash) -> MutexGuard<'_, ()> {
        self.stripes.lock(hash)
    }

    /// The block's stripe lock, taken once the block is not in the journal
    /// (checkpointing first if it is), so that moving it away (trash,
    /// quarantine) cannot be undone by a replay after a crash. The
    /// checkpoint runs without the lock: the placer may need it. With the
    /// journal switched off there is no checkpoint (records stay for the
    /// next open or the journal coming back), but the placer is waited
    /// for, so that a block still on its way cannot reappear after the
    /// move, and a block it failed to place is no longer served from
    /// memory.
    fn lock_settled(&self, hash: &BlockHash) -> Result<MutexGuard<'_, ()>, VolumeError> {
        loop {
            let guard = self.lock(hash);
            if self.journal.usable() {
                if !self.journal.holds(hash) {
                    return Ok(guard);
                }
                drop(guard);
                match self.journal.checkpoint() {
                    // Switched off meanwhile: the next turn settles instead.
                    Err(_) if !self.journal.usable() => {}
                    other => other?,
                }
            } else {
                if self.journal.unplaced(hash).is_none() {
                    return Ok(guard);
                }
                drop(guard);
                self.journal.settle()?;
                self.journal.forget(hash);
            }
        }
    }

    /// A write that ran out of space (or quota) makes the volume full, as
    /// its status says until the next free-space reading, and is answered
    /// as such (507 when no volume can take the block), not as a failing
    /// disk.
    fn full_if_out_of_space(&self, e: VolumeError) -> VolumeError {
        use rustix::io::Errno;
        let out_of_space = |io: &std::io::Error| {
            matches!(Errno::from_io_error(io), Some(Errno::NOSPC | Errno::DQUOT))
        };
        match e {
            VolumeError::Io(io) if out_of_space(&io) => {
                tracing::warn!(root = %self.root.display(), error = %io, "out of space: the volume is full");
                let mut cached = self.status.lock().unwrap_or_else(|p| p.into_inner());
                let used_bytes = cached.map_or(0, |(_, st)| st.used_bytes);
                *cached = Some((
                    Instant::now(),
                    VolumeStatus {
                        available_bytes: 0,
                        used_bytes,
                        full: true,
                    },
                ));
                VolumeError::Full
            }
            other => other,
        }
    }
}

/// Striped locks that serialise touch, trash and commit of the same block.
#[derive(Debug)]
pub(crate) struct Stripes(Vec<Mutex<()>>);

impl Stripes {
    fn new() -> Self {
        Stripes((0..LOCK_STRIPES).map(|_| Mutex::new(())).collect())
    }

    pub(crate) fn lock(&self, hash: &BlockHash) -> MutexGuard<'_, ()> {
        let i = usize::from(hash.as_bytes()[15]) % LOCK_STRIPES;
        self.0[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl DirVolume {
    /// Opens (creating if needed) the volume, takes its lock, and removes
    /// temporary files that interrupted writes left behind.
    pub fn open(opts: DirOptions) -> Result<DirVolume, VolumeError> {
        std::fs::create_dir_all(&opts.root)?;
        let root = opts.root.canonicalize()?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(".keepstore.lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| {
                VolumeError::Unavailable(format!("{} is in use by another process", root.display()))
            },
        )?;
        let removed = scan::remove_leftovers(&root, SystemTime::now())?;
        if removed > 0 {
            tracing::info!(root = %root.display(), removed, "cleaned up after interrupted writes");
        }
        let nowait = Arc::new(nowait::Gate::new(&root)?);
        let stripes = Arc::new(Stripes::new());
        let journal = journal::Journal::open(&root, stripes.clone())?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        Ok(DirVolume {
            inner: Arc::new(Inner {
                device_id: format!("{host}:{}", root.display()),
                root,
                params: opts.params,
                min_free: opts.min_free_bytes,
                stripes,
                journal,
                nowait,
                status: Mutex::new(None),
                sum_writes: Arc::new(tokio::sync::Semaphore::new(SUM_WRITES)),
                _lock: lock,
            }),
        })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, VolumeError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, VolumeError> + Send + 'static,
    {
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    fn check_writable(&self) -> Result<(), VolumeError> {
        if self.inner.params.allow_write {
            Ok(())
        } else {
            Err(VolumeError::ReadOnly)
        }
    }

    /// Writes a block, through the journal if it is small.
    async fn write_unchecked(
        &self,
        hash: BlockHash,
        mut body: BlockBody,
    ) -> Result<(), VolumeError> {
        if body
            .declared_len()
            .is_some_and(|n| n <= journal::JOURNAL_BLOCK_MAX)
            && self.inner.journal.ready()
        {
            let data = collect(body).await?;
            match self.inner.journal.write(hash, data.clone()).await {
                Ok(()) => return Ok(()),
                // Refused (switched off while this write waited, and maybe
                // back on since): written plainly instead.
                Err(e) => {
                    tracing::warn!(block = %hash, error = %e, "journal write failed; writing the block without it");
                    body = BlockBody::from_bytes(hash, data);
                }
            }
        }
        // The temporary file lives here between chunks; the write lags one
        // chunk behind the body so the last chunk and the commit share one
        // trip to a blocking thread (a small block costs exactly one).
        let mut state = Some(Writing {
            tmp: None,
            summer: ChunkSummer::new(CHUNK_SIZE),
            written: 0,
        });
        let mut pending: Option<Frames> = None;
        while let Some(chunk) = body.next_frames().await? {
            if let Some(mut prev) = pending.replace(chunk) {
                let mut w = state
                    .take()
                    .unwrap_or_else(|| unreachable!("state is put back after every chunk"));
                state = Some(
                    self.blocking(move |inner| {
                        w.append(inner, &hash, &mut prev)?;
                        Ok(w)
                    })
                    .await?,
                );
            }
        }
        let mut w = state.unwrap_or_else(|| unreachable!("state is put back after every chunk"));
        self.blocking(move |inner| {
            if let Some(mut last) = pending {
                w.append(inner, &hash, &mut last)?;
            }
            w.commit(inner, &hash)
        })
        .await
    }
}

/// A block being written: its temporary file (made on the first bytes),
/// its chunk sums, and how much was written.
struct Writing {
    tmp: Option<TempFile>,
    summer: ChunkSummer,
    written: u64,
}

/// Writes `hash`'s sidecar, replacing any, without a flush: sealed, one
/// that a crash damages reads as none (see [`crate::sums`]).
fn write_sidecar(inner: &Inner, hash: &BlockHash, sums: &ChunkSums) -> std::io::Result<()> {
    use std::io::Write;
    let dir = layout::block_dir(&inner.root, hash);
    let side = TempFile::create(&dir, &layout::temp_name(hash))?;
    side.file().write_all(&sums.encode(hash))?;
    side.commit_unsynced(&layout::sidecar_path(&inner.root, hash))
}

impl Writing {
    fn append(
        &mut self,
        inner: &Inner,
        hash: &BlockHash,
        frames: &mut Frames,
    ) -> std::io::Result<()> {
        let tmp = self.temp(inner, hash)?;
        frames.write_to(tmp.file())?;
        for p in frames.parts() {
            self.summer.update(p);
        }
        self.written += frames.len() as u64;
        Ok(())
    }

    fn temp(&mut self, inner: &Inner, hash: &BlockHash) -> std::io::Result<&TempFile> {
        if self.tmp.is_none() {
            self.tmp = Some(layout::create_temp(&inner.root, hash)?);
        }
        Ok(self
            .tmp
            .as_ref()
            .unwrap_or_else(|| unreachable!("just made")))
    }

    /// Makes the block visible: its sidecar first (a sidecar without its
    /// block is harmless: it describes content, not a file), then the block.
    fn commit(mut self, inner: &Inner, hash: &BlockHash) -> Result<(), VolumeError> {
        self.temp(inner, hash)?;
        let sums = self.summer.finish();
        if self.written >= SIDECAR_MIN {
            write_sidecar(inner, hash, &sums)?;
        } else if let ([one], Some(tmp)) = (&sums.hashes[..], &self.tmp) {
            xsum::keep(tmp.file(), hash, one);
        }
        let dest = layout::block_path(&inner.root, hash);
        let _guard = inner.lock(hash);
        match self.tmp.take() {
            Some(t) => t.commit(&dest)?,
            None => unreachable!("temp() made the file"),
        }
        // A folder the journal's placer made may not be in the root on disk
        // yet; this block has no journal record to bring it back.
        if inner
            .journal
            .dir_is_new(&layout::block_dir(&inner.root, hash))
        {
            crashsafe::sync_dir(&inner.root)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Volume for DirVolume {
    fn params(&self) -> &VolumeParams {
        &self.inner.params
    }

    fn device_id(&self) -> &str {
        &self.inner.device_id
    }

    async fn open(&self, hash: &BlockHash) -> Result<BlockReader, VolumeError> {
        // From the kernel's caches without waiting if it can (no trip to
        // a blocking thread at all), else one trip: small blocks are read
        // right away.
        let gate = &self.inner.nowait;
        if let Some(data) = self.inner.journal.unplaced(hash) {
            return Ok(read::reader(
                gate.clone(),
                read::Opened::Whole(data, None, None),
            ));
        }
        if let nowait::Attempt::Done(opened) =
            read::open_nowait(gate, &layout::block_rel(hash), hash)?
        {
            return Ok(read::reader(gate.clone(), opened));
        }
        let path = layout::block_path(&self.inner.root, hash);
        let sidecar = layout::sidecar_path(&self.inner.root, hash);
        let hash = *hash;
        let opened = self
            .blocking(move |_| read::open(&path, &sidecar, &hash))
            .await?;
        Ok(read::reader(gate.clone(), opened))
    }

    async fn write(&self, hash: &BlockHash, body: BlockBody) -> Result<(), VolumeError> {
        self.check_writable()?;
        if self.status().await?.full {
            return Err(VolumeError::Full);
        }
        self.write_unchecked(*hash, body)
            .await
            .map_err(|e| self.inner.full_if_out_of_space(e))
    }

    /// Small blocks on a writable, non-full volume with its journal on go
    /// to the journal together (in a few messages, one answer each), each
    /// verified first; anything else, and a block the journal refused,
    /// is written as [`Volume::write`] writes it.
    async fn write_many(
        &self,
        blocks: Vec<(BlockHash, BlockBody)>,
    ) -> Vec<Result<(), VolumeError>> {
        let small = |b: &BlockBody| {
            b.declared_len()
                .is_some_and(|n| n <= journal::JOURNAL_BLOCK_MAX)
        };
        let together = self.inner.params.allow_write
            && blocks.iter().all(|(_, b)| small(b))
            && matches!(self.status().await, Ok(st) if !st.full)
            && self.inner.journal.ready();
        if !together {
            let writes = blocks
                .into_iter()
                .map(|(hash, body)| async move { self.write(&hash, body).await });
            return futures::future::join_all(writes).await;
        }
        let mut out: Vec<Result<(), VolumeError>> = Vec::with_capacity(blocks.len());
        let mut verified = Vec::with_capacity(blocks.len());
        for (i, (hash, body)) in blocks.into_iter().enumerate() {
            match collect(body).await {
                Ok(data) => {
                    verified.push((i, hash, data));
                    out.push(Ok(()));
                }
                Err(e) => out.push(Err(e)),
            }
        }
        let journaled = verified.iter().map(|(_, h, d)| (*h, d.clone())).collect();
        let answers = self.inner.journal.write_many(journaled).await;
        for ((i, hash, data), answer) in verified.into_iter().zip(answers) {
            if let Err(e) = answer {
                // Refused (switched off while this waited): written plainly.
                tracing::warn!(block = %hash, error = %e, "journal write failed; writing the block without it");
                out[i] = self
                    .write_unchecked(hash, BlockBody::from_bytes(hash, data))
                    .await
                    .map_err(|e| self.inner.full_if_out_of_space(e));
            }
        }
        out
    }

    /// Not while every sidecar writer is busy: the sums would be skipped.
    fn wants_sums(&self, size: u64) -> bool {
        self.inner.params.allow_write
            && size >= SIDECAR_MIN
            && self.inner.sum_writes.available_permits() > 0
    }

    /// Writes the sidecar beside the block if it is still there with that
    /// size; `SUM_WRITES` at a time (more are skipped), never on a full
    /// volume.
    async fn keep_sums(
        &self,
        hash: &BlockHash,
        size: u64,
        sums: ChunkSums,
    ) -> Result<(), VolumeError> {
        let fits = sums.chunk_size as usize == CHUNK_SIZE
            && sums.hashes.len() as u64 == size.div_ceil(CHUNK_SIZE as u64);
        if !self.wants_sums(size) || !fits {
            return Ok(());
        }
        let Ok(permit) = self.inner.sum_writes.clone().try_acquire_owned() else {
            return Ok(());
        };
        if self.status().await?.full {
            return Ok(());
        }
        let hash = *hash;
        self.blocking(move |inner| {
            let _permit = permit;
            match std::fs::metadata(layout::block_path(&inner.root, &hash)) {
                Ok(meta) if meta.len() == size => Ok(write_sidecar(inner, &hash, &sums)?),
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                // Gone, or another size: nothing to describe.
                _ => Ok(()),
            }
        })
        .await
    }

    async fn touch(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        self.check_writable()?;
        let hash = *hash;
        self.blocking(move |inner| {
            if inner.journal.unplaced(&hash).is_some() {
                inner.journal.settle()?;
            }
            let path = layout::block_path(&inner.root, &hash);
            let _guard = inner.lock(&hash);
            let file = File::open(&path).map_err(not_found_or_io)?;
            Ok(set_times_now(&file)?)
        })
        .await
    }

    async fn mtime(&self, hash: &BlockHash) -> Result<i64, VolumeError> {
        let hash = *hash;
        self.blocking(move |inner| {
            // The file's mtime, which a trash may be asked to match.
            if inner.journal.unplaced(&hash).is_some() {
                inner.journal.settle()?;
            }
            let path = layout::block_path(&inner.root, &hash);
            let meta = std::fs::metadata(&path).map_err(not_found_or_io)?;
            Ok(to_unix_nanos(meta.modified()?))
        })
        .await
    }

    async fn trash(&self, hash: &BlockHash, if_mtime: Option<i64>) -> Result<(), VolumeError> {
        if !self.inner.params.allow_trash {
            return Err(VolumeError::ReadOnly);
        }
        let hash = *hash;
        self.blocking(move |inner| {
            let dir = layout::block_dir(&inner.root, &hash);
            let path = layout::block_path(&inner.root, &hash);
            let _guard = inner.lock_settled(&hash)?;
            let meta = std::fs::metadata(&path).map_err(not_found_or_io)?;
            if let Some(expected) = if_mtime {
                let actual = to_unix_nanos(meta.modified()?);
                if actual != expected {
                    return Err(VolumeError::MtimeMismatch { expected, actual });
                }
            }
            let lifetime = inner.params.trash_lifetime;
            if lifetime.is_zero() {
                std::fs::remove_file(&path).map_err(not_found_or_io)?;
            } else {
                let deadline = scan::unix_secs_now() + lifetime.as_secs().max(1);
                let dest = dir.join(layout::trash_name(&hash, deadline));
                std::fs::rename(&path, dest).map_err(not_found_or_io)?;
            }
            crashsafe::sync_dir(&dir)?;
            Ok(())
        })
        .await
    }

    async fn untrash(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        self.check_writable()?;
        let hash = *hash;
        self.blocking(move |inner| {
            let dir = layout::block_dir(&inner.root, &hash);
            let _guard = inner.lock(&hash);
            let trashed = scan::newest_trash(&dir, &hash)?.ok_or(VolumeError::NotFound)?;
            std::fs::rename(trashed, layout::block_path(&inner.root, &hash))
                .map_err(not_found_or_io)?;
            crashsafe::sync_dir(&dir)?;
            Ok(())
        })
        .await
    }

    async fn trashed(&self, hash: &BlockHash) -> Result<bool, VolumeError> {
        let hash = *hash;
        self.blocking(move |inner| {
            let dir = layout::block_dir(&inner.root, &hash);
            Ok(scan::newest_trash(&dir, &hash)?.is_some())
        })
        .await
    }

    async fn presence(&self, hashes: &[BlockHash]) -> Result<Vec<Presence>, VolumeError> {
        let hashes = hashes.to_vec();
        self.blocking(move |inner| {
            // One trip for the page: a stat per block, and one listing per
            // folder of the blocks not held (for their trashed copies).
            let mut listings: HashMap<PathBuf, Vec<String>> = HashMap::new();
            let mut out = Vec::with_capacity(hashes.len());
            for hash in &hashes {
                let held = inner.journal.unplaced(hash).is_some()
                    || match std::fs::symlink_metadata(layout::block_path(&inner.root, hash)) {
                        Ok(_) => true,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                        Err(e) => return Err(e.into()),
                    };
                let trashed = !held && {
                    let dir = layout::block_dir(&inner.root, hash);
                    let names = match listings.entry(dir) {
                        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                        std::collections::hash_map::Entry::Vacant(v) => {
                            let names = scan::names(v.key())?;
                            v.insert(names)
                        }
                    };
                    names
                        .iter()
                        .any(|n| layout::parse_trash_name(n).is_some_and(|(h, _)| h == *hash))
                };
                out.push(Presence { held, trashed });
            }
            Ok(out)
        })
        .await
    }

    async fn empty_trash(&self) -> Result<EmptyTrashStats, VolumeError> {
        self.blocking(|inner| Ok(scan::empty_trash(&inner.root, scan::unix_secs_now())?))
            .await
    }

    async fn index(&self, prefix: &str, out: IndexSender) -> Result<(), VolumeError> {
        if prefix.len() > 32
            || !prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Ok(());
        }
        let prefix = prefix.to_owned();
        self.blocking(move |inner| {
            // Every block answered before the index began is in its file.
            inner.journal.settle()?;
            Ok(scan::index(&inner.root, &prefix, &out)?)
        })
        .await
    }

    async fn status(&self) -> Result<VolumeStatus, VolumeError> {
        if let Some(st) = self.inner.cached_status() {
            return Ok(st);
        }
        self.blocking(|inner| {
            let st = rustix::fs::statvfs(&inner.root).map_err(std::io::Error::from)?;
            let available = st.f_bavail.saturating_mul(st.f_frsize);
            let status = VolumeStatus {
                available_bytes: available,
                used_bytes: st
                    .f_blocks
                    .saturating_sub(st.f_bfree)
                    .saturating_mul(st.f_frsize),
                full: available < inner.min_free,
            };
            *inner.status.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((Instant::now(), status));
            Ok(status)
        })
        .await
    }

    async fn quarantine(&self, hash: &BlockHash, copy: Option<CopyId>) -> Result<(), VolumeError> {
        let hash = *hash;
        self.blocking(move |inner| {
            let dir = layout::block_dir(&inner.root, &hash);
            let path = layout::block_path(&inner.root, &hash);
            let _guard = inner.lock_settled(&hash)?;
            if let Some(copy) = copy {
                let now = read::copy_id(&std::fs::metadata(&path).map_err(not_found_or_io)?);
                if now != copy {
                    tracing::warn!(block = %hash, "a corrupt copy was replaced before it could be moved aside; the new copy stays");
                    return Ok(());
                }
            }
            let name = layout::quarantine_name(&hash, crate::unix_nanos_now());
            std::fs::rename(&path, dir.join(&name)).map_err(not_found_or_io)?;
            // Its checksums go aside with it: either may be the bad part.
            let _ = std::fs::rename(
                layout::sidecar_path(&inner.root, &hash),
                dir.join(format!("{name}.b3")),
            );
            crashsafe::sync_dir(&dir)?;
            Ok(())
        })
        .await
    }
}

/// Sets a block file's mtime (and atime) to now.
pub(crate) fn set_times_now(file: &File) -> std::io::Result<()> {
    let now = SystemTime::now();
    file.set_times(
        std::fs::FileTimes::new()
            .set_modified(now)
            .set_accessed(now),
    )
}

/// A small body, whole and verified.
async fn collect(mut body: BlockBody) -> Result<Bytes, VolumeError> {
    let mut parts = Vec::with_capacity(1);
    while let Some(chunk) = body.next_chunk().await? {
        parts.push(chunk);
    }
    Ok(match parts.len() {
        0 => Bytes::new(),
        1 => parts.swap_remove(0),
        _ => parts.concat().into(),
    })
}

#[cfg(test)]
mod tests;
