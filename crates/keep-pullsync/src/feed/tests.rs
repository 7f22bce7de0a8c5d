//! The index keeper in process: a store over volumes in memory, changes
//! noted by the store, scans of volumes the index does not know.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use keep_locator::BlockHash;
use keep_store::{Placement, Store};
use keep_volume::testing::MemVolume;
use keep_volume::{BlockBody, Volume, VolumeParams};
use keep_worker::{Worker, WorkerState};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use super::{IndexFeed, IndexWorker};
use crate::bins::bin_of;
use crate::index::PullIndex;

struct Fixture {
    _dir: TempDir,
    index: Arc<PullIndex>,
    store: Arc<Store>,
    mems: Vec<MemVolume>,
    worker: IndexWorker,
}

/// Two volumes in memory, the first holding `before` already (written
/// before the store had an observer: an upgrade).
async fn fixture(before: &[&[u8]], feed_limit: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(PullIndex::open(dir.path().join("pull.redb")).unwrap());
    let mems: Vec<MemVolume> = (0..2)
        .map(|i| MemVolume::new(VolumeParams::new(format!("zzzzz-nyw5e-00000000000000{i}"))))
        .collect();
    for data in before {
        let hash = BlockHash::of(data);
        let body = BlockBody::from_bytes(hash, Bytes::copy_from_slice(data));
        mems[0].write(&hash, body).await.unwrap();
    }
    let volumes: Vec<Arc<dyn Volume>> = mems
        .iter()
        .map(|m| Arc::new(m.share(m.params().clone())) as Arc<dyn Volume>)
        .collect();
    let store = Arc::new(Store::with_volumes(volumes, 64 << 20));
    let feed = Arc::new(IndexFeed::with_limit(feed_limit));
    assert!(store.observe(feed.clone()));
    let worker = IndexWorker::new(
        index.clone(),
        store.clone(),
        feed,
        Duration::from_secs(3600),
    );
    Fixture {
        _dir: dir,
        index,
        store,
        mems,
        worker,
    }
}

impl Fixture {
    /// Steps the worker until it is idle.
    async fn settle(&mut self) {
        let cancel = CancellationToken::new();
        for _ in 0..100 {
            if self.worker.work(&cancel).await.unwrap() == WorkerState::Idle {
                return;
            }
        }
        panic!("the index worker never went idle");
    }

    async fn put(&self, data: &[u8], chunked: bool) -> BlockHash {
        let hash = BlockHash::of(data);
        let bytes = Bytes::copy_from_slice(data);
        let body = if chunked {
            let chunks = futures::stream::once(async move { Ok(bytes) });
            BlockBody::new(hash, None, Box::pin(chunks))
        } else {
            BlockBody::from_bytes(hash, bytes)
        };
        self.store
            .store(hash, body, Placement::default())
            .await
            .unwrap();
        hash
    }

    fn indexed(&self, hash: &BlockHash) -> Option<u64> {
        self.index
            .range(bin_of(hash), 1, u64::MAX, usize::MAX)
            .unwrap()
            .into_iter()
            .find(|e| e.hash == *hash)
            .map(|e| e.size)
    }
}

#[tokio::test]
async fn the_first_scan_indexes_what_the_volumes_held_before() {
    let mut f = fixture(&[b"old one", b"old two"], 1000).await;
    let report = f.worker.scan_report();
    assert!(!report.borrow().done);
    f.settle().await;
    assert_eq!(f.indexed(&BlockHash::of(b"old one")), Some(7));
    assert_eq!(f.indexed(&BlockHash::of(b"old two")), Some(7));
    let r = *report.borrow();
    assert!(r.done);
    assert_eq!((r.added, r.removed), (2, 0));
}

#[tokio::test]
async fn stores_trashes_and_untrashes_reach_the_index() {
    let mut f = fixture(&[], 1000).await;
    f.settle().await;
    let sized = f.put(b"with a length", false).await;
    let chunked = f.put(b"chunked, no length", true).await;
    f.settle().await;
    assert_eq!(f.indexed(&sized), Some(13));
    assert_eq!(f.indexed(&chunked), Some(18), "the size looked up");
    // A dedup hit gets no new BinID: nothing new to offer.
    let cursors = f.index.cursors();
    f.put(b"with a length", false).await;
    f.settle().await;
    assert_eq!(f.index.cursors(), cursors);
    // Trashed: gone from the index; untrashed: back.
    let holder = f.mems.iter().position(|m| m.contains(&sized)).unwrap();
    f.store.volumes()[holder].trash(&sized, None).await.unwrap();
    f.settle().await;
    assert_eq!(f.indexed(&sized), None);
    assert!(f.store.volumes()[holder].trashed(&sized).await.unwrap());
    f.store.volumes()[holder].untrash(&sized).await.unwrap();
    f.settle().await;
    assert_eq!(f.indexed(&sized), Some(13));
    assert!(!f.store.volumes()[holder].trashed(&sized).await.unwrap());
}

#[tokio::test]
async fn a_trash_that_leaves_a_copy_elsewhere_removes_nothing() {
    let mut f = fixture(&[], 1000).await;
    let hash = BlockHash::of(b"two copies");
    for v in f.store.volumes() {
        let body = BlockBody::from_bytes(hash, Bytes::from_static(b"two copies"));
        v.write(&hash, body).await.unwrap();
    }
    f.settle().await;
    f.store.volumes()[0].trash(&hash, None).await.unwrap();
    f.settle().await;
    assert_eq!(
        f.indexed(&hash),
        Some(10),
        "the other volume still holds it"
    );
}

#[tokio::test]
async fn blocks_lost_from_the_volumes_are_removed_by_the_scan_and_reported() {
    let mut f = fixture(&[b"will be lost", b"stays"], 1000).await;
    f.settle().await;
    // The disk loses a block behind the store's back; the node restarts.
    let lost = BlockHash::of(b"will be lost");
    assert!(f.mems[0].lose(&lost));
    f.worker = IndexWorker::new(
        f.index.clone(),
        f.store.clone(),
        Arc::new(IndexFeed::default()),
        Duration::from_secs(3600),
    );
    f.settle().await;
    assert_eq!(f.indexed(&lost), None);
    assert_eq!(f.indexed(&BlockHash::of(b"stays")), Some(5));
    assert_eq!(f.worker.scan_report().borrow().removed, 1);
}

#[tokio::test]
async fn a_feed_past_its_bound_asks_for_a_scan_and_loses_nothing() {
    let mut f = fixture(&[], 3).await;
    f.settle().await;
    let mut hashes = Vec::new();
    for i in 0..10u32 {
        hashes.push(f.put(&i.to_le_bytes(), false).await);
    }
    f.settle().await;
    for h in &hashes {
        assert_eq!(f.indexed(h), Some(4), "{h}");
    }
}
