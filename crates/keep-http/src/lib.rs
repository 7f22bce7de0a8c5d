//! HTTP plumbing shared by the `keepstore` and `introducer` services.
//!
//! - [`serve()`]: an accept loop that survives `accept()` errors, bounds the
//!   number of open connections, sets `TCP_NODELAY`, and shuts down
//!   gracefully: stop accepting, let in-flight requests finish within a
//!   deadline, then close what is left.
//! - [`body`]: the boxed response body type and small constructors.
//! - [`signal`]: a future that resolves on SIGTERM or SIGINT.
//! - [`request_id`]: request ids as Arvados formats them.

pub mod body;
pub mod request_id;
pub mod serve;
pub mod signal;

pub use body::{Body, BoxError};
pub use serve::{ServeOptions, serve};
