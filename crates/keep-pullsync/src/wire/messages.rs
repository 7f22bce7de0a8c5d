//! The messages of the pullsync protocol (see the [module docs](super)).

use bincode::{Decode, Encode};
use keep_locator::BlockHash;

use crate::bitvector::BitVector;
use crate::index::{Cursors, IndexEntry};

/// The answer to "your cursors?": the epoch and every bin's last BinID.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct CursorsReply {
    /// The peer's epoch: when it changes, what was synced from it is void.
    pub epoch: u64,
    /// The last BinID of every bin, bin 0 first.
    pub cursors: Vec<u64>,
}

impl From<Cursors> for CursorsReply {
    fn from(c: Cursors) -> Self {
        CursorsReply {
            epoch: c.epoch,
            cursors: c.bins.to_vec(),
        }
    }
}

/// "Offer me the entries of `bin` with BinIDs `from..=to`, at most `limit`."
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct OfferRequest {
    /// The bin.
    pub bin: u8,
    /// The first BinID wanted.
    pub from: u64,
    /// The last BinID wanted; [`OfferRequest::LIVE`] for up to the cursor
    /// and beyond (a live request, answered when entries arrive).
    pub to: u64,
    /// The most entries wanted (the peer may send fewer, and clamps it to
    /// [`MAX_OFFER_ENTRIES`]).
    pub limit: u32,
}

impl OfferRequest {
    /// `to` for a live request.
    pub const LIVE: u64 = u64::MAX;
}

/// The most entries an offer carries, whatever the request's limit: an
/// offer this long always fits in [`MAX_MESSAGE_LEN`](crate::wire::MAX_MESSAGE_LEN).
pub const MAX_OFFER_ENTRIES: u32 = 4096;

/// One offered block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct OfferEntry {
    /// The block's MD5.
    pub hash: [u8; 16],
    /// Its size in bytes.
    pub size: u64,
    /// Its BinID at the offering peer.
    pub bin_id: u64,
}

impl OfferEntry {
    /// The block's hash.
    pub fn block_hash(&self) -> BlockHash {
        BlockHash::from_bytes(self.hash)
    }
}

impl From<IndexEntry> for OfferEntry {
    fn from(e: IndexEntry) -> Self {
        OfferEntry {
            hash: *e.hash.as_bytes(),
            size: e.size,
            bin_id: e.bin_id,
        }
    }
}

/// A page of a bin's entries, the answer to an [`OfferRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Offer {
    /// The offering peer's epoch when it made the offer: a puller that
    /// synced under another epoch asks for the cursors again rather than
    /// record BinIDs of a numbering it does not know.
    pub epoch: u64,
    /// Names this exchange in the [`Want`] or [`Cancel`] that follows.
    pub ruid: u32,
    /// The highest BinID the page covers: the puller records
    /// `[from, topmost]` as synced once it has what it wanted.
    pub topmost: u64,
    /// The entries, in BinID order.
    pub entries: Vec<OfferEntry>,
}

/// Which offered blocks the puller wants: bit `i` for `entries[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Want {
    /// The offer's `ruid`.
    pub ruid: u32,
    /// One bit per offered entry.
    pub bits: BitVector,
}

/// The puller gives up on an offer.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Cancel {
    /// The offer's `ruid`.
    pub ruid: u32,
}

/// The head of one delivery frame; the block's `size` bytes follow it raw,
/// and a delivery response holds one frame per wanted block (the framing:
/// [`crate::serve::frame`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct DeliveryHeader {
    /// The block's MD5 (the receiver verifies the bytes against it).
    pub hash: [u8; 16],
    /// How many bytes follow (0 when the block is not `present`).
    pub size: u64,
    /// False when the block is gone since it was offered (trashed or
    /// lost): no bytes follow, and the puller gets it elsewhere.
    pub present: bool,
}

impl DeliveryHeader {
    /// The header of a block that follows, `size` bytes.
    pub fn present(hash: BlockHash, size: u64) -> Self {
        DeliveryHeader {
            hash: *hash.as_bytes(),
            size,
            present: true,
        }
    }

    /// The header of a block gone since it was offered.
    pub fn missing(hash: BlockHash) -> Self {
        DeliveryHeader {
            hash: *hash.as_bytes(),
            size: 0,
            present: false,
        }
    }

    /// The block's hash.
    pub fn block_hash(&self) -> BlockHash {
        BlockHash::from_bytes(self.hash)
    }
}
