//! The keepstore service as a library.
//!
//! A node speaks the Arvados keepstore HTTP API (3.x behaviour) over one or
//! more [volumes](keep_volume::Volume): `PUT /{md5}` streams a block in,
//! hashing it as it arrives; `GET /{locator}` streams it out, verified;
//! permission signatures, admin routes, index, mounts and metrics as
//! Arvados has them. Another tokio program embeds a node like this (see
//! `examples/embed.rs`):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use keep_server::{Config, Keepstore, Server};
//! let dir = tempfile::tempdir()?;
//! let mut config = Config::embedded_default();
//! config.listen = "127.0.0.1:0".parse()?;
//! config.volumes = vec![keep_store::VolumeConfig::directory(dir.path())];
//! let node = Keepstore::open(config).await?;
//! let server = Server::start(node).await?;
//! println!("serving on {}", server.local_addr()?);
//! // Serve until the future resolves (here at once; a binary would pass
//! // `keep_http::signal::terminate()`), then drain and stop.
//! assert!(server.run(async {}).await);
//! # Ok(()) }
//! ```
//!
//! The crate is the HTTP layer over the storage core (`keep-store`): the
//! composition root [`Keepstore`] owns the parts (storage core, work
//! lists, background workers, cluster), the [`router`] picks a handler
//! and checks who may call it, and the [`handlers`] alone map storage
//! errors to statuses.

pub mod auth;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod handlers;
pub mod keepstore;
pub mod limits;
pub mod metrics;
pub mod router;
pub mod server;
pub mod status;
pub mod work;

pub use clock::unix_now;
pub use config::{Config, FileConfig};
pub use error::ApiError;
pub use keepstore::{Keepstore, StartError};
pub use server::Server;
