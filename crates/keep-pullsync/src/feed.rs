//! Keeping the pull index true to the volumes.
//!
//! The storage core reports every block change to an [`IndexFeed`] (it is
//! the store's [`BlockObserver`]), which only notes the hash: nothing on
//! the data path waits for the index. The [`IndexWorker`] applies the
//! noted changes in batches:
//!
//! - a block stored with a known size is added (a known block keeps its
//!   BinID: a dedup hit or a rewrite offers nothing new);
//! - anything else (a trash, a block moved aside, an untrash, a write of
//!   unknown size) is asked of the store again ([`Store::holds`]), and the
//!   answer decides: held, added with its size; not held, removed. A trash
//!   on one volume that leaves a copy on another removes nothing.
//!
//! # After a crash, an upgrade, a wipe
//!
//! Additions are committed lazily (flushed every few seconds), so `kill -9`
//! can lose the last ones. That is why the worker starts with a **scan**:
//! bin by bin it lists the volumes and the index and adds what the volumes
//! hold and the index lacks (and removes what the index has and the volumes
//! do not). Every start scans, not only an unclean one: it costs one
//! listing of the volumes, in the background, and also indexes volumes that
//! held blocks before the node did (an upgrade, an Arvados volume) and
//! notices blocks lost while the node was down (a wiped disk): the
//! [`ScanReport`] says how many, and the puller then forgets what it synced
//! so that it fetches them again. Changes noted while a bin is scanned are
//! left out of its comparison and applied after it, so the two never undo
//! each other.
//!
//! # Bounds
//!
//! The feed holds at most a fixed number of distinct hashes; past it, it
//! stops noting and asks for a new scan instead (nothing is lost, the scan
//! finds it). A scan holds one bin's listing in memory (1/16 of the
//! node's blocks, about 60 bytes each).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use keep_locator::BlockHash;
use keep_store::{BlockObserver, Store};
use keep_worker::{WorkError, Worker, WorkerState, WorkerStatus};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bins::{BINS, bin_of};
use crate::db::DbError;
use crate::index::PullIndex;

#[cfg(test)]
mod tests;

/// The most distinct hashes the feed notes before it asks for a scan.
pub const MAX_PENDING: usize = 100_000;

/// How many noted changes the worker applies in one step.
const BATCH: usize = 4096;

/// How many store lookups one step runs at once.
const LOOKUPS: usize = 16;

/// What happened to a block, as far as the feed knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Written or untrashed; the size if the writer knew it.
    Stored(Option<u64>),
    /// Trashed or moved aside on some volume.
    Removed,
}

#[derive(Debug, Default)]
struct Pending {
    changes: HashMap<BlockHash, Change>,
    overflowed: bool,
}

/// The store's observer: notes which blocks changed, for the
/// [`IndexWorker`].
#[derive(Debug)]
pub struct IndexFeed {
    pending: Mutex<Pending>,
    notify: Notify,
    limit: usize,
}

impl Default for IndexFeed {
    fn default() -> Self {
        IndexFeed::with_limit(MAX_PENDING)
    }
}

impl IndexFeed {
    /// A feed that notes up to `limit` distinct hashes.
    pub fn with_limit(limit: usize) -> Self {
        IndexFeed {
            pending: Mutex::new(Pending::default()),
            notify: Notify::new(),
            limit,
        }
    }

    /// How many hashes wait to be applied.
    pub fn pending(&self) -> usize {
        self.lock().changes.len()
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn note(&self, hash: BlockHash, change: Change) {
        {
            let mut p = self.lock();
            if p.changes.len() >= self.limit && !p.changes.contains_key(&hash) {
                p.overflowed = true;
            } else {
                p.changes.insert(hash, change);
            }
        }
        self.notify.notify_one();
    }

    /// Takes up to `max` noted changes, and whether the feed overflowed
    /// since the last take.
    fn take(&self, max: usize) -> (Vec<(BlockHash, Change)>, bool) {
        let mut p = self.lock();
        let keys: Vec<BlockHash> = p.changes.keys().take(max).copied().collect();
        let taken = keys
            .into_iter()
            .filter_map(|h| p.changes.remove(&h).map(|c| (h, c)))
            .collect();
        (taken, std::mem::take(&mut p.overflowed))
    }

    /// The noted hashes of one bin.
    fn pending_in(&self, bin: u8) -> HashSet<BlockHash> {
        self.lock()
            .changes
            .keys()
            .filter(|h| bin_of(h) == bin)
            .copied()
            .collect()
    }
}

impl BlockObserver for IndexFeed {
    fn stored(&self, hash: BlockHash, size: Option<u64>) {
        self.note(hash, Change::Stored(size));
    }

    fn removed(&self, hash: BlockHash) {
        self.note(hash, Change::Removed);
    }
}

/// What the scans found so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Whether the first scan since start has covered every bin.
    pub done: bool,
    /// Blocks the volumes hold that the index lacked (added).
    pub added: u64,
    /// Blocks the index had that no volume holds (removed): lost while
    /// the node was down, or trashed just before a crash.
    pub removed: u64,
}

/// The worker (named `pullsync index`) that applies the feed to the
/// index, flushes it, and scans the volumes.
#[derive(Debug)]
pub struct IndexWorker {
    index: Arc<PullIndex>,
    store: Arc<Store>,
    feed: Arc<IndexFeed>,
    flush_every: Duration,
    next_scan: Option<u8>,
    report: watch::Sender<ScanReport>,
    dirty_since: Option<Instant>,
    applied: u64,
}

impl IndexWorker {
    /// A worker over `index`, fed by `feed` (which the caller set as the
    /// store's observer), flushing at least every `flush_every`. It scans
    /// every bin first.
    pub fn new(
        index: Arc<PullIndex>,
        store: Arc<Store>,
        feed: Arc<IndexFeed>,
        flush_every: Duration,
    ) -> Self {
        IndexWorker {
            index,
            store,
            feed,
            flush_every,
            next_scan: Some(0),
            report: watch::Sender::new(ScanReport::default()),
            dirty_since: None,
            applied: 0,
        }
    }

    /// Watches the scans' report.
    pub fn scan_report(&self) -> watch::Receiver<ScanReport> {
        self.report.subscribe()
    }

    /// Applies noted changes; the index is told the truth for every hash.
    async fn apply(&mut self, changes: Vec<(BlockHash, Change)>) -> Result<(), WorkError> {
        let mut adds = Vec::new();
        let mut check = Vec::new();
        for (hash, change) in changes {
            match change {
                Change::Stored(Some(size)) => adds.push((hash, size)),
                _ => check.push(hash),
            }
        }
        let store = &self.store;
        let answers: Vec<_> = futures::stream::iter(check)
            .map(|h| async move { (h, store.holds(&h).await) })
            .buffer_unordered(LOOKUPS)
            .collect()
            .await;
        let mut removes = Vec::new();
        let mut failed = None;
        for (hash, answer) in answers {
            match answer {
                Ok(Some(size)) => adds.push((hash, size)),
                Ok(None) => removes.push(hash),
                Err(e) => {
                    // Asked again on a later step.
                    self.feed.note(hash, Change::Removed);
                    failed = Some(e);
                }
            }
        }
        self.applied += (adds.len() + removes.len()) as u64;
        self.write(adds, removes).await?;
        match failed {
            Some(e) => Err(format!("looking up a changed block: {e}").into()),
            None => Ok(()),
        }
    }

    async fn write(
        &mut self,
        adds: Vec<(BlockHash, u64)>,
        removes: Vec<BlockHash>,
    ) -> Result<(), WorkError> {
        if adds.is_empty() && removes.is_empty() {
            return Ok(());
        }
        let index = self.index.clone();
        blocking(move || {
            index.add_batch(&adds)?;
            index.remove_batch(&removes)?;
            Ok(())
        })
        .await?;
        self.dirty_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Compares one bin of the volumes with the index and mends the index.
    async fn scan(&mut self, bin: u8) -> Result<(), WorkError> {
        let listed = self.list(bin).await?;
        let index = self.index.clone();
        let indexed: HashSet<BlockHash> = blocking(move || {
            Ok(index
                .range(bin, 1, u64::MAX, usize::MAX)?
                .into_iter()
                .map(|e| e.hash)
                .collect())
        })
        .await?;
        let noted = self.feed.pending_in(bin);
        let adds: Vec<(BlockHash, u64)> = listed
            .iter()
            .filter(|(h, _)| !indexed.contains(h) && !noted.contains(h))
            .map(|(h, s)| (*h, *s))
            .collect();
        let removes: Vec<BlockHash> = indexed
            .into_iter()
            .filter(|h| !listed.contains_key(h) && !noted.contains(h))
            .collect();
        let (added, removed) = (adds.len() as u64, removes.len() as u64);
        if removed > 0 {
            tracing::warn!(
                bin,
                removed,
                "the pull index listed blocks no volume holds (lost, or trashed just before a crash)"
            );
        }
        self.write(adds, removes).await?;
        self.report.send_modify(|r| {
            r.added += added;
            r.removed += removed;
        });
        Ok(())
    }

    /// Every block of `bin` the volumes hold, with its size.
    async fn list(&self, bin: u8) -> Result<HashMap<BlockHash, u64>, WorkError> {
        let prefix = format!("{bin:x}");
        let mut listed = HashMap::new();
        for vol in self.store.volumes() {
            let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
            let listing = vol.index(&prefix, tx);
            let collect = async {
                while let Some(e) = rx.recv().await {
                    listed.insert(e.hash, e.size);
                }
            };
            let (result, ()) = tokio::join!(listing, collect);
            result.map_err(|e| format!("listing volume {}: {e}", vol.params().uuid))?;
        }
        Ok(listed)
    }

    fn flush_due(&self) -> Option<Instant> {
        self.dirty_since.map(|t| t + self.flush_every)
    }

    async fn flush(&mut self) -> Result<(), WorkError> {
        let index = self.index.clone();
        blocking(move || index.flush()).await?;
        self.dirty_since = None;
        Ok(())
    }
}

impl Worker for IndexWorker {
    fn name(&self) -> String {
        "pullsync index".into()
    }

    fn status(&self) -> WorkerStatus {
        let report = *self.report.borrow();
        let progress = match self.next_scan {
            Some(bin) => format!("scanning the volumes: bin {bin:x} of {BINS}"),
            None => format!("{} changes applied", self.applied),
        };
        WorkerStatus {
            progress: Some(progress),
            queue_length: Some(self.feed.pending() as u64),
            details: vec![format!(
                "scans: {} added, {} removed",
                report.added, report.removed
            )],
        }
    }

    async fn work(&mut self, _cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        if let Some(bin) = self.next_scan {
            self.scan(bin).await?;
            let next = usize::from(bin) + 1;
            self.next_scan = u8::try_from(next).ok().filter(|_| next < BINS);
            if self.next_scan.is_none() {
                self.report.send_modify(|r| r.done = true);
                tracing::info!(report = ?*self.report.borrow(), "pull index scan done");
            }
            return Ok(WorkerState::Busy);
        }
        if self.flush_due().is_some_and(|t| t <= Instant::now()) {
            self.flush().await?;
        }
        let (changes, overflowed) = self.feed.take(BATCH);
        if overflowed {
            tracing::warn!("too many block changes at once for the pull index feed; rescanning");
            self.next_scan = Some(0);
        }
        if !changes.is_empty() {
            self.apply(changes).await?;
            return Ok(WorkerState::Busy);
        }
        Ok(if self.next_scan.is_some() {
            WorkerState::Busy
        } else {
            WorkerState::Idle
        })
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        match self.flush_due() {
            Some(due) => tokio::select! {
                () = self.feed.notify.notified() => {}
                () = tokio::time::sleep_until(due) => {}
            },
            None => self.feed.notify.notified().await,
        }
        WorkerState::Busy
    }
}

/// Runs a blocking call on the pull index off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DbError> + Send + 'static,
) -> Result<T, WorkError> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("pull index task: {e}"))??)
}
