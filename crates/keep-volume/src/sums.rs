//! Per-chunk BLAKE3 checksums kept beside large blocks, so a GET can verify
//! each chunk as it streams at memory speed instead of hashing the whole
//! block with MD5 (whose hash names the block, and which remains the check
//! for blocks written elsewhere, without a sidecar).
//!
//! A sidecar describes content, and blocks are content-addressed: a sidecar
//! for `<md5>` is valid for any copy of that block, so a rewrite or an
//! untrash never makes it stale. A corrupt sidecar makes its block look
//! corrupt: the copy is moved aside with it, as any failed copy is.

/// The checksums of a block's chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSums {
    /// The chunk size the sums were taken over.
    pub chunk_size: u32,
    /// BLAKE3 of each chunk, in order (the last chunk may be shorter).
    pub hashes: Vec<[u8; 32]>,
}

const MAGIC: &[u8; 4] = b"KB3\x01";

impl ChunkSums {
    /// The sidecar file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + 32 * self.hashes.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.chunk_size.to_le_bytes());
        out.extend_from_slice(&(self.hashes.len() as u32).to_le_bytes());
        for h in &self.hashes {
            out.extend_from_slice(h);
        }
        out
    }

    /// Parses a sidecar; `None` unless it is well formed and describes a
    /// block of `size` bytes in chunks of `chunk_size`.
    pub fn decode(bytes: &[u8], size: u64, chunk_size: usize) -> Option<ChunkSums> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let cs = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        let n = u32::from_le_bytes(rest.get(4..8)?.try_into().ok()?) as usize;
        let body = rest.get(8..)?;
        if cs as usize != chunk_size
            || body.len() != 32 * n
            || n as u64 != size.div_ceil(chunk_size as u64)
        {
            return None;
        }
        let hashes = body
            .chunks_exact(32)
            .map(|c| c.try_into().unwrap_or([0; 32]))
            .collect();
        Some(ChunkSums {
            chunk_size: cs,
            hashes,
        })
    }

    /// Whether chunk `index` has these bytes.
    pub fn check(&self, index: usize, chunk: &[u8]) -> bool {
        self.hashes
            .get(index)
            .is_some_and(|h| blake3::hash(chunk).as_bytes() == h)
    }
}

/// Takes BLAKE3 sums over fixed-size chunks of bytes that arrive in pieces
/// of any size.
#[derive(Debug, Clone)]
pub struct ChunkSummer {
    chunk_size: usize,
    hasher: blake3::Hasher,
    filled: usize,
    hashes: Vec<[u8; 32]>,
}

impl ChunkSummer {
    /// A summer over chunks of `chunk_size` bytes.
    pub fn new(chunk_size: usize) -> Self {
        ChunkSummer {
            chunk_size,
            hasher: blake3::Hasher::new(),
            filled: 0,
            hashes: Vec::new(),
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (self.chunk_size - self.filled).min(data.len());
            self.hasher.update(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == self.chunk_size {
                self.hashes.push(*self.hasher.finalize().as_bytes());
                self.hasher.reset();
                self.filled = 0;
            }
        }
    }

    /// The sums, the last (partial) chunk included.
    pub fn finish(mut self) -> ChunkSums {
        if self.filled > 0 {
            self.hashes.push(*self.hasher.finalize().as_bytes());
        }
        ChunkSums {
            chunk_size: self.chunk_size as u32,
            hashes: self.hashes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the pieces, the sums are those of the fixed chunks, and
        /// they survive encoding.
        #[test]
        fn sums_do_not_depend_on_how_bytes_arrive(data in proptest::collection::vec(any::<u8>(), 0..5000),
                                                   cuts in proptest::collection::vec(1usize..700, 0..12),
                                                   chunk in 1usize..900) {
            let mut s = ChunkSummer::new(chunk);
            let mut rest = &data[..];
            for cut in cuts {
                let n = cut.min(rest.len());
                s.update(&rest[..n]);
                rest = &rest[n..];
            }
            s.update(rest);
            let sums = s.finish();
            let expected: Vec<[u8; 32]> = data.chunks(chunk).map(|c| *blake3::hash(c).as_bytes()).collect();
            prop_assert_eq!(&sums.hashes, &expected);
            for (i, c) in data.chunks(chunk).enumerate() {
                prop_assert!(sums.check(i, c));
            }
            let back = ChunkSums::decode(&sums.encode(), data.len() as u64, chunk);
            prop_assert_eq!(back, Some(sums));
        }
    }

    #[test]
    fn decode_refuses_mismatches() {
        let mut s = ChunkSummer::new(4);
        s.update(b"0123456789");
        let sums = s.finish();
        let bytes = sums.encode();
        assert!(ChunkSums::decode(&bytes, 10, 4).is_some());
        assert!(ChunkSums::decode(&bytes, 13, 4).is_none(), "another size");
        assert!(
            ChunkSums::decode(&bytes, 10, 5).is_none(),
            "another chunk size"
        );
        assert!(
            ChunkSums::decode(&bytes[..bytes.len() - 1], 10, 4).is_none(),
            "truncated"
        );
        assert!(ChunkSums::decode(b"garbage", 10, 4).is_none());
        assert!(!sums.check(0, b"0124"));
    }
}
