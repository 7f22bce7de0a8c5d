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
//! rules and how memory stays bounded. With the `testing` feature (for
//! tests only), `testing` starts a real moto S3 server.
//!
//! A volume spec as the node's configuration gives it:
//!
//! ```
//! use keep_volume_s3::S3Spec;
//!
//! let spec = S3Spec::parse(
//!     "s3://keep-data/cluster1?endpoint=http://127.0.0.1:9000&region=eu-west-1&prefix_length=3",
//! )?;
//! assert_eq!(spec.bucket, "keep-data");
//! assert_eq!(spec.prefix, "cluster1");
//! assert_eq!(spec.endpoint.as_str(), "http://127.0.0.1:9000/");
//! assert!(spec.path_style, "a custom endpoint is addressed path-style");
//! assert_eq!(spec.region, "eu-west-1");
//! assert_eq!(spec.prefix_length, 3);
//! assert_eq!(spec.endpoint_authority(), "127.0.0.1:9000");
//!
//! // Without an endpoint: AWS, with the bucket in the host name.
//! let aws = S3Spec::parse("s3://keep-data")?;
//! assert_eq!(aws.endpoint.as_str(), "https://s3.us-east-1.amazonaws.com/");
//! assert!(!aws.path_style);
//!
//! assert!(S3Spec::parse("/var/lib/keep").is_err());
//! # Ok::<(), keep_volume_s3::SpecError>(())
//! ```

mod client;
mod error;
mod index;
pub mod layout;
mod options;
mod spec;
#[cfg(feature = "testing")]
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
