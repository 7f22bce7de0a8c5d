//! `PUT /{md5}`: receive a block, streamed and hashed as it arrives, and
//! store it on one volume.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use http::{HeaderMap, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use keep_http::Body;
use keep_locator::Locator;
use keep_volume::{BlockBody, BodyError, ChunkStream, MAX_BLOCK_SIZE, Volume, VolumeError};

use crate::error::ApiError;
use crate::handlers::{dedup, parse_locator};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::{auth, unix_now};

/// Answers `PUT /{md5}`.
pub async fn put_block(
    node: &Arc<Node>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (parts, incoming) = req.into_parts();
    let hash = parse_locator(parts.uri.path())?.hash;
    let declared = content_length(&parts.headers)?;
    if declared.is_some_and(|n| n > MAX_BLOCK_SIZE) {
        return Err(BodyError::TooLarge.into());
    }
    let writable: Vec<&Arc<dyn Volume>> = node
        .volumes_for(&hash)
        .into_iter()
        .filter(|v| v.params().allow_write)
        .collect();
    if writable.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no writable volume",
        ));
    }
    let _reservation = node
        .budget()
        .reserve(declared.unwrap_or(MAX_BLOCK_SIZE))
        .await?;
    let received = Arc::new(AtomicU64::new(0));
    let stream = incoming_stream(incoming, node.metrics().clone(), received.clone());
    let body = BlockBody::new(hash, declared, stream);

    let mut existing = None;
    for v in &writable {
        if v.mtime(&hash).await.is_ok() {
            existing = Some(*v);
            break;
        }
    }
    let stored_on = match existing {
        Some(v) => {
            dedup::write_or_touch(v, hash, body)
                .await
                .map_err(|e| fault(node, v, e))?;
            v
        }
        None => {
            let target = pick_target(node, &writable).await?;
            target
                .write(&hash, body)
                .await
                .map_err(|e| fault(node, target, e))?;
            target
        }
    };
    let size = received.load(Ordering::Relaxed);

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
        .map(|class| format!("{class}={}", params.replication))
        .collect();
    let mut resp = keep_http::body::text(StatusCode::OK, locator);
    let h = resp.headers_mut();
    h.insert("x-keep-replicas-stored", params.replication.into());
    if let Ok(v) = confirmed.join(", ").parse() {
        h.insert("x-keep-storage-classes-confirmed", v);
    }
    Ok(resp)
}

/// The first writable volume, in placement order, that is not full.
async fn pick_target<'a>(
    node: &Node,
    writable: &[&'a Arc<dyn Volume>],
) -> Result<&'a Arc<dyn Volume>, ApiError> {
    let mut unavailable = None;
    for v in writable {
        match v.status().await {
            Ok(st) if !st.full => return Ok(v),
            Ok(_) => {}
            Err(e) => {
                node.metrics().volume_error(&v.params().uuid);
                tracing::warn!(volume = %v.params().uuid, error = %e, "status failed");
                unavailable = Some(e);
            }
        }
    }
    Err(match unavailable {
        Some(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no volume can take the block: {e}"),
        ),
        None => VolumeError::Full.into(),
    })
}

/// Counts and logs a volume's own failure; passes every error on as an API error.
fn fault(node: &Node, vol: &Arc<dyn Volume>, e: VolumeError) -> ApiError {
    if e.is_volume_fault() {
        node.metrics().volume_error(&vol.params().uuid);
        tracing::warn!(volume = %vol.params().uuid, error = %e, "write failed");
    }
    e.into()
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
