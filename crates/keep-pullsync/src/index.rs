//! The pull index: what a node offers its peers, bin by bin, in the order it
//! got it.
//!
//! Every block a node holds has one entry: its bin ([`bin_of`]), a **BinID**
//! (the bin's counter when the block entered the index: BinIDs start at 1,
//! only grow, and are never handed out twice, not after a removal, a restart
//! or a crash), its hash and its size. A peer asks for a bin's entries from a
//! BinID on ([`PullIndex::range`]) and remembers up to where it got; the
//! **cursors** ([`PullIndex::cursors`]) are each bin's last BinID, the
//! **epoch** ([`PullIndex::epoch`]) names this numbering: a new epoch (a new
//! index, or [`PullIndex::reset`]) tells peers to forget what they synced.
//!
//! # Durability
//!
//! The index lives in one [redb] file. [`add_batch`](PullIndex::add_batch)
//! and [`remove_batch`](PullIndex::remove_batch) commit without an fsync;
//! [`flush`](PullIndex::flush) makes everything before it durable, and
//! [`close`](PullIndex::close) flushes and marks the file clean. A crash
//! loses the batches since the last flush, so [`open`](PullIndex::open)
//! reports [`was_clean`](PullIndex::was_clean): when it is false the caller
//! rescans its volumes (adding what is missing, removing what is gone). Even
//! then no BinID is handed out twice: a batch that goes past a bin's durable
//! reservation is committed durably with a new one, and an open after a
//! crash continues every bin after its reservation (the BinIDs lost with a
//! batch may already have been offered, and peers would skip their reuse).
//!
//! # Blocking
//!
//! Every method does blocking file I/O: async callers run them on
//! `tokio::task::spawn_blocking` (the index is `Send + Sync`; share it in an
//! `Arc`). [`subscribe`](PullIndex::subscribe) is the one async-friendly
//! part: a `watch` of the cursors, updated after each committed batch, for
//! live-sync long polls.

mod schema;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use keep_locator::BlockHash;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use tokio::sync::watch;

use crate::bins::{BINS, bin_of, is_bin};
use crate::db::{Commit, DbError, set_commit};
use schema::{BY_HASH, ENTRIES, Meta};

/// The epoch and every bin's cursor, as one consistent reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursors {
    /// The index's epoch.
    pub epoch: u64,
    /// The last BinID of every bin (0 for a bin that never had an entry).
    pub bins: [u64; BINS],
}

/// One entry of the pull index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// The block's MD5.
    pub hash: BlockHash,
    /// The block's size in bytes.
    pub size: u64,
    /// Its BinID in its bin.
    pub bin_id: u64,
}

/// The pull index of one node, in one redb file (see the [module
/// docs](self)).
#[derive(Debug)]
pub struct PullIndex {
    db: Database,
    was_clean: bool,
    /// Held across every write transaction and the cursor update after it,
    /// so the watch sees commits in order.
    writer: Mutex<()>,
    /// The epoch and cursors as of the last commit.
    cursors: watch::Sender<Cursors>,
}

impl PullIndex {
    /// Opens the index at `path`, creating the file (and a new epoch) if it
    /// is missing or empty.
    ///
    /// The file is marked not clean until [`close`](Self::close).
    ///
    /// # Errors
    ///
    /// [`DbError::Redb`] if the file cannot be opened (another process has
    /// it, I/O, not a redb file); [`DbError::Corrupt`] if it is a redb file
    /// whose tables this crate did not write.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DbError> {
        let db = Database::create(path)?;
        let mut txn = db.begin_write()?;
        set_commit(&mut txn, Commit::Durable)?;
        let (meta, mut counters) = match schema::read_meta(&txn)? {
            Some(meta) => (meta, schema::read_counters(&txn)?),
            None => {
                // New (or never initialised): nothing it holds counts.
                schema::clear_entries(&txn)?;
                let meta = Meta {
                    epoch: schema::new_epoch(None),
                    clean: false,
                };
                (meta, schema::Counters::default())
            }
        };
        if !meta.clean {
            schema::skip_to_reservations(&mut counters);
        }
        schema::write_meta(
            &txn,
            Meta {
                clean: false,
                ..meta
            },
        )?;
        schema::write_counters(&txn, &counters)?;
        txn.commit()?;
        let (cursors, _) = watch::channel(Cursors {
            epoch: meta.epoch,
            bins: schema::cursors_of(&counters),
        });
        Ok(PullIndex {
            db,
            was_clean: meta.clean,
            writer: Mutex::new(()),
            cursors,
        })
    }

    /// Whether the last process to use the file [closed](Self::close) it.
    ///
    /// False for a new index too: either way the index may lack blocks the
    /// volumes hold (or list blocks they lost), and the caller rescans them.
    pub fn was_clean(&self) -> bool {
        self.was_clean
    }

    /// The epoch: a random nonzero number chosen when the index was created
    /// (or [reset](Self::reset)).
    pub fn epoch(&self) -> u64 {
        self.cursors.borrow().epoch
    }

    /// The last BinID of every bin (0 for a bin that never had an entry).
    pub fn cursors(&self) -> [u64; BINS] {
        self.cursors.borrow().bins
    }

    /// The epoch and the cursors together, as one reading (what a cursors
    /// reply carries: two separate calls could straddle a reset).
    pub fn snapshot(&self) -> Cursors {
        *self.cursors.borrow()
    }

    /// A watch of the [`snapshot`](Self::snapshot), updated after every
    /// committed batch that added entries and after a reset: a live-sync
    /// long poll waits on it for a bin's cursor to pass what it has sent
    /// (and sees a reset as a new epoch).
    pub fn subscribe(&self) -> watch::Receiver<Cursors> {
        self.cursors.subscribe()
    }

    /// Adds blocks `(hash, size)`, in one transaction.
    ///
    /// Each hash not yet in the index gets the next BinID of its bin, in
    /// batch order; a hash already there (also earlier in the same batch)
    /// gets `None` and changes nothing, so a duplicate write or a touch
    /// makes no new offer. The answer has one item per input.
    ///
    /// # Errors
    ///
    /// [`DbError`] if the transaction fails; then nothing was added.
    pub fn add_batch(&self, blocks: &[(BlockHash, u64)]) -> Result<Vec<Option<u64>>, DbError> {
        if blocks.is_empty() {
            return Ok(Vec::new());
        }
        let _writer = self.lock_writer();
        let mut txn = self.db.begin_write()?;
        let mut counters = schema::read_counters(&txn)?;
        let mut ids = Vec::with_capacity(blocks.len());
        {
            let mut by_hash = txn.open_table(BY_HASH)?;
            let mut entries = txn.open_table(ENTRIES)?;
            for (hash, size) in blocks {
                let key = *hash.as_bytes();
                if by_hash.get(key)?.is_some() {
                    ids.push(None);
                    continue;
                }
                let bin = bin_of(hash);
                let counter = &mut counters[usize::from(bin)];
                counter.last += 1;
                let id = counter.last;
                by_hash.insert(key, (bin, id))?;
                entries.insert((bin, id), (key, *size))?;
                ids.push(Some(id));
            }
        }
        if ids.iter().all(Option::is_none) {
            txn.abort()?;
            return Ok(ids);
        }
        let commit = if schema::renew_leases(&mut counters) {
            Commit::Durable
        } else {
            Commit::Lazy
        };
        set_commit(&mut txn, commit)?;
        schema::write_counters(&txn, &counters)?;
        txn.commit()?;
        self.cursors
            .send_modify(|c| c.bins = schema::cursors_of(&counters));
        Ok(ids)
    }

    /// Removes blocks (trashed, quarantined or lost: not to be offered), in
    /// one transaction; hashes not in the index are skipped. Answers how
    /// many were removed. Their BinIDs are not handed out again, and a block
    /// added again later gets a new one.
    ///
    /// # Errors
    ///
    /// [`DbError`] if the transaction fails; then nothing was removed.
    pub fn remove_batch(&self, hashes: &[BlockHash]) -> Result<usize, DbError> {
        if hashes.is_empty() {
            return Ok(0);
        }
        let _writer = self.lock_writer();
        let mut txn = self.db.begin_write()?;
        set_commit(&mut txn, Commit::Lazy)?;
        let mut removed = 0;
        {
            let mut by_hash = txn.open_table(BY_HASH)?;
            let mut entries = txn.open_table(ENTRIES)?;
            for hash in hashes {
                let Some(key) = by_hash.remove(hash.as_bytes())?.map(|g| g.value()) else {
                    continue;
                };
                entries.remove(key)?;
                removed += 1;
            }
        }
        if removed == 0 {
            txn.abort()?;
        } else {
            txn.commit()?;
        }
        Ok(removed)
    }

    /// The entries of `bin` with BinIDs in `from..=to`, in BinID order, at
    /// most `limit` of them.
    ///
    /// # Errors
    ///
    /// [`DbError::NoSuchBin`] for a bin outside `0..BINS`; [`DbError`] if the
    /// read fails.
    pub fn range(
        &self,
        bin: u8,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<IndexEntry>, DbError> {
        if !is_bin(bin) {
            return Err(DbError::NoSuchBin(bin));
        }
        if from > to || limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read()?;
        let entries = txn.open_table(ENTRIES)?;
        let mut out = Vec::new();
        for item in entries.range((bin, from)..=(bin, to))?.take(limit) {
            let (key, value) = item?;
            let ((_, bin_id), (hash, size)) = (key.value(), value.value());
            out.push(IndexEntry {
                hash: BlockHash::from_bytes(hash),
                size,
                bin_id,
            });
        }
        Ok(out)
    }

    /// Whether the index holds `hash`.
    ///
    /// # Errors
    ///
    /// [`DbError`] if the read fails.
    pub fn contains(&self, hash: &BlockHash) -> Result<bool, DbError> {
        let txn = self.db.begin_read()?;
        let by_hash = txn.open_table(BY_HASH)?;
        Ok(by_hash.get(hash.as_bytes())?.is_some())
    }

    /// How many blocks the index holds.
    ///
    /// # Errors
    ///
    /// [`DbError`] if the read fails.
    pub fn len(&self) -> Result<u64, DbError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(BY_HASH)?.len()?)
    }

    /// Whether the index holds no block.
    ///
    /// # Errors
    ///
    /// [`DbError`] if the read fails.
    pub fn is_empty(&self) -> Result<bool, DbError> {
        Ok(self.len()? == 0)
    }

    /// Makes every batch committed so far durable (one fsync).
    ///
    /// # Errors
    ///
    /// [`DbError`] if the commit fails.
    pub fn flush(&self) -> Result<(), DbError> {
        let _writer = self.lock_writer();
        let mut txn = self.db.begin_write()?;
        set_commit(&mut txn, Commit::Durable)?;
        txn.commit()?;
        Ok(())
    }

    /// Starts over, for a node whose volumes were wiped: a new epoch (peers
    /// drop what they synced from this node), no entries, every counter at
    /// 0. Durable when it returns.
    ///
    /// # Errors
    ///
    /// [`DbError`] if the transaction fails; then the index is unchanged.
    pub fn reset(&self) -> Result<(), DbError> {
        let _writer = self.lock_writer();
        let epoch = schema::new_epoch(Some(self.epoch()));
        let mut txn = self.db.begin_write()?;
        set_commit(&mut txn, Commit::Durable)?;
        schema::clear_entries(&txn)?;
        schema::write_meta(
            &txn,
            Meta {
                epoch,
                clean: false,
            },
        )?;
        let counters = schema::Counters::default();
        schema::write_counters(&txn, &counters)?;
        txn.commit()?;
        self.cursors.send_replace(Cursors {
            epoch,
            bins: schema::cursors_of(&counters),
        });
        Ok(())
    }

    /// Flushes, marks the file clean and closes it; the next
    /// [`open`](Self::open) reports [`was_clean`](Self::was_clean).
    ///
    /// Dropping the index instead leaves it marked not clean.
    ///
    /// # Errors
    ///
    /// [`DbError`] if the last commit or the close fails; the file is then
    /// not marked clean.
    pub fn close(self) -> Result<(), DbError> {
        let mut txn = self.db.begin_write()?;
        set_commit(&mut txn, Commit::Durable)?;
        schema::write_meta(
            &txn,
            Meta {
                epoch: self.epoch(),
                clean: true,
            },
        )?;
        txn.commit()?;
        self.db.close()?;
        Ok(())
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
