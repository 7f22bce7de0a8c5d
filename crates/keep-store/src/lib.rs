//! The storage core of a node, without HTTP.
//!
//! A [`Store`] holds the node's volumes (opened from their settings: the
//! directory backend, and S3 through its own crate), each wrapped so that
//! every call keeps the volume's health ([`health`]); their placement
//! order per block; the buffer budget for block data in flight; and the
//! two ways blocks move:
//!
//! - [`Store::store`], the one way in, for client PUTs, replicas, pulls
//!   and pullsync alike (dedup included: a block a volume holds is
//!   compared, not rewritten);
//! - verified reads: [`Store::lookup`] asks the local volumes and
//!   [`Store::verify`] hands on any block's bytes (local or from a peer)
//!   only as they check out against its hash.
//!
//! Errors are [`StoreError`]s, in storage terms; the HTTP layer alone maps
//! them to statuses.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use keep_locator::BlockHash;
//! use keep_store::{Found, Placement, Store, StoreConfig, VolumeConfig, VolumeLocation};
//! use keep_volume::BlockBody;
//!
//! let dir = tempfile::tempdir()?;
//! let config = StoreConfig {
//!     volumes: vec![VolumeConfig::directory(dir.path())],
//!     ..StoreConfig::default()
//! };
//! let store = Store::open(&config).await?;
//! let hash = BlockHash::of(b"foo");
//! let body = BlockBody::from_bytes(hash, bytes::Bytes::from_static(b"foo"));
//! store.store(hash, body, Placement::default()).await?;
//!
//! let mut lookup = store.lookup(hash, false);
//! let Some(Found::Block(block)) = lookup.healthy().await? else { panic!("stored") };
//! assert_eq!(block.size, 3);
//! # Ok(()) }
//! ```

mod budget;
pub mod config;
mod dedup;
mod error;
pub mod health;
mod metrics;
mod observe;
mod open;
mod read;
mod recovery;
pub mod uuid;
mod verify;
mod write;

use std::sync::Arc;

use keep_locator::{BlockHash, placement};
use keep_volume::Volume;

pub use budget::{Budget, Reservation};
pub use config::{S3Location, Secret, StoreConfig, VolumeConfig, VolumeLocation};
pub use error::{BoxError, StoreError};
pub use health::{HealthReport, VolumeHealth};
pub use metrics::{StoreMetrics, VolumeLabels};
pub use observe::BlockObserver;
pub use open::{OpenError, open_volume};
pub use read::{Found, Lookup};
pub use recovery::RecoveryWorker;
pub use verify::{Source, VerifiedBlock, VerifiedBody};
pub use write::Placement;

/// A node's storage: its volumes, their health, the buffer budget.
#[derive(Debug)]
pub struct Store {
    volumes: Vec<Arc<dyn Volume>>,
    health: Arc<VolumeHealth>,
    budget: Budget,
    metrics: StoreMetrics,
    observer: Arc<observe::ObserverSlot>,
}

impl Store {
    /// Opens every volume `config` lists.
    pub async fn open(config: &StoreConfig) -> Result<Store, OpenError> {
        let mut volumes = Vec::with_capacity(config.volumes.len());
        for vc in &config.volumes {
            volumes.push(open_volume(vc, config).await?);
        }
        Ok(Store::with_volumes(volumes, config.max_buffer_memory))
    }

    /// A store over volumes the caller opened (any [`Volume`] backend),
    /// with `max_buffer_memory` bytes for block data in flight.
    pub fn with_volumes(volumes: Vec<Arc<dyn Volume>>, max_buffer_memory: u64) -> Store {
        let metrics = StoreMetrics::default();
        let health = Arc::new(VolumeHealth::default());
        let observer = Arc::new(observe::ObserverSlot::default());
        let volumes = volumes
            .into_iter()
            .map(|v| {
                let checked = health::Checked::new(v, health.clone(), metrics.clone())
                    .observed_by(observer.clone());
                Arc::new(checked) as Arc<dyn Volume>
            })
            .collect();
        Store {
            volumes,
            health,
            budget: Budget::new(max_buffer_memory, metrics.buffer_bytes_reserved.clone()),
            metrics,
            observer,
        }
    }

    /// Reports every block change of the volumes (writes, trashes,
    /// untrashes, blocks moved aside) to `observer` from now on. A store
    /// has one observer: false, and nothing changes, if it has one already.
    pub fn observe(&self, observer: Arc<dyn BlockObserver>) -> bool {
        self.observer.set(observer)
    }

    /// For each of `hashes`, whether the node lacks it: no volume holds it
    /// and none holds a trashed copy (pullsync fetches only such blocks, so
    /// it never brings back a deleted one). One [`Volume::presence`] call
    /// per volume for the whole page.
    pub async fn lacking(&self, hashes: &[BlockHash]) -> Result<Vec<bool>, StoreError> {
        let mut lacking = vec![true; hashes.len()];
        for v in &self.volumes {
            for (l, p) in lacking.iter_mut().zip(v.presence(hashes).await?) {
                *l &= !p.held && !p.trashed;
            }
        }
        Ok(lacking)
    }

    /// The volumes, in configured order.
    pub fn volumes(&self) -> &[Arc<dyn Volume>] {
        &self.volumes
    }

    /// The volume with this uuid.
    pub fn volume(&self, uuid: &str) -> Option<&Arc<dyn Volume>> {
        self.volumes.iter().find(|v| v.params().uuid == uuid)
    }

    /// Whether any volume takes new blocks.
    pub fn writable(&self) -> bool {
        self.volumes.iter().any(|v| v.params().allow_write)
    }

    /// The volumes in the order to look for or place `hash`: ascending
    /// `md5(hash + uuid[-15:])`, as Arvados orders its mounts.
    pub fn volumes_for(&self, hash: &BlockHash) -> Vec<&Arc<dyn Volume>> {
        let uuids: Vec<&str> = self
            .volumes
            .iter()
            .map(|v| v.params().uuid.as_str())
            .collect();
        let mut order = placement::permuted_order(hash, &uuids);
        order.reverse();
        order.into_iter().map(|i| &self.volumes[i]).collect()
    }

    /// Which volumes failed recently.
    pub fn health(&self) -> &Arc<VolumeHealth> {
        &self.health
    }

    /// The buffer budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The storage metrics.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// The worker that asks suspect volumes whether they answer again.
    pub fn recovery_worker(&self) -> RecoveryWorker {
        RecoveryWorker::new(self.volumes.clone(), self.health.clone())
    }
}
