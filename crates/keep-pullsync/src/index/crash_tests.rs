//! A process killed with SIGKILL mid-way: what it flushed is there, what it
//! did not may be lost, and no BinID it handed out is handed out again.
//!
//! The test runs this test binary again as its child, filtered to
//! [`crash_child`] with the work folder in `KEEP_PULLSYNC_CRASH_DIR`, and
//! kills it. Without that variable `crash_child` is not a test of its
//! own: it returns at once (the child's entry point, not an assertion).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keep_locator::BlockHash;

use super::tests::hash_in;
use super::*;

/// Tells the child where to work; without it the child does nothing.
const DIR_ENV: &str = "KEEP_PULLSYNC_CRASH_DIR";
/// Written by the child once all its batches are in: `bin id hash` lines.
const ISSUED: &str = "issued";

fn flushed_blocks() -> Vec<(BlockHash, u64)> {
    (0..48u32)
        .map(|n| (hash_in(u8::try_from(n % 16).unwrap(), n), u64::from(n)))
        .collect()
}

fn lazy_batches() -> Vec<Vec<(BlockHash, u64)>> {
    (0..20u32)
        .map(|round| {
            (0..10u32)
                .map(|k| {
                    let n = 1000 + round * 10 + k;
                    (hash_in(u8::try_from(n % 16).unwrap(), n), u64::from(n))
                })
                .collect()
        })
        .collect()
}

/// The child's work (see the module docs); returns at once in a normal run.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let idx = PullIndex::open(dir.join("pull.redb")).unwrap();
    let mut issued = String::new();
    let mut record = |batch: &[(BlockHash, u64)], ids: Vec<Option<u64>>| {
        for ((hash, _), id) in batch.iter().zip(ids) {
            let id = id.expect("every hash is new");
            issued.push_str(&format!("{} {id} {hash}\n", bin_of(hash)));
        }
    };
    let flushed = flushed_blocks();
    record(&flushed, idx.add_batch(&flushed).unwrap());
    idx.flush().unwrap();
    for batch in lazy_batches() {
        record(&batch, idx.add_batch(&batch).unwrap());
    }
    let tmp = dir.join("issued.tmp");
    std::fs::write(&tmp, issued).unwrap();
    std::fs::rename(&tmp, dir.join(ISSUED)).unwrap();
    // Wait for the SIGKILL, the index open and not flushed.
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Runs [`crash_child`] in `dir` and kills it once it has written `issued`.
fn run_and_kill_child(dir: &Path) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "index::crash_tests::crash_child",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !dir.join(ISSUED).exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child ended before its batches were in: {status}");
        }
        assert!(Instant::now() < deadline, "the child took too long");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

#[test]
fn sigkill_keeps_what_was_flushed_and_never_reuses_a_bin_id() {
    let dir = tempfile::tempdir().unwrap();
    run_and_kill_child(dir.path());
    // bin → BinID → hash, as the child was handed them.
    let mut issued: BTreeMap<u8, BTreeMap<u64, BlockHash>> = BTreeMap::new();
    for line in std::fs::read_to_string(dir.path().join(ISSUED))
        .unwrap()
        .lines()
    {
        let f: Vec<_> = line.split(' ').collect();
        let prev = issued
            .entry(f[0].parse().unwrap())
            .or_default()
            .insert(f[1].parse().unwrap(), f[2].parse().unwrap());
        assert!(prev.is_none(), "the child got one BinID twice: {line}");
    }

    let idx = PullIndex::open(dir.path().join("pull.redb")).unwrap();
    assert!(!idx.was_clean(), "a killed process did not close the index");
    for (hash, _) in flushed_blocks() {
        assert!(idx.contains(&hash).unwrap(), "flushed {hash} was lost");
    }
    // Whatever survived is what the child was handed, nothing else.
    let mut survivors = 0;
    for bin in 0..16u8 {
        for e in idx.range(bin, 0, u64::MAX, usize::MAX).unwrap() {
            assert_eq!(issued[&bin].get(&e.bin_id), Some(&e.hash));
            survivors += 1;
        }
    }
    let lazy = lazy_batches().concat();
    let lost = lazy
        .iter()
        .filter(|(h, _)| !idx.contains(h).unwrap())
        .count();
    eprintln!("{lost} of {} unflushed blocks lost by the kill", lazy.len());
    assert_eq!(survivors + lost, flushed_blocks().len() + lazy.len());

    // The rescan adds the lost blocks again (and new ones arrive): every
    // BinID is new, past all the child handed out, lost or not.
    let mut again = lazy.clone();
    again.extend((0..16u32).map(|n| (hash_in(u8::try_from(n).unwrap(), 9000 + n), 1)));
    let ids = idx.add_batch(&again).unwrap();
    let mut fresh = BTreeSet::new();
    for ((hash, _), id) in again.iter().zip(ids) {
        let Some(id) = id else {
            continue; // survived the kill
        };
        let bin = bin_of(hash);
        let max_issued = issued[&bin].keys().max().copied().unwrap_or(0);
        assert!(
            id > max_issued,
            "bin {bin}: BinID {id} reused (the child went up to {max_issued})"
        );
        assert!(fresh.insert((bin, id)));
    }
}
