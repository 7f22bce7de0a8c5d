//! The puller's side of a delivery: a body of frames
//! ([`frame`](super::frame)) read back into headers and block bytes.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use keep_locator::BlockHash;

use super::frame::{LENGTH_LEN, decode_header, header_len};
use crate::wire::{DeliveryHeader, WireError};

/// A boxed error of the body's source.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a delivery body was refused. After one, the reader answers
/// [`ReadError::Failed`].
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The body's source failed (the connection broke, the sender aborted).
    #[error("delivery body failed: {0}")]
    Body(BoxError),
    /// The body ended inside a frame.
    #[error("delivery body ends inside a frame")]
    Truncated,
    /// The body ended before every wanted block had its frame.
    #[error("delivery body ends with {missing} wanted frames not sent")]
    Incomplete {
        /// How many wanted frames did not come.
        missing: usize,
    },
    /// A frame for a block that is not the next one wanted (out of order,
    /// never wanted, a second copy, or past the last one wanted).
    #[error("unsolicited block {0} in a delivery")]
    Unsolicited(BlockHash),
    /// A frame that breaks the framing.
    #[error("bad delivery frame: {0}")]
    BadFrame(&'static str),
    /// A frame header that does not decode.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A call after an error.
    #[error("delivery body already failed")]
    Failed,
}

/// Reads a delivery body: each frame's [`DeliveryHeader`]
/// ([`next_frame`](Self::next_frame)), then its block's bytes, in chunks
/// ([`next_chunk`](Self::next_chunk), [`chunks`](Self::chunks)) or whole
/// ([`read_block`](Self::read_block)).
///
/// The frames must come for exactly the wanted blocks, in the wanted order
/// (a missing block's frame counts); anything else is refused. The reader
/// holds at most the rest of one chunk of the body, a frame header, and
/// what [`read_block`](Self::read_block) gathers: block bytes otherwise go
/// out as they came in. It does not check the bytes against the hash:
/// `Store::store` does, as it stores them.
#[derive(Debug)]
pub struct FrameReader<S> {
    body: S,
    /// Received, not yet handed out: the rest of the last body chunk.
    pending: Bytes,
    /// The blocks still wanted, in order.
    wanted: VecDeque<BlockHash>,
    /// Bytes of the current block not yet handed out.
    block_left: u64,
    failed: bool,
}

impl<S, E> FrameReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<BoxError>,
{
    /// A reader of `body`, a delivery of the blocks `wanted`, in order.
    pub fn new(body: S, wanted: impl IntoIterator<Item = BlockHash>) -> Self {
        FrameReader {
            body,
            pending: Bytes::new(),
            wanted: wanted.into_iter().collect(),
            block_left: 0,
            failed: false,
        }
    }

    /// How many wanted frames have not been read.
    pub fn frames_left(&self) -> usize {
        self.wanted.len()
    }

    /// How many bytes of the current block have not been read.
    pub fn block_left(&self) -> u64 {
        self.block_left
    }

    /// The next frame's header (the rest of the current block, if any, is
    /// skipped); `None` once every wanted frame came and the body ended.
    ///
    /// # Errors
    ///
    /// Any [`ReadError`]: a frame not wanted next, the body ending early,
    /// a broken frame, the body's own error.
    pub async fn next_frame(&mut self) -> Result<Option<DeliveryHeader>, ReadError> {
        let result = self.read_frame().await;
        self.fuse(result)
    }

    /// The next bytes of the current block; `None` once it is all read.
    ///
    /// # Errors
    ///
    /// [`ReadError::Truncated`] if the body ends inside the block,
    /// [`ReadError::Body`] if it fails.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ReadError> {
        let result = self.read_chunk().await;
        self.fuse(result)
    }

    /// The rest of the current block, in one buffer (for small blocks: a
    /// block is up to 64 MiB).
    ///
    /// # Errors
    ///
    /// As [`next_chunk`](Self::next_chunk).
    pub async fn read_block(&mut self) -> Result<Bytes, ReadError> {
        let Some(first) = self.next_chunk().await? else {
            return Ok(Bytes::new());
        };
        if self.block_left == 0 {
            return Ok(first);
        }
        let total = first.len() as u64 + self.block_left;
        let mut whole = BytesMut::with_capacity(usize::try_from(total).unwrap_or(usize::MAX));
        whole.extend_from_slice(&first);
        while let Some(chunk) = self.next_chunk().await? {
            whole.extend_from_slice(&chunk);
        }
        Ok(whole.freeze())
    }

    /// The rest of the current block as a stream of chunks (ending after
    /// its last byte, or with the error that stopped it).
    pub fn chunks(&mut self) -> impl Stream<Item = Result<Bytes, ReadError>> + '_ {
        futures::stream::unfold((self, false), |(reader, done)| async move {
            if done {
                return None;
            }
            match reader.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), (reader, false))),
                Ok(None) => None,
                Err(e) => Some((Err(e), (reader, true))),
            }
        })
    }

    /// Remembers a failure: every later call answers [`ReadError::Failed`].
    fn fuse<T>(&mut self, result: Result<T, ReadError>) -> Result<T, ReadError> {
        if result.is_err() {
            self.failed = true;
            self.pending = Bytes::new();
        }
        result
    }

    async fn read_frame(&mut self) -> Result<Option<DeliveryHeader>, ReadError> {
        if self.failed {
            return Err(ReadError::Failed);
        }
        while self.read_chunk().await?.is_some() {}
        let mut prefix = [0; LENGTH_LEN];
        if !self.read_exact(&mut prefix, true).await? {
            return match self.wanted.len() {
                0 => Ok(None),
                missing => Err(ReadError::Incomplete { missing }),
            };
        }
        let mut header = [0; super::frame::MAX_HEADER_LEN];
        let header = &mut header[..header_len(prefix)?];
        self.read_exact(header, false).await?;
        let header = decode_header(header)?;
        let hash = header.block_hash();
        if self.wanted.front() != Some(&hash) {
            return Err(ReadError::Unsolicited(hash));
        }
        self.wanted.pop_front();
        self.block_left = header.size;
        Ok(Some(header))
    }

    async fn read_chunk(&mut self) -> Result<Option<Bytes>, ReadError> {
        if self.failed {
            return Err(ReadError::Failed);
        }
        if self.block_left == 0 {
            return Ok(None);
        }
        if self.pending.is_empty() && !self.fill().await? {
            return Err(ReadError::Truncated);
        }
        let take = usize::try_from(self.block_left)
            .unwrap_or(usize::MAX)
            .min(self.pending.len());
        self.block_left -= take as u64;
        Ok(Some(self.pending.split_to(take)))
    }

    /// Fills `out` from the body. With `at_boundary`, a body that ends
    /// before the first byte answers false; ending anywhere else is
    /// [`ReadError::Truncated`].
    async fn read_exact(&mut self, out: &mut [u8], at_boundary: bool) -> Result<bool, ReadError> {
        let mut filled = 0;
        while filled < out.len() {
            if self.pending.is_empty() && !self.fill().await? {
                return if filled == 0 && at_boundary {
                    Ok(false)
                } else {
                    Err(ReadError::Truncated)
                };
            }
            let take = (out.len() - filled).min(self.pending.len());
            out[filled..filled + take].copy_from_slice(&self.pending.split_to(take));
            filled += take;
        }
        Ok(true)
    }

    /// Takes the body's next non-empty chunk into `pending` (which is
    /// empty); false at the body's end.
    async fn fill(&mut self) -> Result<bool, ReadError> {
        loop {
            match self.body.next().await {
                Some(Ok(chunk)) if chunk.is_empty() => {}
                Some(Ok(chunk)) => {
                    self.pending = chunk;
                    return Ok(true);
                }
                Some(Err(e)) => return Err(ReadError::Body(e.into())),
                None => return Ok(false),
            }
        }
    }
}
