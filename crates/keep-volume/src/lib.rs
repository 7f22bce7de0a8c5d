//! Block volumes: where a storage node keeps its blocks.
//!
//! - [`Volume`] is the storage trait every backend implements: streamed read
//!   and write, touch, mtime, trash, untrash, empty trash, index by prefix,
//!   status. It is object safe so a node can hold `Arc<dyn Volume>` of any
//!   backend, including ones defined outside this workspace.
//! - [`BlockBody`] is the data of a block being written: a stream of chunks
//!   that is hashed as it arrives and fails at its end unless the content
//!   matches the expected MD5 and size. Backends commit a block only after
//!   the body ended without error, so a refused write leaves no trace.
//! - [`directory::DirVolume`] is the local-disk backend, in Arvados's layout.
//! - [`conformance`] is the test suite every backend must pass.
//!
//! Architecture invariant: this crate carries no remote-storage client; the
//! S3 backend lives in its own crate and implements [`Volume`] from outside.

pub mod body;
mod check;
pub mod conformance;
pub use keep_crashsafe as crashsafe;
pub mod directory;
mod error;
pub mod frames;
pub mod sums;
mod volume;

pub use body::{BlockBody, BodyError, CHUNK_SIZE, ChunkStream, MAX_BLOCK_SIZE};
pub use check::ContentCheck;
pub use error::VolumeError;
pub use frames::Frames;
pub use sums::{ChunkSummer, ChunkSums};
pub use volume::{
    BlockReader, CopyId, EmptyTrashStats, IndexEntry, IndexSender, Volume, VolumeParams,
    VolumeStatus, unix_nanos_now,
};
