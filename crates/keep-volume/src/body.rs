//! The data of a block being written, verified as it streams.
//!
//! Architecture invariant: a backend may make a block visible only after
//! [`BlockBody::next_chunk`] returned `Ok(None)`, which it does only when the
//! whole body arrived, had the declared length, stayed within
//! [`MAX_BLOCK_SIZE`], and hashed to the expected MD5. Every other outcome is
//! an error, after which the backend discards what it wrote.

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use keep_locator::BlockHash;

use crate::check::ContentCheck;
use crate::frames::Frames;

/// The largest block a volume stores: 64 MiB, the limit of a locator's
/// block (defined in `keep_locator`).
pub use keep_locator::MAX_BLOCK_SIZE;

/// The size of the chunks that bodies are gathered into before they are
/// hashed and written, and that backends read blocks in.
pub const CHUNK_SIZE: usize = 1 << 20;

/// A stream of raw body bytes, as the HTTP layer receives them.
pub type ChunkStream = BoxStream<'static, Result<Bytes, BodyError>>;

/// Why a body was refused. Nothing is stored after any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More than [`MAX_BLOCK_SIZE`] bytes.
    #[error("block is larger than the 64 MiB limit")]
    TooLarge,
    /// The body's length differs from the length the client declared.
    #[error("body has {received} bytes but Content-Length said {declared}")]
    LengthMismatch {
        /// The declared length.
        declared: u64,
        /// The bytes that arrived.
        received: u64,
    },
    /// The body's MD5 differs from the hash in the request.
    #[error("content hash {actual} does not match the requested hash {expected}")]
    HashMismatch {
        /// The hash the request named.
        expected: BlockHash,
        /// The hash of the bytes that arrived.
        actual: BlockHash,
    },
    /// The source of the data failed (client went away, peer broke off).
    #[error("reading the body failed: {0}")]
    Source(String),
    /// The source sent nothing for this long: a client stalling on purpose
    /// (or a dead one) is cut off, its buffer given back.
    #[error("no data in the body for {0:?}")]
    Stalled(std::time::Duration),
}

/// The data of one block being written: a chunk stream with its expected
/// hash and, when known, its declared length.
pub struct BlockBody {
    expected: BlockHash,
    declared: Option<u64>,
    stream: ChunkStream,
    check: ContentCheck,
    received: u64,
    eof: bool,
    finished: bool,
}

impl std::fmt::Debug for BlockBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockBody")
            .field("expected", &self.expected)
            .field("declared", &self.declared)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl BlockBody {
    /// A body for the block `expected`, of `declared` bytes when the length
    /// is known up front. A declared length over [`MAX_BLOCK_SIZE`] fails at
    /// the first [`next_chunk`](Self::next_chunk).
    pub fn new(expected: BlockHash, declared: Option<u64>, stream: ChunkStream) -> Self {
        BlockBody {
            expected,
            declared,
            stream,
            check: ContentCheck::new(),
            received: 0,
            eof: false,
            finished: false,
        }
    }

    /// A body whose bytes are already in memory.
    pub fn from_bytes(expected: BlockHash, data: Bytes) -> Self {
        let len = data.len() as u64;
        let stream = futures::stream::once(async move { Ok(data) }).boxed();
        BlockBody::new(expected, Some(len), stream)
    }

    /// The hash the body must have.
    pub fn expected(&self) -> &BlockHash {
        &self.expected
    }

    /// The declared length, if any.
    pub fn declared_len(&self) -> Option<u64> {
        self.declared
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The next chunk of verified-so-far data (up to about [`CHUNK_SIZE`]
    /// bytes) as one buffer, or `Ok(None)` once the body ended and matched
    /// its hash and length. Any error is final.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        Ok(self.next_frames().await?.map(Frames::into_bytes))
    }

    /// Like [`next_chunk`](Self::next_chunk), with the bytes left in the
    /// frames they arrived in: for writers that take pieces (`writev`), so
    /// that nothing copies them together first.
    pub async fn next_frames(&mut self) -> Result<Option<Frames>, BodyError> {
        if self.finished {
            return Ok(None);
        }
        if self.declared.is_some_and(|d| d > MAX_BLOCK_SIZE) {
            return Err(BodyError::TooLarge);
        }
        let mut frames = Frames::new();
        while !self.eof && frames.len() < CHUNK_SIZE {
            match self.stream.next().await {
                Some(Ok(frame)) => {
                    self.received += frame.len() as u64;
                    if self.received > MAX_BLOCK_SIZE {
                        return Err(BodyError::TooLarge);
                    }
                    if let Some(declared) = self.declared
                        && self.received > declared
                    {
                        return Err(BodyError::LengthMismatch {
                            declared,
                            received: self.received,
                        });
                    }
                    frames.push(frame);
                }
                Some(Err(e)) => return Err(e),
                None => self.eof = true,
            }
        }
        if frames.is_empty() {
            return self.finish();
        }
        Ok(Some(self.check.update_frames(frames).await))
    }

    fn finish<T>(&mut self) -> Result<Option<T>, BodyError> {
        if let Some(declared) = self.declared
            && declared != self.received
        {
            return Err(BodyError::LengthMismatch {
                declared,
                received: self.received,
            });
        }
        let actual = std::mem::take(&mut self.check).finish();
        if actual != self.expected {
            return Err(BodyError::HashMismatch {
                expected: self.expected,
                actual,
            });
        }
        self.finished = true;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream_of(frames: Vec<Vec<u8>>) -> ChunkStream {
        futures::stream::iter(frames.into_iter().map(|f| Ok(Bytes::from(f)))).boxed()
    }

    async fn drain(mut body: BlockBody) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::new();
        while let Some(chunk) = body.next_chunk().await? {
            assert!(!chunk.is_empty());
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn accepts_matching_content() {
        let data = b"foo".to_vec();
        let body = BlockBody::new(BlockHash::of(&data), Some(3), stream_of(vec![data.clone()]));
        assert_eq!(drain(body).await.unwrap(), data);
    }

    #[tokio::test]
    async fn empty_block() {
        let body = BlockBody::new(BlockHash::EMPTY, Some(0), stream_of(vec![]));
        assert_eq!(drain(body).await.unwrap(), Vec::<u8>::new());
    }

    #[tokio::test]
    async fn refuses_wrong_hash_length_and_size() {
        let wrong = BlockBody::new(
            BlockHash::of(b"bar"),
            None,
            stream_of(vec![b"foo".to_vec()]),
        );
        assert!(matches!(
            drain(wrong).await,
            Err(BodyError::HashMismatch { .. })
        ));
        let short = BlockBody::new(
            BlockHash::of(b"foo"),
            Some(4),
            stream_of(vec![b"foo".to_vec()]),
        );
        assert_eq!(
            drain(short).await,
            Err(BodyError::LengthMismatch {
                declared: 4,
                received: 3
            })
        );
        let long = BlockBody::new(
            BlockHash::of(b"foo"),
            Some(2),
            stream_of(vec![b"foo".to_vec()]),
        );
        assert!(matches!(
            drain(long).await,
            Err(BodyError::LengthMismatch { .. })
        ));
        let huge = BlockBody::new(
            BlockHash::EMPTY,
            Some(MAX_BLOCK_SIZE + 1),
            stream_of(vec![]),
        );
        assert_eq!(drain(huge).await, Err(BodyError::TooLarge));
        let frames = vec![vec![0u8; CHUNK_SIZE]; 65];
        let endless = BlockBody::new(BlockHash::EMPTY, None, stream_of(frames));
        assert_eq!(drain(endless).await, Err(BodyError::TooLarge));
    }

    #[tokio::test]
    async fn source_errors_pass_through() {
        let stream = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(BodyError::Source("reset".into())),
        ])
        .boxed();
        let body = BlockBody::new(BlockHash::of(b"abc"), Some(3), stream);
        assert_eq!(drain(body).await, Err(BodyError::Source("reset".into())));
    }

    proptest! {
        /// Whatever the framing, the content comes out whole, in order, in
        /// chunks of at most CHUNK_SIZE plus one frame, and verifies.
        #[test]
        fn any_framing_round_trips(data in proptest::collection::vec(any::<u8>(), 0..300_000),
                                   cuts in proptest::collection::vec(1usize..70_000, 0..20)) {
            let mut frames = Vec::new();
            let mut rest = &data[..];
            for cut in cuts {
                let n = cut.min(rest.len());
                frames.push(rest[..n].to_vec());
                rest = &rest[n..];
            }
            frames.push(rest.to_vec());
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let body = BlockBody::new(BlockHash::of(&data), Some(data.len() as u64), stream_of(frames));
            let out = rt.block_on(drain(body)).unwrap();
            prop_assert_eq!(out, data);
        }
    }
}
