//! The storage core over volumes that fail on demand: each fault, and
//! what `store`, dedup, verified reads and volume health make of it.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use keep_locator::BlockHash;
use keep_store::{Found, Placement, Store, StoreError, VerifiedBlock};
use keep_volume::testing::{Fault, FaultyVolume, MemVolume, Op, Schedule};
use keep_volume::{BlockBody, BodyError, Volume, VolumeParams};

const SMALL: &[u8] = b"a small block";

/// `n` volumes in memory, each behind a fault injector, and a store over
/// them (in configured order; the store orders them per block).
fn setup(n: usize) -> (Store, Vec<Arc<FaultyVolume>>, Vec<MemVolume>) {
    let mems: Vec<MemVolume> = (0..n)
        .map(|i| MemVolume::new(VolumeParams::new(format!("zzzzz-nyw5e-{i:015}"))))
        .collect();
    let faulty: Vec<Arc<FaultyVolume>> = mems
        .iter()
        .map(|m| Arc::new(FaultyVolume::new(Arc::new(m.share(m.params().clone())))))
        .collect();
    let volumes = faulty
        .iter()
        .map(|f| f.clone() as Arc<dyn Volume>)
        .collect();
    (Store::with_volumes(volumes, 16 << 20), faulty, mems)
}

/// Which of `faulty` the store tries first for `hash`.
fn order(store: &Store, hash: &BlockHash, faulty: &[Arc<FaultyVolume>]) -> Vec<usize> {
    store
        .volumes_for(hash)
        .iter()
        .map(|v| {
            faulty
                .iter()
                .position(|f| f.params().uuid == v.params().uuid)
                .unwrap()
        })
        .collect()
}

fn body(data: &[u8]) -> (BlockHash, BlockBody) {
    let hash = BlockHash::of(data);
    (
        hash,
        BlockBody::from_bytes(hash, Bytes::copy_from_slice(data)),
    )
}

async fn put(store: &Store, data: &[u8]) -> Result<String, StoreError> {
    let (hash, body) = body(data);
    let vol = store.store(hash, body, Placement::default()).await?;
    Ok(vol.params().uuid.clone())
}

async fn read_all(block: VerifiedBlock) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    let mut stream = block.into_stream();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

async fn get(store: &Store, hash: BlockHash) -> Result<Vec<u8>, StoreError> {
    let mut lookup = store.lookup(hash, false);
    match lookup.healthy().await? {
        Some(Found::Block(b)) => read_all(b).await,
        Some(Found::Exists(_)) => unreachable!("not a HEAD"),
        None => match lookup.suspect().await? {
            Some(Found::Block(b)) => read_all(b).await,
            _ => Err(lookup.verdict()),
        },
    }
}

fn large(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

#[tokio::test]
async fn a_failing_write_is_reported_and_the_next_block_goes_elsewhere() {
    let (store, faulty, mems) = setup(2);
    let (hash, _) = body(SMALL);
    let first = order(&store, &hash, &faulty)[0];
    faulty[first].inject(Op::Write, Fault::Io, Schedule::Always);
    let err = put(&store, SMALL).await.unwrap_err();
    assert!(matches!(err, StoreError::Volume(_)), "{err}");
    assert!(store.health().is_suspect(&faulty[first].params().uuid));
    assert!(
        !mems[first].contains(&hash),
        "nothing of a failed write stays"
    );
    let errors = store
        .metrics()
        .volume_errors
        .get_or_create(&keep_store::VolumeLabels {
            volume: faulty[first].params().uuid.clone(),
        });
    assert_eq!(errors.get(), 1);
    // Suspect: the next PUT neither asks it nor writes to it.
    let (lookups, writes) = (
        faulty[first].calls(Op::Mtime),
        faulty[first].calls(Op::Write),
    );
    let stored_on = put(&store, SMALL).await.unwrap();
    assert_eq!(stored_on, faulty[1 - first].params().uuid);
    assert_eq!(faulty[first].calls(Op::Mtime), lookups);
    assert_eq!(faulty[first].calls(Op::Write), writes);
}

#[tokio::test]
async fn unavailable_and_full_volumes() {
    let (store, faulty, _) = setup(2);
    for f in &faulty {
        f.inject(Op::Status, Fault::Full, Schedule::Always);
    }
    assert!(matches!(put(&store, SMALL).await, Err(StoreError::Full)));
    for f in &faulty {
        f.clear();
        f.inject(Op::Status, Fault::Unavailable, Schedule::Always);
    }
    let err = put(&store, b"another block").await.unwrap_err();
    assert!(matches!(err, StoreError::NoTarget(_)), "{err}");
    // One full, one fine: the fine one takes it.
    faulty[0].clear();
    faulty[1].clear();
    faulty[0].inject(Op::Status, Fault::Full, Schedule::Always);
    assert_eq!(
        put(&store, b"a third").await.unwrap(),
        faulty[1].params().uuid
    );
    // A write that finds the volume full answers Full.
    let (store, faulty, _) = setup(1);
    faulty[0].inject(Op::Write, Fault::Full, Schedule::Always);
    assert!(matches!(put(&store, SMALL).await, Err(StoreError::Full)));
    assert!(
        !store.health().is_suspect(&faulty[0].params().uuid),
        "full is not failing"
    );
}

#[tokio::test]
async fn a_refused_body_stores_nothing_and_blames_no_volume() {
    let (store, faulty, mems) = setup(2);
    let hash = BlockHash::of(SMALL);
    let wrong = BlockBody::from_bytes(hash, Bytes::from_static(b"other bytes"));
    let err = store
        .store(hash, wrong, Placement::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(BodyError::HashMismatch { .. })),
        "{err}"
    );
    assert!(mems.iter().all(|m| !m.contains(&hash)));
    assert!(
        faulty
            .iter()
            .all(|f| !store.health().is_suspect(&f.params().uuid))
    );
}

#[tokio::test]
async fn a_failed_lookup_skips_dedup_there_and_writes_elsewhere() {
    let (store, faulty, mems) = setup(2);
    let data = large(200 << 10, 1);
    let hash = BlockHash::of(&data);
    let first = order(&store, &hash, &faulty)[0];
    put(&store, &data).await.unwrap();
    assert!(mems[first].contains(&hash));
    faulty[first].inject(Op::Mtime, Fault::Unavailable, Schedule::Times(1));
    let stored_on = put(&store, &data).await.unwrap();
    assert_eq!(stored_on, faulty[1 - first].params().uuid);
    assert!(mems[1 - first].contains(&hash));
    assert!(store.health().is_suspect(&faulty[first].params().uuid));
}

#[tokio::test]
async fn dedup_touches_an_equal_copy_and_repairs_a_corrupt_one() {
    let (store, faulty, mems) = setup(1);
    let data = large(300 << 10, 2);
    let hash = BlockHash::of(&data);
    put(&store, &data).await.unwrap();
    let writes = faulty[0].calls(Op::Write);
    put(&store, &data).await.unwrap();
    assert_eq!(
        faulty[0].calls(Op::Write),
        writes,
        "an equal copy is not rewritten"
    );
    assert_eq!(faulty[0].calls(Op::Touch), 1, "only touched");
    assert!(mems[0].corrupt(&hash));
    put(&store, &data).await.unwrap();
    assert_eq!(
        mems[0].stored(&hash).unwrap(),
        data,
        "the corrupt copy was rewritten"
    );
}

#[tokio::test]
async fn a_corrupt_small_copy_is_moved_aside_and_another_served() {
    let (store, faulty, mems) = setup(2);
    let hash = BlockHash::of(SMALL);
    for m in &mems {
        m.insert_raw(hash, Bytes::from_static(SMALL));
    }
    let first = order(&store, &hash, &faulty)[0];
    faulty[first].inject(Op::Read, Fault::Corrupt, Schedule::Times(1));
    assert_eq!(get(&store, hash).await.unwrap(), SMALL);
    assert_eq!(mems[first].quarantined(), vec![hash]);
    let corrupt = store
        .metrics()
        .corrupt_blocks
        .get_or_create(&keep_store::VolumeLabels {
            volume: faulty[first].params().uuid.clone(),
        });
    assert_eq!(corrupt.get(), 1);
    // With the only copy corrupt, the verdict is Corrupt.
    let (store, faulty, mems) = setup(1);
    mems[0].insert_raw(hash, Bytes::from_static(SMALL));
    faulty[0].inject(Op::Read, Fault::Corrupt, Schedule::Always);
    assert!(matches!(get(&store, hash).await, Err(StoreError::Corrupt)));
}

#[tokio::test]
async fn a_corrupt_large_block_ends_its_stream_with_an_error() {
    let (store, faulty, mems) = setup(1);
    let data = large(3 << 20, 3);
    let hash = BlockHash::of(&data);
    mems[0].insert_raw(hash, Bytes::from(data.clone()));
    // The second chunk is damaged: the first one may go, not the rest.
    faulty[0].inject(
        Op::Read,
        Fault::Corrupt,
        Schedule::Window { skip: 1, times: 1 },
    );
    let mut lookup = store.lookup(hash, false);
    let Some(Found::Block(block)) = lookup.healthy().await.unwrap() else {
        panic!("the block is there");
    };
    let err = read_all(block).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt), "{err}");
    assert_eq!(mems[0].quarantined(), vec![hash]);
}

#[tokio::test]
async fn a_read_that_breaks_off_is_an_error_not_a_short_success() {
    let (store, faulty, mems) = setup(1);
    let data = large(3 << 20, 4);
    let hash = BlockHash::of(&data);
    mems[0].insert_raw(hash, Bytes::from(data));
    faulty[0].inject(Op::Read, Fault::Io, Schedule::Window { skip: 1, times: 1 });
    let err = get(&store, hash).await.unwrap_err();
    assert!(matches!(err, StoreError::Read(_)), "{err}");
    assert!(store.health().is_suspect(&faulty[0].params().uuid));
}

#[tokio::test]
async fn a_failing_volume_is_asked_last_and_its_failure_is_the_verdict() {
    let (store, faulty, mems) = setup(2);
    let hash = BlockHash::of(SMALL);
    let order = order(&store, &hash, &faulty);
    mems[order[1]].insert_raw(hash, Bytes::from_static(SMALL));
    faulty[order[0]].inject(Op::Open, Fault::Io, Schedule::Always);
    assert_eq!(get(&store, hash).await.unwrap(), SMALL);
    let opens = faulty[order[0]].calls(Op::Open);
    assert_eq!(get(&store, hash).await.unwrap(), SMALL);
    assert_eq!(
        faulty[order[0]].calls(Op::Open),
        opens,
        "a suspect volume is not asked while another has the block"
    );
    // A block nobody has: the healthy pass finds nothing, the suspect
    // pass fails, and that failure is the verdict (not "not found").
    let missing = BlockHash::of(b"missing");
    let err = get(&store, missing).await.unwrap_err();
    assert!(matches!(err, StoreError::Volume(_)), "{err}");
    faulty[order[0]].clear_op(Op::Open);
    faulty[order[0]].inject(Op::Open, Fault::Unavailable, Schedule::Always);
    let err = get(&store, missing).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn no_buffer_memory_is_busy() {
    let (store, _, mems) = setup(1);
    let hash = BlockHash::of(SMALL);
    mems[0].insert_raw(hash, Bytes::from_static(SMALL));
    // Hold the whole budget (16 MiB: eight 2 MiB reservations).
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(store.budget().reserve(64 << 20).await.unwrap());
    }
    tokio::time::pause();
    let err = get(&store, hash).await.unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)), "{err}");
}

#[tokio::test]
async fn latency_is_waited_for_not_failed() {
    let (store, faulty, _) = setup(1);
    faulty[0].inject(
        Op::Write,
        Fault::Latency(std::time::Duration::from_millis(50)),
        Schedule::Always,
    );
    let start = std::time::Instant::now();
    put(&store, SMALL).await.unwrap();
    assert!(start.elapsed() >= std::time::Duration::from_millis(50));
    assert_eq!(get(&store, BlockHash::of(SMALL)).await.unwrap(), SMALL);
}

/// Records what the store reports as stored.
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<(BlockHash, Option<u64>)>>);

impl keep_store::BlockObserver for Recorder {
    fn stored(&self, hash: BlockHash, size: Option<u64>) {
        self.0.lock().unwrap().push((hash, size));
    }

    fn removed(&self, _: BlockHash) {}
}

/// `store_many` on the one volume: one `write_many`, a write per block as
/// far as the volume's faults count; an answer for each block, in order;
/// a refused or failed block fails alone; the observer hears of exactly
/// the blocks stored, and a fault marks the volume suspect.
#[tokio::test]
async fn store_many_answers_each_and_reports_what_it_stored() {
    let (store, faulty, _) = setup(1);
    let seen = Arc::new(Recorder::default());
    assert!(store.observe(seen.clone()));
    let (a, c) = (body(b"first of many"), body(b"third of many"));
    let forged = BlockHash::of(b"what the second claims to be");
    let (a_hash, c_hash) = (a.0, c.0);
    let blocks = vec![
        a,
        (
            forged,
            BlockBody::from_bytes(forged, Bytes::from_static(b"x")),
        ),
        c,
    ];
    let results = store.store_many(blocks, Placement::default()).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(
            results[1],
            Err(StoreError::Invalid(BodyError::HashMismatch { .. }))
        ),
        "{results:?}"
    );
    assert_eq!(faulty[0].calls(Op::Write), 3);
    assert_eq!(get(&store, a_hash).await.unwrap(), b"first of many");
    assert_eq!(get(&store, c_hash).await.unwrap(), b"third of many");
    assert!(get(&store, forged).await.is_err());
    assert_eq!(
        *seen.0.lock().unwrap(),
        [(a_hash, Some(13)), (c_hash, Some(13))]
    );

    faulty[0].inject(Op::Write, Fault::Io, Schedule::Times(1));
    let (d, e) = (body(b"fourth"), body(b"fifth"));
    let e_hash = e.0;
    let results = store.store_many(vec![d, e], Placement::default()).await;
    assert!(
        matches!(results[..], [Err(StoreError::Volume(_)), Ok(())]),
        "{results:?}"
    );
    assert!(store.health().is_suspect(&faulty[0].params().uuid));
    assert_eq!(seen.0.lock().unwrap().last(), Some(&(e_hash, Some(5))));
    assert!(
        store
            .store_many(Vec::new(), Placement::default())
            .await
            .is_empty()
    );
}

/// With several volumes, `store_many` stores each block as `store` would:
/// on the first volume of its own placement order.
#[tokio::test]
async fn store_many_over_several_volumes_places_each_block() {
    let (store, faulty, mems) = setup(3);
    let blocks: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 100]).collect();
    let results = store
        .store_many(
            blocks.iter().map(|d| body(d)).collect(),
            Placement::default(),
        )
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for data in &blocks {
        let hash = BlockHash::of(data);
        let first = order(&store, &hash, &faulty)[0];
        assert!(mems[first].contains(&hash), "on its first volume");
    }
}
