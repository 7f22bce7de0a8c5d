//! Incremental content checks: the MD5 of a block's bytes as they stream
//! past, compared with the hash that names the block.

use bytes::Bytes;
use keep_locator::{BlockHash, Md5Hasher};

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
        self.len += chunk.len() as u64;
        if chunk.len() < OFFLOAD_AT {
            self.hasher.update(chunk);
            return;
        }
        let mut hasher = std::mem::take(&mut self.hasher);
        let chunk = chunk.clone();
        let done = tokio::task::spawn_blocking(move || {
            hasher.update(&chunk);
            hasher
        });
        self.hasher = match done.await {
            Ok(h) => h,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
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
}
