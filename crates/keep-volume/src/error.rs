//! The error every volume operation returns.

use crate::body::BodyError;

/// What went wrong in a volume operation. Callers branch on the variant (a
/// missing block is routine; a failing disk is not).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The block (or trashed copy, for untrash) does not exist here.
    #[error("block not found")]
    NotFound,
    /// The volume has too little free space to take a block.
    #[error("volume is full")]
    Full,
    /// The volume does not accept writes (or trash, for trash operations).
    #[error("volume is read-only")]
    ReadOnly,
    /// A conditional trash found another mtime than the one asked for.
    #[error("block mtime {actual} differs from the expected {expected}")]
    MtimeMismatch {
        /// The mtime the caller saw (unix ns).
        expected: i64,
        /// The mtime the block has now (unix ns).
        actual: i64,
    },
    /// The data to write was refused (wrong hash, wrong length, too large,
    /// or the client went away): nothing was stored.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The stored bytes do not match the block's hash.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The volume cannot be reached now (network store down, throttled).
    #[error("volume unavailable: {0}")]
    Unavailable(String),
    /// A local I/O error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl VolumeError {
    /// Whether this is [`VolumeError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, VolumeError::NotFound)
    }

    /// Whether the volume itself failed (as opposed to a missing block, a
    /// refused body or a policy refusal): such errors count against it.
    pub fn is_volume_fault(&self) -> bool {
        matches!(
            self,
            VolumeError::Io(_) | VolumeError::Unavailable(_) | VolumeError::Corrupt(_)
        )
    }
}

/// Maps `ENOENT` to [`VolumeError::NotFound`] and keeps every other error.
pub(crate) fn not_found_or_io(e: std::io::Error) -> VolumeError {
    if e.kind() == std::io::ErrorKind::NotFound {
        VolumeError::NotFound
    } else {
        VolumeError::Io(e)
    }
}
