//! `PUT /{md5}`: receive a block, streamed and hashed as it arrives, and
//! store it on one volume.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use http::{HeaderMap, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use keep_http::Body;
use keep_locator::{Locator, MAX_BLOCK_SIZE};
use keep_remote::{LOCAL_ONLY_HEADER, protocol};
use keep_store::Placement;
use keep_volume::{BlockBody, BodyError, ChunkStream};

use crate::auth;
use crate::clock::unix_now;
use crate::cluster::replicate;
use crate::error::ApiError;
use crate::handlers::parse_locator;
use crate::keepstore::Keepstore;
use crate::metrics::Metrics;

/// Answers `PUT /{md5}`.
pub async fn put_block(
    node: &Keepstore,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (parts, incoming) = req.into_parts();
    let hash = parse_locator(parts.uri.path())?.hash;
    // Every header is checked before a byte is stored: a refused request
    // leaves no trace.
    let declared = content_length(&parts.headers)?;
    let classes = storage_classes(&parts.headers)?;
    let desired = desired_replicas(&parts.headers)?;
    if declared.is_some_and(|n| n > MAX_BLOCK_SIZE) {
        return Err(BodyError::TooLarge.into());
    }
    let store = node.store();
    let _reservation = store
        .budget()
        .reserve(declared.unwrap_or(MAX_BLOCK_SIZE))
        .await?;
    let received = Arc::new(AtomicU64::new(0));
    let stream = incoming_stream(incoming, node.metrics().clone(), received.clone());
    let stream = idle_limited(stream, node.config().request_body_idle_timeout);
    let body = BlockBody::new(hash, declared, stream);

    let place = Placement {
        mount: None,
        classes: &classes,
    };
    let stored_on = store.store(hash, body, place).await?;
    let size = received.load(Ordering::Relaxed);
    let mut replicas = stored_on.params().replication as usize;
    let local_only = protocol::flag(&parts.headers, LOCAL_ONLY_HEADER);
    if !local_only && let Some(cluster) = node.cluster() {
        let desired = allowed_replicas(node, &parts, desired);
        if desired > replicas {
            let need = desired - replicas;
            replicas +=
                replicate::fan_out(store, cluster.pool(), &stored_on, hash, size, need).await;
        }
    }

    let mut locator = Locator::new(hash, size);
    if let (Some(key), Some(token)) = (
        &node.config().signing_key,
        auth::token(&parts.headers, &parts.uri),
    ) {
        let ttl = node.config().signing_ttl;
        locator = key.sign(&locator, &token, unix_now() + ttl.as_secs(), ttl);
    }
    let params = stored_on.params();
    let confirmed: Vec<String> = params
        .storage_classes
        .keys()
        .map(|class| format!("{class}={replicas}"))
        .collect();
    let mut resp = keep_http::body::text(StatusCode::OK, locator);
    let h = resp.headers_mut();
    h.insert("x-keep-replicas-stored", replicas.into());
    if let Ok(v) = confirmed.join(", ").parse() {
        h.insert("x-keep-storage-classes-confirmed", v);
    }
    Ok(resp)
}

/// The most copies any PUT may ask for.
const MAX_REPLICAS: usize = 64;

/// How many copies this PUT gets: what it asked for (else the cluster's
/// replication), at most [`MAX_REPLICAS`] for the admin and for peers, and
/// at most `max_anonymous_replicas` for anyone else: a PUT needs no token,
/// so a client must not make the cluster fan out at will.
fn allowed_replicas(node: &Keepstore, parts: &http::request::Parts, asked: Option<usize>) -> usize {
    let config = node.config();
    let wanted = asked.unwrap_or(config.replication as usize);
    let trusted = auth::require_admin(
        config.system_root_token.as_ref(),
        &parts.headers,
        &parts.uri,
    )
    .is_ok()
        || node.cluster().is_some_and(|c| c.is_peer(&parts.headers));
    let limit = if trusted {
        MAX_REPLICAS
    } else {
        config.max_anonymous_replicas as usize
    };
    wanted.min(limit)
}

/// `X-Keep-Desired-Replicas`: absent is fine, malformed is 400 (also on a
/// node outside a cluster, where it changes nothing).
fn desired_replicas(headers: &HeaderMap) -> Result<Option<usize>, ApiError> {
    match headers.get("x-keep-desired-replicas") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|n| *n >= 1)
            .map(|n| Some(n.min(MAX_REPLICAS)))
            .ok_or_else(|| ApiError::bad_request("malformed X-Keep-Desired-Replicas")),
    }
}

/// `X-Keep-Storage-Classes`: the classes a client wants its block in,
/// comma-separated (blank entries ignored, as Arvados does); a value that
/// is not visible ASCII is 400.
fn storage_classes(headers: &HeaderMap) -> Result<Vec<String>, ApiError> {
    let mut classes = Vec::new();
    for v in headers.get_all("x-keep-storage-classes") {
        let text = v
            .to_str()
            .map_err(|_| ApiError::bad_request("malformed X-Keep-Storage-Classes"))?;
        classes.extend(
            text.split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
        );
    }
    Ok(classes)
}

/// The declared body length: absent is fine (chunked), malformed is 400.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("malformed Content-Length")),
    }
}

/// `stream`, failing with [`BodyError::Stalled`] when it yields nothing
/// for `idle`: the store then drops the partial block, and the handler
/// returns, giving the buffer reservation back.
fn idle_limited(stream: ChunkStream, idle: std::time::Duration) -> ChunkStream {
    futures::stream::unfold(Some(stream), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((Err(BodyError::Stalled(idle)), None)),
        }
    })
    .boxed()
}

/// The request body as a chunk stream, counted as it arrives.
fn incoming_stream(body: Incoming, metrics: Arc<Metrics>, received: Arc<AtomicU64>) -> ChunkStream {
    http_body_util::BodyStream::new(body)
        .filter_map(move |frame| {
            let metrics = metrics.clone();
            let received = received.clone();
            async move {
                match frame {
                    Ok(f) => f.into_data().ok().map(|d| {
                        metrics.bytes_in.inc_by(d.len() as u64);
                        received.fetch_add(d.len() as u64, Ordering::Relaxed);
                        Ok(d)
                    }),
                    Err(e) => Some(Err(BodyError::Source(e.to_string()))),
                }
            }
        })
        .boxed()
}
