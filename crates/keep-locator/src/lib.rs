//! Keep locators, block hashes, permission signatures and placement, all
//! compatible with Arvados Keep.
//!
//! - [`BlockHash`]: the MD5 that names a block.
//! - [`Locator`]: `<md5>[+<size>][+<hint>]...`, parsed and written back exactly.
//! - [`SigningKey`]: signs locators with `+A<sig>@<expiry>` hints and checks
//!   them, computed as Arvados does, so signatures cross between clusters.
//! - [`placement`]: the rendezvous order in which clients probe services.
//! - [`MAX_BLOCK_SIZE`]: the 64 MiB limit of a block.
//! - [`parse_byte_size`] and [`format_byte_size`]: byte counts as people
//!   write them (`64MiB`) in config files and on command lines.
//!
//! This crate does no I/O and takes no clock: callers pass the current time.
//!
//! ```
//! use std::time::Duration;
//! use keep_locator::{BlockHash, Locator, SignatureError, SigningKey};
//!
//! let loc = Locator::new(BlockHash::of(b"foo"), 3);
//! assert_eq!(loc.to_string(), "acbd18db4cc2f85cedef654fccc4a4d8+3");
//!
//! let key = SigningKey::new("blob signing key");
//! let ttl = Duration::from_secs(14 * 24 * 3600);
//! let signed = key.sign(&loc, "api token", 1_700_000_000, ttl);
//! let parsed: Locator = signed.to_string().parse()?;
//! assert_eq!(key.verify(&parsed, "api token", ttl, 1_600_000_000), Ok(()));
//! assert_eq!(
//!     key.verify(&parsed, "other token", ttl, 1_600_000_000),
//!     Err(SignatureError::Invalid)
//! );
//! # Ok::<(), keep_locator::LocatorError>(())
//! ```

#![warn(missing_docs)]

mod digest;
mod hash;
mod locator;
pub mod placement;
mod signature;
mod size;

pub use digest::Md5Hasher;
pub use hash::BlockHash;
pub use locator::{Locator, LocatorError, MAX_BLOCK_SIZE};
pub use placement::{permuted_order, rendezvous_weight};
pub use signature::{SignatureError, SigningKey};
pub use size::{format_byte_size, parse_byte_size};
