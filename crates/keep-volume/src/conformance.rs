//! The conformance suite: the behaviour every [`Volume`] backend must show.
//!
//! A backend's tests call [`run`] with a factory that makes a fresh, empty
//! volume for the given parameters; each case gets its own volume. A
//! failing case panics with its name.
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use keep_volume::{Volume, conformance};
//! use keep_volume::directory::{DirOptions, DirVolume};
//! let tmp = tempfile::tempdir().unwrap();
//! let base = tmp.path().to_owned();
//! conformance::run(conformance::Options::default(), move |params| {
//!     let root = base.join(&params.uuid);
//!     async move {
//!         let opts = DirOptions { root, params, min_free_bytes: 0 };
//!         Arc::new(DirVolume::open(opts).unwrap()) as Arc<dyn Volume>
//!     }
//! })
//! .await;
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use keep_locator::BlockHash;

use crate::{BlockBody, BodyError, CHUNK_SIZE, IndexEntry, Volume, VolumeError, VolumeParams};

/// What the suite needs to know about a backend.
#[derive(Debug, Clone)]
pub struct Options {
    /// The finest mtime step the backend records (S3: one second).
    pub mtime_resolution: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mtime_resolution: Duration::from_millis(10),
        }
    }
}

/// Runs every case. `make` must return a fresh, empty volume each call.
pub async fn run<F, Fut>(opts: Options, make: F)
where
    F: Fn(VolumeParams) -> Fut,
    Fut: Future<Output = Arc<dyn Volume>>,
{
    let seq = AtomicU64::new(0);
    let fresh = |tweak: &dyn Fn(&mut VolumeParams)| {
        let mut params = VolumeParams::new(format!(
            "zzzzz-nyw5e-{:015}",
            seq.fetch_add(1, Ordering::Relaxed)
        ));
        tweak(&mut params);
        make(params)
    };
    let plain = |_: &mut VolumeParams| {};

    write_then_read(&*fresh(&plain).await).await;
    missing_blocks(&*fresh(&plain).await).await;
    refused_writes_leave_nothing(&*fresh(&plain).await).await;
    dropped_write_leaves_nothing(&*fresh(&plain).await).await;
    rewrite_refreshes_mtime(&*fresh(&plain).await, &opts).await;
    touch_refreshes_mtime(&*fresh(&plain).await, &opts).await;
    trash_and_untrash(&*fresh(&plain).await).await;
    trash_guarded_by_mtime(&*fresh(&plain).await).await;
    let instant = |p: &mut VolumeParams| p.trash_lifetime = Duration::ZERO;
    trash_with_zero_lifetime_deletes(&*fresh(&instant).await).await;
    let short = |p: &mut VolumeParams| p.trash_lifetime = Duration::from_secs(1);
    empty_trash_after_lifetime(&*fresh(&short).await).await;
    index_by_prefix(&*fresh(&plain).await).await;
    let read_only = |p: &mut VolumeParams| {
        p.allow_write = false;
        p.allow_trash = false;
    };
    read_only_refuses(&*fresh(&read_only).await).await;
    status_reports(&*fresh(&plain).await).await;
    quarantine_hides(&*fresh(&plain).await).await;
    concurrent_writes_of_one_block(fresh(&plain).await).await;
    write_many_answers_each(&*fresh(&plain).await).await;
    kept_sums_describe_the_block(&*fresh(&plain).await).await;
}

/// Deterministic pseudo-random bytes.
pub fn test_data(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// Writes `data` as a block, in frames of `frame` bytes.
pub async fn put(vol: &dyn Volume, data: &Bytes, frame: usize) -> Result<BlockHash, VolumeError> {
    let hash = BlockHash::of(data);
    let frames: Vec<Result<Bytes, BodyError>> = data
        .chunks(frame.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = BlockBody::new(
        hash,
        Some(data.len() as u64),
        futures::stream::iter(frames).boxed(),
    );
    vol.write(&hash, body).await?;
    Ok(hash)
}

/// Reads a whole block.
pub async fn get(vol: &dyn Volume, hash: &BlockHash) -> Result<Vec<u8>, VolumeError> {
    let mut reader = vol.open(hash).await?;
    let mut out = Vec::with_capacity(reader.size as usize);
    while let Some(chunk) = reader.chunks.next().await {
        out.extend_from_slice(&chunk?);
    }
    assert_eq!(
        out.len() as u64,
        reader.size,
        "reader size matches the bytes"
    );
    Ok(out)
}

/// The whole index for `prefix`.
pub async fn index(vol: &dyn Volume, prefix: &str) -> Vec<IndexEntry> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let (res, entries) = tokio::join!(vol.index(prefix, tx), async {
        let mut v = Vec::new();
        while let Some(e) = rx.recv().await {
            v.push(e);
        }
        v
    });
    res.expect("index");
    entries
}

async fn wait_past(mtime: i64, resolution: Duration) {
    let target = mtime + resolution.as_nanos() as i64;
    let deadline = Instant::now() + resolution + Duration::from_secs(5);
    while crate::unix_nanos_now() <= target {
        assert!(Instant::now() < deadline, "clock does not advance");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn write_then_read(vol: &dyn Volume) {
    for (i, len) in [
        0,
        1,
        3,
        4096,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        3 * CHUNK_SIZE + 5,
    ]
    .into_iter()
    .enumerate()
    {
        let data = test_data(len, i as u64);
        for frame in [len.max(1), 65536, 1000] {
            let hash = put(vol, &data, frame)
                .await
                .unwrap_or_else(|e| panic!("write_then_read: put {len}: {e}"));
            let back = get(vol, &hash)
                .await
                .unwrap_or_else(|e| panic!("write_then_read: get {len}: {e}"));
            assert!(back == data[..], "write_then_read: {len} bytes differ");
        }
    }
}

async fn missing_blocks(vol: &dyn Volume) {
    let h = BlockHash::of(b"never written");
    assert!(
        vol.open(&h).await.unwrap_err().is_not_found(),
        "missing_blocks: open"
    );
    assert!(
        vol.mtime(&h).await.unwrap_err().is_not_found(),
        "missing_blocks: mtime"
    );
    assert!(
        vol.touch(&h).await.unwrap_err().is_not_found(),
        "missing_blocks: touch"
    );
    assert!(
        vol.trash(&h, None).await.unwrap_err().is_not_found(),
        "missing_blocks: trash"
    );
    assert!(
        vol.untrash(&h).await.unwrap_err().is_not_found(),
        "missing_blocks: untrash"
    );
    assert!(!vol.trashed(&h).await.unwrap(), "missing_blocks: trashed");
    assert!(
        vol.quarantine(&h, None).await.unwrap_err().is_not_found(),
        "missing_blocks: quarantine"
    );
}

async fn refused_writes_leave_nothing(vol: &dyn Volume) {
    let data = test_data(3 * CHUNK_SIZE, 7);
    let hash = BlockHash::of(&data);
    let wrong = BlockHash::of(b"something else");
    let body = BlockBody::from_bytes(wrong, data.clone());
    let err = vol.write(&wrong, body).await.unwrap_err();
    assert!(
        matches!(err, VolumeError::Body(BodyError::HashMismatch { .. })),
        "refused: {err}"
    );
    let short = futures::stream::iter(vec![Ok(data.slice(..CHUNK_SIZE))]).boxed();
    let err = vol
        .write(&hash, BlockBody::new(hash, Some(data.len() as u64), short))
        .await
        .unwrap_err();
    assert!(
        matches!(err, VolumeError::Body(BodyError::LengthMismatch { .. })),
        "refused: {err}"
    );
    let broken = futures::stream::iter(vec![
        Ok(data.slice(..2 * CHUNK_SIZE)),
        Err(BodyError::Source("connection reset".into())),
    ])
    .boxed();
    let err = vol
        .write(&hash, BlockBody::new(hash, None, broken))
        .await
        .unwrap_err();
    assert!(
        matches!(err, VolumeError::Body(BodyError::Source(_))),
        "refused: {err}"
    );
    for h in [hash, wrong] {
        assert!(
            vol.open(&h).await.unwrap_err().is_not_found(),
            "refused writes: block visible"
        );
    }
    assert!(
        index(vol, "").await.is_empty(),
        "refused writes: index not empty"
    );
}

async fn dropped_write_leaves_nothing(vol: &dyn Volume) {
    let data = test_data(2 * CHUNK_SIZE, 8);
    let hash = BlockHash::of(&data);
    let stalls = futures::stream::iter(vec![Ok(data.slice(..CHUNK_SIZE + 1))])
        .chain(futures::stream::pending())
        .boxed();
    let body = BlockBody::new(hash, Some(data.len() as u64), stalls);
    let res = tokio::time::timeout(Duration::from_millis(300), vol.write(&hash, body)).await;
    assert!(res.is_err(), "dropped write: a stalled body cannot finish");
    assert!(
        vol.open(&hash).await.unwrap_err().is_not_found(),
        "dropped write: block visible"
    );
    assert!(
        index(vol, "").await.is_empty(),
        "dropped write: index not empty"
    );
    put(vol, &data, CHUNK_SIZE)
        .await
        .expect("dropped write: a later write works");
    assert!(get(vol, &hash).await.unwrap() == data[..]);
}

async fn rewrite_refreshes_mtime(vol: &dyn Volume, opts: &Options) {
    let data = test_data(1000, 9);
    let hash = put(vol, &data, 1000).await.unwrap();
    let first = vol.mtime(&hash).await.unwrap();
    wait_past(first, opts.mtime_resolution).await;
    put(vol, &data, 1000).await.unwrap();
    let second = vol.mtime(&hash).await.unwrap();
    assert!(second > first, "rewrite: mtime {second} not after {first}");
    assert!(get(vol, &hash).await.unwrap() == data[..]);
    assert_eq!(index(vol, "").await.len(), 1, "rewrite: one block listed");
}

async fn touch_refreshes_mtime(vol: &dyn Volume, opts: &Options) {
    let data = test_data(10, 10);
    let hash = put(vol, &data, 10).await.unwrap();
    let first = vol.mtime(&hash).await.unwrap();
    let now = crate::unix_nanos_now();
    assert!(
        (first - now).abs() < 60_000_000_000,
        "mtime {first} is not near now {now}"
    );
    wait_past(first, opts.mtime_resolution).await;
    vol.touch(&hash).await.unwrap();
    let second = vol.mtime(&hash).await.unwrap();
    assert!(second > first, "touch: mtime {second} not after {first}");
    let listed = index(vol, "").await;
    assert_eq!(
        listed,
        vec![IndexEntry {
            hash,
            size: 10,
            mtime: second
        }],
        "touch: index"
    );
}

async fn trash_and_untrash(vol: &dyn Volume) {
    let data = test_data(5000, 11);
    let hash = put(vol, &data, 5000).await.unwrap();
    assert!(!vol.trashed(&hash).await.unwrap(), "trashed before trash");
    vol.trash(&hash, None).await.unwrap();
    assert!(vol.trashed(&hash).await.unwrap(), "trashed after trash");
    let never = BlockHash::of(b"never stored here");
    let presence = vol.presence(&[hash, never]).await.unwrap();
    let trashed_only = crate::Presence {
        held: false,
        trashed: true,
    };
    assert_eq!(
        presence,
        [trashed_only, crate::Presence::default()],
        "presence after trash"
    );
    assert!(
        vol.open(&hash).await.unwrap_err().is_not_found(),
        "trash: still readable"
    );
    assert!(index(vol, "").await.is_empty(), "trash: still listed");
    assert!(
        vol.trash(&hash, None).await.unwrap_err().is_not_found(),
        "trash twice"
    );
    vol.untrash(&hash).await.unwrap();
    assert!(!vol.trashed(&hash).await.unwrap(), "trashed after untrash");
    let held = crate::Presence {
        held: true,
        trashed: false,
    };
    assert_eq!(
        vol.presence(&[hash]).await.unwrap(),
        [held],
        "presence after untrash"
    );
    assert!(
        get(vol, &hash).await.unwrap() == data[..],
        "untrash: content"
    );
    assert_eq!(index(vol, "").await.len(), 1, "untrash: listed");
    assert!(
        vol.untrash(&hash).await.unwrap_err().is_not_found(),
        "untrash twice"
    );
    // A stats pass inside the lifetime deletes nothing.
    vol.trash(&hash, None).await.unwrap();
    let stats = vol.empty_trash().await.unwrap();
    assert_eq!(
        (stats.deleted, stats.remaining),
        (0, 1),
        "empty_trash inside lifetime"
    );
    vol.untrash(&hash).await.unwrap();
}

async fn trash_guarded_by_mtime(vol: &dyn Volume) {
    let data = test_data(100, 12);
    let hash = put(vol, &data, 100).await.unwrap();
    let mtime = vol.mtime(&hash).await.unwrap();
    let err = vol.trash(&hash, Some(mtime - 1)).await.unwrap_err();
    assert!(
        matches!(err, VolumeError::MtimeMismatch { .. }),
        "mtime guard: {err}"
    );
    assert!(get(vol, &hash).await.is_ok(), "mtime guard: block kept");
    vol.trash(&hash, Some(mtime)).await.unwrap();
    assert!(
        vol.open(&hash).await.unwrap_err().is_not_found(),
        "mtime guard: trashed on match"
    );
}

async fn trash_with_zero_lifetime_deletes(vol: &dyn Volume) {
    let hash = put(vol, &test_data(100, 13), 100).await.unwrap();
    vol.trash(&hash, None).await.unwrap();
    assert!(
        vol.untrash(&hash).await.unwrap_err().is_not_found(),
        "zero lifetime: restorable"
    );
    assert!(
        vol.open(&hash).await.unwrap_err().is_not_found(),
        "zero lifetime: readable"
    );
}

async fn empty_trash_after_lifetime(vol: &dyn Volume) {
    let keep = put(vol, &test_data(100, 14), 100).await.unwrap();
    let gone = put(vol, &test_data(200, 15), 200).await.unwrap();
    vol.trash(&gone, None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = vol.empty_trash().await.unwrap();
        if stats.deleted == 1 {
            assert_eq!(
                (stats.deleted_bytes, stats.remaining),
                (200, 0),
                "empty_trash stats"
            );
            break;
        }
        assert_eq!(
            stats.remaining, 1,
            "empty_trash: trashed copy kept inside lifetime"
        );
        assert!(
            Instant::now() < deadline,
            "empty_trash: never deleted after the lifetime"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        vol.untrash(&gone).await.unwrap_err().is_not_found(),
        "empty_trash: restorable"
    );
    assert!(
        get(vol, &keep).await.is_ok(),
        "empty_trash: live block kept"
    );
}

async fn index_by_prefix(vol: &dyn Volume) {
    let mut hashes = Vec::new();
    for i in 0..20 {
        hashes.push(
            put(vol, &test_data(i * 10, 100 + i as u64), 64)
                .await
                .unwrap(),
        );
    }
    let all = index(vol, "").await;
    assert_eq!(all.len(), 20, "index: all blocks");
    for e in &all {
        assert_eq!(e.mtime, vol.mtime(&e.hash).await.unwrap(), "index: mtime");
        assert!(hashes.contains(&e.hash), "index: unknown hash");
    }
    for h in &hashes {
        let hex = h.to_hex();
        for len in [1, 2, 3, 5, 32] {
            let listed = index(vol, &hex[..len]).await;
            assert!(
                listed.iter().any(|e| e.hash == *h),
                "index: prefix {} misses",
                &hex[..len]
            );
            assert!(
                listed
                    .iter()
                    .all(|e| e.hash.to_hex().starts_with(&hex[..len])),
                "index: prefix leaks"
            );
        }
    }
    let size_of = |h: &BlockHash| all.iter().find(|e| e.hash == *h).map(|e| e.size);
    assert_eq!(size_of(&hashes[7]), Some(70), "index: size");
    assert!(
        index(vol, "not-hex").await.is_empty(),
        "index: bad prefix lists nothing"
    );
}

async fn read_only_refuses(vol: &dyn Volume) {
    let data = test_data(10, 16);
    let err = put(vol, &data, 10).await.unwrap_err();
    assert!(
        matches!(err, VolumeError::ReadOnly),
        "read-only write: {err}"
    );
    let h = BlockHash::of(&data);
    let many = vol
        .write_many(vec![(h, BlockBody::from_bytes(h, data.clone()))])
        .await;
    assert!(
        matches!(many[..], [Err(VolumeError::ReadOnly)]),
        "read-only write_many: {many:?}"
    );
    assert!(
        matches!(vol.touch(&h).await.unwrap_err(), VolumeError::ReadOnly),
        "read-only touch"
    );
    assert!(
        matches!(
            vol.trash(&h, None).await.unwrap_err(),
            VolumeError::ReadOnly
        ),
        "read-only trash"
    );
}

/// `write_many` stores each block as `write` would and answers for each in
/// order: a refused body fails only its own block and leaves nothing; a
/// block twice in one call is stored once.
async fn write_many_answers_each(vol: &dyn Volume) {
    assert!(
        vol.write_many(Vec::new()).await.is_empty(),
        "write_many: no blocks, no answers"
    );
    let blocks: Vec<Bytes> = [4096, 0, 1, 65536, CHUNK_SIZE + 1]
        .into_iter()
        .enumerate()
        .map(|(i, len)| test_data(len, 100 + i as u64))
        .collect();
    let body = |data: &Bytes| {
        let hash = BlockHash::of(data);
        (hash, BlockBody::from_bytes(hash, data.clone()))
    };
    let mut batch: Vec<(BlockHash, BlockBody)> = blocks.iter().map(body).collect();
    let honest = BlockHash::of(b"write_many: the hash the forged bytes claim");
    batch.insert(
        2,
        (honest, BlockBody::from_bytes(honest, test_data(4096, 120))),
    );
    batch.push(body(&blocks[0]));
    let results = vol.write_many(batch).await;
    assert_eq!(
        results.len(),
        blocks.len() + 2,
        "write_many: one answer each"
    );
    for (i, result) in results.iter().enumerate() {
        if i == 2 {
            assert!(
                matches!(
                    result,
                    Err(VolumeError::Body(BodyError::HashMismatch { .. }))
                ),
                "write_many: the forged block is refused: {result:?}"
            );
        } else if let Err(e) = result {
            panic!("write_many: block {i}: {e}");
        }
    }
    for data in &blocks {
        let back = get(vol, &BlockHash::of(data))
            .await
            .unwrap_or_else(|e| panic!("write_many: get {} bytes: {e}", data.len()));
        assert!(back == data[..], "write_many: {} bytes differ", data.len());
    }
    assert!(
        vol.open(&honest).await.unwrap_err().is_not_found(),
        "write_many: the refused block is not visible"
    );
    assert_eq!(
        index(vol, "").await.len(),
        blocks.len(),
        "write_many: the index lists each block once"
    );
}

async fn status_reports(vol: &dyn Volume) {
    let st = vol.status().await.expect("status");
    assert!(!st.full, "status: a fresh test volume is not full");
    assert!(!vol.device_id().is_empty(), "status: device id");
}

async fn quarantine_hides(vol: &dyn Volume) {
    let hash = put(vol, &test_data(10, 17), 10).await.unwrap();
    vol.quarantine(&hash, None).await.unwrap();
    assert!(
        vol.open(&hash).await.unwrap_err().is_not_found(),
        "quarantine: readable"
    );
    assert!(index(vol, "").await.is_empty(), "quarantine: listed");
    assert!(
        vol.untrash(&hash).await.unwrap_err().is_not_found(),
        "quarantine is not trash"
    );
}

/// Sums kept after a read (if the backend keeps any) leave the block as it
/// was, and any sums a read then returns describe it; a block that is not
/// there gets none and stays absent.
async fn kept_sums_describe_the_block(vol: &dyn Volume) {
    let data = test_data(2 * CHUNK_SIZE + 5, 19);
    let hash = put(vol, &data, CHUNK_SIZE).await.unwrap();
    let mut summer = crate::ChunkSummer::new(CHUNK_SIZE);
    summer.update(&data);
    let size = data.len() as u64;
    vol.keep_sums(&hash, size, summer.clone().finish())
        .await
        .expect("keep_sums: stored block");
    let reader = vol.open(&hash).await.unwrap();
    if let Some(sums) = &reader.sums {
        for (i, chunk) in data.chunks(CHUNK_SIZE).enumerate() {
            assert!(sums.check(i, chunk), "keep_sums: chunk {i}'s sum");
        }
    }
    assert!(
        get(vol, &hash).await.unwrap() == data[..],
        "keep_sums: content"
    );
    let absent = BlockHash::of(b"keep_sums: absent");
    vol.keep_sums(&absent, size, summer.finish())
        .await
        .expect("keep_sums: absent block");
    assert!(
        vol.open(&absent).await.unwrap_err().is_not_found(),
        "keep_sums: absent stays absent"
    );
    assert_eq!(index(vol, "").await.len(), 1, "keep_sums: one block listed");
}

async fn concurrent_writes_of_one_block(vol: Arc<dyn Volume>) {
    let data = test_data(2 * CHUNK_SIZE + 3, 18);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (vol, data) = (vol.clone(), data.clone());
            tokio::spawn(async move { put(&*vol, &data, 4096 * (i + 1)).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("concurrent write");
    }
    assert!(
        get(&*vol, &BlockHash::of(&data)).await.unwrap() == data[..],
        "concurrent: content"
    );
    assert_eq!(index(&*vol, "").await.len(), 1, "concurrent: one block");
}
