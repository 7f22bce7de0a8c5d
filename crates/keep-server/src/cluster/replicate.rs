//! Replication on write: after a block is stored locally, copies go to
//! other writable nodes in the block's rendezvous order, in parallel,
//! each streamed from the local copy (no extra whole copy in memory).

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use keep_locator::BlockHash;
use keep_remote::{Pool, Remote, RemoteError};
use keep_store::{Store, StoreError};
use keep_volume::Volume;

/// Why one copy did not reach a peer.
#[derive(Debug, thiserror::Error)]
enum CopyError {
    /// This node could not send it (no buffer memory, the local copy
    /// unreadable): not the peer's fault.
    #[error("{0}")]
    Local(#[from] StoreError),
    /// The peer failed or refused.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// Sends `need` more copies of a block that `local` holds; returns how many
/// peers confirmed. Peers that fail are reported to the pool and replaced
/// by the next in order, until the count is reached or none is left.
pub async fn fan_out(
    store: &Store,
    pool: &Pool,
    local: &Arc<dyn Volume>,
    hash: BlockHash,
    size: u64,
    need: usize,
) -> usize {
    let mut candidates = pool.assign_remotes(usize::MAX, &hash).into_iter();
    let mut stored = 0;
    while stored < need {
        let batch: Vec<Arc<Remote>> = candidates.by_ref().take(need - stored).collect();
        if batch.is_empty() {
            break;
        }
        let results =
            futures::future::join_all(batch.iter().map(|r| copy_to(store, local, r, hash, size)))
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
                        pool.report_failure(&remote.uuid, &note);
                    }
                }
                Err(e) => {
                    tracing::warn!(peer = %remote.uuid, block = %hash, error = %e, "replication failed");
                    if let CopyError::Remote(e) = &e {
                        pool.report_failure(&remote.uuid, e);
                    }
                }
            }
        }
    }
    stored
}

/// Streams the local copy to `remote`; returns whether it said it is draining.
async fn copy_to(
    store: &Store,
    local: &Arc<dyn Volume>,
    remote: &Remote,
    hash: BlockHash,
    size: u64,
) -> Result<bool, CopyError> {
    let _reservation = store.budget().reserve(size).await?;
    let reader = local.open(&hash).await.map_err(StoreError::from)?;
    let body = reader.chunks.map_err(std::io::Error::other).boxed();
    Ok(remote.replicate(&hash, size, body).await?.draining)
}
