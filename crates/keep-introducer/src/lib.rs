//! Service discovery for Keep nodes, after Tahoe-LAFS's introducer.
//!
//! Storage nodes *publish* the services they offer ([`UPLOAD_STORAGE`]:
//! accepts new blocks; [`DOWNLOAD_STORAGE`]: serves blocks). A read-only or
//! decommissioning node publishes download only, and *withdraws* what it
//! published before and no longer offers; a client-only process publishes
//! nothing and only *subscribes*. The introducer keeps the current
//! announcements and hands them to subscribers; nodes run an
//! [`client::IntroducerClient`] that talks to several introducers at once,
//! so none of them is a single point of failure.
//!
//! An introducer in this process, a node publishing itself to it, and
//! another node that subscribes and learns of the first:
//!
//! ```
//! use std::time::Duration;
//!
//! use keep_introducer::client::{ClientConfig, IntroducerClient, NodeInfo};
//! use keep_introducer::server::{self, ServerConfig};
//! use keep_introducer::{ClusterKey, DOWNLOAD_STORAGE, UPLOAD_STORAGE};
//! use keep_worker::Workers;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let key = ClusterKey::new("cluster key")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}", listener.local_addr()?);
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let introducer = tokio::spawn(server::run(
//!     ServerConfig::new(dir.path().join("introducer"), key.clone()),
//!     listener,
//!     async {
//!         let _ = stopped.await;
//!     },
//! ));
//!
//! let workers = Workers::new();
//! let config = |name: &str| {
//!     ClientConfig::new(vec![url.clone()], key.clone(), dir.path().join(name))
//! };
//! let node = IntroducerClient::start(config("node1"), &workers).await?;
//! let info = NodeInfo::new("zzzzz-bi6l4-000000000000001", "http://127.0.0.1:25107");
//! node.publish(&info, &[UPLOAD_STORAGE, DOWNLOAD_STORAGE]).await?;
//!
//! let reader = IntroducerClient::start(config("node2"), &workers).await?;
//! let mut peers = reader.subscribe_to(DOWNLOAD_STORAGE);
//! let seen = peers.wait_for(|p| !p.is_empty());
//! tokio::time::timeout(Duration::from_secs(20), seen).await??;
//! assert_eq!(reader.get_peers(DOWNLOAD_STORAGE)[0].url, "http://127.0.0.1:25107");
//!
//! workers.shutdown(Duration::from_secs(5)).await; // both clients' workers
//! stop.send(()).ok();
//! introducer.await??;
//! # Ok(())
//! # }
//! ```
//!
//! The modules:
//!
//! - [`announcement`]: the announcement and the withdrawal, their signing
//!   bytes and HMAC.
//! - [`store`]: the introducer's persistent table.
//! - [`server`]: the introducer service; [`server::run`] serves it.
//! - [`client`]: publish, subscribe, and peers in rendezvous order.
//! - [`wire`]: routes, headers and shapes both sides share.
//!
//! # Wire protocol
//!
//! Plain HTTP/1.1 with JSON bodies.
//!
//! ## Announcements
//!
//! An announcement is one JSON object per (service, node):
//!
//! ```json
//! {"service": "upload_storage", "uuid": "zzzzz-bi6l4-000000000000001",
//!  "url": "http://10.0.0.5:25107", "nickname": "node1", "version": "0.1.0",
//!  "seqnum": 1718000000, "nonce": "5f0c...32 hex", "signature": "64 hex"}
//! ```
//!
//! `service`, `uuid` and `nonce` are 1 to 64 of `[A-Za-z0-9_.-]`; `url`
//! starts with `http://` or `https://` (a new announcement with an
//! `https://` url is refused until nodes speak TLS); `url`, `nickname` and
//! `version` are
//! at most 1024 bytes without control characters. Unknown fields are
//! ignored and not forwarded.
//!
//! A *withdrawal* is the same object with `"withdrawn": true`: the node
//! `uuid` no longer offers `service`. It has every field an announcement
//! has (the publisher fills `url`, `nickname` and `version` as for its
//! announcements) and is signed, keyed and ordered by seqnum the same way.
//! `withdrawn` is absent (or `false`) in a live announcement, which is thus
//! exactly what it was before withdrawals existed.
//!
//! `signature` is the lowercase hex HMAC-SHA256, keyed by the cluster key,
//! of these bytes (each `LEN` the value's length in bytes, decimal; the
//! seqnum in decimal). A live announcement is signed over the v1 bytes:
//!
//! ```text
//! keep-introducer-announcement-v1\n
//! service:LEN:VALUE\n
//! uuid:LEN:VALUE\n
//! url:LEN:VALUE\n
//! nickname:LEN:VALUE\n
//! version:LEN:VALUE\n
//! seqnum:LEN:VALUE\n
//! nonce:LEN:VALUE\n
//! ```
//!
//! A withdrawal is signed over the v2 bytes: the domain line
//! `keep-introducer-announcement-v2`, the same seven lines, then
//! `withdrawn:4:true\n`. The flag is thus signed: an announcement's
//! signature never verifies as a withdrawal's, nor the other way round.
//! v1 announcements, stored or cached, keep verifying; an introducer or
//! client from before withdrawals refuses a withdrawal as badly signed
//! (`403`), never takes it for an announcement, so upgrade introducers
//! before the nodes.
//!
//! A publisher signs every publication with one fresh seqnum, above every
//! seqnum it used before (it keeps the last one in a file, and never goes
//! below the current unix time in seconds), and a fresh random nonce per
//! announcement. A publication that lacks a (service, uuid) an earlier one
//! had, in this process or before a restart (the client keeps what it last
//! published in a file too), carries a withdrawal of it with the same
//! seqnum; the withdrawal goes with every later publication until the
//! service is published again, so an introducer that was away learns it.
//!
//! ## Routes
//!
//! - `POST /v1/announce` (or `PUT`), body: one signed announcement or
//!   withdrawal, at most 64 KiB. The reply is
//!   `{"outcome": ..., "stored_seqnum"?, "error"?}`:
//!   - `200 accepted`: new, or a higher seqnum that replaced the stored
//!     entry (a withdrawal of an unknown (service, uuid) is accepted too);
//!   - `200 duplicate`: exactly the stored entry; ignored;
//!   - `409 replay`: seqnum not above the stored one (announcement or
//!     tombstone); `stored_seqnum` says which the introducer keeps;
//!   - `403 bad_signature`: unsigned, or not signed with the cluster key;
//!   - `400 invalid` (a field's shape), `400 malformed` (not JSON) or
//!     `413 malformed` (body over 64 KiB);
//!   - `500 error`: the table could not be saved; try again.
//! - `GET /v1/announcements?service=NAME` answers a JSON array of the
//!   service's current signed announcements, ordered by uuid; withdrawn
//!   ones are not listed. `service` may repeat; without it every service
//!   is listed. With `withdrawn=true` the array also holds the tombstones
//!   (the signed withdrawals, `"withdrawn": true`) in the same order, so
//!   a client merging several introducers can honour a withdrawal that
//!   reached only some of them. The header `X-Introducer-Version` holds
//!   the table's version token for the services asked about (`EPOCH-N`,
//!   opaque to clients); an accepted withdrawal changes it like an
//!   accepted announcement.
//! - Long-poll subscription: the same route with `since=TOKEN&wait=SECS`
//!   answers as soon as the version token differs from `TOKEN`, or after
//!   `SECS` seconds (at most the server's `max_wait`, 60 s by default),
//!   whichever comes first, or at once when the server shuts down. The
//!   answer is always the whole current table of those services, so a
//!   subscriber that reconnects, or that finds a new epoch (a replacement
//!   introducer), simply reads the whole table again.
//! - `GET /metrics`: Prometheus text,
//!   `introducer_announcements_received_total{outcome}` and
//!   `introducer_withdrawals_received_total{outcome}` (announce requests
//!   whose body is an announcement, or says `"withdrawn": true`; bodies
//!   that are not JSON count as announcements),
//!   `introducer_announcements{service}` (live ones),
//!   `introducer_tombstones{service}`, `introducer_subscribers` (long-polls
//!   waiting now), `introducer_subscribe_requests_total`.
//! - `GET /_health/ping`: `{"health":"OK"}`.
//!
//! ## Table rules
//!
//! Announcements and withdrawals are keyed by (service, uuid) on both
//! sides. The introducer ignores an exact duplicate, refuses a replay and
//! replaces on a higher seqnum; an accepted withdrawal stays as a
//! tombstone, which hides the entry from listings and refuses replays of
//! what it withdrew, until a later announcement with a higher seqnum
//! replaces it. It never drops an entry, and keeps the table, tombstones
//! included, in `STATE_DIR/announcements.json` across restarts. Clients
//! merge what every introducer says, plus their cache (which keeps
//! tombstones too), by the same key, the highest seqnum winning (at equal
//! seqnums a withdrawal wins), verify every signature themselves, and list
//! as peers only the keys whose winner is an announcement.

pub mod announcement;
pub mod client;
use keep_crashsafe as crashsafe;
mod key;
pub mod server;
pub mod store;
pub mod wire;

pub use announcement::{
    Announcement, AnnouncementError, DOWNLOAD_STORAGE, SignedAnnouncement, UPLOAD_STORAGE,
    new_nonce,
};
pub use key::{ClusterKey, KeyError};
