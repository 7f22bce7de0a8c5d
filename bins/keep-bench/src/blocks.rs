//! The blocks a run sends, made before the clock starts.
//!
//! A block is a *base* (random bytes from a fast PRNG, shared by many
//! blocks) followed by a 16-byte *tail* (the run's seed and the block's
//! index), so every block of every run is distinct while the pool holds only
//! a few bases: 64 MiB blocks do not need 64 MiB of memory each. The MD5 of
//! a base is computed once; a block's MD5 continues a copy of that state
//! over its tail, which costs a microsecond, so neither generation nor
//! hashing shows up in the timed phase. Sending a block copies nothing: the
//! body is the shared base and the tail, as two chunks.

use bytes::Bytes;
use md5::{Digest, Md5};
use rand::{RngCore, SeedableRng};

/// Bytes at the end of each block that make it unique.
pub const TAIL_LEN: usize = 16;

/// Indices at and above this are warm-up blocks, never timed.
pub const WARMUP_BASE: u64 = 1 << 63;

/// One block: which base, its tail, its MD5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The block's index in the run.
    pub index: u64,
    /// Which base it starts with.
    pub base: usize,
    /// Its last bytes.
    pub tail: [u8; TAIL_LEN],
    /// Its MD5.
    pub md5: [u8; 16],
}

impl Block {
    /// The MD5 in hex, as locators spell it.
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }
}

/// The bases of a run and their MD5 states.
#[derive(Debug)]
pub struct Pool {
    size: u64,
    seed: u64,
    bases: Vec<Bytes>,
    states: Vec<Md5>,
}

impl Pool {
    /// A pool of `bases` random bases for blocks of `size` bytes (at least
    /// [`TAIL_LEN`]), hashed on all cores.
    pub fn new(size: u64, seed: u64, bases: usize) -> Pool {
        assert!(
            size >= TAIL_LEN as u64,
            "blocks are at least {TAIL_LEN} bytes"
        );
        let base_len = usize::try_from(size).expect("size fits in memory") - TAIL_LEN;
        let n = bases.max(1);
        let threads = std::thread::available_parallelism()
            .map_or(1, |p| p.get())
            .min(n);
        let made: Vec<(Bytes, Md5)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        (t..n)
                            .step_by(threads)
                            .map(|i| make_base(seed, i, base_len))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut per_thread: Vec<std::vec::IntoIter<(Bytes, Md5)>> = workers
                .into_iter()
                .map(|w| w.join().expect("base generator panicked").into_iter())
                .collect();
            (0..n)
                .map(|i| per_thread[i % threads].next().expect("one base per index"))
                .collect()
        });
        let (bases, states) = made.into_iter().unzip();
        Pool {
            size,
            seed,
            bases,
            states,
        }
    }

    /// The block size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The seed the bases and tails come from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How many bases the pool holds.
    pub fn bases(&self) -> usize {
        self.bases.len()
    }

    /// Block number `index` of this run.
    pub fn block(&self, index: u64) -> Block {
        let base = (index % self.bases.len() as u64) as usize;
        let tail = tail(self.seed, index);
        let mut h = self.states[base].clone();
        h.update(tail);
        Block {
            index,
            base,
            tail,
            md5: h.finalize().into(),
        }
    }

    /// The block's bytes as body chunks: the shared base, then the tail.
    pub fn chunks(&self, block: &Block) -> [Bytes; 2] {
        [
            self.bases[block.base].clone(),
            Bytes::copy_from_slice(&block.tail),
        ]
    }
}

/// A block's tail: the seed, then the index, little-endian.
pub fn tail(seed: u64, index: u64) -> [u8; TAIL_LEN] {
    let mut t = [0; TAIL_LEN];
    t[..8].copy_from_slice(&seed.to_le_bytes());
    t[8..].copy_from_slice(&index.to_le_bytes());
    t
}

/// Base number `i`: random bytes and the MD5 state after them.
fn make_base(seed: u64, i: usize, len: usize) -> (Bytes, Md5) {
    let mut rng =
        rand::rngs::SmallRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut buf = vec![0; len];
    rng.fill_bytes(&mut buf);
    let mut h = Md5::new();
    h.update(&buf);
    (Bytes::from(buf), h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_md5_is_the_md5_of_its_bytes() {
        let pool = Pool::new(4096, 7, 3);
        for i in [0, 1, 2, 3, 100, WARMUP_BASE + 1] {
            let b = pool.block(i);
            let bytes: Vec<u8> = pool.chunks(&b).concat();
            assert_eq!(bytes.len(), 4096);
            assert_eq!(<[u8; 16]>::from(Md5::digest(&bytes)), b.md5);
            assert_eq!(bytes[4096 - TAIL_LEN..], b.tail);
        }
    }

    #[test]
    fn blocks_are_distinct_and_runs_differ() {
        let pool = Pool::new(64, 1, 2);
        let other = Pool::new(64, 2, 2);
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            assert!(seen.insert(pool.block(i).md5));
            assert!(seen.insert(other.block(i).md5));
        }
    }

    #[test]
    fn same_seed_same_blocks() {
        let a = Pool::new(1000, 42, 4);
        let b = Pool::new(1000, 42, 4);
        assert_eq!(a.block(9), b.block(9));
        assert_eq!(a.bases(), 4);
        assert_ne!(a.chunks(&a.block(0))[0], a.chunks(&a.block(1))[0]);
    }

    #[test]
    fn smallest_block_is_all_tail() {
        let pool = Pool::new(TAIL_LEN as u64, 0, 1);
        let b = pool.block(5);
        assert_eq!(pool.chunks(&b).concat(), tail(0, 5));
    }
}
