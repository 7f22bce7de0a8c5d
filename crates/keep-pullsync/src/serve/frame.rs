//! The framing of a delivery body.
//!
//! A delivery body is a sequence of frames, one per wanted block, in the
//! offer's order, and nothing after them:
//!
//! ```text
//! frame  = length header block
//! length = u32, little-endian: the header's byte count, 1..=MAX_HEADER_LEN
//! header = wire::encode(DeliveryHeader): the protocol version byte, then bincode
//! block  = exactly header.size raw bytes when header.present, else nothing
//!          (a missing block has size 0)
//! ```
//!
//! A sender that cannot go on (a read failed, a copy failed its checksum,
//! the delivery was cancelled) ends the body early; over HTTP the
//! connection is aborted, so the reader sees an error or a body that stops
//! short of the frames it wanted, never a short block taken for whole.

use bytes::Bytes;
use keep_locator::MAX_BLOCK_SIZE;

use super::ReadError;
use crate::wire::{self, DeliveryHeader};

/// The bytes of a frame's length prefix.
pub const LENGTH_LEN: usize = 4;

/// The most bytes a frame's header may take (an encoded header takes at
/// most 29: version, 16 hash bytes, a varint size, a bool).
pub const MAX_HEADER_LEN: usize = 64;

/// The length prefix and header of a frame, ready to send before the
/// block's bytes.
pub fn encode_header(header: &DeliveryHeader) -> Bytes {
    let encoded = wire::encode(header).expect("a delivery header is far below the message limit");
    let len = u32::try_from(encoded.len()).expect("a header is short");
    let mut out = Vec::with_capacity(LENGTH_LEN + encoded.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&encoded);
    out.into()
}

/// The header length a prefix announces.
///
/// # Errors
///
/// [`ReadError::BadFrame`] for 0 or more than [`MAX_HEADER_LEN`].
pub fn header_len(prefix: [u8; LENGTH_LEN]) -> Result<usize, ReadError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if (1..=MAX_HEADER_LEN).contains(&len) {
        Ok(len)
    } else {
        Err(ReadError::BadFrame("header length out of range"))
    }
}

/// Decodes a frame's header (the bytes after the length prefix) and checks
/// it describes a block a frame may carry.
///
/// # Errors
///
/// [`ReadError::Wire`] if it does not decode; [`ReadError::BadFrame`] for
/// a size over [`MAX_BLOCK_SIZE`] or a missing block with a size.
pub fn decode_header(bytes: &[u8]) -> Result<DeliveryHeader, ReadError> {
    let header: DeliveryHeader = wire::decode(bytes)?;
    if header.size > MAX_BLOCK_SIZE {
        return Err(ReadError::BadFrame("block over the 64 MiB limit"));
    }
    if !header.present && header.size != 0 {
        return Err(ReadError::BadFrame("a missing block with a size"));
    }
    Ok(header)
}
