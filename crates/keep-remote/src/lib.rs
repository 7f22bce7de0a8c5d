//! The client side of node-to-node traffic.
//!
//! A storage node talks to its peers to replicate a new block to them, to
//! read a block it does not hold, to check for a copy, and to check that
//! they are alive. Every such request is authenticated with the
//! [`NodeCredential`] derived from the cluster key, and block requests
//! carry `X-Keep-Local-Only: true` so the receiver never forwards them
//! again. [`protocol`] names the routes, headers and bodies, for the server
//! side too.
//!
//! A pool of three peers, two of them taking uploads: where a block's
//! copies go, and whom to ask for it:
//!
//! ```
//! use std::collections::HashSet;
//!
//! use keep_locator::{BlockHash, permuted_order};
//! use keep_remote::{HeartbeatConfig, NodeCredential, PeerInfo, Pool, RemoteConfig};
//!
//! let pool = Pool::new(
//!     "zzzzz-bi6l4-000000000000000".into(), // this node
//!     NodeCredential::from_cluster_key(b"cluster key"),
//!     RemoteConfig::default(),
//!     HeartbeatConfig::default(),
//! );
//! let uuids: Vec<String> = (1..=3).map(|i| format!("zzzzz-bi6l4-{i:015}")).collect();
//! let peers = uuids.iter().enumerate().map(|(i, uuid)| PeerInfo {
//!     uuid: uuid.clone(),
//!     url: format!("http://127.0.0.1:{}", 25101 + i),
//!     nickname: String::new(),
//! });
//! let writable: HashSet<String> = uuids[..2].iter().cloned().collect();
//! pool.update(peers.collect(), writable.clone());
//!
//! // Reads ask every peer that is up, in the block's rendezvous order...
//! let hash = BlockHash::of(b"foo");
//! let read: Vec<String> = pool.read_order(&hash).iter().map(|r| r.uuid.clone()).collect();
//! let rendezvous: Vec<String> =
//!     permuted_order(&hash, &uuids).into_iter().map(|i| uuids[i].clone()).collect();
//! assert_eq!(read, rendezvous);
//!
//! // ...and new copies go to the first writable peers in that order.
//! let assigned: Vec<String> =
//!     pool.assign_remotes(2, &hash).iter().map(|r| r.uuid.clone()).collect();
//! let first_writable: Vec<String> =
//!     read.into_iter().filter(|u| writable.contains(u)).collect();
//! assert_eq!(assigned, first_writable);
//! ```
//!
//! - [`Remote`]: one peer and its requests, including any route of the
//!   caller's own ([`Remote::call`]).
//! - [`Pool`]: the peers learned from the introducer, their up/down state
//!   kept by heartbeats, and which of them get a new block
//!   ([`Pool::assign_remotes`]) or are asked for a missing one
//!   ([`Pool::read_order`]). Its two background loops are
//!   [`keep_worker::Worker`]s for the node's registry:
//!   [`Pool::heartbeat_worker`] and [`Pool::follow_worker`].
//! - [`Fetcher`]: fetches a block by its signed locator from any block
//!   server, a peer or an Arvados keepstore, as pull workers do; without
//!   the node credential.
//! - [`check_url`]: whether a base url is one this node can reach.
//!
//! This mirrors Blobby's remote pool (`httpserver/remotes`): replicas are
//! pushed by the node that received the block, a peer that answers
//! `X-Keep-Draining: true` (Blobby's `Shutting-Down`) gets no new blocks,
//! and forwarded reads are never forwarded again. Unlike Blobby, a block's
//! peers follow the Arvados rendezvous order instead of round robin, so
//! clients find copies where they look first.
//!
//! In a node, the pool follows the introducer and heartbeats its peers
//! on the node's worker registry, and a new block is pushed to the peers
//! it is assigned:
//!
//! ```no_run
//! use keep_remote::{HeartbeatConfig, NodeCredential, Pool, RemoteConfig};
//! use keep_locator::BlockHash;
//! use keep_worker::Workers;
//!
//! # async fn example(introducer: keep_introducer::client::IntroducerClient, workers: Workers) {
//! let pool = Pool::new(
//!     "zzzzz-bi6l4-000000000000001".into(),
//!     NodeCredential::from_cluster_key(b"cluster key"),
//!     RemoteConfig::default(),
//!     HeartbeatConfig::default(),
//! );
//! workers.spawn(pool.follow_worker(
//!     introducer.subscribe_to(keep_introducer::DOWNLOAD_STORAGE),
//!     introducer.subscribe_to(keep_introducer::UPLOAD_STORAGE),
//! ));
//! workers.spawn(pool.heartbeat_worker());
//! let hash = BlockHash::of(b"foo");
//! for remote in pool.assign_remotes(1, &hash) {
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
mod fetch;
mod follow;
mod heartbeat;
mod pool;
pub mod protocol;
mod remote;
mod url;

pub use credential::{CREDENTIAL_CONTEXT, CREDENTIAL_PREFIX, NodeCredential, node_credential};
pub use error::RemoteError;
pub use fetch::Fetcher;
pub use follow::FollowWorker;
pub use heartbeat::{HeartbeatConfig, HeartbeatWorker, PeerHealth};
pub use pool::{PeerInfo, PeerView, Pool};
pub use protocol::{DRAINING_HEADER, LOCAL_ONLY_HEADER, NODE_ROUTE, NodeStatus, PROTOCOL_VERSION};
pub use remote::{PeerCounts, Remote, RemoteBlock, RemoteConfig, Replicated, RequestOptions};
pub use url::check_url;
