//! Replication on write: after a block is stored locally, copies go to
//! other writable nodes in the block's rendezvous order, in parallel,
//! each streamed from the local copy (no extra whole copy in memory).

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use keep_locator::BlockHash;
use keep_remote::{Remote, RemoteError, Strategy};
use keep_volume::Volume;

use super::Cluster;
use crate::node::Node;

/// Sends `need` more copies of a block that `local` holds; returns how many
/// peers confirmed. Peers that fail are reported to the pool and replaced
/// by the next in order, until the count is reached or none is left.
pub async fn fan_out(
    node: &Node,
    cluster: &Cluster,
    local: &Arc<dyn Volume>,
    hash: BlockHash,
    size: u64,
    need: usize,
) -> usize {
    let mut candidates = cluster
        .pool()
        .assign_remotes(usize::MAX, Strategy::Permuted(hash))
        .into_iter();
    let mut stored = 0;
    while stored < need {
        let batch: Vec<Arc<Remote>> = candidates.by_ref().take(need - stored).collect();
        if batch.is_empty() {
            break;
        }
        let results =
            futures::future::join_all(batch.iter().map(|r| copy_to(node, local, r, hash, size)))
                .await;
        for (remote, result) in batch.iter().zip(results) {
            match result {
                Ok(draining) => {
                    stored += 1;
                    if draining {
                        // It took this block but is going away: no more.
                        let note = RemoteError::Status {
                            status: 200,
                            message: "draining".into(),
                            draining: true,
                        };
                        cluster.pool().report_failure(&remote.uuid, &note);
                    }
                }
                Err(e) => {
                    tracing::warn!(peer = %remote.uuid, block = %hash, error = %e, "replication failed");
                    cluster.pool().report_failure(&remote.uuid, &e);
                }
            }
        }
    }
    stored
}

/// Streams the local copy to `remote`; returns whether it said it is draining.
async fn copy_to(
    node: &Node,
    local: &Arc<dyn Volume>,
    remote: &Remote,
    hash: BlockHash,
    size: u64,
) -> Result<bool, RemoteError> {
    let _reservation = node
        .budget()
        .reserve(size)
        .await
        .map_err(|e| RemoteError::Body(e.message))?;
    let reader = local
        .open(&hash)
        .await
        .map_err(|e| RemoteError::Body(format!("reading the local copy: {e}")))?;
    let body = reader.chunks.map_err(std::io::Error::other).boxed();
    Ok(remote.replicate(&hash, size, body).await?.draining)
}
