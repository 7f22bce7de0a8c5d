//! The journal's on-disk format: a header, then records.
//!
//! Header (the first [`HEADER_LEN`] bytes): `KJH1`, the generation (u64
//! LE), zeros. Record: `KJR1`, the generation it was written in (u64 LE),
//! the data length (u32 LE), the block's MD5 (16 bytes), the data. Only
//! records of the header's generation count; a checkpoint raises it.

use keep_locator::BlockHash;

const HEADER_MAGIC: &[u8; 4] = b"KJH1";
const RECORD_MAGIC: &[u8; 4] = b"KJR1";

/// Records start here.
pub(crate) const HEADER_LEN: u64 = 4096;

/// The bytes of a record before its data.
pub(crate) const RECORD_HEAD: usize = 4 + 8 + 4 + 16;

/// The header's first bytes (the rest of [`HEADER_LEN`] stays zero).
pub(crate) fn header(generation: u64) -> [u8; 12] {
    let mut head = [0u8; 12];
    head[..4].copy_from_slice(HEADER_MAGIC);
    head[4..].copy_from_slice(&generation.to_le_bytes());
    head
}

/// The generation in a header, if it is one.
pub(crate) fn parse_header(head: &[u8; 12]) -> Option<u64> {
    let generation = head.strip_prefix(HEADER_MAGIC)?;
    Some(u64::from_le_bytes(generation.try_into().ok()?))
}

/// Appends the record of `data` (block `hash`) to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, generation: u64, hash: &BlockHash, data: &[u8]) {
    out.extend_from_slice(RECORD_MAGIC);
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(data);
}

/// A record's hash and data length, if `head` starts a record of
/// `generation`. The data must still be checked against the hash.
pub(crate) fn parse_head(head: &[u8; RECORD_HEAD], generation: u64) -> Option<(BlockHash, usize)> {
    let rest = head.strip_prefix(RECORD_MAGIC)?;
    let (g, rest) = rest.split_at(8);
    let (len, hash) = rest.split_at(4);
    if u64::from_le_bytes(g.try_into().ok()?) != generation {
        return None;
    }
    let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
    Some((BlockHash::from_bytes(hash.try_into().ok()?), len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn records_round_trip_and_other_generations_do_not_parse(
            generation in any::<u64>(),
            data in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let hash = BlockHash::of(&data);
            let mut out = Vec::new();
            encode(&mut out, generation, &hash, &data);
            prop_assert_eq!(out.len(), RECORD_HEAD + data.len());
            let head: [u8; RECORD_HEAD] = out[..RECORD_HEAD].try_into().unwrap();
            prop_assert_eq!(parse_head(&head, generation), Some((hash, data.len())));
            prop_assert_eq!(parse_head(&head, generation.wrapping_add(1)), None);
            prop_assert_eq!(&out[RECORD_HEAD..], &data[..]);
            prop_assert_eq!(parse_header(&header(generation)), Some(generation));
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), RECORD_HEAD..=RECORD_HEAD)) {
            let head: [u8; RECORD_HEAD] = bytes[..].try_into().unwrap();
            let _ = parse_head(&head, 0);
            let h: [u8; 12] = bytes[..12].try_into().unwrap();
            let _ = parse_header(&h);
        }
    }
}
