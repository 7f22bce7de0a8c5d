//! The node's own routes: `GET /_keep/node` (identity and state, for
//! peers) and `GET /_keep/workers` (the background workers, for admins).

use http::{Response, StatusCode};
use keep_http::Body;

use crate::keepstore::Keepstore;

/// `GET /_keep/node`: identity, protocol and state, for peers.
pub fn status(node: &Keepstore) -> Response<Body> {
    let status = keep_remote::NodeStatus {
        uuid: node.uuid().to_owned(),
        protocol: keep_remote::PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        draining: node.is_draining(),
        read_only: node.read_only(),
    };
    keep_http::body::json(
        StatusCode::OK,
        serde_json::to_vec(&status).unwrap_or_default(),
    )
}

/// `GET /_keep/workers`: every background worker as a JSON array of
/// objects (`name`, `state`, `iterations`, `errors`,
/// `consecutive_errors`, `last_error`, `last_error_at` in unix seconds,
/// `tranquility`, and what the worker tells of itself: `progress`,
/// `queue_length`, `details`).
pub fn workers(node: &Keepstore) -> Response<Body> {
    let list = node.workers().list();
    keep_http::body::json(
        StatusCode::OK,
        serde_json::to_vec(&list).unwrap_or_default(),
    )
}
