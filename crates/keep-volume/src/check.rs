//! Incremental content checks: the MD5 of a block's bytes as they stream
//! past, compared with the hash that names the block.

use bytes::Bytes;
use keep_locator::{BlockHash, Md5Hasher};

use crate::frames::Frames;

/// Chunks at least this large are hashed on a blocking thread so the async
/// workers stay responsive.
const OFFLOAD_AT: usize = 128 << 10;

/// The running MD5 of a block's bytes.
#[derive(Clone, Default)]
pub struct ContentCheck {
    hasher: Md5Hasher,
    len: u64,
}

impl std::fmt::Debug for ContentCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentCheck")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl ContentCheck {
    /// A check over no bytes yet.
    pub fn new() -> Self {
        ContentCheck::default()
    }

    /// Adds a chunk; large chunks are hashed on a blocking thread.
    pub async fn update(&mut self, chunk: &Bytes) {
        self.feed(chunk.len(), chunk.clone(), |h, c| h.update(c))
            .await;
    }

    /// Adds a batch of frames and hands them back; large batches are
    /// hashed on a blocking thread.
    pub async fn update_frames(&mut self, frames: Frames) -> Frames {
        self.feed(frames.len(), frames, |h, f| {
            for p in f.parts() {
                h.update(p);
            }
        })
        .await
    }

    /// Hashes `len` bytes held by `data` with `hash`, on a blocking thread
    /// from [`OFFLOAD_AT`] bytes up, and hands `data` back.
    async fn feed<T: Send + 'static>(
        &mut self,
        len: usize,
        mut data: T,
        hash: fn(&mut Md5Hasher, &mut T),
    ) -> T {
        self.len += len as u64;
        if len < OFFLOAD_AT {
            hash(&mut self.hasher, &mut data);
            return data;
        }
        let mut hasher = std::mem::take(&mut self.hasher);
        let done = tokio::task::spawn_blocking(move || {
            hash(&mut hasher, &mut data);
            (hasher, data)
        });
        let (hasher, data) = match done.await {
            Ok(done) => done,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        self.hasher = hasher;
        data
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hash of everything seen.
    pub fn finish(self) -> BlockHash {
        self.hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn matches_one_shot_md5_across_offload_boundary() {
        let data = Bytes::from(vec![7u8; 3 * OFFLOAD_AT + 1]);
        let mut check = ContentCheck::new();
        check.update(&data.slice(..10)).await;
        check.update(&data.slice(10..)).await;
        assert_eq!(check.len(), data.len() as u64);
        assert_eq!(check.finish(), BlockHash::of(&data));
    }

    #[tokio::test]
    async fn frames_hash_like_one_buffer_on_both_sides_of_offload() {
        let data = Bytes::from((0..3 * OFFLOAD_AT + 5).map(|i| i as u8).collect::<Vec<_>>());
        let mut check = ContentCheck::new();
        for range in [0..7, 7..OFFLOAD_AT, OFFLOAD_AT..data.len()] {
            let mut frames = Frames::new();
            frames.push(data.slice(range.start..range.start + (range.end - range.start) / 2));
            frames.push(data.slice(range.start + (range.end - range.start) / 2..range.end));
            let back = check.update_frames(frames).await;
            assert_eq!(
                back.len(),
                range.end - range.start,
                "frames come back whole"
            );
        }
        assert_eq!(check.len(), data.len() as u64);
        assert_eq!(check.finish(), BlockHash::of(&data));
    }
}
