//! What the two redb files of this crate share: their error type and the
//! durability of a write transaction.

use redb::{Durability, WriteTransaction};

/// An error of the [pull index](crate::PullIndex) or the
/// [interval store](crate::IntervalStore).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database failed (I/O, a damaged file, a file another process
    /// holds open).
    #[error("pullsync database: {0}")]
    Redb(#[from] redb::Error),
    /// The file holds something this version did not write.
    #[error("pullsync database is corrupt: {0}")]
    Corrupt(String),
    /// A bin number outside `0..BINS` (see [`crate::bins`]).
    #[error("no such bin: {0}")]
    NoSuchBin(u8),
}

/// Implements `From<$e> for DbError` through `redb::Error`, which every
/// error type of redb converts into.
macro_rules! from_redb {
    ($($e:ty),+) => {
        $(impl From<$e> for DbError {
            fn from(e: $e) -> Self {
                DbError::Redb(e.into())
            }
        })+
    };
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// How a write transaction reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Durable when `commit` returns (fsync).
    Durable,
    /// Cheap: lost by a crash unless a durable commit follows.
    Lazy,
}

/// Sets the durability of `txn`.
pub(crate) fn set_commit(txn: &mut WriteTransaction, commit: Commit) -> Result<(), DbError> {
    let durability = match commit {
        Commit::Durable => Durability::Immediate,
        Commit::Lazy => Durability::None,
    };
    txn.set_durability(durability)?;
    Ok(())
}
