//! The test doubles of the `testing` feature: `MemVolume` against the
//! conformance suite and in what only it offers, and every fault and
//! schedule of `FaultyVolume`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use keep_locator::BlockHash;
use keep_volume::conformance::{self, get, index, put, test_data};
use keep_volume::testing::{Fault, FaultyVolume, MemVolume, Op, Schedule};
use keep_volume::{CHUNK_SIZE, Volume, VolumeError, VolumeParams};

fn params() -> VolumeParams {
    VolumeParams::new("zzzzz-nyw5e-000000000000000")
}

fn mem() -> MemVolume {
    MemVolume::new(params())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mem_volume_passes_conformance() {
    conformance::run(conformance::Options::default(), |params| async move {
        Arc::new(MemVolume::new(params)) as Arc<dyn Volume>
    })
    .await;
}

#[tokio::test]
async fn mem_mtimes_strictly_increase_within_a_tick() {
    let vol = mem();
    let a = put(&vol, &test_data(10, 1), 10).await.unwrap();
    let b = put(&vol, &test_data(10, 2), 10).await.unwrap();
    let mut last = vol.mtime(&a).await.unwrap();
    for i in 0..1000 {
        let h = if i % 2 == 0 { &a } else { &b };
        if i % 3 == 0 {
            put(&vol, &vol.stored(h).unwrap(), 10).await.unwrap();
        } else {
            vol.touch(h).await.unwrap();
        }
        let now = vol.mtime(h).await.unwrap();
        assert!(now > last, "mtime {now} not after {last}");
        last = now;
    }
}

#[tokio::test]
async fn mem_capacity_makes_it_full() {
    let vol = mem().with_capacity(1000);
    let st = vol.status().await.unwrap();
    assert_eq!(
        (st.available_bytes, st.used_bytes, st.full),
        (1000, 0, false)
    );
    let a = put(&vol, &test_data(600, 1), 600).await.unwrap();
    // 600 + 500 does not fit; the declared length says so before any byte.
    assert!(matches!(
        put(&vol, &test_data(500, 2), 500).await,
        Err(VolumeError::Full)
    ));
    // Rewriting the stored block replaces its bytes: it fits.
    put(&vol, &test_data(600, 1), 600).await.unwrap();
    put(&vol, &test_data(400, 3), 400).await.unwrap();
    let st = vol.status().await.unwrap();
    assert_eq!(
        (st.available_bytes, st.used_bytes, st.full),
        (0, 1000, true)
    );
    assert!(matches!(
        put(&vol, &Bytes::new(), 1).await,
        Err(VolumeError::Full)
    ));
    // Trash still takes space; emptying it frees it.
    vol.trash(&a, None).await.unwrap();
    assert!(vol.status().await.unwrap().full);
    vol.set_capacity(None);
    let st = vol.status().await.unwrap();
    assert_eq!(
        (st.available_bytes, st.used_bytes, st.full),
        (0, 1000, false)
    );
    put(&vol, &test_data(500, 2), 500).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn mem_trash_lifetime_follows_tokio_time() {
    let mut p = params();
    p.trash_lifetime = Duration::from_secs(3600);
    let vol = MemVolume::new(p);
    let h = put(&vol, &test_data(50, 1), 50).await.unwrap();
    vol.trash(&h, None).await.unwrap();
    assert_eq!(vol.trashed(), vec![h]);
    let stats = vol.empty_trash().await.unwrap();
    assert_eq!((stats.deleted, stats.remaining), (0, 1));
    tokio::time::advance(Duration::from_secs(3600)).await;
    let stats = vol.empty_trash().await.unwrap();
    assert_eq!(
        (stats.deleted, stats.deleted_bytes, stats.remaining),
        (1, 50, 0)
    );
    assert!(vol.trashed().is_empty());
    assert!(vol.untrash(&h).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn mem_untrash_restores_the_latest_copy_with_its_mtime() {
    let vol = mem();
    let h = put(&vol, &test_data(50, 1), 50).await.unwrap();
    vol.trash(&h, None).await.unwrap();
    put(&vol, &test_data(50, 1), 50).await.unwrap();
    let second = vol.mtime(&h).await.unwrap();
    vol.trash(&h, None).await.unwrap();
    assert_eq!(vol.trashed(), vec![h, h]);
    vol.untrash(&h).await.unwrap();
    assert_eq!(vol.mtime(&h).await.unwrap(), second);
    assert_eq!(vol.trashed(), vec![h]);
}

#[tokio::test]
async fn mem_quarantine_moves_only_the_copy_read() {
    let vol = mem();
    let data = test_data(100, 1);
    let h = put(&vol, &data, 100).await.unwrap();
    let first = vol.open(&h).await.unwrap().copy.expect("a copy id");
    put(&vol, &data, 100).await.unwrap();
    let second = vol.open(&h).await.unwrap().copy.expect("a copy id");
    assert_ne!(first, second, "every write makes a new copy");
    vol.quarantine(&h, Some(first)).await.unwrap();
    assert!(vol.contains(&h), "the newer copy stays");
    assert!(vol.quarantined().is_empty());
    vol.quarantine(&h, Some(second)).await.unwrap();
    assert!(!vol.contains(&h));
    assert_eq!(vol.quarantined(), vec![h]);
    assert_eq!(vol.status().await.unwrap().used_bytes, 100, "kept aside");
}

#[tokio::test]
async fn mem_corrupt_and_raw_blocks_fail_their_hash() {
    let vol = mem();
    let data = test_data(3 * CHUNK_SIZE, 1);
    let h = put(&vol, &data, CHUNK_SIZE).await.unwrap();
    let copy = vol.open(&h).await.unwrap().copy;
    assert!(vol.corrupt(&h));
    let back = get(&vol, &h).await.unwrap();
    assert_eq!(back.len(), data.len());
    assert_ne!(BlockHash::of(&back), h);
    assert_eq!(vol.open(&h).await.unwrap().copy, copy, "same copy");
    assert!(!vol.corrupt(&BlockHash::of(b"absent")));

    let foreign = BlockHash::of(b"what the hash names");
    vol.insert_raw(foreign, Bytes::from_static(b"something else"));
    assert_eq!(get(&vol, &foreign).await.unwrap(), b"something else");
    assert!(vol.set_mtime(&foreign, 42));
    assert_eq!(vol.mtime(&foreign).await.unwrap(), 42);
    assert_eq!(vol.len(), 2);
    assert_eq!(vol.hashes().len(), 2);
}

#[tokio::test]
async fn mem_index_pages_through_many_blocks() {
    let vol = mem();
    let mut hashes = Vec::new();
    for i in 0..700 {
        let data = Bytes::from(format!("block {i}"));
        let h = BlockHash::of(&data);
        vol.insert_raw(h, data);
        hashes.push(h);
    }
    hashes.sort();
    let listed: Vec<BlockHash> = index(&vol, "").await.iter().map(|e| e.hash).collect();
    assert_eq!(listed, hashes, "every block once, in order");
    let hex = hashes[300].to_hex();
    let prefix = &hex[..2];
    let by_prefix = index(&vol, prefix).await;
    let want = hashes
        .iter()
        .filter(|h| h.to_hex().starts_with(prefix))
        .count();
    assert_eq!(by_prefix.len(), want);
    // A receiver that stops listening ends the index without an error.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let reader = tokio::spawn(async move { rx.recv().await });
    vol.index("", tx).await.unwrap();
    assert!(reader.await.unwrap().is_some());
}

#[tokio::test]
async fn mem_shared_device_shares_blocks() {
    let a = mem();
    let mut p = params();
    p.uuid = "zzzzz-nyw5e-000000000000001".into();
    p.allow_write = false;
    let b = a.share(p);
    assert_eq!(a.device_id(), b.device_id());
    let h = put(&a, &test_data(10, 1), 10).await.unwrap();
    assert_eq!(get(&b, &h).await.unwrap().len(), 10);
    assert!(matches!(b.touch(&h).await, Err(VolumeError::ReadOnly)));
    assert!(format!("{b:?}").contains("blocks: 1"));
}

/// A volume holding one block of `len` bytes, wrapped.
async fn faulty_with_block(len: usize) -> (FaultyVolume, BlockHash) {
    let vol = FaultyVolume::new(Arc::new(mem()));
    let h = put(&vol, &test_data(len, 7), len.max(1)).await.unwrap();
    vol.reset_counts();
    (vol, h)
}

/// Calls `op` once on `vol` (for `Read`: opens and reads the first chunk).
async fn call(vol: &FaultyVolume, op: Op, h: &BlockHash) -> Result<(), VolumeError> {
    match op {
        Op::Open => vol.open(h).await.map(drop),
        Op::Read => {
            let mut reader = vol.open(h).await?;
            reader.chunks.next().await.expect("a chunk").map(drop)
        }
        Op::Write => put(vol, &test_data(100, 7), 100).await.map(drop),
        Op::Touch => vol.touch(h).await,
        Op::Mtime => vol.mtime(h).await.map(drop),
        // Trash and untrash as a pair, so the block stays for the next call.
        Op::Trash => {
            vol.trash(h, None).await?;
            vol.untrash(h).await
        }
        Op::Untrash => {
            vol.inner().trash(h, None).await?;
            let res = vol.untrash(h).await;
            if res.is_err() {
                vol.inner().untrash(h).await.unwrap();
            }
            res
        }
        Op::Trashed => vol.trashed(h).await.map(drop),
        Op::EmptyTrash => vol.empty_trash().await.map(drop),
        Op::Index => {
            let (tx, _rx) = tokio::sync::mpsc::channel(1);
            vol.index("ffff", tx).await
        }
        Op::Status => vol.status().await.map(drop),
        Op::Quarantine => {
            // On a block of its own, so the others stay.
            let q = put(vol.inner().as_ref(), &test_data(5, 99), 5).await?;
            vol.quarantine(&q, None).await
        }
    }
}

/// The kind of an error, for comparing.
fn kind(e: &VolumeError) -> &'static str {
    match e {
        VolumeError::Io(_) => "io",
        VolumeError::Unavailable(_) => "unavailable",
        VolumeError::NotFound => "not found",
        VolumeError::Full => "full",
        VolumeError::Corrupt(_) => "corrupt",
        _ => "other",
    }
}

#[tokio::test]
async fn every_op_fails_as_injected() {
    let (vol, h) = faulty_with_block(100).await;
    for op in Op::ALL {
        call(&vol, op, &h)
            .await
            .unwrap_or_else(|e| panic!("{op}: {e}"));
        for (fault, want) in [
            (Fault::Io, "io"),
            (Fault::Unavailable, "unavailable"),
            (Fault::NotFound, "not found"),
            (Fault::Full, "full"),
            (Fault::Corrupt, "corrupt"),
        ] {
            // These two answer, differently: tested below.
            let answers = (op == Op::Status && fault == Fault::Full)
                || (matches!(op, Op::Open | Op::Read) && fault == Fault::Corrupt);
            if answers {
                continue;
            }
            let (calls, injected) = (vol.calls(op), vol.injected(op));
            vol.inject(op, fault, Schedule::Times(1));
            let err = call(&vol, op, &h).await.expect_err(op.name());
            assert_eq!(kind(&err), want, "{op} with {fault:?}: {err}");
            call(&vol, op, &h)
                .await
                .unwrap_or_else(|e| panic!("{op} after {fault:?}: {e}"));
            assert_eq!(vol.calls(op), calls + 2, "{op} counts its calls");
            assert_eq!(vol.injected(op), injected + 1, "{op} counts its faults");
        }
    }
    assert!(format!("{vol:?}").contains("Times(1)"), "{vol:?}");
}

#[tokio::test]
async fn full_write_and_full_status() {
    let (vol, _) = faulty_with_block(10).await;
    vol.inject(Op::Write, Fault::Full, Schedule::Always).inject(
        Op::Status,
        Fault::Full,
        Schedule::Always,
    );
    assert!(matches!(
        put(&vol, &test_data(3, 3), 3).await,
        Err(VolumeError::Full)
    ));
    let st = vol.status().await.unwrap();
    assert!(st.full);
    assert_eq!(st.used_bytes, 10, "the rest of the inner status");
    vol.clear();
    assert!(!vol.status().await.unwrap().full);
    put(&vol, &test_data(3, 3), 3).await.unwrap();
}

#[tokio::test]
async fn corrupt_reads_fail_their_hash() {
    let data = test_data(3 * CHUNK_SIZE + 10, 7);
    let (vol, h) = faulty_with_block(data.len()).await;
    // A corrupt open spoils the first chunk of what it opened.
    vol.inject(Op::Open, Fault::Corrupt, Schedule::Times(1));
    let back = get(&vol, &h).await.unwrap();
    assert_ne!(BlockHash::of(&back), h);
    assert_eq!(back[CHUNK_SIZE..], data[CHUNK_SIZE..]);
    assert!(get(&vol, &h).await.unwrap() == data[..]);
    // A corrupt read spoils the chunks its schedule picks: here the third.
    vol.inject(
        Op::Read,
        Fault::Corrupt,
        Schedule::Window { skip: 2, times: 1 },
    );
    let back = get(&vol, &h).await.unwrap();
    assert_eq!(back[..2 * CHUNK_SIZE], data[..2 * CHUNK_SIZE]);
    assert_ne!(
        back[2 * CHUNK_SIZE..3 * CHUNK_SIZE],
        data[2 * CHUNK_SIZE..3 * CHUNK_SIZE]
    );
    assert_eq!(back[3 * CHUNK_SIZE..], data[3 * CHUNK_SIZE..]);
}

#[tokio::test]
async fn a_read_stream_fails_mid_way() {
    let (vol, h) = faulty_with_block(3 * CHUNK_SIZE).await;
    vol.inject(Op::Read, Fault::Io, Schedule::After(1));
    let mut reader = vol.open(&h).await.unwrap();
    assert_eq!(reader.size, 3 * CHUNK_SIZE as u64);
    assert_eq!(
        reader.chunks.next().await.unwrap().unwrap().len(),
        CHUNK_SIZE
    );
    assert!(matches!(
        reader.chunks.next().await,
        Some(Err(VolumeError::Io(_)))
    ));
    assert!(reader.chunks.next().await.is_none(), "ends after the error");
    assert_eq!((vol.calls(Op::Read), vol.injected(Op::Read)), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn latency_delays_and_adds_up() {
    let (vol, h) = faulty_with_block(2 * CHUNK_SIZE).await;
    vol.inject(
        Op::Mtime,
        Fault::Latency(Duration::from_secs(3)),
        Schedule::Always,
    )
    .inject(
        Op::Mtime,
        Fault::Latency(Duration::from_secs(2)),
        Schedule::Times(1),
    )
    .inject(Op::Mtime, Fault::Io, Schedule::Times(1));
    let start = tokio::time::Instant::now();
    assert!(matches!(vol.mtime(&h).await, Err(VolumeError::Io(_))));
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    vol.mtime(&h).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(8));

    vol.inject(
        Op::Read,
        Fault::Latency(Duration::from_secs(1)),
        Schedule::Always,
    );
    let start = tokio::time::Instant::now();
    get(&vol, &h).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2), "one per chunk");
}

/// Which of `n` calls of `status` fail.
async fn pattern(vol: &FaultyVolume, n: usize) -> Vec<bool> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(vol.status().await.is_err());
    }
    out
}

#[tokio::test]
async fn schedules_count_calls_from_their_injection() {
    let (vol, _) = faulty_with_block(1).await;
    vol.status().await.unwrap();
    vol.inject(Op::Status, Fault::Io, Schedule::Times(2));
    assert_eq!(pattern(&vol, 4).await, [true, true, false, false]);
    vol.clear();
    vol.inject(Op::Status, Fault::Io, Schedule::After(2));
    assert_eq!(pattern(&vol, 4).await, [false, false, true, true]);
    vol.clear();
    vol.inject(
        Op::Status,
        Fault::Io,
        Schedule::Window { skip: 1, times: 2 },
    );
    assert_eq!(pattern(&vol, 5).await, [false, true, true, false, false]);
    vol.clear();
    vol.inject(Op::Status, Fault::Io, Schedule::Always);
    vol.inject(Op::Touch, Fault::Io, Schedule::Always);
    assert_eq!(pattern(&vol, 2).await, [true, true]);
    vol.clear_op(Op::Status);
    assert_eq!(pattern(&vol, 1).await, [false]);
    assert!(vol.touch(&BlockHash::EMPTY).await.is_err(), "other op kept");
    assert_eq!(vol.calls(Op::Status), 1 + 4 + 4 + 5 + 2 + 1);
    assert_eq!(vol.injected(Op::Status), 2 + 2 + 2 + 2);
    // Calls of other operations do not count towards a rule.
    vol.inject(Op::Status, Fault::Io, Schedule::After(1));
    vol.mtime(&BlockHash::EMPTY).await.unwrap_err();
    assert_eq!(pattern(&vol, 2).await, [false, true]);
    vol.reset_counts();
    assert_eq!((vol.calls(Op::Status), vol.injected(Op::Status)), (0, 0));
}

#[tokio::test]
async fn a_seeded_probability_is_reproducible() {
    let run = |seed| async move {
        let (vol, _) = faulty_with_block(1).await;
        vol.inject(
            Op::Status,
            Fault::Io,
            Schedule::Probability { p: 0.3, seed },
        );
        pattern(&vol, 200).await
    };
    let first = run(1).await;
    assert_eq!(run(1).await, first, "same seed, same faults");
    assert_ne!(run(2).await, first, "another seed, other faults");
    let hits = first.iter().filter(|&&f| f).count();
    assert!((30..=90).contains(&hits), "about 30% of 200: {hits}");
    let (vol, _) = faulty_with_block(1).await;
    vol.inject(
        Op::Status,
        Fault::Io,
        Schedule::Probability { p: 0.0, seed: 1 },
    );
    vol.inject(
        Op::Mtime,
        Fault::Io,
        Schedule::Probability { p: 1.0, seed: 1 },
    );
    assert!(pattern(&vol, 50).await.iter().all(|&f| !f));
    assert!(vol.mtime(&BlockHash::EMPTY).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_change_at_run_time_from_another_task() {
    let (vol, h) = faulty_with_block(10).await;
    let as_volume: Arc<dyn Volume> = Arc::new(vol.clone());
    as_volume.open(&h).await.unwrap();
    let handle = vol.clone();
    tokio::spawn(async move {
        handle.inject(Op::Open, Fault::Unavailable, Schedule::Always);
    })
    .await
    .unwrap();
    assert!(matches!(
        as_volume.open(&h).await,
        Err(VolumeError::Unavailable(_))
    ));
    assert_eq!(vol.calls(Op::Open), 2, "clones share the counters");
    vol.clear();
    as_volume.open(&h).await.unwrap();
    assert_eq!(as_volume.params().uuid, params().uuid);
    assert_eq!(as_volume.device_id(), vol.inner().device_id());
}
