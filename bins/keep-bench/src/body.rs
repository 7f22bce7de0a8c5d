//! Request bodies made of shared chunks, and what a client keeps of a
//! response body.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::blocks::TAIL_LEN;

/// A request body sent as the given chunks, without copying them; its
/// exact length is known, so it goes out with a `Content-Length`.
#[derive(Debug, Default)]
pub struct ChunksBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl ChunksBody {
    /// A body of these chunks, in order.
    pub fn new(chunks: impl IntoIterator<Item = Bytes>) -> ChunksBody {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        ChunksBody { chunks, remaining }
    }

    /// No body.
    pub fn empty() -> ChunksBody {
        ChunksBody::default()
    }
}

impl http_body::Body for ChunksBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.chunks.pop_front().map(|c| {
            this.remaining -= c.len() as u64;
            Ok(Frame::data(c))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Counts a response body's bytes and keeps its last [`TAIL_LEN`], which
/// name the block (see [`crate::blocks`]): a cheap check, inside the timed
/// path, that the right block came back.
#[derive(Debug, Default, Clone)]
pub struct TailTracker {
    last: [u8; TAIL_LEN],
    total: u64,
}

impl TailTracker {
    /// Takes the next piece of the body.
    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        if data.len() >= TAIL_LEN {
            self.last.copy_from_slice(&data[data.len() - TAIL_LEN..]);
        } else {
            self.last.rotate_left(data.len());
            self.last[TAIL_LEN - data.len()..].copy_from_slice(data);
        }
    }

    /// Bytes seen.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The last [`TAIL_LEN`] bytes, once there are that many.
    pub fn tail(&self) -> Option<[u8; TAIL_LEN]> {
        (self.total >= TAIL_LEN as u64).then_some(self.last)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[test]
    fn tail_across_pieces_of_any_size() {
        let data: Vec<u8> = (0..100u8).collect();
        for cut in [1, 3, 15, 16, 17, 40] {
            let mut t = TailTracker::default();
            for piece in data.chunks(cut) {
                t.push(piece);
            }
            assert_eq!(t.total(), 100);
            assert_eq!(
                t.tail().unwrap()[..],
                data[100 - TAIL_LEN..],
                "pieces of {cut}"
            );
        }
        let mut short = TailTracker::default();
        short.push(&data[..10]);
        assert_eq!(short.tail(), None);
    }

    #[tokio::test]
    async fn body_yields_its_chunks_with_an_exact_length() {
        let body = ChunksBody::new([
            Bytes::from_static(b"abc"),
            Bytes::new(),
            Bytes::from_static(b"de"),
        ]);
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        assert!(!http_body::Body::is_end_stream(&body));
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(&got[..], b"abcde");
        assert!(http_body::Body::is_end_stream(&ChunksBody::empty()));
    }
}
