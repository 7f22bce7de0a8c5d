//! The puller's synced intervals on disk: one [`IntervalSet`] per (peer,
//! bin), tagged with the peer's epoch.
//!
//! # Its own file
//!
//! The store is a redb file of its own, not a table in the pull index's:
//! the index is written by the node's write path and read by the offer
//! route, the intervals only by the pullers, and redb runs one write
//! transaction at a time per file, so neither waits on the other's commits.
//! Each file can also be deleted on its own: the index to have it rebuilt
//! by a rescan under a new epoch, the intervals to resync from every peer.
//! The one link is that a node whose volumes were wiped no longer has what
//! it pulled: the caller then [resets](crate::PullIndex::reset) the index
//! and [clears](IntervalStore::clear) this store.
//!
//! # Durability
//!
//! [`put`](IntervalStore::put) commits without an fsync: losing the last
//! intervals to a crash costs only a resync of those ranges (the blocks are
//! stored durably before their interval is put, and the want bit vector
//! skips those already held), never a missed block.
//! [`flush`](IntervalStore::flush) and [`close`](IntervalStore::close) make
//! them durable. Calls block: async callers use `spawn_blocking`.

use std::path::Path;

use bincode::config::{Config, standard};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::IntervalSet;
use crate::bins::{BINS, is_bin};
use crate::db::{Commit, DbError, set_commit};

/// (peer uuid, bin) → a stored value (see [`encode`]).
const INTERVALS: TableDefinition<'_, (&str, u8), &[u8]> = TableDefinition::new("intervals");

/// The first byte of a stored value: how the rest is encoded.
const FORMAT: u8 = 1;
/// The most a stored value may claim while decoding (a damaged length is
/// refused before anything is allocated).
const MAX_VALUE: usize = 64 << 20;

/// The persistent intervals of every (peer, bin), in one redb file.
#[derive(Debug)]
pub struct IntervalStore {
    db: Database,
}

impl IntervalStore {
    /// Opens the store at `path`, creating the file if it is missing.
    ///
    /// # Errors
    ///
    /// [`DbError::Redb`] if the file cannot be opened (another process has
    /// it, I/O, not a redb file).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DbError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(INTERVALS)?;
        txn.commit()?;
        Ok(IntervalStore { db })
    }

    /// The intervals synced from `bin` of `peer` in `epoch`: empty if none
    /// were stored, or if they were stored for another epoch (the peer
    /// started over, so what was known of it no longer holds).
    ///
    /// # Errors
    ///
    /// [`DbError::NoSuchBin`]; [`DbError::Corrupt`] for a stored value this
    /// version cannot read; [`DbError::Redb`] if the read fails.
    pub fn get(&self, peer: &str, bin: u8, epoch: u64) -> Result<IntervalSet, DbError> {
        check_bin(bin)?;
        let txn = self.db.begin_read()?;
        let table = txn.open_table(INTERVALS)?;
        let Some(value) = table.get((peer, bin))? else {
            return Ok(IntervalSet::new());
        };
        let (stored_epoch, set) = decode(value.value())?;
        Ok(if stored_epoch == epoch {
            set
        } else {
            IntervalSet::new()
        })
    }

    /// Replaces the intervals of (`peer`, `bin`) with `set`, tagged with
    /// `epoch`, in one transaction.
    ///
    /// # Errors
    ///
    /// [`DbError::NoSuchBin`]; [`DbError::Redb`] if the transaction fails.
    pub fn put(&self, peer: &str, bin: u8, epoch: u64, set: &IntervalSet) -> Result<(), DbError> {
        check_bin(bin)?;
        let value = encode(epoch, set);
        let mut txn = self.db.begin_write()?;
        set_commit(&mut txn, Commit::Lazy)?;
        txn.open_table(INTERVALS)?
            .insert((peer, bin), value.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Forgets everything synced from `peer` (every bin), in one
    /// transaction.
    ///
    /// # Errors
    ///
    /// [`DbError::Redb`] if the transaction fails.
    pub fn forget_peer(&self, peer: &str) -> Result<(), DbError> {
        let mut txn = self.db.begin_write()?;
        set_commit(&mut txn, Commit::Lazy)?;
        {
            let mut table = txn.open_table(INTERVALS)?;
            for bin in 0..BINS {
                table.remove((peer, u8::try_from(bin).expect("BINS fits in u8")))?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Forgets every peer (for a node whose volumes were wiped). Durable when
    /// it returns.
    ///
    /// # Errors
    ///
    /// [`DbError::Redb`] if the transaction fails.
    pub fn clear(&self) -> Result<(), DbError> {
        let mut txn = self.db.begin_write()?;
        set_commit(&mut txn, Commit::Durable)?;
        txn.open_table(INTERVALS)?.retain(|_, _| false)?;
        txn.commit()?;
        Ok(())
    }

    /// Makes every put so far durable (one fsync).
    ///
    /// # Errors
    ///
    /// [`DbError::Redb`] if the commit fails.
    pub fn flush(&self) -> Result<(), DbError> {
        let mut txn = self.db.begin_write()?;
        set_commit(&mut txn, Commit::Durable)?;
        txn.commit()?;
        Ok(())
    }

    /// Flushes and closes the file.
    ///
    /// # Errors
    ///
    /// [`DbError::Redb`] if the flush or the close fails.
    pub fn close(self) -> Result<(), DbError> {
        self.flush()?;
        self.db.close()?;
        Ok(())
    }
}

fn check_bin(bin: u8) -> Result<(), DbError> {
    if is_bin(bin) {
        Ok(())
    } else {
        Err(DbError::NoSuchBin(bin))
    }
}

fn config() -> impl Config {
    standard().with_limit::<MAX_VALUE>()
}

/// `FORMAT`, then bincode of `(epoch, ranges)`.
fn encode(epoch: u64, set: &IntervalSet) -> Vec<u8> {
    let mut out = vec![FORMAT];
    bincode::encode_into_std_write((epoch, set.ranges()), &mut out, config())
        .expect("writing to a Vec cannot fail");
    out
}

/// The inverse of [`encode`]; the ranges are merged again, so a value that
/// decodes always gives a valid set.
fn decode(value: &[u8]) -> Result<(u64, IntervalSet), DbError> {
    let corrupt = |why: String| DbError::Corrupt(format!("stored intervals: {why}"));
    match value.split_first() {
        Some((&FORMAT, rest)) => {
            let ((epoch, ranges), read): ((u64, Vec<(u64, u64)>), _) =
                bincode::decode_from_slice(rest, config()).map_err(|e| corrupt(e.to_string()))?;
            if read != rest.len() {
                return Err(corrupt(format!("{} bytes past the end", rest.len() - read)));
            }
            Ok((epoch, IntervalSet::from_ranges(ranges)))
        }
        Some((format, _)) => Err(corrupt(format!("unknown format {format}"))),
        None => Err(corrupt("empty".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir) -> IntervalStore {
        IntervalStore::open(dir.path().join("intervals.redb")).unwrap()
    }

    fn set(ranges: &[(u64, u64)]) -> IntervalSet {
        IntervalSet::from_ranges(ranges.iter().copied())
    }

    #[test]
    fn put_then_get_in_the_same_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        assert!(store.get("peer-a", 3, 7).unwrap().is_empty());
        let s = set(&[(1, 10), (20, 30)]);
        store.put("peer-a", 3, 7, &s).unwrap();
        assert_eq!(store.get("peer-a", 3, 7).unwrap(), s);
        assert!(store.get("peer-a", 4, 7).unwrap().is_empty(), "other bin");
        assert!(store.get("peer-b", 3, 7).unwrap().is_empty(), "other peer");
        store.put("peer-a", 3, 7, &set(&[(1, 40)])).unwrap();
        assert_eq!(store.get("peer-a", 3, 7).unwrap(), set(&[(1, 40)]));
    }

    #[test]
    fn a_changed_epoch_drops_what_was_known() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.put("p", 0, 7, &set(&[(1, 10)])).unwrap();
        assert!(store.get("p", 0, 8).unwrap().is_empty());
        store.put("p", 0, 8, &set(&[(1, 2)])).unwrap();
        assert_eq!(store.get("p", 0, 8).unwrap(), set(&[(1, 2)]));
        assert!(store.get("p", 0, 7).unwrap().is_empty(), "replaced");
    }

    #[test]
    fn forget_peer_drops_every_bin_of_that_peer_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        for bin in [0, 5, 15] {
            store.put("gone", bin, 1, &set(&[(1, 5)])).unwrap();
            store.put("stays", bin, 1, &set(&[(1, 5)])).unwrap();
        }
        store
            .put("gone-too-long-name", 0, 1, &set(&[(1, 5)]))
            .unwrap();
        store.forget_peer("gone").unwrap();
        for bin in [0, 5, 15] {
            assert!(store.get("gone", bin, 1).unwrap().is_empty());
            assert!(!store.get("stays", bin, 1).unwrap().is_empty());
        }
        assert!(!store.get("gone-too-long-name", 0, 1).unwrap().is_empty());
        store.clear().unwrap();
        assert!(store.get("stays", 0, 1).unwrap().is_empty());
    }

    #[test]
    fn intervals_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store
            .put("p", 9, 42, &set(&[(5, 6), (u64::MAX - 1, u64::MAX)]))
            .unwrap();
        store.put("q", 9, 42, &set(&[(1, 1)])).unwrap();
        store.flush().unwrap();
        store.close().unwrap();
        let store = open(&dir);
        assert_eq!(
            store.get("p", 9, 42).unwrap(),
            set(&[(5, 6), (u64::MAX - 1, u64::MAX)])
        );
        drop(store);
        assert_eq!(open(&dir).get("q", 9, 42).unwrap(), set(&[(1, 1)]));
    }

    #[test]
    fn bins_past_the_last_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        assert!(matches!(store.get("p", 16, 1), Err(DbError::NoSuchBin(16))));
        assert!(matches!(
            store.put("p", 200, 1, &IntervalSet::new()),
            Err(DbError::NoSuchBin(200))
        ));
    }

    #[test]
    fn values_round_trip_and_damage_is_refused() {
        let s = set(&[(0, 0), (3, 9)]);
        let v = encode(5, &s);
        assert_eq!(decode(&v).unwrap(), (5, s));
        assert!(matches!(decode(&[]), Err(DbError::Corrupt(_))));
        assert!(matches!(decode(&[2, 0, 0]), Err(DbError::Corrupt(_))));
        assert!(matches!(
            decode(&v[..v.len() - 1]),
            Err(DbError::Corrupt(_))
        ));
        let mut long = v.clone();
        long.push(0);
        assert!(matches!(decode(&long), Err(DbError::Corrupt(_))));
        // A huge range count is refused without allocating it.
        let huge = [
            FORMAT, 5, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f,
        ];
        assert!(matches!(decode(&huge), Err(DbError::Corrupt(_))));
        // Unmerged stored ranges come back merged.
        let mut raw = vec![FORMAT];
        bincode::encode_into_std_write((1u64, vec![(5u64, 9u64), (1, 4)]), &mut raw, config())
            .unwrap();
        assert_eq!(decode(&raw).unwrap().1.ranges(), [(1, 9)]);
    }
}
