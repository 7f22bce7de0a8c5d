//! Test doubles for whatever sits above the volumes, behind the `testing`
//! feature (production builds do not carry them):
//!
//! - [`MemVolume`], a [`Volume`](crate::Volume) in memory that passes the
//!   conformance suite, with a capacity to make it full and hooks to look
//!   at or damage what it stores;
//! - [`FaultyVolume`], a wrapper that makes any volume fail on demand
//!   (errors, latency, corrupt or broken reads), per [`Op`], by a
//!   [`Schedule`], and counts the calls it sees.
//!
//! The conformance suite itself is [`crate::conformance`], under the same
//! feature.

mod faulty;
mod mem;

pub use faulty::{Fault, FaultyVolume, Op, Schedule};
pub use mem::MemVolume;
