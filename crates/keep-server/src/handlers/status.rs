//! `GET /` from a browser: the status page; `GET /_status.json`: the same
//! data for scripts. Both open to anyone (they show no secret), both off
//! with `status_pages = false`.

use http::{HeaderMap, Response, StatusCode};
use keep_http::Body;

use crate::error::ApiError;
use crate::keepstore::Keepstore;
use crate::status;

/// `GET /`: the page for a browser; any other request answers as before
/// there was a page (400, no such route).
pub async fn root(node: &Keepstore, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    if !node.config().status_pages || !keep_status::wants_html(headers) {
        return Err(ApiError::bad_request("unknown route /"));
    }
    let report = status::collect(node).await;
    Ok(keep_status::html_response(&status::page::render(&report)))
}

/// `GET /_status.json`.
pub async fn json(node: &Keepstore) -> Result<Response<Body>, ApiError> {
    if !node.config().status_pages {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "status pages are off"));
    }
    let report = status::collect(node).await;
    Ok(keep_status::json_response(&report))
}
