//! The directory backend against the conformance suite, plus what only a
//! directory volume can show: bytes on disk and Arvados's layout.

use std::sync::Arc;

use keep_locator::BlockHash;
use keep_volume::conformance::{self, get, put, test_data};
use keep_volume::directory::{DirOptions, DirVolume};
use keep_volume::{Volume, VolumeError, VolumeParams};

fn open(root: &std::path::Path, params: VolumeParams) -> DirVolume {
    DirVolume::open(DirOptions {
        root: root.to_owned(),
        params,
        min_free_bytes: 0,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_owned();
    conformance::run(conformance::Options::default(), move |params| {
        let root = base.join(&params.uuid);
        async move { Arc::new(open(&root, params)) as Arc<dyn Volume> }
    })
    .await;
}

#[tokio::test]
async fn arvados_layout_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open(tmp.path(), VolumeParams::new("zzzzz-nyw5e-000000000000000"));
    let hash = put(&vol, &bytes::Bytes::from_static(b"foo"), 3)
        .await
        .unwrap();
    // A small block's file is placed moments after the answer; an index
    // waits for it.
    assert_eq!(conformance::index(&vol, "").await.len(), 1);
    let path = tmp.path().join("acb/acbd18db4cc2f85cedef654fccc4a4d8");
    assert_eq!(std::fs::read(&path).unwrap(), b"foo");
    vol.trash(&hash, None).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(tmp.path().join("acb"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(
        names[0].starts_with("acbd18db4cc2f85cedef654fccc4a4d8.trash."),
        "{names:?}"
    );
}

#[tokio::test]
async fn serves_an_existing_arvados_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = test_data(5000, 1);
    let hash = BlockHash::of(&data);
    let hex = hash.to_hex();
    std::fs::create_dir(tmp.path().join(&hex[..3])).unwrap();
    std::fs::write(tmp.path().join(&hex[..3]).join(&hex), &data).unwrap();
    let vol = open(tmp.path(), VolumeParams::new("zzzzz-nyw5e-000000000000001"));
    assert!(get(&vol, &hash).await.unwrap() == data[..]);
    assert_eq!(conformance::index(&vol, "").await.len(), 1);
}

#[tokio::test]
async fn leftovers_are_cleaned_and_never_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let hex = BlockHash::of(b"x").to_hex();
    let dir = tmp.path().join(&hex[..3]);
    std::fs::create_dir(&dir).unwrap();
    let leftover = dir.join(format!("tmp{hex}123456"));
    std::fs::write(&leftover, b"partial").unwrap();
    let vol = open(tmp.path(), VolumeParams::new("zzzzz-nyw5e-000000000000002"));
    assert!(!leftover.exists(), "leftover removed at open");
    assert!(conformance::index(&vol, "").await.is_empty());
}

#[tokio::test]
async fn one_process_per_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let _first = open(tmp.path(), VolumeParams::new("zzzzz-nyw5e-000000000000003"));
    let second = DirVolume::open(DirOptions {
        root: tmp.path().to_owned(),
        params: VolumeParams::new("zzzzz-nyw5e-000000000000004"),
        min_free_bytes: 0,
    });
    assert!(matches!(second, Err(VolumeError::Unavailable(_))));
}

#[tokio::test]
async fn full_volume_refuses_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = DirVolume::open(DirOptions {
        root: tmp.path().to_owned(),
        params: VolumeParams::new("zzzzz-nyw5e-000000000000005"),
        min_free_bytes: u64::MAX,
    })
    .unwrap();
    assert!(vol.status().await.unwrap().full);
    let err = put(&vol, &test_data(10, 2), 10).await.unwrap_err();
    assert!(matches!(err, VolumeError::Full), "{err}");
}

#[tokio::test]
async fn large_blocks_get_a_checksum_sidecar_that_reads_check() {
    use keep_volume::CHUNK_SIZE;
    let tmp = tempfile::tempdir().unwrap();
    let vol = open(tmp.path(), VolumeParams::new("zzzzz-nyw5e-000000000000006"));
    let small = test_data(100_000, 3);
    let one_chunk = test_data(CHUNK_SIZE, 5);
    let big = test_data(2 * CHUNK_SIZE + 100, 4);
    let (hs, h1, hb) = (
        put(&vol, &small, 4096).await.unwrap(),
        put(&vol, &one_chunk, 70_000).await.unwrap(),
        put(&vol, &big, 70_000).await.unwrap(),
    );
    let side = |h: &BlockHash| {
        tmp.path()
            .join(&h.to_hex()[..3])
            .join(format!("{}.b3", h.to_hex()))
    };
    assert!(!side(&hs).exists(), "a block under 128 KiB has no sidecar");
    assert!(side(&hb).exists(), "a larger one has one");
    // A block of one chunk has one sum; a sidecar damaged as a crash could
    // leave it reads as none (the block is then checked with MD5).
    let sums = vol.open(&h1).await.unwrap().sums.expect("sums");
    assert_eq!(sums.hashes.len(), 1);
    assert!(sums.check(0, &one_chunk));
    let sealed = std::fs::read(side(&h1)).unwrap();
    std::fs::write(side(&h1), &sealed[..sealed.len() - 1]).unwrap();
    assert!(vol.open(&h1).await.unwrap().sums.is_none(), "cut short");
    // Another one-chunk block's sidecar: same length and count, another
    // name inside.
    let other = put(&vol, &test_data(CHUNK_SIZE, 6), 70_000).await.unwrap();
    std::fs::copy(side(&other), side(&h1)).unwrap();
    assert!(
        vol.open(&h1).await.unwrap().sums.is_none(),
        "another block's"
    );
    assert!(get(&vol, &h1).await.unwrap() == one_chunk[..]);
    // The reader hands out the sums, and its chunks line up with them.
    let mut reader = vol.open(&hb).await.unwrap();
    let sums = reader.sums.take().expect("sums");
    let mut i = 0;
    while let Some(chunk) = futures::StreamExt::next(&mut reader.chunks).await {
        assert!(sums.check(i, &chunk.unwrap()), "chunk {i}");
        i += 1;
    }
    assert_eq!(i, 3);
    // Not in the index; quarantine takes it along; empty trash removes
    // sidecars whose block is gone for good.
    assert_eq!(conformance::index(&vol, "").await.len(), 4);
    vol.quarantine(&hb, None).await.unwrap();
    assert!(!side(&hb).exists(), "moved aside with its block");
    let again = put(&vol, &big, CHUNK_SIZE).await.unwrap();
    assert!(side(&again).exists());
    std::fs::remove_file(tmp.path().join(&again.to_hex()[..3]).join(again.to_hex())).unwrap();
    vol.empty_trash().await.unwrap();
    assert!(!side(&again).exists(), "an orphan sidecar is removed");
    // A block without a sidecar (written by Arvados, say) reads without sums.
    let hb = put(&vol, &big, CHUNK_SIZE).await.unwrap();
    std::fs::remove_file(side(&hb)).unwrap();
    assert!(vol.open(&hb).await.unwrap().sums.is_none());
    assert!(get(&vol, &hb).await.unwrap() == big[..]);
}

/// The journal file of a directory volume.
const JOURNAL: &str = ".keep-journal";

/// A crash after small writes were answered, before their files reached
/// the disk: simulated by keeping the journal as it was at the answer and
/// losing the files' data. The next open rewrites every block from the
/// journal; a torn last record (a batch cut by the crash) is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_writes_survive_a_crash_through_the_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let params = VolumeParams::new("zzzzz-nyw5e-000000000000000");
    let vol = open(tmp.path(), params.clone());
    let blocks: Vec<bytes::Bytes> = (0..20)
        .map(|i| test_data(100 + i * 3000, i as u64))
        .collect();
    let mut hashes = Vec::new();
    for b in &blocks {
        hashes.push(put(&vol, b, 1000).await.unwrap());
    }
    let path_of = |h: &BlockHash| {
        let hex = h.to_hex();
        tmp.path().join(&hex[..3]).join(hex)
    };
    assert_eq!(conformance::index(&vol, "").await.len(), blocks.len());
    for (h, b) in hashes.iter().zip(&blocks) {
        assert_eq!(
            std::fs::read(path_of(h)).unwrap(),
            &b[..],
            "in place once an index has waited for the placer"
        );
    }
    // The journal as the crash left it, with the last record torn: records
    // follow a 4 KiB header, each 32 bytes of head and then the data.
    let mut journal = std::fs::read(tmp.path().join(JOURNAL)).unwrap();
    let records_end = 4096 + blocks.iter().map(|b| 32 + b.len()).sum::<usize>();
    assert!(journal.len() >= records_end);
    journal[records_end - 10] ^= 0xff;
    drop(vol);
    std::fs::write(tmp.path().join(JOURNAL), &journal).unwrap();
    // Lost data: one file missing, the others empty or cut short.
    for (i, h) in hashes.iter().enumerate() {
        match i % 3 {
            0 => std::fs::remove_file(path_of(h)).unwrap(),
            1 => std::fs::write(path_of(h), b"").unwrap(),
            _ => std::fs::write(path_of(h), &blocks[i][..blocks[i].len() / 2]).unwrap(),
        }
    }
    let vol = open(tmp.path(), params.clone());
    let last = hashes.len() - 1;
    for (i, h) in hashes.iter().enumerate().take(last) {
        assert_eq!(
            get(&vol, h).await.unwrap(),
            &blocks[i][..],
            "block {i} restored"
        );
    }
    let torn_block = std::fs::read(path_of(&hashes[last])).ok();
    assert_ne!(
        torn_block.as_deref(),
        Some(&blocks[last][..]),
        "a torn record restores nothing"
    );
    // The replay was checkpointed: a second open finds nothing to do.
    drop(vol);
    std::fs::remove_file(path_of(&hashes[0])).unwrap();
    let vol = open(tmp.path(), params);
    assert!(matches!(
        get(&vol, &hashes[0]).await,
        Err(VolumeError::NotFound)
    ));
}

/// A journaled block that is trashed is checkpointed out of the journal
/// first: a crash right after the trash does not bring it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trashed_small_block_is_not_replayed() {
    let tmp = tempfile::tempdir().unwrap();
    let params = VolumeParams::new("zzzzz-nyw5e-000000000000000");
    let vol = open(tmp.path(), params.clone());
    let data = test_data(5000, 7);
    let hash = put(&vol, &data, 5000).await.unwrap();
    vol.trash(&hash, None).await.unwrap();
    let journal = std::fs::read(tmp.path().join(JOURNAL)).unwrap();
    drop(vol);
    std::fs::write(tmp.path().join(JOURNAL), &journal).unwrap();
    let vol = open(tmp.path(), params);
    assert!(matches!(get(&vol, &hash).await, Err(VolumeError::NotFound)));
    vol.untrash(&hash).await.unwrap();
    assert_eq!(get(&vol, &hash).await.unwrap(), &data[..]);
}

/// A record the replay cannot restore (here its folder's name is taken by
/// a file) does not keep the volume from opening: the journal is switched
/// off, small blocks are written the plain way, and the record stays for
/// the next open, which restores the block once the obstacle is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_replay_keeps_the_volume_serving_and_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let params = VolumeParams::new("zzzzz-nyw5e-000000000000000");
    let vol = open(tmp.path(), params.clone());
    let data = test_data(3000, 41);
    let hash = put(&vol, &data, 3000).await.unwrap();
    let journal = std::fs::read(tmp.path().join(JOURNAL)).unwrap();
    drop(vol);
    std::fs::write(tmp.path().join(JOURNAL), &journal).unwrap();
    let folder = tmp.path().join(&hash.to_hex()[..3]);
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::write(&folder, b"in the way").unwrap();

    let vol = open(tmp.path(), params.clone());
    assert!(get(&vol, &hash).await.is_err(), "not restored");
    let other = (0..)
        .map(|seed| test_data(2000, seed))
        .find(|d| BlockHash::of(d).to_hex()[..3] != hash.to_hex()[..3])
        .unwrap();
    let other_hash = put(&vol, &other, 2000).await.unwrap();
    assert_eq!(get(&vol, &other_hash).await.unwrap(), &other[..]);
    drop(vol);
    assert_eq!(
        std::fs::read(tmp.path().join(JOURNAL)).unwrap(),
        journal,
        "the journal is left as it was for the next open"
    );

    std::fs::remove_file(&folder).unwrap();
    let vol = open(tmp.path(), params);
    assert_eq!(get(&vol, &hash).await.unwrap(), &data[..]);
    assert_eq!(get(&vol, &other_hash).await.unwrap(), &other[..]);
}

/// A quarantine moves aside only the copy whose bytes failed: a block
/// rewritten between the read and the quarantine (a repair PUT) stays.
#[tokio::test]
async fn quarantine_spares_a_copy_that_replaced_the_bad_one() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open(tmp.path(), VolumeParams::new("zzzzz-nyw5e-000000000000000"));
    let data = test_data(100_000, 5);
    let hash = put(&vol, &data, 100_000).await.unwrap();
    let read = vol.open(&hash).await.unwrap();
    let bad = read
        .copy
        .expect("a directory volume names the copy it reads");
    drop(read);
    // A new copy takes the name, as a repair PUT's rename does.
    let hex = hash.to_hex();
    let path = tmp.path().join(&hex[..3]).join(&hex);
    let fresh = tmp.path().join(&hex[..3]).join("fresh");
    std::fs::write(&fresh, &data).unwrap();
    std::fs::rename(&fresh, &path).unwrap();

    vol.quarantine(&hash, Some(bad)).await.unwrap();
    assert_eq!(
        get(&vol, &hash).await.unwrap(),
        &data[..],
        "the new copy stays"
    );
    let current = vol.open(&hash).await.unwrap().copy;
    assert_ne!(current, Some(bad));
    vol.quarantine(&hash, current).await.unwrap();
    assert!(matches!(get(&vol, &hash).await, Err(VolumeError::NotFound)));
}
