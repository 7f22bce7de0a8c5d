//! A node's serving side over a volume in memory.

use std::sync::Arc;

use bytes::Bytes;
use keep_locator::BlockHash;
use keep_store::{Placement, Store};
use keep_volume::testing::MemVolume;
use keep_volume::{BlockBody, Volume, VolumeParams};
use tempfile::TempDir;

use crate::bins::bin_of;
use crate::index::PullIndex;
use crate::serve::{Deliverer, Offerer, ServeSettings};

/// One node: its store (one volume in memory), its pull index, and the
/// serving side over both.
pub(super) struct Node {
    _dir: TempDir,
    pub(super) index: Arc<PullIndex>,
    pub(super) store: Arc<Store>,
    /// The store's volume (same device): to corrupt or inspect copies.
    pub(super) mem: MemVolume,
    pub(super) offerer: Offerer,
    pub(super) deliverer: Deliverer,
}

impl Node {
    pub(super) fn new() -> Node {
        Node::with_settings(ServeSettings::default())
    }

    pub(super) fn with_settings(settings: ServeSettings) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let index = Arc::new(PullIndex::open(dir.path().join("pull.redb")).unwrap());
        let mem = MemVolume::new(VolumeParams::new("zzzzz-nyw5e-000000000000000"));
        let volume: Arc<dyn Volume> = Arc::new(mem.share(mem.params().clone()));
        let store = Arc::new(Store::with_volumes(vec![volume], 64 << 20));
        let offerer = Offerer::new(index.clone(), settings);
        let deliverer = offerer.deliverer(store.clone());
        Node {
            _dir: dir,
            index,
            store,
            mem,
            offerer,
            deliverer,
        }
    }

    /// Stores `data` and adds it to the index; answers its hash.
    pub(super) async fn put(&self, data: &[u8]) -> BlockHash {
        let hash = BlockHash::of(data);
        let body = BlockBody::from_bytes(hash, Bytes::copy_from_slice(data));
        self.store
            .store(hash, body, Placement::default())
            .await
            .unwrap();
        self.index.add_batch(&[(hash, data.len() as u64)]).unwrap();
        hash
    }

    /// Trashes the block on the store's volume (as the trash worker
    /// would, leaving the index as it was).
    pub(super) async fn trash(&self, hash: &BlockHash) {
        self.store.volumes()[0].trash(hash, None).await.unwrap();
    }
}

/// `n` distinct blocks of `size` bytes (at least 8) whose hashes fall in
/// `bin`.
pub(super) fn blocks_in_bin(bin: u8, n: usize, size: usize) -> Vec<Vec<u8>> {
    assert!(size >= 8);
    (0u64..)
        .map(|i| {
            let mut data = vec![0xa5; size];
            data[..8].copy_from_slice(&i.to_le_bytes());
            data
        })
        .filter(|d| bin_of(&BlockHash::of(d)) == bin)
        .take(n)
        .collect()
}
