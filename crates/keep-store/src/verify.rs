//! The verification engine: a block's bytes, from a local volume or a
//! peer, handed on only as they check out against the block's hash.
//!
//! Architecture invariant: corrupt content is never delivered as a success.
//! A block that fits in one chunk is verified before anything is handed
//! on (by its BLAKE3 chunk sum if it has one, else by MD5), so a corrupt
//! copy is moved aside and the caller tries the next volume (or peer). A
//! larger block is verified as it streams: chunk by chunk against its
//! sums, or by MD5 with its last chunk held back until the hash is
//! checked. If that fails, the stream ends with an error before the block
//! completes (an HTTP client sees a short read), and a local copy is moved
//! aside. A local copy verified by MD5 (it had no sums, or wrong ones) has
//! its chunk sums offered to its volume afterwards, so its next read checks
//! those instead.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use keep_locator::BlockHash;
use keep_volume::{BlockReader, CHUNK_SIZE, ChunkSummer, ChunkSums, ContentCheck, CopyId, Volume};

use crate::budget::Reservation;
use crate::error::BoxError;
use crate::{Store, StoreError, StoreMetrics};

/// Where a block's bytes come from.
pub struct Source {
    /// The bytes, in order.
    pub chunks: BoxStream<'static, Result<Bytes, BoxError>>,
    /// The size the source announced.
    pub size: u64,
    /// The local volume holding it and which copy this is, to quarantine
    /// a corrupt copy (and not one that replaced it meanwhile).
    pub local: Option<(Arc<dyn Volume>, Option<CopyId>)>,
    /// Per-chunk checksums kept with the block: then each chunk is checked
    /// (BLAKE3, fast) instead of the MD5 of the whole block.
    pub sums: Option<ChunkSums>,
}

impl Source {
    /// A copy on a local volume, as `vol` opened it.
    pub fn local(vol: Arc<dyn Volume>, reader: BlockReader) -> Source {
        Source {
            chunks: reader.chunks.map(|c| c.map_err(BoxError::from)).boxed(),
            size: reader.size,
            local: Some((vol, reader.copy)),
            sums: reader.sums,
        }
    }

    /// A copy elsewhere (a peer), `size` bytes announced.
    pub fn remote(size: u64, chunks: BoxStream<'static, Result<Bytes, BoxError>>) -> Source {
        Source {
            chunks,
            size,
            local: None,
            sums: None,
        }
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("size", &self.size)
            .field("local", &self.local.as_ref().map(|(v, _)| &v.params().uuid))
            .finish_non_exhaustive()
    }
}

/// A block's bytes as they check out.
pub enum VerifiedBody {
    /// A small block, read whole and verified.
    Whole(Bytes),
    /// A large block: each chunk is verified before it is yielded; a
    /// mismatch (or a failing source) ends the stream with an error before
    /// the block is complete. Holds its buffer reservation.
    Stream(BoxStream<'static, Result<Bytes, StoreError>>),
}

impl std::fmt::Debug for VerifiedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifiedBody::Whole(b) => write!(f, "Whole({} bytes)", b.len()),
            VerifiedBody::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// A block being handed on, verified.
#[derive(Debug)]
pub struct VerifiedBlock {
    /// Its size.
    pub size: u64,
    /// Its bytes.
    pub body: VerifiedBody,
}

impl VerifiedBlock {
    /// The bytes as a stream, whatever the body's kind.
    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes, StoreError>> {
        match self.body {
            VerifiedBody::Whole(b) => futures::stream::once(async move { Ok(b) }).boxed(),
            VerifiedBody::Stream(s) => s,
        }
    }
}

impl Store {
    /// Hands on the block in `src`, verified against `hash`.
    ///
    /// [`StoreError::Corrupt`] means this copy failed its check before
    /// anything was handed on (a local one has been moved aside): try
    /// another. Other errors (no buffer memory, a failing read) are final.
    pub async fn verify(
        &self,
        mut src: Source,
        hash: BlockHash,
    ) -> Result<VerifiedBlock, StoreError> {
        let reservation = self.budget().reserve(src.size).await?;
        if src.size <= CHUNK_SIZE as u64 {
            let data = verify_whole(self.metrics(), &mut src, hash).await?;
            return Ok(VerifiedBlock {
                size: src.size,
                body: VerifiedBody::Whole(data),
            });
        }
        let size = src.size;
        let metrics = self.metrics().clone();
        let stream = match src.sums.take() {
            Some(sums) => by_chunk_sums(metrics, src, sums, hash, reservation).boxed(),
            None => {
                let summer = src
                    .local
                    .as_ref()
                    .filter(|(vol, _)| vol.wants_sums(size))
                    .map(|_| ChunkSummer::new(CHUNK_SIZE));
                Verifying {
                    metrics,
                    src,
                    hash,
                    check: ContentCheck::new(),
                    summer,
                    _reservation: reservation,
                }
                .into_stream()
                .boxed()
            }
        };
        Ok(VerifiedBlock {
            size,
            body: VerifiedBody::Stream(stream),
        })
    }
}

/// Reads a small block whole and verifies it, by its one chunk sum if it
/// has one (BLAKE3), else by MD5.
async fn verify_whole(
    metrics: &StoreMetrics,
    src: &mut Source,
    hash: BlockHash,
) -> Result<Bytes, StoreError> {
    let sums = src.sums.take();
    let mut whole: Vec<Bytes> = Vec::with_capacity(1);
    let mut read = 0;
    while let Some(chunk) = src.chunks.next().await {
        let chunk = chunk.map_err(StoreError::Read)?;
        read += chunk.len() as u64;
        if read > src.size {
            break;
        }
        whole.push(chunk);
    }
    let data: Bytes = match whole.len() {
        0 => Bytes::new(),
        1 => whole.swap_remove(0),
        _ => whole.concat().into(),
    };
    let by_sum = matches!(&sums, Some(s) if s.hashes.len() == 1 && s.check(0, &data));
    // The block's name is its MD5: a copy that has it is sound whatever
    // its sidecar says.
    let sound = read == src.size
        && (by_sum || {
            let mut check = ContentCheck::new();
            check.update(&data).await;
            check.finish() == hash
        });
    if !sound {
        corrupt(metrics, src.local.as_ref(), hash).await;
        return Err(StoreError::Corrupt);
    }
    if !by_sum {
        if sums.is_some() {
            tracing::warn!(block = %hash, "checksum sidecar disagrees with a sound block");
        }
        offer_sums(src.local.as_ref(), hash, src.size, || {
            let mut summer = ChunkSummer::new(CHUNK_SIZE);
            summer.update(&data);
            summer.finish()
        });
    }
    Ok(data)
}

/// Offers the chunk sums of a local copy just verified by its MD5 to its
/// volume, so that its next read checks them instead (see
/// [`Volume::keep_sums`]); `sums` is only taken if the volume wants them.
/// Runs on its own: the caller does not wait for it.
fn offer_sums(
    local: Option<&(Arc<dyn Volume>, Option<CopyId>)>,
    hash: BlockHash,
    size: u64,
    sums: impl FnOnce() -> ChunkSums,
) {
    let Some((vol, _)) = local.filter(|(vol, _)| vol.wants_sums(size)) else {
        return;
    };
    let (vol, sums) = (vol.clone(), sums());
    tokio::spawn(async move {
        if let Err(e) = vol.keep_sums(&hash, size, sums).await {
            tracing::debug!(volume = %vol.params().uuid, block = %hash, error = %e, "could not keep chunk sums");
        }
    });
}

/// Counts a corrupt copy and moves a local one aside.
async fn corrupt(
    metrics: &StoreMetrics,
    local: Option<&(Arc<dyn Volume>, Option<CopyId>)>,
    hash: BlockHash,
) {
    let Some((vol, copy)) = local else {
        tracing::error!(block = %hash, "a peer sent a block that failed its checksum");
        return;
    };
    let uuid = &vol.params().uuid;
    tracing::error!(volume = %uuid, block = %hash, "stored block failed its checksum; moving it aside");
    metrics.corrupt_block(uuid);
    if let Err(e) = vol.quarantine(&hash, *copy).await {
        tracing::error!(volume = %uuid, block = %hash, error = %e, "could not move the corrupt block aside");
    }
}

type Item = Result<Bytes, StoreError>;

/// A large block with chunk sums on its way out: each chunk is handed on
/// once its BLAKE3 matches; a mismatch, or a wrong length, ends the stream
/// with an error and moves the copy aside.
fn by_chunk_sums(
    metrics: StoreMetrics,
    src: Source,
    sums: ChunkSums,
    hash: BlockHash,
    reservation: Reservation,
) -> impl futures::Stream<Item = Item> + Send + 'static {
    struct St {
        metrics: StoreMetrics,
        src: Source,
        sums: ChunkSums,
        hash: BlockHash,
        index: usize,
        sent: u64,
        _reservation: Reservation,
    }
    let st = St {
        metrics,
        src,
        sums,
        hash,
        index: 0,
        sent: 0,
        _reservation: reservation,
    };
    futures::stream::unfold(Some(st), |state| async move {
        let mut st = state?;
        let failed = |st: St| async move {
            corrupt(&st.metrics, st.src.local.as_ref(), st.hash).await;
            Some((Err(StoreError::Corrupt), None))
        };
        match st.src.chunks.next().await {
            Some(Ok(chunk)) => {
                // BLAKE3 of a chunk takes a fraction of a millisecond: done
                // here, it saves a trip to a blocking thread per chunk.
                let ok = st.sums.check(st.index, &chunk);
                st.sent += chunk.len() as u64;
                if !ok || st.sent > st.src.size {
                    return failed(st).await;
                }
                st.index += 1;
                Some((Ok(chunk), Some(st)))
            }
            Some(Err(e)) => Some((Err(StoreError::Read(e)), None)),
            None if st.sent == st.src.size && st.index == st.sums.hashes.len() => None,
            None => failed(st).await,
        }
    })
}

/// A large block on its way out, hashed as it goes.
struct Verifying {
    metrics: StoreMetrics,
    src: Source,
    hash: BlockHash,
    check: ContentCheck,
    /// Sums taken on the way, for a volume that wants them.
    summer: Option<ChunkSummer>,
    _reservation: Reservation,
}

impl Verifying {
    /// The block's chunks, each handed on only once the next one has been
    /// read, and the last one only once the whole block has verified: so a
    /// block whose hash fails never completes.
    fn into_stream(self) -> impl futures::Stream<Item = Item> + Send + 'static {
        futures::stream::unfold(Some((self, None::<Bytes>)), |state| async move {
            let (mut st, mut held) = state?;
            loop {
                match st.src.chunks.next().await {
                    Some(Ok(chunk)) => {
                        st.check.update(&chunk).await;
                        if let Some(summer) = &mut st.summer {
                            summer.update(&chunk);
                        }
                        if st.check.len() > st.src.size {
                            return Some((Err(st.fail().await), None));
                        }
                        if let Some(out) = held.replace(chunk) {
                            return Some((Ok(out), Some((st, held))));
                        }
                    }
                    Some(Err(e)) => return Some((Err(StoreError::Read(e)), None)),
                    None => {
                        let whole = st.check.len() == st.src.size;
                        if !(whole && std::mem::take(&mut st.check).finish() == st.hash) {
                            return Some((Err(st.fail().await), None));
                        }
                        if let Some(summer) = st.summer.take() {
                            offer_sums(st.src.local.as_ref(), st.hash, st.src.size, || {
                                summer.finish()
                            });
                        }
                        let out = held.take()?;
                        return Some((Ok(out), None));
                    }
                }
            }
        })
    }

    async fn fail(self) -> StoreError {
        corrupt(&self.metrics, self.src.local.as_ref(), self.hash).await;
        StoreError::Corrupt
    }
}
