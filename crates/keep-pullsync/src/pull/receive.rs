//! Receiving a delivery: each wanted block read from the frames and
//! stored through the storage core, which verifies it against its hash
//! before it is kept. Small blocks are stored many at once (the point of
//! batching); a large one streams from the peer to the volume.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use keep_locator::BlockHash;
use keep_store::{Placement, Store, StoreError};
use keep_volume::{BlockBody, BodyError};

use super::PullError;
use crate::metrics::PullsyncMetrics;
use crate::serve::{FrameReader, ReadError};

/// Blocks up to this size are read whole and stored concurrently.
const SMALL: u64 = 1 << 20;

/// How many small blocks are stored at once.
const STORES_IN_FLIGHT: usize = 32;

/// What a delivery brought.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Received {
    pub(crate) blocks: u64,
    pub(crate) bytes: u64,
}

/// Reads the delivery of `wanted` (in order) from `body` and stores each
/// block; `idle` bounds every wait for the peer. `on_frame` is called as
/// each wanted frame arrives (owed no more).
pub(crate) async fn receive<S>(
    store: &Store,
    metrics: &PullsyncMetrics,
    body: S,
    wanted: Vec<BlockHash>,
    idle: Duration,
    mut on_frame: impl FnMut(),
) -> Result<Received, PullError>
where
    S: Stream<Item = Result<Bytes, hyper::Error>> + Unpin,
{
    let mut reader = FrameReader::new(body, wanted);
    let mut stores = FuturesUnordered::new();
    let mut got = Received::default();
    loop {
        let header = match timed(idle, reader.next_frame()).await {
            Ok(Some(h)) => h,
            Ok(None) => break,
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
        if header.size <= SMALL {
            let reservation = store.budget().reserve(header.size).await?;
            let data = timed(idle, reader.read_block()).await?;
            stores.push(async move {
                let _reservation = reservation;
                let size = data.len() as u64;
                store_block(store, hash, BlockBody::from_bytes(hash, data))
                    .await
                    .map(|()| size)
            });
            while stores.len() >= STORES_IN_FLIGHT {
                finish_one(&mut stores, metrics, &mut got).await?;
            }
        } else {
            while !stores.is_empty() {
                finish_one(&mut stores, metrics, &mut got).await?;
            }
            let _reservation = store.budget().reserve(header.size).await?;
            stream_block(store, &mut reader, hash, header.size, idle).await?;
            count_received(metrics, &mut got, header.size);
        }
    }
    while !stores.is_empty() {
        finish_one(&mut stores, metrics, &mut got).await?;
    }
    Ok(got)
}

async fn finish_one<F>(
    stores: &mut FuturesUnordered<F>,
    metrics: &PullsyncMetrics,
    got: &mut Received,
) -> Result<(), PullError>
where
    F: Future<Output = Result<u64, PullError>>,
{
    if let Some(result) = stores.next().await {
        let size = result.inspect_err(|e| count_refusal(metrics, e))?;
        count_received(metrics, got, size);
    }
    Ok(())
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
