//! The pulling side: for each peer that is up, one worker per bin
//! ([`BinPuller`]) syncs the peer's entries interval by interval,
//! historical up to the cursor and live beyond it, and stores the blocks
//! this node is responsible for and lacks. [`PeerPullers`] starts and
//! stops those workers as peers come and go.

mod claims;
pub mod client;
mod fetch;
mod peers;
mod progress;
mod puller;
mod receive;
mod responsibility;

use std::sync::Arc;
use std::time::Duration;

use keep_remote::Pool;
use keep_store::{Store, StoreError};
use tokio::sync::Semaphore;

use crate::db::DbError;
use crate::intervals::IntervalStore;
use crate::metrics::PullsyncMetrics;
use crate::serve::ReadError;

pub use claims::{Claim, Claims};
pub use client::ClientError;
pub use peers::PeerPullers;
pub use progress::{PeerProgress, SyncProgress};
pub use puller::BinPuller;
pub use responsibility::{Holders, Responsibility, TakesUploads};

/// How the pullers work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSettings {
    /// The most entries asked for per offer.
    pub offer_limit: u32,
    /// How long a live offer request waits at the peer for new entries.
    pub live_wait: Duration,
    /// The most bytes wanted per delivery: what a crash can make the node
    /// receive again, per delivery in flight.
    pub max_delivery_bytes: u64,
    /// The most deliveries received at once, over all peers and bins.
    pub max_deliveries: usize,
    /// How long a request may wait for the peer (the head of an answer,
    /// and each gap in a delivery).
    pub request_timeout: Duration,
    /// The pullers' tranquility (see `keep_worker::SpawnOptions`): after a
    /// busy step of `t`, a pause of `t × tranquility`.
    pub tranquility: u32,
    /// How often the membership is looked at for peers to start or stop
    /// pulling from, and the synced intervals flushed.
    pub peer_check: Duration,
}

impl Default for PullSettings {
    /// Offers of 1000 entries, live waits of 20 s, deliveries of up to
    /// 64 MiB, 8 at once, 30 s request timeout, no pause, peers looked at
    /// every second.
    fn default() -> Self {
        PullSettings {
            offer_limit: 1000,
            live_wait: Duration::from_secs(20),
            max_delivery_bytes: 64 << 20,
            max_deliveries: 8,
            request_timeout: Duration::from_secs(30),
            tranquility: 0,
            peer_check: Duration::from_secs(1),
        }
    }
}

/// Why a sync step failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Talking to the peer failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The delivery was malformed or unsolicited.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The peer sent nothing for this long.
    #[error("the peer stalled for {0:?}")]
    Stalled(Duration),
    /// Storing a block failed (its bytes did not match its hash, or the
    /// volumes refused it).
    #[error("storing a received block: {0}")]
    Store(#[from] StoreError),
    /// The synced intervals could not be read or written.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The peer's answer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A blocking task failed.
    #[error("task: {0}")]
    Task(String),
}

/// What every puller of a node shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<Store>,
    pub(crate) intervals: Arc<IntervalStore>,
    pub(crate) pool: Pool,
    pub(crate) responsibility: Responsibility,
    pub(crate) claims: Claims,
    pub(crate) deliveries: Semaphore,
    pub(crate) metrics: PullsyncMetrics,
    pub(crate) progress: Arc<SyncProgress>,
    pub(crate) settings: PullSettings,
}

impl Shared {
    pub(crate) fn timeouts(&self) -> client::Timeouts {
        client::Timeouts {
            request: self.settings.request_timeout,
        }
    }

    /// Runs a blocking call on the interval store.
    pub(crate) async fn intervals<T: Send + 'static>(
        &self,
        f: impl FnOnce(&IntervalStore) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, PullError> {
        let store = self.intervals.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| PullError::Task(e.to_string()))?
            .map_err(PullError::from)
    }
}
