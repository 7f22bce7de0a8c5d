//! Writing a block's data object.
//!
//! Known length: one PUT with `Content-Length` and `Content-MD5`, its body
//! streamed from the [`BlockBody`] one chunk behind: each chunk is sent
//! only once the next one (or the body's verified end) has arrived, so the
//! store never has all the declared bytes of a body that is then refused,
//! and an aborted request leaves nothing behind. At most two chunks
//! (about 2 MiB) are in memory per write.
//!
//! Unknown length (S3 needs the length up front): the verified body is
//! gathered first, holding one of a bounded number of whole-block buffers,
//! then sent the same way (and retried, since it can be sent again).
//!
//! Uploads of one block take turns ([`UploadLocks`]): concurrent PUTs of
//! identical content to one key gain nothing, and some S3-compatible
//! servers (moto among them) fail them with 500.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use keep_locator::BlockHash;
use keep_volume::{BlockBody, BodyError};
use tokio::sync::{OwnedMutexGuard, Semaphore};

use crate::client::Client;
use crate::error::S3Error;

/// Stores `body` as the object `key`. Nothing is left at `key` unless the
/// body ended verified.
pub(crate) async fn upload(
    client: &Client,
    key: &str,
    body: BlockBody,
    buffers: &Semaphore,
) -> Result<(), S3Error> {
    match body.declared_len() {
        Some(len) => streamed(client, key, len, body).await,
        None => buffered(client, key, body, buffers).await,
    }
}

/// Entries beyond this many are swept of blocks no upload holds.
const SWEEP_AT: usize = 1024;

/// One lock per block being uploaded, made on demand.
#[derive(Debug, Default)]
pub(crate) struct UploadLocks {
    map: Mutex<HashMap<BlockHash, Weak<tokio::sync::Mutex<()>>>>,
}

impl UploadLocks {
    /// Waits until no other upload of `hash` runs in this process; the
    /// guard holds off the next one.
    pub(crate) async fn lock(&self, hash: &BlockHash) -> OwnedMutexGuard<()> {
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(hash).and_then(Weak::upgrade) {
                Some(live) => live,
                None => {
                    if map.len() >= SWEEP_AT {
                        map.retain(|_, w| w.strong_count() > 0);
                    }
                    let fresh = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(*hash, Arc::downgrade(&fresh));
                    fresh
                }
            }
        };
        mutex.lock_owned().await
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

/// What the body stream saw, for the watchdog and for after the request.
#[derive(Debug)]
struct Outcome {
    verified: bool,
    error: Option<BodyError>,
    /// Whether the stream is waiting for the client's next chunk (then a
    /// pause is the client's, not the store's).
    awaiting_client: bool,
    /// When the stream last handed a chunk over (or started).
    handed_over: Instant,
}

impl Outcome {
    fn new() -> Self {
        Outcome {
            verified: false,
            error: None,
            awaiting_client: false,
            handed_over: Instant::now(),
        }
    }
}

async fn streamed(
    client: &Client,
    key: &str,
    len: u64,
    mut body: BlockBody,
) -> Result<(), S3Error> {
    let hash = *body.expected();
    // The first chunk comes before any request, so an empty body, or one
    // refused at once, never reaches the store half-checked.
    let Some(first) = body.next_chunk().await.map_err(S3Error::Body)? else {
        return client.put_parts(key, &[], Some(&hash)).await;
    };
    let outcome = Arc::new(Mutex::new(Outcome::new()));
    let stream = lagging(body, first, outcome.clone());
    let patience = client.patience();
    let sent = tokio::select! {
        sent = client.put_stream(key, len, &hash, reqwest::Body::wrap_stream(stream)) => sent,
        () = stalled(&outcome, patience) => Err(S3Error::Transport(format!(
            "S3 took no data and gave no answer for {}s",
            patience.as_secs_f32()
        ))),
    };
    let mut outcome = lock(&outcome);
    if let Some(e) = outcome.error.take() {
        return Err(S3Error::Body(e));
    }
    sent?;
    if !outcome.verified {
        // Only a store that answers before reading the whole body gets here.
        return Err(S3Error::Protocol(
            "the store acknowledged the block before its body ended".into(),
        ));
    }
    Ok(())
}

/// Returns once the store has neither asked for the next chunk nor
/// answered for `patience`, while the client was not the one being waited on.
async fn stalled(outcome: &Mutex<Outcome>, patience: Duration) {
    let tick = (patience / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        let o = lock(outcome);
        if !o.awaiting_client && o.handed_over.elapsed() > patience {
            return;
        }
    }
}

/// The body's chunks, each released once the following one arrived; the
/// last one only after the body verified its hash and length.
fn lagging(
    body: BlockBody,
    first: Bytes,
    outcome: Arc<Mutex<Outcome>>,
) -> impl Stream<Item = Result<Bytes, BodyError>> + Send + 'static {
    struct Feed {
        body: BlockBody,
        held: Bytes,
        outcome: Arc<Mutex<Outcome>>,
    }
    let start = Feed {
        body,
        held: first,
        outcome,
    };
    futures::stream::unfold(Some(start), |state| async move {
        let mut feed = state?;
        lock(&feed.outcome).awaiting_client = true;
        let next = feed.body.next_chunk().await;
        {
            let mut o = lock(&feed.outcome);
            o.awaiting_client = false;
            o.handed_over = Instant::now();
        }
        match next {
            Ok(Some(next)) => {
                let out = std::mem::replace(&mut feed.held, next);
                Some((Ok(out), Some(feed)))
            }
            Ok(None) => {
                lock(&feed.outcome).verified = true;
                Some((Ok(feed.held), None))
            }
            Err(e) => {
                lock(&feed.outcome).error = Some(e.clone());
                Some((Err(e), None))
            }
        }
    })
}

fn lock(outcome: &Mutex<Outcome>) -> std::sync::MutexGuard<'_, Outcome> {
    outcome.lock().unwrap_or_else(|p| p.into_inner())
}

async fn buffered(
    client: &Client,
    key: &str,
    mut body: BlockBody,
    buffers: &Semaphore,
) -> Result<(), S3Error> {
    let hash = *body.expected();
    let _buffer = buffers
        .acquire()
        .await
        .map_err(|_| S3Error::Protocol("the volume is shutting down".into()))?;
    let mut parts = Vec::new();
    while let Some(chunk) = body.next_chunk().await.map_err(S3Error::Body)? {
        parts.push(chunk);
    }
    client.put_parts(key, &parts, Some(&hash)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn body_of(frames: Vec<&'static [u8]>, declared: Option<u64>, hash: BlockHash) -> BlockBody {
        let stream = futures::stream::iter(frames.into_iter().map(|f| Ok(Bytes::from_static(f))));
        BlockBody::new(hash, declared, stream.boxed())
    }

    #[tokio::test]
    async fn releases_the_last_chunk_only_when_verified() {
        let big = vec![7u8; keep_volume::CHUNK_SIZE + 10];
        let data: &'static [u8] = Box::leak(big.into_boxed_slice());
        let hash = BlockHash::of(data);
        let mut body = body_of(vec![data], Some(data.len() as u64), hash);
        let first = body.next_chunk().await.unwrap().unwrap();
        let outcome = Arc::new(Mutex::new(Outcome::new()));
        let chunks: Vec<_> = lagging(body, first, outcome.clone()).collect().await;
        assert!(chunks.iter().all(Result::is_ok));
        let total: usize = chunks.iter().map(|c| c.as_ref().unwrap().len()).sum();
        assert_eq!(total, data.len());
        assert!(outcome.lock().unwrap().verified);
    }

    #[tokio::test]
    async fn withholds_the_last_chunk_of_a_bad_body() {
        let hash = BlockHash::of(b"something else");
        let mut body = body_of(vec![b"abc"], Some(3), hash);
        let first = body.next_chunk().await.unwrap().unwrap();
        let outcome = Arc::new(Mutex::new(Outcome::new()));
        let chunks: Vec<_> = lagging(body, first, outcome.clone()).collect().await;
        assert_eq!(chunks.len(), 1, "only the error: {chunks:?}");
        assert!(matches!(chunks[0], Err(BodyError::HashMismatch { .. })));
        let o = outcome.lock().unwrap();
        assert!(!o.verified && o.error.is_some());
    }

    #[tokio::test]
    async fn uploads_of_one_block_take_turns() {
        let locks = UploadLocks::default();
        let (a, b) = (BlockHash::of(b"a"), BlockHash::of(b"b"));
        let first = locks.lock(&a).await;
        let other = tokio::time::timeout(std::time::Duration::from_secs(1), locks.lock(&b)).await;
        assert!(other.is_ok(), "another block is not held up");
        let second =
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock(&a)).await;
        assert!(second.is_err(), "the same block waits");
        drop(first);
        let _again = locks.lock(&a).await;
        for i in 0..(SWEEP_AT as u64 + 10) {
            drop(locks.lock(&BlockHash::of(&i.to_le_bytes())).await);
        }
        assert!(locks.len() <= SWEEP_AT + 1, "dead entries are swept");
    }
}
