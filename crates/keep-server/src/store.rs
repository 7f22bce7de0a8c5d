//! The one path by which a block enters the node: client PUTs and pulls
//! alike go through [`store`].

use std::sync::Arc;

use http::StatusCode;
use keep_locator::BlockHash;
use keep_volume::{BlockBody, Volume, VolumeError};

use crate::error::ApiError;
use crate::handlers::dedup;
use crate::node::Node;

/// Stores a block received as `body` and returns the volume holding it.
///
/// With `mount`, only that volume is used. With `classes` (a client's
/// `X-Keep-Storage-Classes`), only the writable volumes in one of them
/// are used, as Arvados's keepstore does, unless none is: then the block
/// is placed as if none were asked for, and the answer's confirmed classes
/// tell the client (Arvados would refuse it). Among the volumes used, one
/// that already has the block takes the body for comparison (only its mtime is
/// refreshed when the content is equal); else the first writable, non-full
/// volume in rendezvous order writes it. A volume that failed recently (see
/// [`crate::node::VolumeHealth`]) is not asked whether it has the block
/// (a second copy elsewhere beats waiting for its timeouts) and takes new
/// blocks only if no other volume can.
pub async fn store(
    node: &Node,
    hash: BlockHash,
    body: BlockBody,
    mount: Option<&str>,
    classes: &[String],
) -> Result<Arc<dyn Volume>, ApiError> {
    let mut writable: Vec<&Arc<dyn Volume>> = match mount {
        Some(uuid) => {
            let v = node
                .volume(uuid)
                .ok_or_else(|| ApiError::bad_request(format!("no mount {uuid} on this node")))?;
            vec![v]
        }
        None => node.volumes_for(&hash),
    }
    .into_iter()
    .filter(|v| v.params().allow_write)
    .collect();
    if writable.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no writable volume",
        ));
    }
    let in_class = |v: &&Arc<dyn Volume>| {
        classes
            .iter()
            .any(|c| v.params().storage_classes.get(c) == Some(&true))
    };
    if writable.iter().any(in_class) {
        writable.retain(in_class);
    }
    // A small block for the only writable volume goes straight to it: a
    // volume's write of a block it holds keeps (or repairs) that copy and
    // refreshes its mtime, so asking first would only cost a trip to disk.
    if let [v] = writable[..]
        && body.declared_len().is_some_and(|n| n <= DIRECT_WRITE_MAX)
        && matches!(v.status().await, Ok(st) if !st.full)
    {
        v.write(&hash, body)
            .await
            .map_err(|e| fault(node, v, "write", e))?;
        node.health().answered(&v.params().uuid);
        return Ok(v.clone());
    }
    for v in &writable {
        let uuid = &v.params().uuid;
        if node.health().is_suspect(uuid) {
            continue;
        }
        match v.mtime(&hash).await {
            Ok(_) => {
                dedup::write_or_touch(v, hash, body)
                    .await
                    .map_err(|e| fault(node, v, "write", e))?;
                node.health().answered(uuid);
                return Ok((*v).clone());
            }
            Err(VolumeError::NotFound) => node.health().answered(uuid),
            Err(e) => {
                let _ = fault(node, v, "lookup", e);
            }
        }
    }
    let target = pick_target(node, &writable).await?;
    target
        .write(&hash, body)
        .await
        .map_err(|e| fault(node, target, "write", e))?;
    node.health().answered(&target.params().uuid);
    Ok(target.clone())
}

/// Blocks up to this size skip the "does a volume have it" question when
/// only one volume can take them.
const DIRECT_WRITE_MAX: u64 = 64 << 10;

/// The first writable volume, in placement order, that is not full and
/// did not just fail a write (unless every volume did).
async fn pick_target<'a>(
    node: &Node,
    writable: &[&'a Arc<dyn Volume>],
) -> Result<&'a Arc<dyn Volume>, ApiError> {
    let mut unavailable = None;
    let (healthy, suspect): (Vec<&&Arc<dyn Volume>>, Vec<_>) = writable
        .iter()
        .partition(|v| !node.health().is_suspect(&v.params().uuid));
    for v in healthy.into_iter().chain(suspect) {
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

/// Counts and logs a volume's own failure (in `what`: "write", "lookup")
/// and passes it over for a while; passes every error on as an API error.
fn fault(node: &Node, vol: &Arc<dyn Volume>, what: &str, e: VolumeError) -> ApiError {
    if e.is_volume_fault() {
        node.health().suspect(&vol.params().uuid);
        node.metrics().volume_error(&vol.params().uuid);
        tracing::warn!(volume = %vol.params().uuid, error = %e, "{what} failed");
    }
    e.into()
}
