//! The client side of node-to-node traffic.
//!
//! A storage node talks to its peers to replicate a new block to them, to
//! read a block it does not hold, to check for or delete a copy, and to
//! check that they are alive. Every such request is authenticated with the
//! [`NodeCredential`] derived from the cluster key, and block requests
//! carry `X-Keep-Local-Only: true` so the receiver never forwards them
//! again. [`protocol`] names the routes, headers and bodies, for the server
//! side too.
//!
//! - [`Remote`]: one peer and its requests.
//! - [`Pool`]: the peers learned from the introducer, their up/down state
//!   kept by heartbeats, and which of them get a new block
//!   ([`Pool::assign_remotes`]) or are asked for a missing one
//!   ([`Pool::read_order`]).
//!
//! This mirrors Blobby's remote pool (`httpserver/remotes`): replicas are
//! pushed by the node that received the block, a peer that answers
//! `X-Keep-Draining: true` (Blobby's `Shutting-Down`) gets no new blocks,
//! and forwarded reads are never forwarded again. Unlike Blobby, a block's
//! peers can follow the Arvados rendezvous order ([`Strategy::Permuted`])
//! instead of plain round robin, so clients find copies where they look first.
//!
//! ```no_run
//! use keep_remote::{HeartbeatConfig, NodeCredential, Pool, RemoteConfig, Strategy};
//! use keep_locator::BlockHash;
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn example(introducer: keep_introducer::client::IntroducerClient) {
//! let pool = Pool::new(
//!     "zzzzz-bi6l4-000000000000001".into(),
//!     NodeCredential::from_cluster_key(b"cluster key"),
//!     RemoteConfig::default(),
//!     HeartbeatConfig::default(),
//! );
//! let cancel = CancellationToken::new();
//! pool.follow(
//!     introducer.subscribe_to(keep_introducer::DOWNLOAD_STORAGE),
//!     introducer.subscribe_to(keep_introducer::UPLOAD_STORAGE),
//!     cancel.clone(),
//! );
//! pool.run_heartbeats(cancel.clone());
//! let hash = BlockHash::of(b"foo");
//! for remote in pool.assign_remotes(1, Strategy::Permuted(hash)) {
//!     let body = Box::pin(futures::stream::iter([Ok(bytes::Bytes::from_static(b"foo"))]));
//!     if let Err(e) = remote.replicate(&hash, 3, body).await {
//!         pool.report_failure(&remote.uuid, &e);
//!     }
//! }
//! # }
//! ```

#![warn(missing_docs)]

mod body;
mod credential;
mod error;
mod follow;
mod heartbeat;
mod pool;
pub mod protocol;
mod remote;

pub use credential::{CREDENTIAL_CONTEXT, CREDENTIAL_PREFIX, NodeCredential, node_credential};
pub use error::RemoteError;
pub use heartbeat::{HeartbeatConfig, PeerHealth};
pub use pool::{PeerInfo, Pool, Strategy};
pub use protocol::{
    DRAINING_HEADER, DeleteReply, LOCAL_ONLY_HEADER, NODE_ROUTE, NodeStatus, PROTOCOL_VERSION,
};
pub use remote::{Remote, RemoteBlock, RemoteConfig, Replicated};
