//! The serving side of pullsync, as a library (the HTTP routes wrap it):
//! what a node answers the peers that pull from it, and how a puller reads
//! a delivery.
//!
//! An exchange goes:
//!
//! 1. [`Offerer::cursors`]: the epoch and every bin's cursor, one reading.
//! 2. [`Offerer::offer`]: a page of a bin's entries, with a fresh `ruid`
//!    naming it; a live request (from beyond the cursor) waits for entries.
//!    The offered entries are kept for the delivery, in a bounded map (at
//!    most [`ServeSettings::max_offers`], each for
//!    [`ServeSettings::offer_ttl`]).
//! 3. [`Deliverer::deliver`]: the blocks the puller wants of that offer, as
//!    one body of delivery frames ([`frame`]), each block read through the
//!    storage core and verified as it goes; or [`Deliverer::cancel`].
//! 4. The puller reads the body with a [`FrameReader`], which refuses any
//!    frame it did not ask for, in the order it asked.
//!
//! The [`Offerer`] and its [`Deliverer`]s share the offers:
//!
//! ```no_run
//! # async fn f(index: std::sync::Arc<keep_pullsync::PullIndex>, store: std::sync::Arc<keep_store::Store>) {
//! use keep_pullsync::serve::{Offerer, ServeSettings};
//!
//! let offerer = Offerer::new(index, ServeSettings::default());
//! let deliverer = offerer.deliverer(store);
//! # }
//! ```

mod book;
mod deliver;
pub mod frame;
mod offers;
mod read;

#[cfg(test)]
mod tests;

use std::time::Duration;

use keep_store::StoreError;

use crate::db::DbError;
use crate::wire::WireError;

pub use deliver::{Deliverer, Delivery};
pub use offers::Offerer;
pub use read::{FrameReader, ReadError};

/// How many offers the serving side remembers, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeSettings {
    /// The most offers kept for a delivery at once; a new offer past it
    /// forgets the oldest.
    pub max_offers: usize,
    /// How long an offer waits for its delivery request.
    pub offer_ttl: Duration,
}

impl Default for ServeSettings {
    /// 1024 offers (a peer pulls at most a few bins at once), one minute
    /// each (a puller asks for the delivery right after the offer).
    fn default() -> Self {
        ServeSettings {
            max_offers: 1024,
            offer_ttl: Duration::from_secs(60),
        }
    }
}

/// Why a pullsync request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// An offer request for a bin outside `0..BINS`.
    #[error("no such bin: {0}")]
    NoSuchBin(u8),
    /// An offer request that cannot be answered as asked.
    #[error("bad offer request: {0}")]
    BadRequest(&'static str),
    /// No offer with this ruid is waiting for its delivery: never made,
    /// expired, forgotten for newer ones, delivered already, or cancelled.
    #[error("unknown ruid {0}")]
    UnknownRuid(u32),
    /// The want's length is not the offer's entry count.
    #[error("want of {bits} bits for an offer of {entries} entries")]
    BadWant {
        /// The want's length in bits.
        bits: usize,
        /// How many entries the offer had.
        entries: usize,
    },
    /// The delivery was cancelled while it ran.
    #[error("delivery {0} cancelled")]
    Cancelled(u32),
    /// The pull index failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Reading a block failed: a volume fault, no buffer memory, or stored
    /// copies that failed their checksum (moved aside).
    #[error("reading a block to deliver: {0}")]
    Store(#[from] StoreError),
    /// A message could not be encoded.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A blocking task of the index panicked or was cancelled.
    #[error("pull index task failed: {0}")]
    Task(String),
}
