//! The frame reader on its own: framing, order, truncation, and no panic
//! on any bytes.

use std::convert::Infallible;

use bytes::Bytes;
use futures::executor::block_on;
use futures::stream;
use keep_locator::BlockHash;
use proptest::prelude::*;

use crate::serve::frame::{LENGTH_LEN, MAX_HEADER_LEN, encode_header};
use crate::serve::{FrameReader, ReadError};
use crate::wire::DeliveryHeader;

type Body = stream::Iter<std::vec::IntoIter<Result<Bytes, Infallible>>>;

/// The frames of `blocks` (`None`: missing), as one body.
fn frames(blocks: &[(BlockHash, Option<&[u8]>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (hash, data) in blocks {
        match data {
            Some(data) => {
                out.extend(encode_header(&DeliveryHeader::present(
                    *hash,
                    data.len() as u64,
                )));
                out.extend_from_slice(data);
            }
            None => out.extend(encode_header(&DeliveryHeader::missing(*hash))),
        }
    }
    out
}

/// `bytes` as a body cut into pieces of `cut` bytes (the last shorter).
fn body(bytes: &[u8], cut: usize) -> Body {
    let pieces: Vec<Result<Bytes, Infallible>> = bytes
        .chunks(cut.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(pieces)
}

/// Reads every frame, each block whole.
fn read_all(mut reader: FrameReader<Body>) -> Result<Vec<(DeliveryHeader, Bytes)>, ReadError> {
    block_on(async {
        let mut out = Vec::new();
        while let Some(header) = reader.next_frame().await? {
            out.push((header, reader.read_block().await?));
        }
        Ok(out)
    })
}

fn h(data: &[u8]) -> BlockHash {
    BlockHash::of(data)
}

#[test]
fn frames_come_back_whatever_the_cuts() {
    let (a, b, c) = (b"first".as_slice(), b"".as_slice(), vec![7u8; 5000]);
    let blocks = [
        (h(a), Some(a)),
        (h(b"gone"), None),
        (h(b), Some(b)),
        (h(&c), Some(&c[..])),
    ];
    let bytes = frames(&blocks);
    let wanted: Vec<BlockHash> = blocks.iter().map(|(h, _)| *h).collect();
    for cut in [1, 2, 3, 7, 64, 1000, bytes.len()] {
        let got = read_all(FrameReader::new(body(&bytes, cut), wanted.clone())).unwrap();
        assert_eq!(got.len(), 4, "cut {cut}");
        for ((header, data), (hash, want)) in got.iter().zip(&blocks) {
            assert_eq!(header.block_hash(), *hash);
            assert_eq!(header.present, want.is_some());
            assert_eq!(&data[..], want.unwrap_or_default());
        }
    }
}

#[test]
fn chunks_stream_a_block_and_next_frame_skips_the_rest() {
    let big = vec![1u8; 10_000];
    let blocks = [
        (h(&big), Some(&big[..])),
        (h(b"small"), Some(b"small".as_slice())),
    ];
    let bytes = frames(&blocks);
    let mut reader = FrameReader::new(body(&bytes, 999), [h(&big), h(b"small")]);
    block_on(async {
        use futures::StreamExt;
        reader.next_frame().await.unwrap().unwrap();
        let sizes: Vec<usize> = reader.chunks().map(|c| c.unwrap().len()).collect().await;
        assert_eq!(sizes.iter().sum::<usize>(), big.len());
        assert!(sizes.iter().all(|&s| s <= 999));
        assert_eq!(reader.block_left(), 0);
        assert_eq!(reader.frames_left(), 1);
        reader.next_frame().await.unwrap().unwrap();
        assert_eq!(reader.next_chunk().await.unwrap().unwrap(), "small");
        assert!(reader.next_frame().await.unwrap().is_none());
    });
    // One chunk of the big block read: the next frame skips the rest.
    let head = encode_header(&DeliveryHeader::present(h(&big), 10_000)).len();
    let mut skipping = FrameReader::new(body(&bytes, 100), [h(&big), h(b"small")]);
    block_on(async {
        skipping.next_frame().await.unwrap().unwrap();
        assert_eq!(
            skipping.next_chunk().await.unwrap().unwrap().len(),
            100 - head
        );
        let second = skipping.next_frame().await.unwrap().unwrap();
        assert_eq!(second.block_hash(), h(b"small"));
    });
}

#[test]
fn frames_out_of_order_or_not_wanted_are_unsolicited() {
    let (a, b) = (b"a".as_slice(), b"b".as_slice());
    let bytes = frames(&[(h(a), Some(a)), (h(b), Some(b))]);
    let swapped = read_all(FrameReader::new(body(&bytes, 3), [h(b), h(a)]));
    assert!(matches!(swapped, Err(ReadError::Unsolicited(x)) if x == h(a)));
    let extra = read_all(FrameReader::new(body(&bytes, 3), [h(a)]));
    assert!(matches!(extra, Err(ReadError::Unsolicited(x)) if x == h(b)));
    let twice = frames(&[(h(a), Some(a)), (h(a), Some(a))]);
    let dup = read_all(FrameReader::new(body(&twice, 3), [h(a), h(b)]));
    assert!(matches!(dup, Err(ReadError::Unsolicited(x)) if x == h(a)));
}

#[test]
fn a_body_that_stops_short_is_refused() {
    let data = vec![9u8; 300];
    let bytes = frames(&[(h(&data), Some(&data[..]))]);
    for len in 1..bytes.len() {
        let got = read_all(FrameReader::new(body(&bytes[..len], 50), [h(&data)]));
        assert!(
            matches!(got, Err(ReadError::Truncated)),
            "at {len}: {got:?}"
        );
    }
    let nothing = read_all(FrameReader::new(body(&[], 1), [h(&data), h(b"x")]));
    assert!(matches!(nothing, Err(ReadError::Incomplete { missing: 2 })));
    let one = read_all(FrameReader::new(body(&bytes, 50), [h(&data), h(b"x")]));
    assert!(matches!(one, Err(ReadError::Incomplete { missing: 1 })));
}

#[test]
fn broken_frames_are_refused_and_the_reader_stays_failed() {
    let hash = h(b"x");
    let mut too_long = ((MAX_HEADER_LEN + 1) as u32).to_le_bytes().to_vec();
    too_long.extend(vec![0; MAX_HEADER_LEN + 1]);
    let zero = 0u32.to_le_bytes().to_vec();
    let mut sized_missing = DeliveryHeader::missing(hash);
    sized_missing.size = 1;
    let mut huge = DeliveryHeader::present(hash, 0);
    huge.size = (64 << 20) + 1;
    for bad in [
        too_long,
        zero,
        encode_header(&sized_missing).to_vec(),
        encode_header(&huge).to_vec(),
    ] {
        let mut reader = FrameReader::new(body(&bad, 5), [hash]);
        block_on(async {
            assert!(matches!(
                reader.next_frame().await,
                Err(ReadError::BadFrame(_))
            ));
            assert!(matches!(reader.next_frame().await, Err(ReadError::Failed)));
            assert!(matches!(reader.next_chunk().await, Err(ReadError::Failed)));
        });
    }
    let mut garbage = 3u32.to_le_bytes().to_vec();
    garbage.extend([0xff, 0, 0]);
    let got = read_all(FrameReader::new(body(&garbage, 5), [hash]));
    assert!(matches!(got, Err(ReadError::Wire(_))), "{got:?}");
}

#[test]
fn the_body_error_is_passed_on() {
    let bytes = frames(&[(h(b"abc"), Some(b"abc".as_slice()))]);
    let pieces: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::copy_from_slice(&bytes[..LENGTH_LEN + 3])),
        Err(std::io::Error::other("connection reset")),
    ];
    let mut reader = FrameReader::new(stream::iter(pieces), [h(b"abc")]);
    let got = block_on(reader.next_frame());
    assert!(matches!(got, Err(ReadError::Body(e)) if e.to_string() == "connection reset"));
}

proptest! {
    #[test]
    fn the_reader_never_panics_on_any_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        cut in 1usize..64,
        wanted in prop::collection::vec(0u8..4, 0..4),
    ) {
        let wanted: Vec<BlockHash> = wanted.iter().map(|i| h(&[*i])).collect();
        let _ = read_all(FrameReader::new(body(&bytes, cut), wanted));
    }

    #[test]
    fn the_reader_never_panics_on_damaged_frames(
        blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 0..4),
        flip in any::<prop::sample::Index>(),
        xor in 1u8..,
        cut in 1usize..64,
    ) {
        let blocks: Vec<(BlockHash, Option<&[u8]>)> =
            blocks.iter().map(|b| (h(b), Some(&b[..]))).collect();
        let wanted: Vec<BlockHash> = blocks.iter().map(|(h, _)| *h).collect();
        let mut bytes = frames(&blocks);
        let clean = read_all(FrameReader::new(body(&bytes, cut), wanted.clone())).unwrap();
        prop_assert_eq!(clean.len(), blocks.len());
        if !bytes.is_empty() {
            let i = flip.index(bytes.len());
            bytes[i] ^= xor;
        }
        if let Ok(got) = read_all(FrameReader::new(body(&bytes, cut), wanted)) {
            // Only a block's bytes can change unnoticed here (the store
            // checks those): never the frames' hashes or count.
            prop_assert_eq!(got.len(), blocks.len());
            for ((header, _), (hash, _)) in got.iter().zip(&blocks) {
                prop_assert_eq!(header.block_hash(), *hash);
            }
        }
    }
}
