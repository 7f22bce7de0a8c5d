//! Service discovery for Keep nodes, after Tahoe-LAFS's introducer.
//!
//! Storage nodes *publish* the services they offer ([`UPLOAD_STORAGE`]:
//! accepts new blocks; [`DOWNLOAD_STORAGE`]: serves blocks). A read-only or
//! decommissioning node publishes download only; a client-only process
//! publishes nothing and only *subscribes*. The introducer keeps the
//! current announcements and hands them to subscribers; nodes run an
//! [`client::IntroducerClient`] that talks to several introducers at once,
//! so none of them is a single point of failure.
//!
//! - [`announcement`]: the announcement, its signing bytes and HMAC.
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
//! starts with `http://` or `https://`; `url`, `nickname` and `version` are
//! at most 1024 bytes without control characters. Unknown fields are
//! ignored and not forwarded.
//!
//! `signature` is the lowercase hex HMAC-SHA256, keyed by the cluster key,
//! of these bytes (each `LEN` the value's length in bytes, decimal; the
//! seqnum in decimal):
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
//! A publisher signs every publication with one fresh seqnum, above every
//! seqnum it used before (it keeps the last one in a file, and never goes
//! below the current unix time in seconds), and a fresh random nonce per
//! announcement.
//!
//! ## Routes
//!
//! - `POST /v1/announce` (or `PUT`), body: one signed announcement, at most
//!   64 KiB. The reply is `{"outcome": ..., "stored_seqnum"?, "error"?}`:
//!   - `200 accepted`: new, or a higher seqnum that replaced the stored one;
//!   - `200 duplicate`: exactly the stored announcement; ignored;
//!   - `409 replay`: seqnum not above the stored one; `stored_seqnum` says
//!     which the introducer keeps;
//!   - `403 bad_signature`: unsigned, or not signed with the cluster key;
//!   - `400 invalid` (a field's shape), `400 malformed` (not JSON) or
//!     `413 malformed` (body over 64 KiB);
//!   - `500 error`: the table could not be saved; try again.
//! - `GET /v1/announcements?service=NAME` answers a JSON array of the
//!   service's current signed announcements, ordered by uuid. `service` may
//!   repeat; without it every service is listed. The header
//!   `X-Introducer-Version` holds the table's version token for the
//!   services asked about (`EPOCH-N`, opaque to clients).
//! - Long-poll subscription: the same route with `since=TOKEN&wait=SECS`
//!   answers as soon as the version token differs from `TOKEN`, or after
//!   `SECS` seconds (at most the server's `max_wait`, 60 s by default),
//!   whichever comes first, or at once when the server shuts down. The
//!   answer is always the whole current table of those services, so a
//!   subscriber that reconnects, or that finds a new epoch (a replacement
//!   introducer), simply reads the whole table again.
//! - `GET /metrics`: Prometheus text, `introducer_announcements_received_total{outcome}`,
//!   `introducer_announcements{service}`, `introducer_subscribers`
//!   (long-polls waiting now), `introducer_subscribe_requests_total`.
//! - `GET /_health/ping`: `{"health":"OK"}`.
//!
//! ## Table rules
//!
//! Announcements are keyed by (service, uuid) on both sides. The
//! introducer ignores an exact duplicate, refuses a replay and replaces on
//! a higher seqnum; it never drops an announcement, and keeps the table in
//! `STATE_DIR/announcements.json` across restarts. Clients merge what every
//! introducer says, plus their cache, by the same key, the highest seqnum
//! winning, and verify every signature themselves.

pub mod announcement;
pub mod client;
mod crashsafe;
mod key;
pub mod server;
pub mod store;
pub mod wire;

pub use announcement::{
    Announcement, AnnouncementError, DOWNLOAD_STORAGE, SignedAnnouncement, UPLOAD_STORAGE,
    new_nonce,
};
pub use key::{ClusterKey, KeyError};
