//! A PUT of a block that a volume already holds: compare, don't rewrite.
//!
//! The incoming bytes are compared with the stored copy as they arrive. If
//! they match to the end, the stored copy is only touched (its mtime
//! refreshed) and nothing is written. If they differ, the stored copy is
//! bad (the incoming body is checked against the hash): the block is
//! rewritten from the stored prefix that did match, the chunk in hand, and
//! the rest of the body, all verified again on the way in.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures::StreamExt;
use futures::stream::BoxStream;
use keep_locator::BlockHash;
use keep_volume::{BlockBody, BodyError, ChunkStream, Volume, VolumeError};

/// Stores `body` on `vol`, which already has the block.
pub async fn write_or_touch(
    vol: &Arc<dyn Volume>,
    hash: BlockHash,
    mut body: BlockBody,
) -> Result<(), VolumeError> {
    let mut stored = match vol.open(&hash).await {
        Ok(r) => r,
        Err(VolumeError::NotFound) => {
            // Trashed since we looked: write it afresh.
            return vol.write(&hash, body).await;
        }
        Err(e) => return Err(e),
    };
    let mut held = Bytes::new();
    let mut matched: u64 = 0;
    while let Some(chunk) = body.next_chunk().await? {
        let mut off = 0;
        while off < chunk.len() {
            if held.is_empty() {
                match stored.chunks.next().await {
                    Some(Ok(b)) if !b.is_empty() => held = b,
                    _ => break, // stored copy shorter, or unreadable
                }
            }
            let n = held.len().min(chunk.len() - off);
            if held[..n] != chunk[off..off + n] {
                break;
            }
            held.advance(n);
            off += n;
        }
        if off < chunk.len() {
            tracing::warn!(volume = %vol.params().uuid, block = %hash, "stored copy differs from a verified upload; rewriting it");
            return rewrite(vol, hash, matched, Some(chunk), body).await;
        }
        matched += chunk.len() as u64;
    }
    // The body ended and verified; the stored copy must end here too.
    let stored_longer = !held.is_empty() || stored.size != matched;
    drop(stored);
    if stored_longer {
        return rewrite(vol, hash, matched, None, body).await;
    }
    match vol.touch(&hash).await {
        Err(VolumeError::NotFound) => {
            // Trashed between the comparison and the touch: bring it back.
            vol.untrash(&hash).await?;
            vol.touch(&hash).await?;
        }
        other => other?,
    }
    Ok(())
}

/// Rewrites the block from the first `matched` stored bytes (equal to the
/// body's first bytes), then `current`, then the rest of `body`.
async fn rewrite(
    vol: &Arc<dyn Volume>,
    hash: BlockHash,
    matched: u64,
    current: Option<Bytes>,
    body: BlockBody,
) -> Result<(), VolumeError> {
    let declared = body.declared_len();
    let prefix: ChunkStream = if matched == 0 {
        futures::stream::empty().boxed()
    } else {
        let reader = vol.open(&hash).await?;
        take_bytes(reader.chunks, matched)
    };
    let rest = chunks_of(body);
    let stream = prefix
        .chain(futures::stream::iter(current.map(Ok)))
        .chain(rest)
        .boxed();
    vol.write(&hash, BlockBody::new(hash, declared, stream))
        .await
}

/// The first `n` bytes of a stored block.
fn take_bytes(chunks: BoxStream<'static, Result<Bytes, VolumeError>>, n: u64) -> ChunkStream {
    futures::stream::unfold((chunks, n), |(mut chunks, left)| async move {
        if left == 0 {
            return None;
        }
        match chunks.next().await {
            Some(Ok(mut b)) => {
                b.truncate(left.min(b.len() as u64) as usize);
                let len = b.len() as u64;
                Some((Ok(b), (chunks, left - len)))
            }
            Some(Err(e)) => Some((Err(BodyError::Source(e.to_string())), (chunks, 0))),
            None => Some((
                Err(BodyError::Source("stored copy ended early".into())),
                (chunks, 0),
            )),
        }
    })
    .boxed()
}

/// A body's remaining chunks as a stream; its final verdict (hash, length)
/// becomes the stream's last item when it is an error.
fn chunks_of(body: BlockBody) -> ChunkStream {
    futures::stream::unfold(Some(body), |state| async move {
        let mut body = state?;
        match body.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
    .boxed()
}
