//! Pullsync between Keep storage nodes, after Swarm Bee's `pullsync`: each
//! node numbers the blocks it holds bin by bin, and its peers pull, interval
//! by interval, the blocks they should hold and lack.
//!
//! Stages 1 and 2a: the parts that need no server, and the serving side as
//! a library ([`serve`]: offers, deliveries, the reader of a delivery); the
//! node does not mount its routes yet.
//!
//! ```
//! use keep_locator::BlockHash;
//! use keep_pullsync::{PullIndex, bin_of};
//!
//! # fn main() -> Result<(), keep_pullsync::DbError> {
//! let dir = tempfile::tempdir().unwrap();
//! let index = PullIndex::open(dir.path().join("pull.redb"))?;
//!
//! let (a, b) = (BlockHash::of(b"foo"), BlockHash::of(b"bar"));
//! // Each new block gets the next BinID of its bin; a known one gets None.
//! let ids = index.add_batch(&[(a, 3), (b, 3), (a, 3)])?;
//! assert_eq!(ids, [Some(1), Some(1), None]); // bins a and 3: both start at 1
//!
//! let cursors = index.cursors();
//! assert_eq!(cursors[usize::from(bin_of(&a))], 1);
//! let page = index.range(bin_of(&a), 1, u64::MAX, 250)?;
//! assert_eq!((page[0].hash, page[0].size, page[0].bin_id), (a, 3, 1));
//!
//! index.close()?;
//! assert!(PullIndex::open(dir.path().join("pull.redb"))?.was_clean());
//! # Ok(())
//! # }
//! ```
//!
//! # Modules
//!
//! - [`bins`]: the hash space in [`BINS`] = 16 bins by the first hex digit
//!   of the MD5 (why 16: see there).
//! - [`index`]: [`PullIndex`], what a node offers, on redb: per-bin BinIDs
//!   that only grow, an epoch, cursors and a watch of them, cheap batches
//!   with an explicit flush, clean-close detection.
//! - [`intervals`]: [`IntervalSet`], what a puller has synced from one bin of
//!   one peer (merged ranges, first gap), and [`IntervalStore`], those sets
//!   on disk per (peer, bin), dropped when the peer's epoch changes.
//! - [`bitvector`]: [`BitVector`], a puller's "want" answer to an offer.
//! - [`wire`]: the messages and their versioned bincode codec.
//! - [`db`]: [`DbError`], the error of both redb files.
//! - [`serve`]: [`serve::Offerer`] (cursors, offers, live offers waiting
//!   on the index), [`serve::Deliverer`] (wanted blocks as one body of
//!   frames, read through `Store::lookup` and verified), the
//!   [framing](serve::frame), and [`serve::FrameReader`], the puller's
//!   reader of such a body.
//!
//! Every call on a redb file blocks: async callers use
//! `tokio::task::spawn_blocking`.
//!
//! # Stage 2b (not here yet)
//!
//! - Routes under `/_keep/sync/` on the node (`keep-server`), behind the
//!   node credential, over [`serve`]: cursors, offers, wants (the
//!   [`serve::Delivery`] as the response body), cancel.
//! - The index fed by the storage core (`keep-store`): new blocks added,
//!   trashed or quarantined ones removed, a periodic flush, a rescan of the
//!   volumes when the index was not closed cleanly
//!   ([`PullIndex::was_clean`]), a reset when they were wiped.
//! - Pullers as `keep-worker` workers, per (peer, bin), historical up to
//!   the cursor and live beyond it, peers from `keep-remote`'s pool. A
//!   puller wants an offered block when this node is among the block's
//!   first nodes in rendezvous order and lacks it, stores what it gets
//!   through `Store::store`, then records the interval.
//! - Metrics: offered, wanted, delivered, missing, invalid, per-bin last
//!   received, worker errors.
#![warn(missing_docs)]

pub mod bins;
pub mod bitvector;
pub mod db;
pub mod index;
pub mod intervals;
pub mod serve;
pub mod wire;

pub use bins::{BINS, bin_of};
pub use bitvector::{BitVector, BitVectorError};
pub use db::DbError;
pub use index::{Cursors, IndexEntry, PullIndex};
pub use intervals::{IntervalSet, IntervalStore};
pub use wire::{WireError, decode, encode};
