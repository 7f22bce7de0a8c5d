//! Unit tests of the directory backend: the journal's answers and
//! waits, its failures, and the sums kept after reads.

use super::*;
use crate::conformance::{get, index, put, test_data};
use journal::PLACE_QUEUE_FOR_TESTS;

fn open_at(root: &Path) -> DirVolume {
    DirVolume::open(DirOptions {
        root: root.to_owned(),
        params: VolumeParams::new("zzzzz-nyw5e-000000000000000"),
        min_free_bytes: 0,
    })
    .unwrap()
}

/// Holds `hash`'s stripe lock on a thread of its own until the returned
/// sender is used (or dropped), so the placer waits.
fn hold_stripe(
    vol: &DirVolume,
    hash: BlockHash,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (locked, is_locked) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let stripes = vol.inner.stripes.clone();
    let holder = std::thread::spawn(move || {
        let _guard = stripes.lock(&hash);
        locked.send(()).unwrap();
        let _ = released.recv();
    });
    is_locked.recv().unwrap();
    (release, holder)
}

/// Whether files under `dir` take the sum attribute (user extended
/// attributes), tried on a probe file.
fn sums_supported(dir: &Path) -> bool {
    let probe = dir.join("probe");
    std::fs::write(&probe, b"x").unwrap();
    xsum::set(&File::options().write(true).open(&probe).unwrap(), b"x").is_ok()
}

/// `sums`, read back with a block of at most one chunk, is that block's
/// one chunk sum where the file system keeps sums, and none elsewhere.
fn assert_file_sum(sums: Option<ChunkSums>, data: &[u8], supported: bool) {
    if supported {
        let sums = sums.expect("the file's sum");
        assert!(sums.hashes.len() == 1 && sums.check(0, data));
    } else {
        assert_eq!(sums, None);
    }
}

async fn put_in_time(vol: &DirVolume, data: &Bytes) -> BlockHash {
    let answer = tokio::time::timeout(Duration::from_secs(10), put(vol, data, data.len()));
    answer
        .await
        .expect("answered without waiting for the placer")
        .unwrap()
}

/// A small block is answered once its journal record is flushed. Until
/// the placer has written its file (held up here by the block's stripe
/// lock) it is read from memory, and a touch, an mtime or an index
/// waits for the placer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_block_is_served_before_its_file_is_placed() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    let data = test_data(5000, 3);
    let hash = BlockHash::of(&data);
    let path = layout::block_path(vol.root(), &hash);
    let (release, holder) = hold_stripe(&vol, hash);

    assert_eq!(put_in_time(&vol, &data).await, hash);
    assert!(!path.exists(), "the placer waits for the lock");
    assert!(get(&vol, &hash).await.unwrap() == data[..]);
    let touched = crate::unix_nanos_now();
    let touching = tokio::spawn({
        let vol = vol.clone();
        async move { vol.touch(&hash).await }
    });
    let indexing = tokio::spawn({
        let vol = vol.clone();
        async move { index(&vol, "").await }
    });
    let dating = tokio::spawn({
        let vol = vol.clone();
        async move { vol.mtime(&hash).await }
    });
    // Whatever the timing, none of them can finish before the file is
    // in place.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !touching.is_finished() && !indexing.is_finished() && !dating.is_finished(),
        "touch, index and mtime wait for the placer"
    );
    release.send(()).unwrap();
    holder.join().unwrap();
    touching.await.unwrap().unwrap();
    let entries = indexing.await.unwrap();
    assert_eq!(entries.len(), 1, "the index waited for the file");
    assert_eq!(std::fs::read(&path).unwrap(), &data[..]);
    assert!(dating.await.unwrap().is_ok(), "the file's mtime");
    let mtime = vol.mtime(&hash).await.unwrap();
    assert!(mtime >= touched, "touched: {mtime} < {touched}");
    assert!(vol.inner.journal.unplaced(&hash).is_none());
}

/// When the placer is behind (here: stuck on a block's stripe lock, with
/// its queue full), the journal thread places the next batch itself
/// instead of waiting; everything is in place once the placer goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_thread_places_a_batch_while_the_placer_is_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    let stripe = |h: &BlockHash| usize::from(h.as_bytes()[15]) % LOCK_STRIPES;
    let stuck = test_data(5000, 40);
    let stuck_hash = BlockHash::of(&stuck);
    let (release, holder) = hold_stripe(&vol, stuck_hash);
    put_in_time(&vol, &stuck).await;
    // Each put is answered before the next is sent: a batch each. Two
    // fill the placer's queue; the next is placed by the journal thread.
    let others: Vec<Bytes> = (41..)
        .map(|seed| test_data(5000, seed))
        .filter(|d| stripe(&BlockHash::of(d)) != stripe(&stuck_hash))
        .take(PLACE_QUEUE_FOR_TESTS + 1)
        .collect();
    for data in &others {
        put_in_time(&vol, data).await;
    }
    // The queue holds at most two batches (the stuck one among them, or
    // not), and the placer takes them in order: one of these, at least,
    // can only have been placed by the journal thread.
    let paths: Vec<PathBuf> = others
        .iter()
        .map(|d| layout::block_path(vol.root(), &BlockHash::of(d)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !paths.iter().any(|p| p.exists()) {
        assert!(Instant::now() < deadline, "the journal thread placed one");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !layout::block_path(vol.root(), &stuck_hash).exists(),
        "the placer is still stuck"
    );
    release.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(index(&vol, "").await.len(), others.len() + 1);
    for data in others.iter().chain([&stuck]) {
        let path = layout::block_path(vol.root(), &BlockHash::of(data));
        assert_eq!(std::fs::read(&path).unwrap(), &data[..]);
    }
}

/// Where unnamed files cannot be linked in, the placer names temporary
/// files and renames them: blocks are placed all the same, an existing
/// intact copy is touched, a damaged one replaced, and no temporary file
/// is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_placer_falls_back_to_named_temporary_files() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    let first = test_data(3000, 50);
    put_in_time(&vol, &first).await;
    assert_eq!(index(&vol, "").await.len(), 1);
    assert!(
        vol.inner.journal.name_temps(),
        "unnamed files linked in here"
    );
    let second = test_data(3000, 51);
    let hash = put_in_time(&vol, &second).await;
    put_in_time(&vol, &second).await;
    let damaged = layout::block_path(vol.root(), &BlockHash::of(&first));
    std::fs::write(&damaged, b"damaged").unwrap();
    put_in_time(&vol, &first).await;
    assert_eq!(index(&vol, "").await.len(), 2);
    assert_eq!(std::fs::read(&damaged).unwrap(), &first[..]);
    let path = layout::block_path(vol.root(), &hash);
    assert_eq!(std::fs::read(&path).unwrap(), &second[..]);
    let names = scan::names(path.parent().unwrap()).unwrap();
    assert!(names.iter().all(|n| !n.starts_with("tmp")), "{names:?}");
}

/// A block the placer fails to place while the closing checkpoint waits
/// for it keeps its journal record, and the next open restores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_whose_placing_fails_during_a_checkpoint_keeps_its_record() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    let data = test_data(3000, 9);
    let hash = BlockHash::of(&data);
    let path = layout::block_path(vol.root(), &hash);
    // A folder under the block's name: the placer's rename fails.
    std::fs::create_dir_all(path.join("in-the-way")).unwrap();
    let (release, holder) = hold_stripe(&vol, hash);
    put_in_time(&vol, &data).await;
    assert!(get(&vol, &hash).await.unwrap() == data[..], "from memory");
    // Closing checkpoints, which waits for the placer; then the placer
    // goes on and fails.
    let closing = std::thread::spawn(move || drop(vol));
    tokio::time::sleep(Duration::from_millis(100)).await;
    release.send(()).unwrap();
    holder.join().unwrap();
    closing.join().unwrap();

    std::fs::remove_dir_all(&path).unwrap();
    let vol = open_at(tmp.path());
    assert!(
        get(&vol, &hash).await.unwrap() == data[..],
        "restored from the journal"
    );
}

/// A small block's file, once placed, keeps the block's BLAKE3 sum,
/// which a read returns (where the file system keeps user attributes);
/// a file without it (as Arvados writes them) reads without sums.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placed_small_block_keeps_its_sum() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    let data = test_data(4096, 31);
    let hash = put_in_time(&vol, &data).await;
    let settled = vol.clone();
    tokio::task::spawn_blocking(move || settled.inner.journal.settle())
        .await
        .unwrap()
        .unwrap();
    let path = layout::block_path(vol.root(), &hash);
    let supported = xsum::get(&File::open(&path).unwrap()).is_some();
    assert_eq!(
        supported,
        sums_supported(tmp.path()),
        "a sum wherever the file system takes one"
    );
    assert_file_sum(vol.open(&hash).await.unwrap().sums, &data, supported);
    // Rewritten without it, as Arvados would: no sums, same content.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &data).unwrap();
    let reader = vol.open(&hash).await.unwrap();
    assert_eq!(reader.sums, None);
    assert!(get(&vol, &hash).await.unwrap() == data[..]);
}

/// The placer replaces a damaged file under a block's name, only touches
/// a file that already holds the block, and leaves no temporary file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_placer_replaces_a_damaged_file_and_touches_an_intact_one() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    let settle = |vol: &DirVolume| {
        let vol = vol.clone();
        tokio::task::spawn_blocking(move || vol.inner.journal.settle())
    };
    let damaged = test_data(4096, 41);
    let intact = test_data(4096, 42);
    let (bad, good) = (BlockHash::of(&damaged), BlockHash::of(&intact));
    let (bad_path, good_path) = (
        layout::block_path(vol.root(), &bad),
        layout::block_path(vol.root(), &good),
    );
    std::fs::create_dir_all(bad_path.parent().unwrap()).unwrap();
    std::fs::create_dir_all(good_path.parent().unwrap()).unwrap();
    let mut flipped = damaged.to_vec();
    flipped[100] ^= 1;
    std::fs::write(&bad_path, &flipped).unwrap();
    std::fs::write(&good_path, &intact).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    File::options()
        .write(true)
        .open(&good_path)
        .unwrap()
        .set_modified(old)
        .unwrap();

    put_in_time(&vol, &damaged).await;
    put_in_time(&vol, &intact).await;
    settle(&vol).await.unwrap().unwrap();

    assert_eq!(std::fs::read(&bad_path).unwrap(), &damaged[..]);
    assert_eq!(std::fs::read(&good_path).unwrap(), &intact[..]);
    let mtime = std::fs::metadata(&good_path).unwrap().modified().unwrap();
    assert!(mtime > old, "the intact file was touched");
    for dir in [bad_path.parent().unwrap(), good_path.parent().unwrap()] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(!layout::is_temp_name(&name), "temporary file left: {name}");
        }
    }
}

/// A block too large for the journal and too small for a sidecar (64 to
/// 128 KiB) keeps its sum on its file too, from a plain write; read back
/// as its one chunk sum.
#[tokio::test]
async fn a_plainly_written_block_under_the_sidecar_size_keeps_its_sum() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    let data = test_data(100 << 10, 43);
    let hash = put(&vol, &data, data.len()).await.unwrap();
    let path = layout::block_path(vol.root(), &hash);
    assert!(!layout::sidecar_path(vol.root(), &hash).exists());
    let supported = sums_supported(tmp.path());
    assert_file_sum(vol.open(&hash).await.unwrap().sums, &data, supported);
    // Rewritten without it, as Arvados would: no sums, same content.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &data).unwrap();
    assert_eq!(vol.open(&hash).await.unwrap().sums, None);
    assert!(get(&vol, &hash).await.unwrap() == data[..]);
}

/// Sums offered after a read land as the block's sidecar, which the
/// next read returns; none are kept for a block that is gone or of
/// another size, for a small block, or on a read-only volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sums_offered_after_a_read_become_the_sidecar() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    let data = test_data(3 * CHUNK_SIZE + 7, 21);
    let hash = put(&vol, &data, CHUNK_SIZE).await.unwrap();
    let sidecar = layout::sidecar_path(vol.root(), &hash);
    std::fs::remove_file(&sidecar).unwrap();
    assert!(vol.open(&hash).await.unwrap().sums.is_none());
    let mut summer = ChunkSummer::new(CHUNK_SIZE);
    summer.update(&data);
    let sums = summer.finish();
    let size = data.len() as u64;
    assert!(vol.wants_sums(size) && !vol.wants_sums(SIDECAR_MIN - 1));
    // Another size: not this block's sums.
    vol.keep_sums(&hash, size + 1, sums.clone()).await.unwrap();
    assert!(!sidecar.exists());
    vol.keep_sums(&hash, size, sums.clone()).await.unwrap();
    assert_eq!(vol.open(&hash).await.unwrap().sums, Some(sums.clone()));
    assert!(get(&vol, &hash).await.unwrap() == data[..]);

    // Gone: nothing is written.
    let gone = BlockHash::of(b"not stored");
    vol.keep_sums(&gone, size, sums.clone()).await.unwrap();
    assert!(!layout::sidecar_path(vol.root(), &gone).exists());

    // Read-only: the volume is left as it is.
    std::fs::remove_file(&sidecar).unwrap();
    drop(vol);
    let mut params = VolumeParams::new("zzzzz-nyw5e-000000000000000");
    params.allow_write = false;
    let ro = DirVolume::open(DirOptions {
        root: tmp.path().to_owned(),
        params,
        min_free_bytes: 0,
    })
    .unwrap();
    assert!(!ro.wants_sums(size));
    ro.keep_sums(&hash, size, sums).await.unwrap();
    assert!(!sidecar.exists());
}

/// With the journal switched off by a failed placing, the block is
/// served from memory until it is trashed: then no longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trash_forgets_a_block_the_placer_failed_on() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    let data = test_data(2000, 12);
    let hash = BlockHash::of(&data);
    // A file where the block's folder goes: the placer cannot write.
    std::fs::write(layout::block_dir(vol.root(), &hash), b"in the way").unwrap();
    put_in_time(&vol, &data).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while vol.inner.journal.usable() {
        assert!(std::time::Instant::now() < deadline, "the placer fails");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(get(&vol, &hash).await.unwrap() == data[..], "from memory");
    // (The trash itself fails: the file in the way is no folder.)
    let _ = vol.trash(&hash, None).await;
    assert!(
        get(&vol, &hash).await.is_err(),
        "no longer served from memory"
    );
}

/// A write that runs out of space answers "full" and leaves the volume
/// full until the next free-space reading; other I/O errors stay errors.
#[tokio::test]
async fn running_out_of_space_makes_the_volume_full() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    assert!(!vol.status().await.unwrap().full);
    let eio = std::io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error());
    assert!(matches!(
        vol.inner.full_if_out_of_space(VolumeError::Io(eio)),
        VolumeError::Io(_)
    ));
    assert!(!vol.status().await.unwrap().full);
    for errno in [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT] {
        let e = std::io::Error::from_raw_os_error(errno.raw_os_error());
        assert!(matches!(
            vol.inner.full_if_out_of_space(VolumeError::Io(e)),
            VolumeError::Full
        ));
        let st = vol.status().await.unwrap();
        assert!(st.full && st.available_bytes == 0);
        let data = test_data(1000, 7);
        assert!(matches!(
            put(&vol, &data, data.len()).await,
            Err(VolumeError::Full)
        ));
        // The next reading (after STATUS_FRESH) sees the real free space.
        *vol.inner.status.lock().unwrap() = None;
        assert!(!vol.status().await.unwrap().full);
    }
}

/// The generation in the volume's journal header.
fn journal_generation(root: &Path) -> u64 {
    let head = std::fs::read(root.join(journal::FILE_NAME)).unwrap();
    u64::from_le_bytes(head[4..12].try_into().unwrap())
}

/// Waits until the placer's failure has switched the journal off.
async fn until_switched_off(vol: &DirVolume) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while vol.inner.journal.usable() {
        assert!(std::time::Instant::now() < deadline, "the placer fails");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A fresh volume whose placer failed a block of 3000 bytes (made from
/// `seed`) with `errno`, which switched its journal off; that block's
/// hash and bytes.
async fn switched_off_by(
    errno: rustix::io::Errno,
    seed: u64,
) -> (tempfile::TempDir, DirVolume, BlockHash, Bytes) {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    vol.inner.journal.fail_next_placing(errno);
    let data = test_data(3000, seed);
    let hash = put_in_time(&vol, &data).await;
    until_switched_off(&vol).await;
    (tmp, vol, hash, data)
}

/// [`journal::Journal::recover`] on a blocking thread.
async fn recover(vol: &DirVolume) -> bool {
    let vol = vol.clone();
    tokio::task::spawn_blocking(move || vol.inner.journal.recover())
        .await
        .unwrap()
}

/// A journal switched off by a full disk comes back without a restart:
/// the block the placer failed on gets its file, the records are retired,
/// and small writes go through the journal again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_switched_off_by_a_full_disk_comes_back() {
    let (tmp, vol, hash, first) = switched_off_by(rustix::io::Errno::NOSPC, 31).await;
    // (A failure leaves the header as it is.)
    let generation = journal_generation(tmp.path());
    let path = layout::block_path(vol.root(), &hash);
    assert!(!path.exists());
    assert!(get(&vol, &hash).await.unwrap() == first[..], "from memory");
    // Meanwhile a small write goes the plain way: its file is there at once.
    let second = test_data(2000, 32);
    let hash2 = put_in_time(&vol, &second).await;
    assert!(layout::block_path(vol.root(), &hash2).exists());
    // Had that write asked for a retry, it would be done once this is.
    let v = vol.clone();
    tokio::task::spawn_blocking(move || v.inner.journal.settle())
        .await
        .unwrap()
        .unwrap();
    assert!(!vol.inner.journal.usable(), "not due yet");

    assert!(recover(&vol).await);
    assert!(vol.inner.journal.usable());
    assert_eq!(std::fs::read(&path).unwrap(), first[..]);
    assert!(vol.inner.journal.unplaced(&hash).is_none());
    assert!(!vol.inner.journal.holds(&hash), "its record is retired");
    assert!(journal_generation(tmp.path()) > generation);
    let third = test_data(1000, 33);
    let hash3 = put_in_time(&vol, &third).await;
    assert!(vol.inner.journal.holds(&hash3), "journaled again");

    drop(vol);
    let vol = open_at(tmp.path());
    for (h, d) in [(hash, first), (hash2, second), (hash3, third)] {
        assert!(get(&vol, &h).await.unwrap() == d[..]);
        assert_eq!(
            std::fs::read(layout::block_path(vol.root(), &h)).unwrap(),
            d[..]
        );
    }
}

/// Running out of file descriptors is as passing as running out of space:
/// the journal comes back without a restart, the failed block placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_switched_off_by_too_many_open_files_comes_back() {
    let (_tmp, vol, hash, data) = switched_off_by(rustix::io::Errno::MFILE, 37).await;
    let path = layout::block_path(vol.root(), &hash);
    assert!(!path.exists());
    vol.inner.journal.retry_now();
    assert!(recover(&vol).await, "EMFILE is transient");
    assert!(vol.inner.journal.usable());
    assert_eq!(std::fs::read(&path).unwrap(), data[..]);
}

/// Any other failure keeps the journal off until the next open, which
/// then writes the block the placer failed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_switched_off_by_an_io_error_stays_off_until_reopened() {
    let (tmp, vol, hash, data) = switched_off_by(rustix::io::Errno::IO, 34).await;
    vol.inner.journal.retry_now();
    assert!(!recover(&vol).await);
    let other = test_data(100, 35);
    put_in_time(&vol, &other).await;
    assert!(!vol.inner.journal.usable());
    let path = layout::block_path(vol.root(), &hash);
    assert!(!path.exists());
    assert!(get(&vol, &hash).await.unwrap() == data[..], "from memory");
    drop(vol);
    let vol = open_at(tmp.path());
    assert!(vol.inner.journal.usable());
    assert_eq!(std::fs::read(&path).unwrap(), data[..]);
}

/// A failure while coming back that is not about space keeps the journal
/// off for good, and the block stays served from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_comeback_leaves_the_block_in_memory() {
    let (_tmp, vol, hash, data) = switched_off_by(rustix::io::Errno::NOSPC, 36).await;
    // A file where the block's folder goes: the replay cannot write it.
    let dir = layout::block_dir(vol.root(), &hash);
    std::fs::write(&dir, b"in the way").unwrap();
    assert!(!recover(&vol).await);
    assert!(!vol.inner.journal.usable());
    assert!(get(&vol, &hash).await.unwrap() == data[..], "from memory");
    std::fs::remove_file(&dir).unwrap();
    assert!(!recover(&vol).await, "not an out-of-space failure");
}

/// A small write finds the journal off with its retry due, and the
/// journal thread brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_write_asks_a_journal_that_is_off_to_come_back() {
    let (_tmp, vol, hash, data) = switched_off_by(rustix::io::Errno::DQUOT, 37).await;
    vol.inner.journal.retry_now();
    put_in_time(&vol, &test_data(500, 38)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !vol.inner.journal.usable() {
        assert!(
            std::time::Instant::now() < deadline,
            "the journal comes back"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        std::fs::read(layout::block_path(vol.root(), &hash)).unwrap(),
        data[..]
    );
}

/// A failed journal flush keeps the journal off until the next open, even
/// for lack of space: the page cache may show what the disk lost. The
/// write it failed goes the plain way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_journal_flush_keeps_it_off_until_reopened() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = open_at(tmp.path());
    vol.inner.journal.fail_next_flush(rustix::io::Errno::NOSPC);
    let data = test_data(3000, 39);
    let hash = put_in_time(&vol, &data).await;
    assert!(!vol.inner.journal.usable());
    assert_eq!(
        std::fs::read(layout::block_path(vol.root(), &hash)).unwrap(),
        data[..],
        "written plainly"
    );
    vol.inner.journal.retry_now();
    assert!(!recover(&vol).await);
    drop(vol);
    let vol = open_at(tmp.path());
    assert!(vol.inner.journal.usable());
    assert!(get(&vol, &hash).await.unwrap() == data[..]);
}
