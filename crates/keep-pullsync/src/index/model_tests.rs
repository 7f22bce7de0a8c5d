//! The index against a plain in-memory model, over random sequences of
//! adds, removes and reopens.

use std::collections::{BTreeMap, BTreeSet};

use keep_locator::BlockHash;
use proptest::prelude::*;

use super::tests::hash_in;
use super::*;

#[derive(Debug, Clone)]
enum Op {
    Add(Vec<(usize, u64)>),
    Remove(Vec<usize>),
    /// Close and open again (`true`), or drop and open (`false`).
    Reopen(bool),
}

/// A pool of hashes over four bins, small enough that adds and removes
/// meet the same hashes often.
fn pool(i: usize) -> BlockHash {
    let i = u32::try_from(i).unwrap();
    hash_in(u8::try_from(i % 4).unwrap() * 5, i)
}
const POOL: usize = 24;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => prop::collection::vec((0..POOL, 0..1000u64), 0..8).prop_map(Op::Add),
        3 => prop::collection::vec(0..POOL, 0..5).prop_map(Op::Remove),
        1 => any::<bool>().prop_map(Op::Reopen),
    ]
}

#[derive(Debug, Default)]
struct Model {
    /// hash → (bin, BinID, size).
    entries: BTreeMap<BlockHash, (u8, u64, u64)>,
    last: [u64; BINS],
    /// Every (bin, BinID) ever handed out.
    issued: BTreeSet<(u8, u64)>,
}

impl Model {
    fn add(&mut self, hash: BlockHash, size: u64) -> Option<u64> {
        if self.entries.contains_key(&hash) {
            return None;
        }
        let bin = bin_of(&hash);
        self.last[usize::from(bin)] += 1;
        let id = self.last[usize::from(bin)];
        self.entries.insert(hash, (bin, id, size));
        Some(id)
    }

    fn bin(&self, bin: u8) -> Vec<IndexEntry> {
        let mut v: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, (b, _, _))| *b == bin)
            .map(|(hash, &(_, bin_id, size))| IndexEntry {
                hash: *hash,
                size,
                bin_id,
            })
            .collect();
        v.sort_by_key(|e| e.bin_id);
        v
    }
}

fn check(idx: &PullIndex, model: &Model) {
    assert_eq!(idx.cursors(), model.last);
    assert_eq!(idx.len().unwrap(), model.entries.len() as u64);
    for bin in 0..BINS {
        let bin = u8::try_from(bin).unwrap();
        assert_eq!(
            idx.range(bin, 0, u64::MAX, usize::MAX).unwrap(),
            model.bin(bin)
        );
    }
    for i in 0..POOL {
        let h = pool(i);
        assert_eq!(idx.contains(&h).unwrap(), model.entries.contains_key(&h));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_index_behaves_like_its_model(ops in prop::collection::vec(op(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pull.redb");
        let mut idx = PullIndex::open(&path).unwrap();
        let epoch = idx.epoch();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Add(items) => {
                    let batch: Vec<_> = items.iter().map(|&(i, s)| (pool(i), s)).collect();
                    let want: Vec<_> = batch.iter().map(|&(h, s)| model.add(h, s)).collect();
                    prop_assert_eq!(idx.add_batch(&batch).unwrap(), want.clone());
                    for (id, (h, _)) in want.iter().zip(&batch) {
                        if let Some(id) = id {
                            let fresh = model.issued.insert((bin_of(h), *id));
                            prop_assert!(fresh, "BinID {} of bin {} handed out twice", id, bin_of(h));
                        }
                    }
                }
                Op::Remove(items) => {
                    let hashes: Vec<_> = items.iter().map(|&i| pool(i)).collect();
                    let mut want = 0;
                    for h in &hashes {
                        want += usize::from(model.entries.remove(h).is_some());
                    }
                    prop_assert_eq!(idx.remove_batch(&hashes).unwrap(), want);
                }
                Op::Reopen(clean) => {
                    if clean {
                        idx.close().unwrap();
                    } else {
                        drop(idx);
                    }
                    idx = PullIndex::open(&path).unwrap();
                    prop_assert_eq!(idx.was_clean(), clean);
                    if !clean {
                        // Counters may only jump forward (to the reservation).
                        for (got, had) in idx.cursors().iter().zip(model.last) {
                            prop_assert!(*got >= had);
                        }
                        model.last = idx.cursors();
                    }
                }
            }
            prop_assert_eq!(idx.epoch(), epoch);
            check(&idx, &model);
        }
    }
}
