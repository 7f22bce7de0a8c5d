//! Pullsync on a node, as one part the node composes: the pull index fed
//! by the storage core, the serving side for its routes, and the workers
//! (the index keeper and the pullers).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use keep_remote::Pool;
use keep_store::Store;
use keep_worker::Workers;
use tokio::sync::Semaphore;

use crate::db::DbError;
use crate::feed::{IndexFeed, IndexWorker};
use crate::index::PullIndex;
use crate::intervals::IntervalStore;
use crate::metrics::PullsyncMetrics;
use crate::pull::{
    Claims, PeerProgress, PeerPullers, PullSettings, Responsibility, Shared, SyncProgress,
};
use crate::serve::{Deliverer, Offerer, ServeSettings};

/// The file of the pull index, in the node's state directory.
pub const INDEX_FILE: &str = "pullsync-index.redb";
/// The file of the synced intervals, in the node's state directory.
pub const INTERVALS_FILE: &str = "pullsync-intervals.redb";

/// A node's pullsync.
#[derive(Debug)]
pub struct Pullsync {
    store: Arc<Store>,
    index: Arc<PullIndex>,
    intervals: Arc<IntervalStore>,
    feed: Arc<IndexFeed>,
    offerer: Offerer,
    deliverer: Deliverer,
    metrics: PullsyncMetrics,
    progress: Arc<SyncProgress>,
}

impl Pullsync {
    /// Opens the pull index and the synced intervals in `dir`, and makes
    /// the index the store's observer (from now on every block change is
    /// noted; [`Pullsync::start`] applies them).
    pub fn open(dir: &Path, store: Arc<Store>, serve: ServeSettings) -> Result<Self, DbError> {
        let index = Arc::new(PullIndex::open(dir.join(INDEX_FILE))?);
        let intervals = Arc::new(IntervalStore::open(dir.join(INTERVALS_FILE))?);
        let feed = Arc::new(IndexFeed::default());
        if !store.observe(feed.clone()) {
            tracing::warn!(
                "the store has an observer already; the pull index only learns from scans"
            );
        }
        let offerer = Offerer::new(index.clone(), serve);
        let deliverer = offerer.deliverer(store.clone());
        Ok(Pullsync {
            store,
            index,
            intervals,
            feed,
            offerer,
            deliverer,
            metrics: PullsyncMetrics::default(),
            progress: Arc::default(),
        })
    }

    /// Starts the workers: the index keeper (a scan of the volumes first,
    /// then the noted changes, flushed every `flush_every`) and the
    /// pullers from the peers of `pool` (once the scan is done).
    pub fn start(
        &self,
        workers: &Workers,
        pool: Pool,
        responsibility: Responsibility,
        settings: PullSettings,
        flush_every: Duration,
    ) {
        let indexer = IndexWorker::new(
            self.index.clone(),
            self.store.clone(),
            self.feed.clone(),
            flush_every,
        );
        let scan = indexer.scan_report();
        workers.spawn(indexer);
        let shared = Arc::new(Shared {
            store: self.store.clone(),
            intervals: self.intervals.clone(),
            pool,
            responsibility,
            claims: Claims::default(),
            deliveries: Semaphore::new(settings.max_deliveries.max(1)),
            metrics: self.metrics.clone(),
            progress: self.progress.clone(),
            settings,
        });
        workers.spawn(PeerPullers::new(shared, workers.clone(), scan));
    }

    /// The serving side of the offers.
    pub fn offerer(&self) -> &Offerer {
        &self.offerer
    }

    /// The serving side of the deliveries.
    pub fn deliverer(&self) -> &Deliverer {
        &self.deliverer
    }

    /// The pull index.
    pub fn index(&self) -> &Arc<PullIndex> {
        &self.index
    }

    /// The metrics.
    pub fn metrics(&self) -> &PullsyncMetrics {
        &self.metrics
    }

    /// How far this node has synced each peer it pulls from.
    pub fn progress(&self) -> Vec<PeerProgress> {
        self.progress.peers()
    }

    /// Makes the index and the intervals durable (at shutdown).
    pub fn flush(&self) -> Result<(), DbError> {
        self.index.flush()?;
        self.intervals.flush()
    }
}
