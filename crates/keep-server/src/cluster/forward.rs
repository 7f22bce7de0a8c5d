//! Forwarded reads: a block no local volume holds is asked of the peers,
//! in the block's rendezvous order, each with its own timeout; the first
//! verified answer is streamed back. The request carries
//! `X-Keep-Local-Only`, so a peer never forwards it again.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use http::Response;
use keep_http::Body;
use keep_locator::BlockHash;
use keep_remote::RemoteError;

use super::Cluster;
use crate::error::ApiError;
use crate::handlers::get::{Failed, Source, block_response, serve};
use crate::node::Node;

/// The answer from the first peer that has the block, or `None` when none
/// has it.
pub async fn read(
    node: &Arc<Node>,
    cluster: &Cluster,
    hash: BlockHash,
    size: u64,
    head: bool,
) -> Result<Option<Response<Body>>, ApiError> {
    for remote in cluster.pool().read_order(&hash) {
        if head {
            match remote.has(&hash, size).await {
                Ok(true) => return Ok(Some(block_response(size, keep_http::body::empty()))),
                Ok(false) => continue,
                Err(e) => {
                    report(cluster, &remote.uuid, &e);
                    continue;
                }
            }
        }
        let block = match remote.read(&hash, size).await {
            Ok(b) => b,
            Err(RemoteError::NotFound) => continue,
            Err(e) => {
                report(cluster, &remote.uuid, &e);
                continue;
            }
        };
        let chunks = block.chunks.map_err(|e| e.to_string()).boxed();
        match serve(
            node,
            Source {
                chunks,
                size: block.size,
                local: None,
                sums: None,
            },
            hash,
        )
        .await
        {
            Ok(resp) => {
                tracing::info!(peer = %remote.uuid, block = %hash, "forwarded read");
                return Ok(Some(resp));
            }
            Err(Failed::Corrupt) => continue,
            Err(Failed::Api(e)) => return Err(e),
        }
    }
    Ok(None)
}

fn report(cluster: &Cluster, uuid: &str, e: &RemoteError) {
    tracing::warn!(peer = %uuid, error = %e, "forwarded read failed");
    cluster.pool().report_failure(uuid, e);
}
