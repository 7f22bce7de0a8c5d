//! The storage core's error: what went wrong, in storage terms. The HTTP
//! layer alone maps it to statuses.

use keep_volume::{BodyError, VolumeError};

/// A boxed error from a block's source (a peer, a client, a volume).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a storage operation failed. Callers branch on the variant.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No volume holds the block.
    #[error("block not found")]
    NotFound,
    /// The data to store was refused (wrong hash, wrong length, too
    /// large, or its source failed): nothing was stored.
    #[error(transparent)]
    Invalid(#[from] BodyError),
    /// A request named a volume this node does not have.
    #[error("no mount {0} on this node")]
    NoSuchMount(String),
    /// No volume takes writes.
    #[error("no writable volume")]
    ReadOnly,
    /// Every volume that could take the block is full.
    #[error("all volumes are full")]
    Full,
    /// The node has no buffer memory free for the transfer in time, or is
    /// shutting down.
    #[error("server busy: {0}")]
    Busy(&'static str),
    /// A volume cannot be reached now (network store down, throttled).
    #[error("volume unavailable: {0}")]
    Unavailable(String),
    /// No volume could take the block: those not full failed to say
    /// whether they have room (the last failure is given).
    #[error("no volume can take the block: {0}")]
    NoTarget(String),
    /// The stored copies failed their checksum (they have been moved aside).
    #[error("stored data failed its checksum")]
    Corrupt,
    /// A conditional trash found another mtime.
    #[error("block mtime {actual} differs from the expected {expected}")]
    MtimeMismatch {
        /// The mtime asked for (unix ns).
        expected: i64,
        /// The mtime the block has (unix ns).
        actual: i64,
    },
    /// A volume failed (an I/O error).
    #[error("volume error: {0}")]
    Volume(String),
    /// Reading a block's bytes failed part way.
    #[error("read failed: {0}")]
    Read(BoxError),
}

impl From<VolumeError> for StoreError {
    fn from(e: VolumeError) -> Self {
        match e {
            VolumeError::NotFound => StoreError::NotFound,
            VolumeError::Body(b) => StoreError::Invalid(b),
            VolumeError::Full => StoreError::Full,
            VolumeError::ReadOnly => StoreError::ReadOnly,
            VolumeError::Unavailable(m) => StoreError::Unavailable(m),
            VolumeError::Corrupt(_) => StoreError::Corrupt,
            VolumeError::MtimeMismatch { expected, actual } => {
                StoreError::MtimeMismatch { expected, actual }
            }
            VolumeError::Io(e) => StoreError::Volume(e.to_string()),
        }
    }
}

impl StoreError {
    /// Whether this is [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound)
    }
}
