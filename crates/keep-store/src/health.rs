//! Volume health: which volumes failed recently, and the one wrapper that
//! keeps it, around every volume call.
//!
//! A volume whose call fails with a fault of its own (an I/O error, a
//! store that cannot be reached; [`VolumeError::is_volume_fault`]) is
//! *suspect*: new blocks go elsewhere, and reads and the "does a volume
//! have it" check of a write try it last or not at all, so a dead store
//! (S3 down) does not cost every request its timeouts and retries. A
//! failure passes a volume over for [`SUSPECT_BACKOFF`]`.first`; each
//! further failure before it answers again doubles that, up to its `max`
//! (a failure more than `max` after the last period ended starts over).
//! An answer on the data path (a block, "not here", a write) clears it.
//! A status answer only ends the current period: status is a cheap call
//! (a cached `statvfs`, a HEAD on the bucket) that can succeed while reads
//! still fail, so the failure count is kept and the next failure passes the
//! volume over for longer. The recovery worker ([`crate::RecoveryWorker`])
//! asks a suspect volume for its status once its period is over, so a
//! volume that is back is tried again without a client's request paying
//! for the check, and one that is still down is passed over for longer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use futures::StreamExt;
use keep_locator::BlockHash;
use keep_volume::{
    BlockBody, BlockReader, ChunkSums, CopyId, EmptyTrashStats, IndexSender, Presence, Volume,
    VolumeError, VolumeParams, VolumeStatus,
};
use keep_worker::Backoff;
use std::sync::Arc;
use tokio::sync::Notify;

use crate::StoreMetrics;
use crate::observe::ObserverSlot;

/// How long a failing volume is passed over: 5 s after its first failure,
/// doubling up to 60 s while it keeps failing.
pub const SUSPECT_BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(5),
    max: Duration::from_secs(60),
    jitter: false,
};

/// One volume that failed and has not answered on the data path since.
#[derive(Debug, Clone)]
struct Suspicion {
    since: SystemTime,
    until: Instant,
    failures: u32,
    last_error: String,
    /// Its status answered after the last failure: the period is over and
    /// the recovery worker has nothing more to ask.
    probed: bool,
}

/// What is known of one volume's health, for status pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// Whether it is passed over now.
    pub suspect: bool,
    /// Since when it has been failing, if it has not answered on the data
    /// path since.
    pub failing_since: Option<SystemTime>,
    /// Failures in a row.
    pub failures: u32,
    /// The last failure.
    pub last_error: Option<String>,
}

/// The health of every volume of a node.
#[derive(Debug, Default)]
pub struct VolumeHealth {
    suspects: Mutex<HashMap<String, Suspicion>>,
    /// How many entries `suspects` has: 0 makes the checks lock-free.
    count: AtomicUsize,
    /// Woken when a volume becomes suspect.
    pub(crate) changed: Notify,
}

impl VolumeHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Suspicion>> {
        self.suspects.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a failure of the volume.
    pub fn suspect(&self, uuid: &str, error: &str) {
        let mut map = self.lock();
        let now = Instant::now();
        let (since, failures) = match map.get(uuid) {
            Some(s) if now < s.until + SUSPECT_BACKOFF.max => (s.since, s.failures + 1),
            _ => (SystemTime::now(), 1),
        };
        let until = now + SUSPECT_BACKOFF.delay(failures);
        map.insert(
            uuid.to_owned(),
            Suspicion {
                since,
                until,
                failures,
                last_error: error.to_owned(),
                probed: false,
            },
        );
        self.count.store(map.len(), Ordering::SeqCst);
        drop(map);
        self.changed.notify_one();
    }

    /// Records that the volume's status answered: its current period ends,
    /// its failures are kept (see the module docs).
    pub fn probed(&self, uuid: &str) {
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Some(s) = self.lock().get_mut(uuid) {
            s.until = s.until.min(Instant::now());
            s.probed = true;
        }
    }

    /// Records that the volume answered on the data path.
    pub fn answered(&self, uuid: &str) {
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut map = self.lock();
        if map.remove(uuid).is_some() {
            tracing::info!(volume = %uuid, "volume answers again");
        }
        self.count.store(map.len(), Ordering::SeqCst);
    }

    /// Whether the volume failed within its suspect period.
    pub fn is_suspect(&self, uuid: &str) -> bool {
        if self.count.load(Ordering::SeqCst) == 0 {
            return false;
        }
        self.lock()
            .get(uuid)
            .is_some_and(|s| s.until > Instant::now())
    }

    /// What is known of the volume's health.
    pub fn report(&self, uuid: &str) -> HealthReport {
        match self.lock().get(uuid) {
            Some(s) => HealthReport {
                suspect: s.until > Instant::now(),
                failing_since: Some(s.since),
                failures: s.failures,
                last_error: Some(s.last_error.clone()),
            },
            None => HealthReport {
                suspect: false,
                failing_since: None,
                failures: 0,
                last_error: None,
            },
        }
    }

    /// The volumes whose period is over and whose status was not asked
    /// since, and when the next period of the others ends.
    pub(crate) fn due(&self) -> (Vec<String>, Option<Instant>) {
        let now = Instant::now();
        let map = self.lock();
        let due = map
            .iter()
            .filter(|(_, s)| s.until <= now && !s.probed)
            .map(|(uuid, _)| uuid.clone())
            .collect();
        let next = map.values().map(|s| s.until).filter(|t| *t > now).min();
        (due, next)
    }

    /// The failures in a row recorded for `uuid` (tests).
    #[cfg(test)]
    pub(crate) fn failures(&self, uuid: &str) -> Option<u32> {
        self.lock().get(uuid).map(|s| s.failures)
    }

    /// Ends `uuid`'s suspect period now (tests: the period is wall time).
    #[cfg(test)]
    pub(crate) fn expire(&self, uuid: &str) {
        if let Some(s) = self.lock().get_mut(uuid) {
            s.until = Instant::now();
        }
    }

    /// How much of `uuid`'s period is left (tests).
    #[cfg(test)]
    fn left(&self, uuid: &str) -> Duration {
        self.lock().get(uuid).map_or(Duration::ZERO, |s| {
            s.until.saturating_duration_since(Instant::now())
        })
    }
}

/// A volume whose every call keeps its health: a fault of its own marks
/// it suspect, counts it and logs it; an answer clears it. The node holds
/// its volumes wrapped like this, so no caller does this bookkeeping.
#[derive(Debug)]
pub struct Checked {
    inner: Arc<dyn Volume>,
    keeper: Arc<Keeper>,
    observer: Arc<ObserverSlot>,
}

/// What the wrapper keeps the health in, shared with the read streams it
/// hands out.
#[derive(Debug)]
struct Keeper {
    health: Arc<VolumeHealth>,
    metrics: StoreMetrics,
    uuid: String,
}

impl Checked {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Volume>, health: Arc<VolumeHealth>, metrics: StoreMetrics) -> Self {
        let uuid = inner.params().uuid.clone();
        Checked {
            inner,
            keeper: Arc::new(Keeper {
                health,
                metrics,
                uuid,
            }),
            observer: Arc::default(),
        }
    }

    /// Reports this volume's block changes to `observer` (the store's).
    pub(crate) fn observed_by(mut self, observer: Arc<ObserverSlot>) -> Self {
        self.observer = observer;
        self
    }

    /// The wrapped volume.
    pub fn inner(&self) -> &Arc<dyn Volume> {
        &self.inner
    }

    /// Takes in the outcome of operation `op`.
    fn note<T>(&self, op: &str, result: Result<T, VolumeError>) -> Result<T, VolumeError> {
        self.keeper.note(op, result.as_ref().err());
        result
    }
}

impl Keeper {
    /// What an outcome of operation `op` tells about the volume's health.
    fn note(&self, op: &str, error: Option<&VolumeError>) {
        let (health, uuid) = (&self.health, self.uuid.as_str());
        match error {
            // A status answer says little about reads and writes.
            None if op == "status" => health.probed(uuid),
            None
            | Some(
                VolumeError::NotFound
                | VolumeError::Full
                | VolumeError::ReadOnly
                | VolumeError::MtimeMismatch { .. },
            ) => health.answered(uuid),
            Some(e) if e.is_volume_fault() => {
                let text = e.to_string();
                health.suspect(uuid, &format!("{op}: {text}"));
                self.metrics.volume_error(uuid);
                tracing::warn!(volume = %uuid, error = %text, "{op} failed");
            }
            // A refused body says nothing about the volume.
            Some(_) => {}
        }
    }
}

#[async_trait]
impl Volume for Checked {
    fn params(&self) -> &VolumeParams {
        self.inner.params()
    }

    fn device_id(&self) -> &str {
        self.inner.device_id()
    }

    async fn open(&self, hash: &BlockHash) -> Result<BlockReader, VolumeError> {
        let mut reader = self.note("open", self.inner.open(hash).await)?;
        let keeper = self.keeper.clone();
        reader.chunks = reader
            .chunks
            .map(move |chunk| {
                if let Err(e) = &chunk {
                    keeper.note("read", Some(e));
                }
                chunk
            })
            .boxed();
        Ok(reader)
    }

    async fn write(&self, hash: &BlockHash, body: BlockBody) -> Result<(), VolumeError> {
        let size = body.declared_len();
        self.note("write", self.inner.write(hash, body).await)?;
        self.observer.stored(hash, size);
        Ok(())
    }

    async fn write_many(
        &self,
        blocks: Vec<(BlockHash, BlockBody)>,
    ) -> Vec<Result<(), VolumeError>> {
        let sizes: Vec<(BlockHash, Option<u64>)> = blocks
            .iter()
            .map(|(hash, body)| (*hash, body.declared_len()))
            .collect();
        let results = self.inner.write_many(blocks).await;
        // One note for the call: a fault of the volume's own, if any block
        // met one (the blocks of a batch are answered together, so a later
        // block's success does not say the volume recovered); else an
        // answer if any block was stored; else the first refusal.
        let errors = || results.iter().filter_map(|r| r.as_ref().err());
        let outcome = match errors().find(|e| e.is_volume_fault()) {
            Some(fault) => Some(fault),
            None if results.iter().any(Result::is_ok) => None,
            None => errors().next(),
        };
        if !results.is_empty() {
            self.keeper.note("write", outcome);
        }
        for ((hash, size), result) in sizes.iter().zip(&results) {
            if result.is_ok() {
                self.observer.stored(hash, *size);
            }
        }
        results
    }

    async fn touch(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        self.note("touch", self.inner.touch(hash).await)
    }

    async fn mtime(&self, hash: &BlockHash) -> Result<i64, VolumeError> {
        self.note("lookup", self.inner.mtime(hash).await)
    }

    async fn trash(&self, hash: &BlockHash, if_mtime: Option<i64>) -> Result<(), VolumeError> {
        self.note("trash", self.inner.trash(hash, if_mtime).await)?;
        self.observer.removed(hash);
        Ok(())
    }

    async fn untrash(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        self.note("untrash", self.inner.untrash(hash).await)?;
        self.observer.stored(hash, None);
        Ok(())
    }

    async fn trashed(&self, hash: &BlockHash) -> Result<bool, VolumeError> {
        self.note("trashed", self.inner.trashed(hash).await)
    }

    async fn presence(&self, hashes: &[BlockHash]) -> Result<Vec<Presence>, VolumeError> {
        self.note("presence", self.inner.presence(hashes).await)
    }

    async fn empty_trash(&self) -> Result<EmptyTrashStats, VolumeError> {
        self.note("empty trash", self.inner.empty_trash().await)
    }

    async fn index(&self, prefix: &str, out: IndexSender) -> Result<(), VolumeError> {
        self.note("index", self.inner.index(prefix, out).await)
    }

    async fn status(&self) -> Result<VolumeStatus, VolumeError> {
        self.note("status", self.inner.status().await)
    }

    async fn quarantine(&self, hash: &BlockHash, copy: Option<CopyId>) -> Result<(), VolumeError> {
        self.note("quarantine", self.inner.quarantine(hash, copy).await)?;
        self.observer.removed(hash);
        Ok(())
    }

    fn wants_sums(&self, size: u64) -> bool {
        self.inner.wants_sums(size)
    }

    async fn keep_sums(
        &self,
        hash: &BlockHash,
        size: u64,
        sums: ChunkSums,
    ) -> Result<(), VolumeError> {
        // Best effort by contract: a failure here is not the volume's
        // health (it may be busy or full), only worth a debug line.
        self.inner.keep_sums(hash, size, sums).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A volume that keeps failing is passed over for longer each time, up
    /// to the cap; an answer clears it at once.
    #[test]
    fn suspicion_grows_with_failures_and_an_answer_clears_it() {
        let health = VolumeHealth::default();
        assert!(!health.is_suspect("a"));
        health.suspect("a", "x");
        assert!(health.is_suspect("a") && !health.is_suspect("b"));
        assert_eq!(health.failures("a"), Some(1));
        assert_eq!(health.report("a").last_error.as_deref(), Some("x"));
        let near =
            |left: Duration, want: Duration| left <= want && left + Duration::from_secs(1) > want;
        assert!(near(health.left("a"), SUSPECT_BACKOFF.first));
        health.suspect("a", "y");
        assert_eq!(health.failures("a"), Some(2));
        assert!(near(health.left("a"), SUSPECT_BACKOFF.first * 2));
        // A status answer ends the period but keeps the count: the next
        // failure passes the volume over for longer still.
        health.probed("a");
        assert!(!health.is_suspect("a"));
        assert_eq!(health.report("a").failures, 2);
        health.suspect("a", "y");
        assert!(near(health.left("a"), SUSPECT_BACKOFF.first * 4));
        for _ in 0..10 {
            health.suspect("a", "z");
        }
        assert!(near(health.left("a"), SUSPECT_BACKOFF.max));
        health.answered("b");
        assert!(health.is_suspect("a"));
        health.answered("a");
        assert!(!health.is_suspect("a"));
        assert_eq!(health.report("a").failing_since, None);
        health.suspect("a", "x");
        assert_eq!(health.failures("a"), Some(1), "starts over");
        // A failure long after the last period ended starts over too.
        health.lock().get_mut("a").unwrap().until = Instant::now() - SUSPECT_BACKOFF.max * 3;
        health.suspect("a", "x");
        assert_eq!(health.failures("a"), Some(1), "forgotten after a while");
    }
}
