//! Forwarded reads: a block no local volume holds is asked of the peers,
//! in the block's rendezvous order, each with its own timeout; the first
//! answer that verifies is handed on. The request carries
//! `X-Keep-Local-Only`, so a peer never forwards it again.

use futures::{StreamExt, TryStreamExt};
use keep_locator::BlockHash;
use keep_remote::{Pool, RemoteError};
use keep_store::{BoxError, Found, Source, Store, StoreError};

/// The block from the first peer that has a sound copy (with `head`, only
/// whether one has it), or `None` when none has.
pub async fn read(
    store: &Store,
    pool: &Pool,
    hash: BlockHash,
    size: u64,
    head: bool,
) -> Result<Option<Found>, StoreError> {
    for remote in pool.read_order(&hash) {
        if head {
            match remote.has(&hash, size).await {
                Ok(Some(real)) => return Ok(Some(Found::Exists(real))),
                Ok(None) => continue,
                Err(e) => {
                    report(pool, &remote.uuid, &e);
                    continue;
                }
            }
        }
        let block = match remote.read(&hash, size).await {
            Ok(b) => b,
            Err(RemoteError::NotFound) => continue,
            Err(e) => {
                report(pool, &remote.uuid, &e);
                continue;
            }
        };
        let chunks = block.chunks.map_err(BoxError::from).boxed();
        match store.verify(Source::remote(block.size, chunks), hash).await {
            Ok(block) => {
                tracing::info!(peer = %remote.uuid, block = %hash, "forwarded read");
                return Ok(Some(Found::Block(block)));
            }
            Err(StoreError::Corrupt) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn report(pool: &Pool, uuid: &str, e: &RemoteError) {
    tracing::warn!(peer = %uuid, error = %e, "forwarded read failed");
    pool.report_failure(uuid, e);
}
