//! Receiving a delivery: each wanted block read from the frames and
//! stored through the storage core, which verifies it against its hash
//! before it is kept. Small blocks are stored many at once, as one batch
//! (the point of batching): while one batch is stored, the next frames are
//! read, and everything read meanwhile makes the next batch. A large block
//! streams from the peer to the volume.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use keep_locator::BlockHash;
use keep_store::{Placement, Reservation, Store, StoreError};
use keep_volume::{BlockBody, BodyError};
use tokio::sync::mpsc;

use super::PullError;
use crate::metrics::PullsyncMetrics;
use crate::serve::{FrameReader, ReadError};

/// Blocks up to this size are read whole and stored in batches.
const SMALL: u64 = 1 << 20;

/// The most small blocks stored as one batch, and the most read ahead
/// while a batch is stored: at most twice this many are in memory.
const BATCH: usize = 32;

/// What a delivery brought.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Received {
    pub(crate) blocks: u64,
    pub(crate) bytes: u64,
}

impl Received {
    fn add(&mut self, other: Received) {
        self.blocks += other.blocks;
        self.bytes += other.bytes;
    }
}

/// A small block read whole, waiting to be stored, with its share of the
/// buffer budget.
struct Small {
    hash: BlockHash,
    data: Bytes,
    _reservation: Reservation,
}

/// Reads the delivery of `wanted` (in order) from `body` and stores each
/// block; `idle` bounds every wait for the peer. `on_frame` is called as
/// each wanted frame arrives (owed no more). A block is counted once it
/// is stored; on a failure, the blocks stored before it stay counted.
pub(crate) async fn receive<S>(
    store: &Store,
    metrics: &PullsyncMetrics,
    body: S,
    wanted: Vec<BlockHash>,
    idle: Duration,
    on_frame: impl FnMut(),
) -> Result<Received, PullError>
where
    S: Stream<Item = Result<Bytes, hyper::Error>> + Unpin,
{
    let (tx, rx) = mpsc::channel(BATCH);
    let read = read_frames(store, metrics, body, wanted, idle, on_frame, tx);
    let stored = store_small(store, metrics, rx);
    let (read, stored) = tokio::join!(read, stored);
    // A failed store is the cause (the reader then stopped at its next
    // small block); else the reader's failure, if any.
    let mut got = stored?;
    got.add(read?);
    Ok(got)
}

/// Reads the frames: small blocks go to `small` for [`store_small`], large
/// ones are stored here as they stream. What this stored, or why it stopped.
async fn read_frames<S>(
    store: &Store,
    metrics: &PullsyncMetrics,
    body: S,
    wanted: Vec<BlockHash>,
    idle: Duration,
    mut on_frame: impl FnMut(),
    small: mpsc::Sender<Small>,
) -> Result<Received, PullError>
where
    S: Stream<Item = Result<Bytes, hyper::Error>> + Unpin,
{
    let mut reader = FrameReader::new(body, wanted);
    let mut got = Received::default();
    loop {
        let header = match timed(idle, reader.next_frame()).await {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(got),
            Err(e) => {
                count_refusal(metrics, &e);
                return Err(e);
            }
        };
        on_frame();
        if !header.present {
            continue; // gone at the peer since its offer: another peer has it
        }
        let hash = header.block_hash();
        let reservation = store.budget().reserve(header.size).await?;
        if header.size <= SMALL {
            let data = timed(idle, reader.read_block()).await?;
            let block = Small {
                hash,
                data,
                _reservation: reservation,
            };
            if small.send(block).await.is_err() {
                // The batches stopped on a failure; it says why.
                return Ok(got);
            }
        } else {
            stream_block(store, &mut reader, hash, header.size, idle).await?;
            count_received(metrics, &mut got, header.size);
        }
    }
}

/// Stores the small blocks as they come, in batches: each takes what was
/// read while the last one was stored (at least one block, at most
/// [`BATCH`]), through [`Store::store_many`]. What this stored, or the
/// first refusal (after counting every block of its batch that was
/// stored).
async fn store_small(
    store: &Store,
    metrics: &PullsyncMetrics,
    mut small: mpsc::Receiver<Small>,
) -> Result<Received, PullError> {
    let mut got = Received::default();
    let mut batch = Vec::with_capacity(BATCH);
    while small.recv_many(&mut batch, BATCH).await > 0 {
        let bodies = batch
            .iter()
            .map(|b| (b.hash, BlockBody::from_bytes(b.hash, b.data.clone())))
            .collect();
        let results = store.store_many(bodies, Placement::default()).await;
        let mut refused = None;
        for (block, result) in batch.drain(..).zip(results) {
            match result {
                Ok(()) => count_received(metrics, &mut got, block.data.len() as u64),
                Err(e) => {
                    refused.get_or_insert(PullError::from(e));
                }
            }
        }
        if let Some(e) = refused {
            count_refusal(metrics, &e);
            return Err(e);
        }
    }
    Ok(got)
}

fn count_received(metrics: &PullsyncMetrics, got: &mut Received, size: u64) {
    metrics.received_blocks.inc();
    metrics.received_bytes.inc_by(size);
    got.blocks += 1;
    got.bytes += size;
}

fn count_refusal(metrics: &PullsyncMetrics, e: &PullError) {
    match e {
        PullError::Read(ReadError::Unsolicited(_)) => {
            metrics.unsolicited.inc();
        }
        PullError::Store(StoreError::Invalid(_))
        | PullError::Read(ReadError::BadFrame(_) | ReadError::Wire(_)) => {
            metrics.invalid.inc();
        }
        _ => {}
    }
}

async fn store_block(store: &Store, hash: BlockHash, body: BlockBody) -> Result<(), PullError> {
    store.store(hash, body, Placement::default()).await?;
    Ok(())
}

/// Streams one large block from the reader into the store.
async fn stream_block<S>(
    store: &Store,
    reader: &mut FrameReader<S>,
    hash: BlockHash,
    size: u64,
    idle: Duration,
) -> Result<(), PullError>
where
    S: Stream<Item = Result<Bytes, hyper::Error>> + Unpin,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, BodyError>>(4);
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed();
    let body = BlockBody::new(hash, Some(size), chunks);
    let pump = async move {
        loop {
            match timed(idle, reader.next_chunk()).await {
                Ok(Some(chunk)) => {
                    if tx.send(Ok(chunk)).await.is_err() {
                        return Ok(()); // the store gave up; its error says why
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    let _ = tx.send(Err(BodyError::Source(e.to_string()))).await;
                    return Err(e);
                }
            }
        }
    };
    let (stored, pumped) = tokio::join!(store_block(store, hash, body), pump);
    pumped?;
    stored
}

/// `fut`, or [`ReadError`]-style failure if the peer stalls for `idle`.
async fn timed<T>(
    idle: Duration,
    fut: impl Future<Output = Result<T, ReadError>>,
) -> Result<T, PullError> {
    match tokio::time::timeout(idle, fut).await {
        Ok(r) => r.map_err(PullError::Read),
        Err(_) => Err(PullError::Stalled(idle)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use keep_volume::VolumeParams;
    use keep_volume::testing::MemVolume;

    use super::*;
    use crate::serve::frame::encode_header;
    use crate::wire::DeliveryHeader;

    fn store() -> Store {
        let mem = MemVolume::new(VolumeParams::new("zzzzz-nyw5e-000000000000000"));
        Store::with_volumes(vec![Arc::new(mem)], 64 << 20)
    }

    /// A delivery body of `frames` (header, bytes), in one chunk each.
    fn body(
        frames: Vec<(DeliveryHeader, &'static [u8])>,
    ) -> impl Stream<Item = Result<Bytes, hyper::Error>> + Unpin {
        let mut chunks = Vec::new();
        for (header, data) in frames {
            chunks.push(Ok(encode_header(&header)));
            chunks.push(Ok(Bytes::from_static(data)));
        }
        futures::stream::iter(chunks)
    }

    /// Receives `frames` when only `wanted` was asked for; the error.
    async fn refused(
        store: &Store,
        metrics: &PullsyncMetrics,
        frames: Vec<(DeliveryHeader, &'static [u8])>,
        wanted: BlockHash,
    ) -> PullError {
        let idle = Duration::from_secs(5);
        receive(store, metrics, body(frames), vec![wanted], idle, || {})
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn wanted_blocks_are_stored_and_counted() {
        let (store, metrics) = (store(), PullsyncMetrics::default());
        let (a, b) = (BlockHash::of(b"first"), BlockHash::of(b"second"));
        let frames = vec![
            (DeliveryHeader::present(a, 5), &b"first"[..]),
            (DeliveryHeader::missing(b), &b""[..]),
        ];
        let mut arrived = 0;
        let got = receive(
            &store,
            &metrics,
            body(frames),
            vec![a, b],
            Duration::from_secs(5),
            || {
                arrived += 1;
            },
        )
        .await
        .unwrap();
        assert_eq!((got.blocks, got.bytes, arrived), (1, 5, 2));
        assert_eq!(store.holds(&a).await.unwrap(), Some(5));
        assert_eq!(store.holds(&b).await.unwrap(), None);
        assert_eq!(metrics.received_blocks.get(), 1);
    }

    #[tokio::test]
    async fn bytes_that_do_not_match_their_hash_are_refused_and_not_stored() {
        let (store, metrics) = (store(), PullsyncMetrics::default());
        let a = BlockHash::of(b"honest");
        let frames = vec![(DeliveryHeader::present(a, 6), &b"forged"[..])];
        let err = refused(&store, &metrics, frames, a).await;
        assert!(
            matches!(err, PullError::Store(StoreError::Invalid(_))),
            "{err}"
        );
        assert_eq!(metrics.invalid.get(), 1);
        assert_eq!(metrics.received_blocks.get(), 0);
        assert_eq!(store.holds(&a).await.unwrap(), None, "nothing stored");
    }

    #[tokio::test]
    async fn a_block_not_asked_for_is_refused_as_unsolicited() {
        let (store, metrics) = (store(), PullsyncMetrics::default());
        let (a, b) = (BlockHash::of(b"wanted"), BlockHash::of(b"pushed"));
        let frames = vec![(DeliveryHeader::present(b, 6), &b"pushed"[..])];
        let err = refused(&store, &metrics, frames, a).await;
        assert!(
            matches!(err, PullError::Read(ReadError::Unsolicited(h)) if h == b),
            "{err}"
        );
        assert_eq!(metrics.unsolicited.get(), 1);
        assert_eq!(store.holds(&b).await.unwrap(), None);
        // The same block twice: the second is not wanted any more.
        let frames = vec![
            (DeliveryHeader::present(a, 6), &b"wanted"[..]),
            (DeliveryHeader::present(a, 6), &b"wanted"[..]),
        ];
        let err = refused(&store, &metrics, frames, a).await;
        assert!(
            matches!(err, PullError::Read(ReadError::Unsolicited(_))),
            "{err}"
        );
        assert_eq!(metrics.unsolicited.get(), 2);
    }
}
