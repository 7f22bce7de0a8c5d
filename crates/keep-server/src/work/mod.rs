//! Work lists: `PUT /pull` and `PUT /trash` replace the node's pull and
//! trash lists, which pull workers and trash workers drain (Keep's
//! data-manager protocol; seeds `keep-pull-worker-story-3761` and
//! `keep-blockworklist-idea-3705`).
//!
//! A new list replaces the old one whole: entries nobody started are
//! dropped, entries in progress finish. A malformed list, an entry whose
//! locator has no size, a wrong type, or a list over `max_work_list_items`
//! answers 400 and leaves the current list untouched.

mod pull;
mod trash;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use keep_http::Body;
use keep_locator::{BlockHash, Locator};
use keep_workqueue::{QueueError, WorkQueue};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::node::Node;

/// One block to fetch from other servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullItem {
    /// The block.
    pub hash: BlockHash,
    /// Its size.
    pub size: u64,
    /// Servers to try, in order.
    pub servers: Vec<String>,
    /// The volume to write to; any when `None`.
    pub mount: Option<String>,
}

/// One block copy to trash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashItem {
    /// The block.
    pub hash: BlockHash,
    /// The mtime (unix ns) the copy must still have.
    pub mtime: i64,
    /// The volume; every volume when `None`.
    pub mount: Option<String>,
}

/// The node's two work lists.
#[derive(Debug)]
pub struct WorkLists {
    /// Blocks to pull.
    pub pull: WorkQueue<PullItem>,
    /// Copies to trash.
    pub trash: WorkQueue<TrashItem>,
}

impl WorkLists {
    /// Empty lists holding at most `max_items` entries each.
    pub fn new(max_items: usize) -> Self {
        WorkLists {
            pull: WorkQueue::with_limit(max_items),
            trash: WorkQueue::with_limit(max_items),
        }
    }

    /// Closes both lists: workers stop after their current entry.
    pub fn close(&self) {
        self.pull.close();
        self.trash.close();
    }
}

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
    node: &Arc<Node>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let entries: Vec<PullEntry> = parse_list(node, req).await?;
    let items = entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let (hash, size) =
                sized(&e.locator).map_err(|m| ApiError::bad_request(format!("entry {i}: {m}")))?;
            if e.servers.is_empty()
                || e.servers
                    .iter()
                    .any(|s| !s.starts_with("http://") && !s.starts_with("https://"))
            {
                return Err(ApiError::bad_request(format!(
                    "entry {i}: servers must be a non-empty list of http(s) URLs"
                )));
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
    node.work().pull.replace(items).map_err(queue_error)?;
    Ok(keep_http::body::text(
        StatusCode::OK,
        format!("Received {n} pull requests"),
    ))
}

/// `PUT /trash`.
pub async fn put_trash(
    node: &Arc<Node>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let entries: Vec<TrashEntry> = parse_list(node, req).await?;
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
    node.work().trash.replace(items).map_err(queue_error)?;
    Ok(keep_http::body::text(
        StatusCode::OK,
        format!("Received {n} trash requests"),
    ))
}

/// Reads a JSON list, bounded by the configured number of entries.
async fn parse_list<T: for<'de> Deserialize<'de>>(
    node: &Node,
    req: Request<Incoming>,
) -> Result<Vec<T>, ApiError> {
    let max = node.config().max_work_list_items;
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

/// Starts the pull workers, the trash workers and the empty-trash loop.
pub fn spawn_workers(node: &Arc<Node>, cancel: &CancellationToken) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for _ in 0..node.config().pull_workers {
        tasks.push(tokio::spawn(pull::worker(node.clone())));
    }
    for _ in 0..node.config().trash_workers {
        tasks.push(tokio::spawn(trash::worker(node.clone())));
    }
    tasks.push(tokio::spawn(trash::empty_trash_loop(
        node.clone(),
        cancel.clone(),
    )));
    tasks
}

/// Copies the lists' lengths into the metrics gauges.
pub fn refresh_gauges(node: &Node) {
    let m = node.metrics();
    let (p, t) = (node.work().pull.status(), node.work().trash.status());
    m.pull_queue.set(p.queued as i64);
    m.pull_in_progress.set(p.in_progress as i64);
    m.trash_queue.set(t.queued as i64);
    m.trash_in_progress.set(t.in_progress as i64);
}

/// Counts an outcome.
fn count(
    family: &prometheus_client::metrics::family::Family<
        crate::metrics::OutcomeLabels,
        prometheus_client::metrics::counter::Counter,
    >,
    outcome: &str,
) {
    family
        .get_or_create(&crate::metrics::OutcomeLabels {
            outcome: outcome.to_owned(),
        })
        .inc();
}
