//! `GET` and `HEAD /{locator}`: find the block on a volume (or, failing
//! that, on a peer) and stream it, verified by the storage core
//! ([`keep_store::Store::verify`]): a corrupt copy is never delivered as a
//! success; one found corrupt while it streams cuts the connection before
//! the body completes (the client sees a short read).

use futures::StreamExt;
use http::request::Parts;
use http::{Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use keep_http::Body;
use keep_locator::{BlockHash, Locator};
use keep_remote::{LOCAL_ONLY_HEADER, protocol};
use keep_store::{Found, VerifiedBlock, VerifiedBody};

use crate::cluster::forward;
use crate::error::ApiError;
use crate::keepstore::Keepstore;
use crate::metrics::Metrics;
use crate::{auth, handlers::parse_locator};

/// Answers `GET` (or `HEAD` when `head`) for the locator in the path.
pub async fn get_block(
    node: &Keepstore,
    parts: &Parts,
    head: bool,
) -> Result<Response<Body>, ApiError> {
    let loc = parse_locator(parts.uri.path())?;
    if loc.size.is_none() && loc.hash != BlockHash::EMPTY {
        return Err(ApiError::method_not_allowed());
    }
    let local_only = protocol::flag(&parts.headers, LOCAL_ONLY_HEADER);
    let from_peer = node.cluster().is_some_and(|c| c.is_peer(&parts.headers));
    if !from_peer {
        check_permission(node, &loc, parts)?;
    }
    let store = node.store();
    let mut lookup = store.lookup(loc.hash, head);
    if let Some(found) = lookup.healthy().await? {
        return Ok(answer(found, node.metrics()));
    }
    if loc.hash == BlockHash::EMPTY {
        // The empty block needs no storage to exist.
        return Ok(block_response(0, keep_http::body::empty()));
    }
    // A volume that just failed is asked last, after the peers: a block
    // held elsewhere does not wait for its timeouts and retries.
    if !local_only && let Some(cluster) = node.cluster() {
        let size = loc.size.unwrap_or(0);
        if let Some(found) = forward::read(store, cluster.pool(), loc.hash, size, head).await? {
            return Ok(answer(found, node.metrics()));
        }
    }
    if let Some(found) = lookup.suspect().await? {
        return Ok(answer(found, node.metrics()));
    }
    Err(lookup.verdict().into())
}

/// With signing on, a GET needs a token and a valid signature for it.
fn check_permission(node: &Keepstore, loc: &Locator, parts: &Parts) -> Result<(), ApiError> {
    let Some(key) = &node.config().signing_key else {
        return Ok(());
    };
    let token = auth::token(&parts.headers, &parts.uri)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "token required"))?;
    key.verify(
        loc,
        &token,
        node.config().signing_ttl,
        crate::clock::unix_now(),
    )?;
    Ok(())
}

/// The answer for what a read found.
fn answer(found: Found, metrics: &Metrics) -> Response<Body> {
    match found {
        Found::Exists(size) => block_response(size, keep_http::body::empty()),
        Found::Block(block) => block_body(block, metrics),
    }
}

/// A verified block as a response body, its bytes counted as they go.
fn block_body(block: VerifiedBlock, metrics: &Metrics) -> Response<Body> {
    let size = block.size;
    match block.body {
        VerifiedBody::Whole(data) => {
            metrics.bytes_out.inc_by(data.len() as u64);
            block_response(size, keep_http::body::full(data))
        }
        VerifiedBody::Stream(chunks) => {
            let counter = metrics.bytes_out.clone();
            let frames = chunks.map(move |chunk| match chunk {
                Ok(data) => {
                    counter.inc_by(data.len() as u64);
                    Ok(Frame::data(data))
                }
                Err(e) => Err(keep_http::BoxError::from(e)),
            });
            block_response(size, StreamBody::new(frames).boxed_unsync())
        }
    }
}

/// A `200` answer for a block of `size` bytes.
pub fn block_response(size: u64, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, size.into());
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    resp
}
