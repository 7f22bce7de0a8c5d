//! The S3 volume: blocks in an S3-compatible object store, laid out and
//! trashed as Arvados's S3 volume does, so an existing Arvados bucket is
//! served as it is.
//!
//! - [`S3Spec`] parses `--volume s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME`.
//! - [`S3Options`] adds credentials, policy and tuning.
//! - [`S3Volume::open`] checks that the bucket exists; [`S3Volume`]
//!   implements [`keep_volume::Volume`].
//!
//! Requests are signed by `rusty-s3` and carried by `reqwest`; see
//! `DESIGN.md` beside this crate for why, for the key layout, the trash
//! rules and how memory stays bounded.

mod client;
mod error;
mod index;
pub mod layout;
mod options;
mod spec;
pub mod testing;
mod time;
mod trash;
mod upload;
mod volume;

pub use options::{
    DEFAULT_INDEX_PAGE_SIZE, DEFAULT_RACE_WINDOW, DEFAULT_SIGNING_TTL, RetryPolicy, S3Options,
};
pub use spec::{DEFAULT_REGION, MAX_PREFIX_LENGTH, S3Spec, SpecError};
pub use volume::S3Volume;
