//! Per-chunk BLAKE3 checksums kept beside large blocks, so a GET can verify
//! each chunk as it streams at memory speed instead of hashing the whole
//! block with MD5 (whose hash names the block, and which remains the check
//! for blocks written elsewhere, without a sidecar).
//!
//! A sidecar describes content, and blocks are content-addressed: a sidecar
//! for `<md5>` is valid for any copy of that block, so a rewrite or an
//! untrash never makes it stale.
//!
//! A sidecar is sealed (format 2): it names its block (MD5) and ends with
//! a BLAKE3 of everything before, so a sidecar cut short, left with stale
//! bytes, or made for another block by a crash reads as no sidecar (the
//! block is then checked with MD5). That is why writing one needs no
//! flush of its own. Format 1, unsealed and written with a flush by
//! earlier versions, is still read (for blocks of two chunks or more, the
//! only ones it was written for). A sidecar that decodes but does not
//! match its streamed block makes the copy look corrupt: it is moved aside
//! with it, as any failed copy is. A block of one chunk is read whole
//! first, so there the MD5 has the last word. A block served without
//! usable sums has them taken on the way, and once its MD5 has verified
//! it they are offered to its volume ([`crate::Volume::keep_sums`]).

use keep_locator::BlockHash;

/// The checksums of a block's chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSums {
    /// The chunk size the sums were taken over.
    pub chunk_size: u32,
    /// BLAKE3 of each chunk, in order (the last chunk may be shorter).
    pub hashes: Vec<[u8; 32]>,
}

/// Format 1: magic, chunk size (u32 LE), count (u32 LE), the hashes.
const MAGIC_V1: &[u8; 4] = b"KB3\x01";
/// Format 2: magic, chunk size, count, the block's MD5 (16 bytes), the
/// hashes, then the seal: the first [`SEAL_LEN`] bytes of the BLAKE3 of
/// everything before it.
const MAGIC_V2: &[u8; 4] = b"KB3\x02";
const SEAL_LEN: usize = 16;

impl ChunkSums {
    /// The sidecar file's bytes (sealed, format 2) for block `block`.
    pub fn encode(&self, block: &BlockHash) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + 32 * self.hashes.len() + SEAL_LEN);
        out.extend_from_slice(MAGIC_V2);
        out.extend_from_slice(&self.chunk_size.to_le_bytes());
        out.extend_from_slice(&(self.hashes.len() as u32).to_le_bytes());
        out.extend_from_slice(block.as_bytes());
        for h in &self.hashes {
            out.extend_from_slice(h);
        }
        let seal = blake3::hash(&out);
        out.extend_from_slice(&seal.as_bytes()[..SEAL_LEN]);
        out
    }

    /// Parses the sidecar of block `block`; `None` unless it is well
    /// formed (sealed, and for that block, in format 2) and describes a
    /// block of `size` bytes in chunks of `chunk_size`.
    pub fn decode(
        bytes: &[u8],
        size: u64,
        chunk_size: usize,
        block: &BlockHash,
    ) -> Option<ChunkSums> {
        if chunk_size == 0 {
            return None;
        }
        let (counts, body) = if let Some(rest) = bytes.strip_prefix(MAGIC_V1) {
            // Format 1 was only written for blocks of two chunks or more;
            // a one-chunk block trusts only a sealed sidecar.
            if size <= chunk_size as u64 {
                return None;
            }
            (rest.get(..8)?, rest.get(8..)?)
        } else {
            let sealed_len = bytes.len().checked_sub(SEAL_LEN)?;
            let (sealed, seal) = bytes.split_at(sealed_len);
            if blake3::hash(sealed).as_bytes()[..SEAL_LEN] != *seal {
                return None;
            }
            let rest = sealed.strip_prefix(MAGIC_V2)?;
            if rest.get(8..24)? != block.as_bytes() {
                return None;
            }
            (rest.get(..8)?, rest.get(24..)?)
        };
        let cs = u32::from_le_bytes(counts[..4].try_into().ok()?);
        let n = u32::from_le_bytes(counts[4..].try_into().ok()?) as usize;
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
            let block = BlockHash::of(&data);
            let back = ChunkSums::decode(&sums.encode(&block), data.len() as u64, chunk, &block);
            prop_assert_eq!(back, Some(sums));
        }
    }

    #[test]
    fn decode_refuses_mismatches() {
        let mut s = ChunkSummer::new(4);
        s.update(b"0123456789");
        let sums = s.finish();
        let block = BlockHash::of(b"0123456789");
        let bytes = sums.encode(&block);
        let decode = |b: &[u8], size, chunk| ChunkSums::decode(b, size, chunk, &block);
        assert!(decode(&bytes, 10, 4).is_some());
        assert!(decode(&bytes, 13, 4).is_none(), "another size");
        assert!(decode(&bytes, 10, 5).is_none(), "another chunk size");
        assert!(
            ChunkSums::decode(&bytes, 10, 4, &BlockHash::of(b"other")).is_none(),
            "another block's"
        );
        assert!(decode(b"garbage", 10, 4).is_none());
        assert!(!sums.check(0, b"0124"));
    }

    proptest! {
        /// What a crash can leave of a sealed sidecar (cut short, or with
        /// any byte changed) reads as no sidecar.
        #[test]
        fn a_damaged_sidecar_is_no_sidecar(cut in 0usize..200, at in 0usize..200, flip in 1u8..=255) {
            let mut s = ChunkSummer::new(4);
            s.update(b"0123456789");
            let block = BlockHash::of(b"0123456789");
            let bytes = s.finish().encode(&block);
            let cut = cut % bytes.len();
            prop_assert!(ChunkSums::decode(&bytes[..cut], 10, 4, &block).is_none());
            let mut changed = bytes.clone();
            changed[at % bytes.len()] ^= flip;
            prop_assert!(ChunkSums::decode(&changed, 10, 4, &block).is_none());
        }
    }

    /// Sidecars written by earlier versions (format 1, unsealed) still
    /// count.
    #[test]
    fn format_1_is_still_read() {
        let mut s = ChunkSummer::new(4);
        s.update(b"0123456789");
        let sums = s.finish();
        let mut v1 = b"KB3\x01".to_vec();
        v1.extend_from_slice(&4u32.to_le_bytes());
        v1.extend_from_slice(&3u32.to_le_bytes());
        for h in &sums.hashes {
            v1.extend_from_slice(h);
        }
        let block = BlockHash::of(b"0123456789");
        assert_eq!(ChunkSums::decode(&v1, 10, 4, &block), Some(sums));
        assert!(ChunkSums::decode(&v1[..v1.len() - 1], 10, 4, &block).is_none());
        // Never written for a block of one chunk: not trusted there.
        let mut one = b"KB3\x01".to_vec();
        one.extend_from_slice(&16u32.to_le_bytes());
        one.extend_from_slice(&1u32.to_le_bytes());
        one.extend_from_slice(blake3::hash(b"0123456789").as_bytes());
        assert!(ChunkSums::decode(&one, 10, 16, &block).is_none());
        assert!(
            ChunkSums::decode(&v1, 10, 0, &block).is_none(),
            "no chunk size 0"
        );
    }
}
