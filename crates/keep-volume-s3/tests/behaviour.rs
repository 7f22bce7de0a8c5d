//! What only an S3 volume shows, on a real S3-compatible server (moto):
//! Arvados's keys in the bucket, serving a bucket Arvados wrote, the race
//! recovery and race guard of the trash, writes of unknown length, and a
//! clear error for a missing bucket.

mod common;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use keep_locator::BlockHash;
use keep_volume::conformance::{self, get, put, test_data};
use keep_volume::{BlockBody, BodyError, Volume, VolumeError, VolumeParams};
use keep_volume_s3::S3Volume;

use common::{Moto, create_bucket, keys, options, raw_put};

const FOO: &str = "acbd18db4cc2f85cedef654fccc4a4d8";

fn params(n: u32) -> VolumeParams {
    VolumeParams::new(format!("zzzzz-nyw5e-{n:015}"))
}

/// A volume under `vol/` in a new bucket, its keys sharded by the first 3
/// hex digits (`vol/acb/acbd...`), as Arvados lays them out.
async fn sharded(ep: &str, bucket: &str, n: u32) -> S3Volume {
    create_bucket(ep, bucket).await;
    let mut opts = options(ep, bucket, "vol", params(n));
    opts.spec.prefix_length = 3;
    S3Volume::open(opts).await.unwrap()
}

#[tokio::test]
async fn arvados_keys_in_the_bucket() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    let vol = sharded(&ep, "layout", 1).await;
    assert_eq!(
        vol.device_id(),
        format!("s3://127.0.0.1:{}/layout/vol", moto.port)
    );
    let hash = put(&vol, &Bytes::from_static(b"foo"), 3).await.unwrap();
    assert_eq!(hash.to_hex(), FOO);
    assert_eq!(
        keys(&ep, "layout").await,
        [format!("vol/acb/{FOO}"), format!("vol/recent/acb/{FOO}")]
    );
    vol.trash(&hash, None).await.unwrap();
    assert_eq!(
        keys(&ep, "layout").await,
        [
            format!("vol/recent/acb/{FOO}"),
            format!("vol/trash/acb/{FOO}")
        ]
    );
    vol.untrash(&hash).await.unwrap();
    vol.quarantine(&hash, None).await.unwrap();
    let left = keys(&ep, "layout").await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(&format!("vol/quarantine/acb/{FOO}.")));
}

#[tokio::test]
async fn serves_a_bucket_arvados_wrote() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    create_bucket(&ep, "legacy").await;
    // A block from before `recent/` markers existed, plus unrelated keys.
    raw_put(&ep, "legacy", FOO, b"foo").await;
    raw_put(&ep, "legacy", "README", b"not a block").await;
    raw_put(&ep, "legacy", &format!("{FOO}.bak"), b"foo").await;
    let vol = S3Volume::open(options(&ep, "legacy", "", params(2)))
        .await
        .unwrap();
    let hash = BlockHash::from_hex(FOO).unwrap();
    assert_eq!(get(&vol, &hash).await.unwrap(), b"foo");
    let listed = conformance::index(&vol, "").await;
    assert_eq!(listed.len(), 1, "only the block is listed: {listed:?}");
    assert_eq!(listed[0].size, 3);
    let mtime = vol.mtime(&hash).await.unwrap();
    assert!(
        keys(&ep, "legacy").await.contains(&format!("recent/{FOO}")),
        "mtime creates the missing marker"
    );
    assert_eq!(conformance::index(&vol, "acb").await[0].mtime, mtime);
}

#[tokio::test]
async fn a_write_that_raced_the_trash_is_restored() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    create_bucket(&ep, "race").await;
    let mut opts = options(&ep, "race", "", params(3));
    // The block is trashed right after its write: well inside the TTL, as
    // when keep-balance's trash list crosses a client's fresh write.
    opts.signing_ttl = Duration::from_secs(3600);
    let vol = S3Volume::open(opts).await.unwrap();
    let data = test_data(5000, 1);
    let hash = put(&vol, &data, 1000).await.unwrap();
    vol.trash(&hash, None).await.unwrap();
    assert!(keys(&ep, "race").await.contains(&format!("trash/{hash}")));
    assert_eq!(get(&vol, &hash).await.unwrap(), data, "read restores it");
    assert_eq!(conformance::index(&vol, "").await.len(), 1);

    // Touch restores too, and so does an empty-trash pass.
    vol.trash(&hash, None).await.unwrap();
    vol.touch(&hash).await.unwrap();
    assert_eq!(get(&vol, &hash).await.unwrap(), data);
    vol.trash(&hash, None).await.unwrap();
    let stats = vol.empty_trash().await.unwrap();
    assert_eq!((stats.deleted, stats.remaining), (0, 0), "{stats:?}");
    assert_eq!(get(&vol, &hash).await.unwrap(), data);
}

#[tokio::test]
async fn race_window_guards_a_second_trash() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    create_bucket(&ep, "window").await;
    let mut p = params(4);
    p.trash_lifetime = Duration::from_secs(3600);
    let mut opts = options(&ep, "window", "", p.clone());
    opts.race_window = Duration::from_secs(2 * 3600);
    let vol = S3Volume::open(opts).await.unwrap();
    let data = test_data(100, 2);
    let hash = put(&vol, &data, 100).await.unwrap();
    vol.trash(&hash, None).await.unwrap();
    put(&vol, &data, 100).await.unwrap();
    // trash/X expires in 1 h, a new copy may take 2 h to show: refuse.
    let err = vol.trash(&hash, None).await.unwrap_err();
    assert!(
        matches!(&err, VolumeError::Unavailable(m) if m.contains("race window")),
        "{err}"
    );
    assert_eq!(get(&vol, &hash).await.unwrap(), data, "block kept");

    let mut opts = options(&ep, "window", "", p);
    opts.race_window = Duration::from_secs(60);
    let relaxed = S3Volume::open(opts).await.unwrap();
    relaxed.trash(&hash, None).await.unwrap();
    assert!(relaxed.open(&hash).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn writes_of_unknown_length_are_buffered_within_bounds() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    create_bucket(&ep, "chunked").await;
    let mut opts = options(&ep, "chunked", "", params(5));
    opts.whole_block_buffers = 1;
    let vol = std::sync::Arc::new(S3Volume::open(opts).await.unwrap());
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let vol = vol.clone();
            tokio::spawn(async move {
                let data = test_data(3 * keep_volume::CHUNK_SIZE + 7, 10 + i);
                let hash = BlockHash::of(&data);
                let frames: Vec<Result<Bytes, BodyError>> = data
                    .chunks(100_000)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect();
                let body = BlockBody::new(hash, None, futures::stream::iter(frames).boxed());
                vol.write(&hash, body).await.unwrap();
                assert_eq!(get(&*vol, &hash).await.unwrap(), data);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(conformance::index(&*vol, "").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_block_round_trips() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    create_bucket(&ep, "large").await;
    let vol = S3Volume::open(options(&ep, "large", "", params(8)))
        .await
        .unwrap();
    let data = test_data(keep_volume::MAX_BLOCK_SIZE as usize, 9);
    let hash = put(&vol, &data, keep_volume::CHUNK_SIZE).await.unwrap();
    let mut reader = vol.open(&hash).await.unwrap();
    assert_eq!(reader.size, keep_volume::MAX_BLOCK_SIZE);
    let mut back = Vec::with_capacity(data.len());
    while let Some(chunk) = reader.chunks.next().await {
        back.extend_from_slice(&chunk.unwrap());
    }
    assert!(back == data[..], "content comes back whole");
}

#[tokio::test]
async fn a_missing_bucket_is_a_clear_error() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    let err = S3Volume::open(options(&ep, "no-such-bucket", "", params(6)))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, VolumeError::Unavailable(_)), "{msg}");
    assert!(
        msg.contains("\"no-such-bucket\" does not exist") && msg.contains(&ep),
        "{msg}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_clear_error() {
    let ep = format!("http://127.0.0.1:{}", keep_volume_s3::testing::free_port());
    let started = std::time::Instant::now();
    let err = S3Volume::open(options(&ep, "bucket", "", params(7)))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot reach S3 endpoint") && msg.contains(&ep),
        "{msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "prompt");
}

/// A quarantine given the copy a reader saw moves only that copy: an
/// object rewritten since (a repair PUT) stays.
#[tokio::test]
async fn quarantine_moves_only_the_copy_that_was_read() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    let vol = sharded(&ep, "aside", 9).await;
    let hash = BlockHash::from_hex(FOO).unwrap();
    let key = format!("vol/acb/{FOO}");
    // Damaged bytes under the block's key.
    raw_put(&ep, "aside", &key, b"fox").await;
    let copy = vol.open(&hash).await.unwrap().copy.expect("a copy id");
    // Repaired before the quarantine runs.
    put(&vol, &Bytes::from_static(b"foo"), 3).await.unwrap();
    vol.quarantine(&hash, Some(copy)).await.unwrap();
    assert_eq!(get(&vol, &hash).await.unwrap(), b"foo", "the repair stays");
    assert!(
        !keys(&ep, "aside")
            .await
            .iter()
            .any(|k| k.contains("quarantine/"))
    );
    // Damaged again: the copy read now is the one moved aside.
    raw_put(&ep, "aside", &key, b"fox").await;
    let copy = vol.open(&hash).await.unwrap().copy.expect("a copy id");
    vol.quarantine(&hash, Some(copy)).await.unwrap();
    assert!(matches!(vol.open(&hash).await, Err(e) if e.is_not_found()));
    let left = keys(&ep, "aside").await;
    assert!(
        left.iter()
            .any(|k| k.starts_with(&format!("vol/quarantine/acb/{FOO}."))),
        "{left:?}"
    );
}
