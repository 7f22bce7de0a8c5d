//! `PUT /pull` and `PUT /trash`: a new work list replaces the node's pull
//! or trash list whole (see [`crate::work`]).
//!
//! A malformed list, an entry whose locator has no size, a wrong type, a
//! pull server the node cannot reach (`https://` until TLS lands), or a
//! list over `max_work_list_items` answers 400 and leaves the current list
//! untouched.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use keep_http::Body;
use keep_locator::{BlockHash, Locator};
use keep_workqueue::QueueError;
use serde::Deserialize;

use crate::error::ApiError;
use crate::work::{PullItem, TrashItem, WorkLists};

#[derive(Debug, Deserialize)]
struct PullEntry {
    locator: String,
    servers: Vec<String>,
    #[serde(default)]
    mount_uuid: String,
}

#[derive(Debug, Deserialize)]
struct TrashEntry {
    locator: String,
    block_mtime: i64,
    #[serde(default)]
    mount_uuid: String,
}

/// `PUT /pull`.
pub async fn put_pull(
    lists: &WorkLists,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let entries: Vec<PullEntry> = parse_list(lists, req).await?;
    let items = entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let (hash, size) =
                sized(&e.locator).map_err(|m| ApiError::bad_request(format!("entry {i}: {m}")))?;
            if e.servers.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "entry {i}: servers must be a non-empty list of http URLs"
                )));
            }
            for server in &e.servers {
                keep_remote::check_url(server)
                    .map_err(|m| ApiError::bad_request(format!("entry {i}: {m}")))?;
            }
            Ok(PullItem {
                hash,
                size,
                servers: e.servers,
                mount: mount(e.mount_uuid),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = items.len();
    lists.pull.replace(items).map_err(queue_error)?;
    Ok(keep_http::body::text(
        StatusCode::OK,
        format!("Received {n} pull requests"),
    ))
}

/// `PUT /trash`.
pub async fn put_trash(
    lists: &WorkLists,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let entries: Vec<TrashEntry> = parse_list(lists, req).await?;
    let items = entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let (hash, _) =
                sized(&e.locator).map_err(|m| ApiError::bad_request(format!("entry {i}: {m}")))?;
            Ok(TrashItem {
                hash,
                mtime: e.block_mtime,
                mount: mount(e.mount_uuid),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let n = items.len();
    lists.trash.replace(items).map_err(queue_error)?;
    Ok(keep_http::body::text(
        StatusCode::OK,
        format!("Received {n} trash requests"),
    ))
}

/// Reads a JSON list, bounded by the configured number of entries.
async fn parse_list<T: for<'de> Deserialize<'de>>(
    lists: &WorkLists,
    req: Request<Incoming>,
) -> Result<Vec<T>, ApiError> {
    let max = lists.max_items();
    let limit = max.saturating_mul(1024).saturating_add(4096);
    let body: Bytes = http_body_util::Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("list body too large or unreadable: {e}")))?
        .to_bytes();
    let list: Vec<T> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed list: {e}")))?;
    if list.len() > max {
        return Err(ApiError::bad_request(format!(
            "list has {} entries; the limit is {max}",
            list.len()
        )));
    }
    Ok(list)
}

/// A locator that must carry a size.
fn sized(text: &str) -> Result<(BlockHash, u64), String> {
    let loc: Locator = text
        .parse()
        .map_err(|e| format!("bad locator {text:?}: {e}"))?;
    let size = loc
        .size
        .ok_or_else(|| format!("locator {text:?} has no size"))?;
    Ok((loc.hash, size))
}

fn mount(uuid: String) -> Option<String> {
    (!uuid.is_empty()).then_some(uuid)
}

fn queue_error(e: QueueError) -> ApiError {
    match e {
        QueueError::TooLong { len, max } => {
            ApiError::bad_request(format!("list has {len} entries; the limit is {max}"))
        }
        QueueError::Closed => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    }
}
