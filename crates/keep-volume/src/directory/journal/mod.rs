//! The small-block journal: durable small writes at one disk flush per
//! batch instead of two file-system commits per block.
//!
//! Why: a block written the plain way is durable after an `fdatasync` of
//! its file and an `fsync` of its folder. For a 4 KiB block that is nearly
//! all its cost: on the development VM, 8 writers doing just that reach
//! about 5,600 blocks/s, while overwriting a file and `fdatasync`ing it
//! reaches 5,900 flushes/s from one thread, and one flush can carry many
//! blocks.
//!
//! How (on two threads per volume, fed by a bounded queue):
//! - `<root>/.keep-journal` is a 4 KiB header (magic, generation) and then
//!   records: magic, generation, length, MD5, data (see `record`).
//! - The journal thread takes every queued block (up to [`BATCH_BYTES`]),
//!   writes their records in one `pwrite`, `fdatasync`s the journal once,
//!   answers each write, and hands the batch to the placer thread (`place`),
//!   which writes each block's file the usual way (temporary file, rename)
//!   but without flushing it. When the placer's queue is full, the journal
//!   thread places that batch itself instead of waiting for room in it
//!   (it would wait as long, and meanwhile two threads place). So an answered write is durable (in the
//!   journal), placing one batch overlaps flushing the next, and neither
//!   the placer nor a hand-off to it is in a write's wait. Until its file is
//!   in place, a block is read from memory ([`Journal::unplaced`]); an index
//!   first waits for the placer ([`Journal::settle`]).
//! - A checkpoint waits for the placer, calls `syncfs` (every file, folder
//!   and rename made so far reaches the disk) and then raises the header's
//!   generation (`fdatasync`), which retires every record at once; writing
//!   starts from the top again. It runs when the journal is full, before a
//!   block still in the journal is trashed or moved aside (so a crash
//!   cannot bring it back), and when the volume closes.
//! - At open, every record of the current generation whose data matches
//!   its MD5 is replayed: if the block's file is missing or differs (its
//!   rename reached the disk but its data did not), it is rewritten the
//!   crash-safe way. Then a checkpoint. A torn record (a batch cut by a
//!   crash, never answered) fails its MD5 and ends the replay.
//! - Any failure to write or flush the journal, to place a block, to
//!   checkpoint, or to replay a record switches the journal off (a
//!   checkpoint that was waiting for the placer then retires nothing):
//!   small blocks are then written the plain way, and no record is
//!   retired, so the next open replays them all. If every failure was
//!   running out of space, the journal comes back by itself once there is
//!   space again, doing what that open would do (`recover`); any other
//!   failure keeps it off until the next open. (A flush error is reported
//!   once; a retried flush could succeed over lost data.)
//!
//! Lock order: nothing calls [`Journal::checkpoint`] while holding a block
//! stripe lock, because the placer takes those locks and a checkpoint waits
//! for the placer.
//!
//! Blocks above [`JOURNAL_BLOCK_MAX`] are written the plain way: for them
//! the two flushes are a small part of the cost.

mod place;
mod record;
mod recover;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use keep_locator::BlockHash;
use tokio::sync::{mpsc, oneshot};

use self::place::{Job, Pending};
use self::record::{HEADER_LEN, RECORD_HEAD};
use super::{Stripes, layout};
use crate::VolumeError;
use crate::crashsafe;

/// Blocks up to this size go through the journal.
pub(crate) const JOURNAL_BLOCK_MAX: u64 = 64 << 10;

/// The journal's file name in the volume root.
pub(crate) const FILE_NAME: &str = ".keep-journal";

/// The journal is checkpointed before it grows past this.
const JOURNAL_BYTES: u64 = 32 << 20;
/// The journal file grows by written zeros in steps of this much and
/// never shrinks, so that after its first lap every batch overwrites
/// blocks it already has: its flush then writes no metadata. (On the
/// development VM's ext4, a probe doing nothing else flushed a 12 KiB
/// overwrite in ~150 µs and an append in 200–290 µs; under the node's
/// load the difference was lost in the noise.)
const GROW_STEP: u64 = 1 << 20;
/// One batch carries at most this much data.
const BATCH_BYTES: usize = 2 << 20;
/// Writes queued for the journal thread (at most 64 KiB of blocks each:
/// one block, or several of [`Journal::write_many`]); more wait to be
/// queued. With the batches below, at most about 10 MiB of block data sits
/// in one volume's journal queues.
const QUEUE: usize = 64;
/// Journaled batches waiting for the placer thread.
const PLACE_QUEUE: usize = 2;

/// [`PLACE_QUEUE`], for the directory backend's tests.
#[cfg(test)]
pub(crate) const PLACE_QUEUE_FOR_TESTS: usize = PLACE_QUEUE;

enum Msg {
    Write(Pending),
    Checkpoint(std::sync::mpsc::SyncSender<io::Result<()>>),
    /// Try to switch a journal that is off back on (see `recover`);
    /// answer whether it is on.
    Recover(Option<std::sync::mpsc::SyncSender<bool>>),
    /// Answer once every write answered so far is in its file.
    Settle(std::sync::mpsc::SyncSender<()>),
}

/// What the volume's threads share.
#[derive(Debug, Default)]
struct Shared {
    /// Blocks journaled since the last checkpoint.
    pending: Mutex<HashSet<BlockHash>>,
    /// Blocks journaled and answered whose files are not yet in place:
    /// at most the placer's queue and the batch in its hands. A block
    /// whose placing failed stays here (and in the journal, which is then
    /// switched off, so the next open, or the journal coming back, replays
    /// it).
    unplaced: Mutex<HashMap<BlockHash, Bytes>>,
    /// The placer found that files cannot be made unnamed and linked in
    /// (no `O_TMPFILE`, no `/proc`): it names temporary files instead.
    named_temps: AtomicBool,
    /// Folders the placer made without flushing their parent, since the
    /// last checkpoint.
    new_dirs: Mutex<HashSet<PathBuf>>,
    /// Set by any failure: no more journaling, no more retiring (until
    /// the journal comes back, see `recover`).
    failed: AtomicBool,
    /// When a journal switched off tries to come back.
    retry: Mutex<recover::Retry>,
    /// Failures to report instead of doing the work.
    #[cfg(test)]
    faults: Mutex<Faults>,
}

/// Failures a test asks for.
#[cfg(test)]
#[derive(Debug, Default)]
struct Faults {
    /// The placer's next block.
    placing: Option<rustix::io::Errno>,
    /// The journal's next flush.
    flush: Option<rustix::io::Errno>,
}

impl Shared {
    /// Switches the journal off; it may come back if `e` is running out of
    /// space (see `recover`).
    fn fail(&self, what: &str, e: &io::Error) {
        self.fail_as(what, e, recover::recoverable(e));
    }

    /// Switches the journal off until the next open: for a failed flush,
    /// after which the page cache may show what the disk lost.
    fn fail_for_good(&self, what: &str, e: &io::Error) {
        self.fail_as(what, e, false);
    }

    fn fail_as(&self, what: &str, e: &io::Error, recoverable: bool) {
        lock(&self.retry).failed(Instant::now(), recoverable);
        if !self.failed.swap(true, Ordering::SeqCst) {
            let until = if recoverable {
                "until it is tried again (the disk is full)"
            } else {
                "until the volume is opened again"
            };
            tracing::error!(error = %e, "journal {what} failed; small blocks are written without the journal {until}");
        }
    }
}

/// A volume's journal: the queue to its thread.
#[derive(Debug)]
pub(crate) struct Journal {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Journal {
    /// Opens (creating if needed) the journal of the volume at `root`,
    /// replays it, and starts its threads. Only a journal file that cannot
    /// be opened or created is an error; a failed replay leaves the journal
    /// switched off and its records for the next open (or for the journal
    /// coming back, if it only ran out of space).
    pub(crate) fn open(root: &Path, stripes: Arc<Stripes>) -> io::Result<Journal> {
        let shared = Arc::new(Shared::default());
        let mut writer = Writer::open(root, stripes, shared.clone())?;
        match writer.replay() {
            Ok(0) => {}
            Ok(restored) => {
                tracing::warn!(root = %root.display(), restored, "rewrote blocks from the journal after an unclean stop");
            }
            Err(e) => shared.fail("replay", &e),
        }
        if !shared.failed.load(Ordering::SeqCst)
            && let Err(e) = writer.checkpoint()
        {
            shared.fail("checkpoint", &e);
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("keep-journal".into())
            .spawn(move || writer.run(rx))?;
        Ok(Journal {
            tx: Some(tx),
            thread: Some(thread),
            shared,
        })
    }

    /// Whether small writes may go through the journal.
    pub(crate) fn usable(&self) -> bool {
        !self.shared.failed.load(Ordering::SeqCst)
    }

    /// [`Journal::usable`], for a write about to choose its way. A journal
    /// that is off asks its thread to try to come back when that is due
    /// (see `recover`); this write still goes the plain way.
    pub(crate) fn ready(&self) -> bool {
        if self.usable() {
            return true;
        }
        if lock(&self.shared.retry).due(Instant::now())
            && let Some(tx) = &self.tx
        {
            // A full queue skips this attempt; the next is due later.
            let _ = tx.try_send(Msg::Recover(None));
        }
        false
    }

    /// Tries to switch a journal that is off back on now, and answers
    /// whether it is on. Blocking.
    #[cfg(test)]
    pub(crate) fn recover(&self) -> bool {
        let (done, answer) = std::sync::mpsc::sync_channel(1);
        let Some(tx) = self.tx.as_ref() else {
            return false;
        };
        tx.blocking_send(Msg::Recover(Some(done))).is_ok() && answer.recv().unwrap_or(false)
    }

    /// Makes the placer fail its next block with `errno`.
    #[cfg(test)]
    pub(crate) fn fail_next_placing(&self, errno: rustix::io::Errno) {
        lock(&self.shared.faults).placing = Some(errno);
    }

    /// Makes the placer name its temporary files (as where unnamed files
    /// cannot be linked in); answers whether it linked unnamed ones so far.
    #[cfg(test)]
    pub(crate) fn name_temps(&self) -> bool {
        !self.shared.named_temps.swap(true, Ordering::SeqCst)
    }

    /// Makes the journal's next flush fail with `errno`.
    #[cfg(test)]
    pub(crate) fn fail_next_flush(&self, errno: rustix::io::Errno) {
        lock(&self.shared.faults).flush = Some(errno);
    }

    /// Makes a journal that is off due to try to come back at its next
    /// small write.
    #[cfg(test)]
    pub(crate) fn retry_now(&self) {
        lock(&self.shared.retry).make_due();
    }

    /// Stores a verified block: answered once it is durable and visible.
    pub(crate) async fn write(&self, hash: BlockHash, data: Bytes) -> Result<(), VolumeError> {
        let answer = self.send(vec![(hash, data)]).await?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(VolumeError::Io)
    }

    /// Stores verified blocks, each answered as [`Journal::write`] would,
    /// in order. They go to the journal thread in as few messages as fit
    /// [`JOURNAL_BLOCK_MAX`] bytes each (so the queue's bound holds), all
    /// queued before the first answer is awaited: a batch of small blocks
    /// costs a few queue trips and answers, not one per block, and
    /// usually one flush.
    pub(crate) async fn write_many(
        &self,
        blocks: Vec<(BlockHash, Bytes)>,
    ) -> Vec<Result<(), VolumeError>> {
        let mut messages: Vec<(usize, Vec<(BlockHash, Bytes)>)> = Vec::new();
        for (hash, data) in blocks {
            match messages.last_mut() {
                Some((bytes, m)) if *bytes + data.len() <= JOURNAL_BLOCK_MAX as usize => {
                    *bytes += data.len();
                    m.push((hash, data));
                }
                _ => messages.push((data.len(), vec![(hash, data)])),
            }
        }
        let mut answers = Vec::with_capacity(messages.len());
        for (_, message) in messages {
            let n = message.len();
            answers.push((n, self.send(message).await));
        }
        let mut out = Vec::new();
        for (n, answer) in answers {
            let result = match answer {
                Ok(answer) => answer.await.map_err(|_| stopped()),
                Err(e) => Err(e),
            };
            for _ in 0..n {
                out.push(match &result {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(VolumeError::Io(io::Error::new(e.kind(), e.to_string()))),
                    Err(_) => Err(stopped()),
                });
            }
        }
        out
    }

    /// Queues `blocks` as one message; the receiver of its answer.
    async fn send(
        &self,
        blocks: Vec<(BlockHash, Bytes)>,
    ) -> Result<oneshot::Receiver<io::Result<()>>, VolumeError> {
        let (done, answer) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        tx.send(Msg::Write((blocks, done)))
            .await
            .map_err(|_| stopped())?;
        Ok(answer)
    }

    /// Whether `hash` was journaled since the last checkpoint.
    pub(crate) fn holds(&self, hash: &BlockHash) -> bool {
        lock(&self.shared.pending).contains(hash)
    }

    /// The content of `hash` if it is journaled but its file is not in
    /// place yet.
    pub(crate) fn unplaced(&self, hash: &BlockHash) -> Option<Bytes> {
        lock(&self.shared.unplaced).get(hash).cloned()
    }

    /// Stops serving `hash` from memory: for a block whose placing failed
    /// (the journal is then off), before it is trashed or moved aside. Its
    /// record stays, so the next open (or the journal coming back) may
    /// restore it: a spare copy, never a lost one.
    pub(crate) fn forget(&self, hash: &BlockHash) {
        lock(&self.shared.unplaced).remove(hash);
    }

    /// Waits until every write answered so far has its file in place (or
    /// failed to). Blocking: call from a blocking thread, holding no stripe
    /// lock.
    pub(crate) fn settle(&self) -> Result<(), VolumeError> {
        let (done, answer) = std::sync::mpsc::sync_channel(1);
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        tx.blocking_send(Msg::Settle(done)).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())
    }

    /// Whether `dir` was made by the placer and its entry may not be on
    /// disk yet: a plain write into it must flush the volume root too.
    pub(crate) fn dir_is_new(&self, dir: &Path) -> bool {
        lock(&self.shared.new_dirs).contains(dir)
    }

    /// Makes everything written so far durable in place and retires the
    /// journal's records. Blocking: call from a blocking thread, holding no
    /// stripe lock. With the journal switched off it does nothing: its
    /// records stay for the next open or the journal coming back (either
    /// may then restore a block trashed meanwhile: a spare copy, never a
    /// lost one).
    pub(crate) fn checkpoint(&self) -> Result<(), VolumeError> {
        if !self.usable() {
            return Ok(());
        }
        let (done, answer) = std::sync::mpsc::sync_channel(1);
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        tx.blocking_send(Msg::Checkpoint(done))
            .map_err(|_| stopped())?;
        answer
            .recv()
            .map_err(|_| stopped())?
            .map_err(VolumeError::Io)
    }
}

impl Drop for Journal {
    /// Closes the queue and waits for the thread's final checkpoint.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn stopped() -> VolumeError {
    VolumeError::Unavailable("the volume's journal has stopped".into())
}

/// Answers every write of `batch` with (a copy of) `e`.
fn fail_all(batch: Vec<Pending>, e: &io::Error) {
    for (_, done) in batch {
        let _ = done.send(Err(io::Error::new(e.kind(), e.to_string())));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The journal thread's state.
struct Writer {
    root: PathBuf,
    file: File,
    generation: u64,
    /// Where the next record goes.
    offset: u64,
    /// The file's length: written bytes (zeros past the records).
    len: u64,
    stripes: Arc<Stripes>,
    shared: Arc<Shared>,
    /// The placer thread's queue (set by `run`).
    placer: Option<std::sync::mpsc::SyncSender<Job>>,
    /// The root, for placing a batch on this thread when the placer's
    /// queue is full (set by `run`; without it, this thread waits).
    helper: Option<place::Root>,
}

impl Writer {
    fn open(root: &Path, stripes: Arc<Stripes>, shared: Arc<Shared>) -> io::Result<Writer> {
        let path = root.join(FILE_NAME);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let len = file.metadata()?.len();
        let mut generation = 0;
        if len >= HEADER_LEN {
            let mut head = [0u8; 12];
            file.read_exact_at(&mut head, 0)?;
            let Some(g) = record::parse_header(&head) else {
                // Not a journal of ours: keep it for a person, start afresh.
                drop(file);
                let aside = crashsafe::move_aside(&path)?;
                tracing::error!(path = %aside.display(), "journal header unreadable; moved aside");
                return Writer::open(root, stripes, shared);
            };
            generation = g;
        }
        let mut w = Writer {
            root: root.to_owned(),
            file,
            generation,
            offset: HEADER_LEN,
            len,
            stripes,
            shared,
            placer: None,
            helper: None,
        };
        if len < HEADER_LEN {
            w.write_header(1)?;
            crashsafe::sync_dir(root)?;
        }
        Ok(w)
    }

    fn write_header(&mut self, generation: u64) -> io::Result<()> {
        self.file.write_all_at(&record::header(generation), 0)?;
        if self.len < HEADER_LEN {
            self.file.set_len(HEADER_LEN)?;
            self.len = HEADER_LEN;
        }
        self.file.sync_data()?;
        self.generation = generation;
        Ok(())
    }

    /// Rewrites, crash-safely, every block of the current generation whose
    /// file is missing or wrong; returns how many. An error for one record
    /// is logged and the others are still tried; then the first error is
    /// returned.
    fn replay(&mut self) -> io::Result<u64> {
        let len = self.file.metadata()?.len();
        let mut restored = 0;
        let mut first_error = None;
        let mut at = HEADER_LEN;
        while at + RECORD_HEAD as u64 <= len {
            let mut head = [0u8; RECORD_HEAD];
            self.file.read_exact_at(&mut head, at)?;
            let Some((hash, size)) = record::parse_head(&head, self.generation) else {
                break;
            };
            let data_at = at + RECORD_HEAD as u64;
            if size as u64 > JOURNAL_BLOCK_MAX || data_at + size as u64 > len {
                break;
            }
            let mut data = vec![0u8; size];
            self.file.read_exact_at(&mut data, data_at)?;
            if BlockHash::of(&data) != hash {
                break;
            }
            match self.restore(&hash, &data) {
                Ok(true) => restored += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(block = %hash, error = %e, "could not restore a block from the journal");
                    first_error.get_or_insert(e);
                }
            }
            at = data_at + size as u64;
        }
        // The records replayed stay until the checkpoint that follows.
        self.offset = at;
        match first_error {
            Some(e) => Err(e),
            None => Ok(restored),
        }
    }

    /// Rewrites one journaled block if its file is missing or wrong.
    fn restore(&self, hash: &BlockHash, data: &[u8]) -> io::Result<bool> {
        if place::holds(&layout::block_path(&self.root, hash), data) {
            return Ok(false);
        }
        place::write_file(&self.root, &self.stripes, hash, data)?;
        Ok(true)
    }

    /// Makes every file written so far durable, then retires all records.
    fn checkpoint(&mut self) -> io::Result<()> {
        if self.shared.failed.load(Ordering::SeqCst) {
            return Err(io::Error::other("the journal is switched off"));
        }
        if self.offset == HEADER_LEN {
            return Ok(());
        }
        let result = self.retire();
        // (A placing that failed while this waited switched the journal
        // off already, with its own error.)
        if let Err(e) = &result
            && !self.shared.failed.load(Ordering::SeqCst)
        {
            self.shared.fail_for_good("checkpoint", e);
        }
        result
    }

    /// Returns once the placer has done every job sent so far.
    fn wait_for_placer(&self) -> io::Result<()> {
        if let Some(placer) = &self.placer {
            let (done, placed) = std::sync::mpsc::sync_channel(1);
            placer
                .send(Job::Barrier(done))
                .map_err(|_| io::Error::other("the journal's placer stopped"))?;
            placed
                .recv()
                .map_err(|_| io::Error::other("the journal's placer stopped"))?;
        }
        Ok(())
    }

    fn retire(&mut self) -> io::Result<()> {
        self.wait_for_placer()?;
        // A block the placer failed to place while this waited is answered
        // and lives only in the journal: its record must stay.
        if self.shared.failed.load(Ordering::SeqCst) {
            return Err(io::Error::other(
                "the journal was switched off while its placer finished",
            ));
        }
        rustix::fs::syncfs(&self.file)?;
        self.write_header(self.generation + 1)?;
        self.offset = HEADER_LEN;
        lock(&self.shared.pending).clear();
        lock(&self.shared.new_dirs).clear();
        Ok(())
    }

    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let (jobs, queue) = std::sync::mpsc::sync_channel(PLACE_QUEUE);
        let (root, stripes, shared) =
            (self.root.clone(), self.stripes.clone(), self.shared.clone());
        let placer = std::thread::Builder::new()
            .name("keep-journal-place".into())
            .spawn(move || place::run(root, stripes, shared, queue));
        let placer = match placer {
            Ok(t) => Some(t),
            Err(e) => {
                self.shared.fail("placer start", &e);
                None
            }
        };
        self.placer = Some(jobs);
        self.helper = place::Root::open(self.root.clone())
            .inspect_err(
                |e| tracing::warn!(error = %e, "the journal thread cannot help its placer"),
            )
            .ok();
        while let Some(first) = rx.blocking_recv() {
            let mut batch = Vec::new();
            let mut checkpoints = Vec::new();
            let mut settles = Vec::new();
            let mut recovers = Vec::new();
            let mut bytes = 0;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Write(w) => {
                        bytes += w.0.iter().map(|b| RECORD_HEAD + b.1.len()).sum::<usize>();
                        batch.push(w);
                    }
                    Msg::Checkpoint(done) => {
                        checkpoints.push(done);
                        break;
                    }
                    Msg::Settle(done) => {
                        settles.push(done);
                        break;
                    }
                    Msg::Recover(done) => {
                        recovers.push(done);
                        break;
                    }
                }
                if bytes < BATCH_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit(batch, bytes);
            }
            for done in checkpoints {
                let _ = done.send(self.checkpoint());
            }
            for done in recovers {
                let on = self.recover();
                if let Some(done) = done {
                    let _ = done.send(on);
                }
            }
            for done in settles {
                // The placer answers it after the batches before it; if it
                // has stopped, there is nothing to wait for.
                if let Some(placer) = &self.placer
                    && let Err(std::sync::mpsc::SendError(Job::Barrier(done))) =
                        placer.send(Job::Barrier(done))
                {
                    let _ = done.send(());
                }
            }
        }
        if !self.shared.failed.load(Ordering::SeqCst)
            && let Err(e) = self.checkpoint()
        {
            tracing::error!(root = %self.root.display(), error = %e, "final journal checkpoint failed; the journal is replayed at the next open");
        }
        drop(self.placer.take());
        if let Some(t) = placer {
            let _ = t.join();
        }
    }

    /// Journals a batch, answers its writes and hands it to the placer; on
    /// a failure, answers them all with it.
    fn commit(&mut self, batch: Vec<Pending>, bytes: usize) {
        let appended = if self.shared.failed.load(Ordering::SeqCst) {
            Err(io::Error::other("the journal is switched off"))
        } else {
            self.append(&batch, bytes)
        };
        if let Err(e) = appended {
            fail_all(batch, &e);
            return;
        }
        let mut blocks = Vec::with_capacity(batch.len());
        {
            let mut unplaced = lock(&self.shared.unplaced);
            for (hash, data) in batch.iter().flat_map(|w| &w.0) {
                unplaced.insert(*hash, data.clone());
            }
        }
        for (written, done) in batch {
            let _ = done.send(Ok(()));
            blocks.extend(written);
        }
        // When the placer is behind (its queue is full), this thread
        // places the batch itself instead of waiting for a place in the
        // queue: it would wait as long, and two threads place at once (at
        // this thread's priority, not the placer's lower one). Blocks of
        // the same hash placed by both at once are harmless: the second
        // finds the name taken by identical content and touches it.
        let sent = match (&self.placer, &self.helper) {
            (Some(placer), Some(helper)) => match placer.try_send(Job::Place(blocks)) {
                Ok(()) => true,
                Err(std::sync::mpsc::TrySendError::Full(Job::Place(blocks))) => {
                    place::place_batch(helper, &self.stripes, &self.shared, blocks);
                    true
                }
                Err(_) => false,
            },
            (Some(placer), None) => placer.send(Job::Place(blocks)).is_ok(),
            (None, _) => false,
        };
        if !sent {
            // Durable in the journal and readable from memory: the next
            // open replays them.
            let e = io::Error::other("the journal's placer stopped");
            self.shared.fail("placement", &e);
        }
    }

    /// Appends the batch's records and flushes them.
    fn append(&mut self, batch: &[Pending], bytes: usize) -> io::Result<()> {
        if self.offset + bytes as u64 > HEADER_LEN + JOURNAL_BYTES {
            self.checkpoint()?;
        }
        let mut buf = Vec::with_capacity(bytes);
        for (hash, data) in batch.iter().flat_map(|w| &w.0) {
            record::encode(&mut buf, self.generation, hash, data);
        }
        let records = buf.len() as u64;
        // Past the file's end, grow it by written zeros to the next step
        // in the same write: the zeros end the replay there.
        let end = self.offset + records;
        if end > self.len {
            buf.resize((end.next_multiple_of(GROW_STEP) - self.offset) as usize, 0);
        }
        if let Err(e) = self.file.write_all_at(&buf, self.offset) {
            self.shared.fail("write", &e);
            return Err(e);
        }
        #[cfg(test)]
        if let Some(errno) = lock(&self.shared.faults).flush.take() {
            let e = io::Error::from(errno);
            self.shared.fail_for_good("flush", &e);
            return Err(e);
        }
        if let Err(e) = self.file.sync_data() {
            self.shared.fail_for_good("flush", &e);
            return Err(e);
        }
        self.len = self.len.max(self.offset + buf.len() as u64);
        self.offset += records;
        lock(&self.shared.pending).extend(batch.iter().flat_map(|w| w.0.iter().map(|b| b.0)));
        Ok(())
    }
}
