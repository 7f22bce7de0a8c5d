//! The keepstore service as a library.
//!
//! A node speaks the Arvados keepstore HTTP API (3.x behaviour) over one or
//! more [volumes](keep_volume::Volume): `PUT /{md5}` streams a block in,
//! hashing it as it arrives; `GET /{locator}` streams it out, verified;
//! permission signatures, admin routes, index, mounts and metrics as
//! Arvados has them. Another tokio program embeds a node like this (see
//! `examples/embed.rs`):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use keep_server::{Config, Node, Server};
//! let mut config = Config::embedded_default();
//! config.listen = "127.0.0.1:0".parse()?;
//! let node = Node::open(config).await?;
//! let server = Server::bind(node).await?;
//! println!("serving on {}", server.local_addr()?);
//! server.run(keep_http::signal::terminate()).await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod budget;
pub mod cluster;
pub mod config;
pub mod error;
pub mod handlers;
pub mod metrics;
pub mod node;
pub mod router;
pub mod server;
pub mod store;
pub mod work;

pub use config::{Config, FileConfig};
pub use error::ApiError;
pub use node::{Node, StartError};
pub use server::Server;

/// Now, in whole unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
