use std::sync::Arc;

use keep_locator::BlockHash;

use super::*;

/// A hash in `bin` that differs by `n`.
pub(super) fn hash_in(bin: u8, n: u32) -> BlockHash {
    let mut b = [0u8; 16];
    b[0] = bin << 4;
    b[12..].copy_from_slice(&n.to_be_bytes());
    BlockHash::from_bytes(b)
}

fn open(dir: &tempfile::TempDir) -> PullIndex {
    PullIndex::open(dir.path().join("pull.redb")).unwrap()
}

#[test]
fn a_new_index_is_empty_with_a_nonzero_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let idx = open(&dir);
    assert_ne!(idx.epoch(), 0);
    assert_eq!(idx.cursors(), [0; BINS]);
    assert_eq!(idx.len().unwrap(), 0);
    assert!(idx.is_empty().unwrap());
    assert!(!idx.was_clean(), "a new index holds nothing of the volumes");
}

#[test]
fn adds_get_increasing_bin_ids_per_bin() {
    let dir = tempfile::tempdir().unwrap();
    let idx = open(&dir);
    let batch = [
        (hash_in(3, 1), 10),
        (hash_in(3, 2), 20),
        (hash_in(7, 1), 30),
        (hash_in(3, 3), 40),
    ];
    assert_eq!(
        idx.add_batch(&batch).unwrap(),
        [Some(1), Some(2), Some(1), Some(3)]
    );
    assert_eq!(
        idx.add_batch(&[(hash_in(7, 2), 5), (hash_in(3, 4), 6)])
            .unwrap(),
        [Some(2), Some(4)]
    );
    let mut want = [0; BINS];
    want[3] = 4;
    want[7] = 2;
    assert_eq!(idx.cursors(), want);
    assert_eq!(idx.len().unwrap(), 6);
    let bin3: Vec<_> = idx
        .range(3, 1, u64::MAX, 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.bin_id, e.hash, e.size))
        .collect();
    assert_eq!(
        bin3,
        [
            (1, hash_in(3, 1), 10),
            (2, hash_in(3, 2), 20),
            (3, hash_in(3, 3), 40),
            (4, hash_in(3, 4), 6)
        ]
    );
}

#[test]
fn re_adding_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let idx = open(&dir);
    let h = hash_in(1, 1);
    assert_eq!(idx.add_batch(&[(h, 10)]).unwrap(), [Some(1)]);
    let mut rx = idx.subscribe();
    rx.mark_unchanged();
    // Again, with another size, and twice within one batch.
    assert_eq!(idx.add_batch(&[(h, 99)]).unwrap(), [None]);
    assert!(!rx.has_changed().unwrap(), "no new entry, no wake-up");
    let h2 = hash_in(1, 2);
    assert_eq!(
        idx.add_batch(&[(h2, 1), (h2, 1), (h, 1)]).unwrap(),
        [Some(2), None, None]
    );
    assert_eq!(idx.len().unwrap(), 2);
    assert_eq!(idx.cursors()[1], 2);
    assert_eq!(idx.range(1, 1, 1, 10).unwrap()[0].size, 10, "size kept");
}

#[test]
fn remove_then_re_add_gets_a_new_bin_id() {
    let dir = tempfile::tempdir().unwrap();
    let idx = open(&dir);
    let (a, b) = (hash_in(2, 1), hash_in(2, 2));
    idx.add_batch(&[(a, 1), (b, 2)]).unwrap();
    assert_eq!(idx.remove_batch(&[a, hash_in(9, 9)]).unwrap(), 1);
    assert!(!idx.contains(&a).unwrap());
    assert!(idx.contains(&b).unwrap());
    assert_eq!(idx.cursors()[2], 2, "a removal does not lower the cursor");
    assert_eq!(idx.range(2, 0, u64::MAX, 10).unwrap().len(), 1);
    assert_eq!(idx.add_batch(&[(a, 1)]).unwrap(), [Some(3)]);
    let ids: Vec<_> = idx
        .range(2, 0, u64::MAX, 10)
        .unwrap()
        .iter()
        .map(|e| (e.bin_id, e.hash))
        .collect();
    assert_eq!(ids, [(2, b), (3, a)]);
    assert_eq!(idx.remove_batch(&[]).unwrap(), 0);
}

#[test]
fn counters_and_epoch_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let idx = open(&dir);
    let epoch = idx.epoch();
    idx.add_batch(&[(hash_in(5, 1), 1), (hash_in(5, 2), 2)])
        .unwrap();
    idx.remove_batch(&[hash_in(5, 2)]).unwrap();
    let cursors = idx.cursors();
    idx.close().unwrap();

    let idx = open(&dir);
    assert!(idx.was_clean());
    assert_eq!(idx.epoch(), epoch);
    assert_eq!(idx.cursors(), cursors);
    // The removed BinID 2 is not handed out again.
    assert_eq!(idx.add_batch(&[(hash_in(5, 3), 3)]).unwrap(), [Some(3)]);
    assert!(idx.contains(&hash_in(5, 1)).unwrap());
    assert!(!idx.contains(&hash_in(5, 2)).unwrap());
    idx.close().unwrap();
    assert!(open(&dir).was_clean());
}

#[test]
fn a_drop_without_close_is_not_clean_and_skips_to_the_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let idx = open(&dir);
    let epoch = idx.epoch();
    idx.add_batch(&[(hash_in(4, 1), 1)]).unwrap();
    idx.flush().unwrap();
    drop(idx);

    let idx = open(&dir);
    assert!(!idx.was_clean());
    assert_eq!(idx.epoch(), epoch, "a crash keeps the epoch");
    assert!(idx.contains(&hash_in(4, 1)).unwrap(), "flushed, so kept");
    let next = 1 + schema::LEASE + 1;
    assert_eq!(idx.cursors()[4], 1 + schema::LEASE);
    assert_eq!(idx.add_batch(&[(hash_in(4, 2), 1)]).unwrap(), [Some(next)]);
    assert_eq!(idx.cursors()[0], 0, "an empty bin stays at 0");
    assert_eq!(idx.add_batch(&[(hash_in(0, 1), 1)]).unwrap(), [Some(1)]);
    idx.close().unwrap();
    let idx = open(&dir);
    assert!(idx.was_clean());
    assert_eq!(idx.cursors()[4], next, "a clean reopen does not skip");
}

#[test]
fn reset_starts_a_new_epoch_with_nothing_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let idx = open(&dir);
    let epoch = idx.epoch();
    idx.add_batch(&[(hash_in(1, 1), 1), (hash_in(2, 1), 1)])
        .unwrap();
    let mut rx = idx.subscribe();
    rx.mark_unchanged();
    idx.reset().unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(
        *rx.borrow_and_update(),
        Cursors {
            epoch: idx.epoch(),
            bins: [0; BINS]
        }
    );
    assert_ne!(idx.epoch(), epoch);
    assert_ne!(idx.epoch(), 0);
    assert_eq!(idx.len().unwrap(), 0);
    assert!(!idx.contains(&hash_in(1, 1)).unwrap());
    assert_eq!(idx.add_batch(&[(hash_in(1, 1), 1)]).unwrap(), [Some(1)]);
    let new_epoch = idx.epoch();
    idx.close().unwrap();
    assert_eq!(open(&dir).epoch(), new_epoch, "the reset was durable");
}

#[test]
fn range_pages_through_a_bin() {
    let dir = tempfile::tempdir().unwrap();
    let idx = open(&dir);
    let batch: Vec<_> = (0..25).map(|n| (hash_in(6, n), u64::from(n))).collect();
    idx.add_batch(&batch).unwrap();
    idx.add_batch(&[(hash_in(7, 0), 0)]).unwrap();
    let mut from = 1;
    let mut seen = Vec::new();
    loop {
        let page = idx.range(6, from, u64::MAX, 10).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        from = page.last().unwrap().bin_id + 1;
        seen.extend(page.into_iter().map(|e| e.bin_id));
    }
    assert_eq!(seen, (1..=25).collect::<Vec<_>>());
    // from..=to is inclusive at both ends; other bins never leak in.
    let ids = |v: Vec<IndexEntry>| v.into_iter().map(|e| e.bin_id).collect::<Vec<_>>();
    assert_eq!(ids(idx.range(6, 5, 7, 10).unwrap()), [5, 6, 7]);
    assert_eq!(ids(idx.range(6, 7, 5, 10).unwrap()), Vec::<u64>::new());
    assert_eq!(ids(idx.range(6, 1, 25, 0).unwrap()), Vec::<u64>::new());
    assert_eq!(ids(idx.range(7, 0, u64::MAX, 10).unwrap()), [1]);
    assert_eq!(
        ids(idx.range(8, 0, u64::MAX, 10).unwrap()),
        Vec::<u64>::new()
    );
    assert!(matches!(
        idx.range(16, 0, 1, 1),
        Err(DbError::NoSuchBin(16))
    ));
}

#[test]
fn the_watch_follows_committed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let idx = Arc::new(open(&dir));
    let mut rx = idx.subscribe();
    assert_eq!(rx.borrow_and_update().bins, [0; BINS]);
    idx.add_batch(&[(hash_in(9, 1), 1)]).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().bins[9], 1);
    idx.remove_batch(&[hash_in(9, 1)]).unwrap();
    assert!(!rx.has_changed().unwrap(), "a removal moves no cursor");
    assert_eq!(idx.snapshot().epoch, idx.epoch());
}

#[test]
fn concurrent_writers_never_share_a_bin_id() {
    let dir = tempfile::tempdir().unwrap();
    let idx = Arc::new(open(&dir));
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let idx = idx.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for n in 0..50 {
                    let ids = idx.add_batch(&[(hash_in(0, t * 1000 + n), 1)]).unwrap();
                    got.push(ids[0].unwrap());
                }
                got
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<_>>());
    assert_eq!(idx.subscribe().borrow().bins[0], 200);
}

#[test]
fn a_second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _idx = open(&dir);
    assert!(matches!(
        PullIndex::open(dir.path().join("pull.redb")),
        Err(DbError::Redb(_))
    ));
}
