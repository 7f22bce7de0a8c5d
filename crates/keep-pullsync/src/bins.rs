//! Bins: the hash space cut into [`BINS`] parts by the first hex digit of a
//! block's MD5.
//!
//! A node's [pull index](crate::PullIndex) numbers the blocks of each bin on
//! their own (BinIDs), and a puller keeps one cursor and one record of synced
//! intervals per (peer, bin). Live sync holds one long poll open per (peer,
//! bin).
//!
//! # Why 16
//!
//! Cursors and live long polls are per (peer, bin), so the number of bins
//! multiplies everything an idle cluster keeps open and exchanges: with 16
//! bins and 3 peers a node holds 48 long polls, where Swarm's 256 bins would
//! make it 768, and a cursor exchange carries 16 numbers. Sixteen is still
//! enough for a puller to work on several bins of one peer at once (after a
//! restart, or when a peer joins with many blocks).
//!
//! Which node should hold a block is decided per block (rendezvous order of
//! the block's hash over the nodes), not per bin: bins are only a partition
//! of the index for cursors and parallelism, and a bin holds blocks that
//! belong on every node.

use keep_locator::BlockHash;

/// How many bins the hash space is cut into.
pub const BINS: usize = 16;

/// The bin of a block: the first hex digit of its MD5, `0..BINS`.
pub fn bin_of(hash: &BlockHash) -> u8 {
    hash.as_bytes()[0] >> 4
}

/// Whether `bin` names one of the [`BINS`] bins (a bin from the wire may not).
pub fn is_bin(bin: u8) -> bool {
    usize::from(bin) < BINS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_is_the_first_hex_digit() {
        for digit in 0..16u8 {
            let hex = format!("{digit:x}{}", "0".repeat(31));
            let hash = BlockHash::from_hex(&hex).unwrap();
            assert_eq!(bin_of(&hash), digit, "{hex}");
        }
        let h = BlockHash::of(b"foo"); // acbd18db...
        assert_eq!(bin_of(&h), 0xa);
        assert_eq!(
            u32::from(bin_of(&h)),
            h.to_hex().chars().next().unwrap().to_digit(16).unwrap()
        );
    }

    #[test]
    fn every_hash_falls_in_a_bin() {
        for i in 0..1000u32 {
            assert!(is_bin(bin_of(&BlockHash::of(&i.to_le_bytes()))));
        }
        assert!(is_bin(15));
        assert!(!is_bin(16));
        assert!(!is_bin(255));
    }
}
