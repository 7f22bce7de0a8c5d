//! The pullsync messages and their versioned codec.
//!
//! A puller asks a peer for its cursors ([`CursorsReply`]), then for a
//! bin's entries from a BinID on ([`OfferRequest`]); the peer answers an
//! [`Offer`] (at most a page, and `topmost`, the highest BinID the page
//! covers); the puller answers a [`Want`] (one bit per offered entry it
//! should hold and lacks) and gets the wanted blocks as delivery frames
//! ([`DeliveryHeader`] then the block's bytes, raw), or sends a [`Cancel`].
//!
//! Every message on the wire is one version byte ([`PROTOCOL`]) followed by
//! its bincode 2 encoding (standard configuration: little-endian varints).
//! A message is at most [`MAX_MESSAGE_LEN`] bytes; [`decode`] refuses an
//! unknown version, a truncated message, trailing bytes, and a length that
//! claims more than a message could hold (before allocating it).
//! [`decode_prefix`] reads one message off the front of a buffer, for
//! delivery frames whose block bytes follow.

mod messages;

#[cfg(test)]
mod tests;

use bincode::config::{Config, standard};
use bincode::error::DecodeError;
use bincode::{Decode, Encode};

pub use messages::{
    Cancel, CursorsReply, DeliveryHeader, MAX_OFFER_ENTRIES, Offer, OfferEntry, OfferRequest, Want,
};

/// The protocol version this crate speaks, the first byte of every message.
pub const PROTOCOL: u8 = 1;

/// The most bytes one encoded message may take, version byte included.
pub const MAX_MESSAGE_LEN: usize = 256 << 10;

/// The most memory decoding may claim: a message of [`MAX_MESSAGE_LEN`]
/// bytes decodes to at most 8 bytes per byte (a one-byte varint `u64`), so
/// whatever the encoder accepts decodes, and a length claiming more is
/// refused before anything is allocated.
const DECODE_LIMIT: usize = 8 * MAX_MESSAGE_LEN;

/// A message of the protocol (sealed: only this crate's messages).
pub trait WireMessage: Encode + Decode<()> + sealed::Sealed {}

mod sealed {
    /// Seals [`super::WireMessage`].
    pub trait Sealed {}
}

macro_rules! wire_messages {
    ($($t:ty),+) => {
        $(impl sealed::Sealed for $t {}
        impl WireMessage for $t {})+
    };
}

wire_messages!(
    CursorsReply,
    OfferRequest,
    Offer,
    Want,
    Cancel,
    DeliveryHeader
);

/// Why a message was not encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A protocol version this crate does not speak.
    #[error("unknown pullsync protocol version {0}")]
    Version(u8),
    /// The message ends early (for [`decode_prefix`]: wait for more bytes).
    #[error("truncated pullsync message")]
    Truncated,
    /// Bytes follow the message.
    #[error("{0} bytes after the pullsync message")]
    TrailingBytes(usize),
    /// Longer than [`MAX_MESSAGE_LEN`], or a length inside claims more.
    #[error("pullsync message over the size limit")]
    TooLarge,
    /// Not a valid encoding of the message.
    #[error("invalid pullsync message: {0}")]
    Invalid(DecodeError),
}

fn config() -> impl Config {
    standard().with_limit::<DECODE_LIMIT>()
}

/// Encodes `msg`: [`PROTOCOL`], then its bincode.
///
/// # Errors
///
/// [`WireError::TooLarge`] if the result would exceed [`MAX_MESSAGE_LEN`]
/// (the peer would refuse it): an offer of more than
/// [`MAX_OFFER_ENTRIES`], say.
pub fn encode<M: WireMessage>(msg: &M) -> Result<Vec<u8>, WireError> {
    let mut out = vec![PROTOCOL];
    bincode::encode_into_std_write(msg, &mut out, standard())
        .expect("writing to a Vec cannot fail");
    if out.len() > MAX_MESSAGE_LEN {
        return Err(WireError::TooLarge);
    }
    Ok(out)
}

/// Decodes one message that is the whole of `bytes`.
///
/// # Errors
///
/// [`WireError::Version`], [`WireError::Truncated`],
/// [`WireError::TrailingBytes`], [`WireError::TooLarge`] (checked before
/// decoding), [`WireError::Invalid`].
pub fn decode<M: WireMessage>(bytes: &[u8]) -> Result<M, WireError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(WireError::TooLarge);
    }
    let (msg, read) = decode_prefix(bytes)?;
    match bytes.len() - read {
        0 => Ok(msg),
        extra => Err(WireError::TrailingBytes(extra)),
    }
}

/// Decodes the message at the front of `bytes`, answering it and how many
/// bytes it took; what follows is left alone (a delivery frame's block).
///
/// # Errors
///
/// As [`decode`], less [`WireError::TrailingBytes`];
/// [`WireError::Truncated`] means the message is not all there yet.
pub fn decode_prefix<M: WireMessage>(bytes: &[u8]) -> Result<(M, usize), WireError> {
    let Some((&version, body)) = bytes.split_first() else {
        return Err(WireError::Truncated);
    };
    if version != PROTOCOL {
        return Err(WireError::Version(version));
    }
    match bincode::decode_from_slice(body, config()) {
        Ok((msg, read)) if read < MAX_MESSAGE_LEN => Ok((msg, 1 + read)),
        Ok(_) | Err(DecodeError::LimitExceeded) => Err(WireError::TooLarge),
        Err(DecodeError::UnexpectedEnd { .. }) => Err(WireError::Truncated),
        Err(e) => Err(WireError::Invalid(e)),
    }
}
