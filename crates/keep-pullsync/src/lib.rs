//! Pullsync between Keep storage nodes, after Swarm Bee's `pullsync`: each
//! node numbers the blocks it holds bin by bin, and its peers pull, interval
//! by interval, the blocks they should hold and lack.
//!
//! A node composes it as one part, [`Pullsync`]: the pull index, kept
//! true to the volumes by the storage core's change reports and a scan at
//! every start ([`feed`]); the serving side behind the node's
//! `/_keep/sync/` routes ([`serve`], [`routes`]); and the pullers, workers
//! per (peer, bin) that fetch the blocks this node is responsible for and
//! lacks ([`pull`]).
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
//! - [`feed`]: the index kept true to the volumes ([`feed::IndexFeed`],
//!   the store's observer; [`feed::IndexWorker`], which applies changes,
//!   flushes, and scans the volumes at start).
//! - [`pull`]: the pullers ([`pull::BinPuller`], [`pull::PeerPullers`]),
//!   responsibility by rendezvous order ([`Responsibility`]), the claims
//!   that fetch a block once, the client side of the routes.
//! - [`routes`]: the paths the node serves them under.
//! - [`metrics`]: [`PullsyncMetrics`], the `keep_pullsync_*` series.
//!
//! Every call on a redb file blocks: async callers use
//! `tokio::task::spawn_blocking`.
#![warn(missing_docs)]

pub mod bins;
pub mod bitvector;
pub mod db;
pub mod feed;
pub mod index;
pub mod intervals;
pub mod metrics;
mod node;
pub mod pull;
pub mod routes;
pub mod serve;
pub mod wire;

pub use bins::{BINS, bin_of};
pub use bitvector::{BitVector, BitVectorError};
pub use db::DbError;
pub use index::{Cursors, IndexEntry, PullIndex};
pub use intervals::{IntervalSet, IntervalStore};
pub use metrics::PullsyncMetrics;
pub use node::{INDEX_FILE, INTERVALS_FILE, Pullsync};
pub use pull::{PullSettings, Responsibility};
pub use wire::{WireError, decode, encode};
