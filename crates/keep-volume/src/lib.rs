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
//! - With the `testing` feature (for tests only): `conformance`, the test
//!   suite every backend must pass, and `testing`, test doubles for the
//!   code above the volumes (`MemVolume` in memory, `FaultyVolume` to inject
//!   faults).
//!
//! Architecture invariant: this crate carries no remote-storage client; the
//! S3 backend lives in its own crate and implements [`Volume`] from outside.
//!
//! A block written to a directory volume and read back:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use bytes::Bytes;
//! use futures::StreamExt;
//! use keep_locator::BlockHash;
//! use keep_volume::directory::{DirOptions, DirVolume};
//! use keep_volume::{BlockBody, Volume, VolumeParams};
//!
//! let tmp = tempfile::tempdir()?;
//! let vol = DirVolume::open(DirOptions {
//!     root: tmp.path().to_owned(),
//!     params: VolumeParams::new("zzzzz-nyw5e-000000000000000"),
//!     min_free_bytes: 0,
//! })?;
//!
//! // The body is checked against the hash as it streams in: the block is
//! // stored only if its content is what the hash names.
//! let data = Bytes::from_static(b"hello, keep");
//! let hash = BlockHash::of(&data);
//! vol.write(&hash, BlockBody::from_bytes(hash, data.clone())).await?;
//!
//! let mut reader = vol.open(&hash).await?;
//! let mut back = Vec::new();
//! while let Some(chunk) = reader.chunks.next().await {
//!     back.extend_from_slice(&chunk?);
//! }
//! assert_eq!(back, data);
//! assert_eq!(reader.size, 11);
//! # Ok(())
//! # }
//! ```

pub mod body;
mod check;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub use keep_crashsafe as crashsafe;
pub mod directory;
mod error;
pub mod frames;
pub mod sums;
#[cfg(feature = "testing")]
pub mod testing;
mod volume;

pub use body::{BlockBody, BodyError, CHUNK_SIZE, ChunkStream, MAX_BLOCK_SIZE};
pub use check::ContentCheck;
pub use error::VolumeError;
pub use frames::Frames;
pub use sums::{ChunkSummer, ChunkSums};
pub use volume::{
    BlockReader, CopyId, EmptyTrashStats, IndexEntry, IndexSender, Presence, Volume, VolumeParams,
    VolumeStatus, unix_nanos_now,
};
