use std::fmt::Debug;

use keep_locator::BlockHash;
use proptest::prelude::*;

use super::*;
use crate::bitvector::BitVector;
use crate::index::IndexEntry;

/// Encodes, checks the version byte, decodes back; then every proper prefix
/// is truncated and one byte more is trailing.
fn round_trip<M: WireMessage + PartialEq + Debug>(msg: &M) {
    let bytes = encode(msg).unwrap();
    assert_eq!(bytes[0], PROTOCOL);
    assert_eq!(&decode::<M>(&bytes).unwrap(), msg);
    for cut in 0..bytes.len() {
        assert!(
            matches!(decode::<M>(&bytes[..cut]), Err(WireError::Truncated)),
            "{msg:?} cut at {cut}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        decode::<M>(&long),
        Err(WireError::TrailingBytes(1))
    ));
    let (back, read) = decode_prefix::<M>(&long).unwrap();
    assert_eq!((&back, read), (msg, bytes.len()));
}

fn offer(n: usize) -> Offer {
    Offer {
        epoch: 7,
        ruid: 0xdead_beef,
        topmost: u64::MAX - 1,
        entries: (0..n)
            .map(|i| OfferEntry {
                hash: *BlockHash::of(&i.to_le_bytes()).as_bytes(),
                size: 64 << 20,
                bin_id: u64::MAX - i as u64,
            })
            .collect(),
    }
}

#[test]
fn cursors_reply_round_trips() {
    round_trip(&CursorsReply {
        epoch: 0x0123_4567_89ab_cdef,
        cursors: (0..16).map(|i| i * 1000).collect(),
    });
    round_trip(&CursorsReply {
        epoch: 1,
        cursors: vec![],
    });
}

#[test]
fn offer_request_round_trips() {
    round_trip(&OfferRequest {
        bin: 15,
        from: 1,
        to: OfferRequest::LIVE,
        limit: 250,
    });
    round_trip(&OfferRequest {
        bin: 0,
        from: 0,
        to: 0,
        limit: 0,
    });
}

#[test]
fn offer_round_trips() {
    round_trip(&offer(0));
    round_trip(&offer(3));
    let e = IndexEntry {
        hash: BlockHash::of(b"foo"),
        size: 3,
        bin_id: 7,
    };
    let entry = OfferEntry::from(e);
    assert_eq!(entry.block_hash(), e.hash);
    assert_eq!((entry.size, entry.bin_id), (3, 7));
}

#[test]
fn want_round_trips() {
    let mut bits = BitVector::new(13);
    bits.set(0).unwrap();
    bits.set(12).unwrap();
    round_trip(&Want { ruid: 9, bits });
    round_trip(&Want {
        ruid: 0,
        bits: BitVector::new(0),
    });
}

#[test]
fn cancel_and_delivery_header_round_trip() {
    round_trip(&Cancel { ruid: u32::MAX });
    let h = DeliveryHeader::present(BlockHash::of(b"block"), 64 << 20);
    round_trip(&h);
    assert_eq!(h.block_hash(), BlockHash::of(b"block"));
    let gone = DeliveryHeader::missing(BlockHash::of(b"gone"));
    round_trip(&gone);
    assert_eq!((gone.size, gone.present), (0, false));
}

#[test]
fn a_delivery_frame_is_a_header_then_raw_bytes() {
    let data = b"the block's bytes";
    let header = DeliveryHeader::present(BlockHash::of(data), data.len() as u64);
    let mut frames = encode(&header).unwrap();
    frames.extend_from_slice(data);
    frames.extend(encode(&Cancel { ruid: 1 }).unwrap());
    let (got, used) = decode_prefix::<DeliveryHeader>(&frames).unwrap();
    assert_eq!(got, header);
    let body = &frames[used..used + data.len()];
    assert_eq!(body, data);
    assert_eq!(BlockHash::of(body), got.block_hash());
}

#[test]
fn an_unknown_version_is_refused() {
    let mut bytes = encode(&Cancel { ruid: 5 }).unwrap();
    bytes[0] = 2;
    assert!(matches!(
        decode::<Cancel>(&bytes),
        Err(WireError::Version(2))
    ));
    assert!(matches!(decode::<Cancel>(&[0]), Err(WireError::Version(0))));
    assert!(matches!(decode::<Cancel>(&[]), Err(WireError::Truncated)));
}

#[test]
fn oversized_lengths_are_refused_before_allocating() {
    // An offer (epoch 1, ruid 1, topmost 1) claiming 2^60 entries in a few bytes.
    let mut bytes = vec![PROTOCOL, 1, 1, 1, 0xfd];
    bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(decode::<Offer>(&bytes), Err(WireError::TooLarge)));
    // A cursors reply claiming a little more than the limit allows.
    let mut bytes = vec![PROTOCOL, 1, 0xfd];
    bytes.extend_from_slice(&((DECODE_LIMIT / 8 + 1) as u64).to_le_bytes());
    assert!(matches!(
        decode::<CursorsReply>(&bytes),
        Err(WireError::TooLarge)
    ));
    // Input longer than a frame is refused before decoding.
    let mut huge = encode(&Cancel { ruid: 1 }).unwrap();
    huge.resize(MAX_MESSAGE_LEN + 1, 0);
    assert!(matches!(decode::<Cancel>(&huge), Err(WireError::TooLarge)));
}

#[test]
fn the_largest_offer_fits_and_a_larger_one_is_refused() {
    let max = usize::try_from(MAX_OFFER_ENTRIES).unwrap();
    let bytes = encode(&offer(max)).unwrap();
    assert!(bytes.len() <= MAX_MESSAGE_LEN);
    assert_eq!(decode::<Offer>(&bytes).unwrap(), offer(max));
    assert!(matches!(
        encode(&offer(MAX_MESSAGE_LEN / 16)),
        Err(WireError::TooLarge)
    ));
    // The largest cursors reply the encoder accepts decodes (the worst
    // ratio of memory to bytes: one-byte varints decoded to u64s).
    let n = MAX_MESSAGE_LEN - 1 - 1 - 5; // version, epoch, length prefix
    let reply = CursorsReply {
        epoch: 0,
        cursors: vec![0; n],
    };
    let bytes = encode(&reply).unwrap();
    assert_eq!(decode::<CursorsReply>(&bytes).unwrap(), reply);
}

#[test]
fn a_want_with_bits_past_its_length_is_invalid() {
    let mut bits = BitVector::new(3);
    bits.set(2).unwrap();
    let mut bytes = encode(&Want { ruid: 1, bits }).unwrap();
    // The last byte is the vector's only byte: set bit 3, past the length.
    *bytes.last_mut().unwrap() |= 0b1000;
    assert!(matches!(decode::<Want>(&bytes), Err(WireError::Invalid(_))));
}

#[test]
fn a_malformed_integer_is_invalid_not_truncated() {
    // A varint tag bincode does not define (0xff) where the u32 starts.
    let bytes = [PROTOCOL, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        decode::<Cancel>(&bytes),
        Err(WireError::Invalid(_))
    ));
}

fn offer_strategy() -> impl Strategy<Value = Offer> {
    (
        any::<u32>(),
        any::<u64>(),
        prop::collection::vec(
            (any::<[u8; 16]>(), any::<u64>(), any::<u64>())
                .prop_map(|(hash, size, bin_id)| OfferEntry { hash, size, bin_id }),
            0..40,
        ),
    )
        .prop_map(|(ruid, topmost, entries)| Offer {
            epoch: u64::from(ruid) << 3,
            ruid,
            topmost,
            entries,
        })
}

proptest! {
    #[test]
    fn random_offers_round_trip(o in offer_strategy()) {
        let bytes = encode(&o).unwrap();
        prop_assert_eq!(decode::<Offer>(&bytes).unwrap(), o);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        body in prop::collection::vec(any::<u8>(), 0..64),
        version in prop_oneof![Just(PROTOCOL), any::<u8>()],
    ) {
        let mut bytes = vec![version];
        bytes.extend_from_slice(&body);
        for b in [&bytes[..], &body[..]] {
            let _ = decode::<CursorsReply>(b);
            let _ = decode::<OfferRequest>(b);
            let _ = decode::<Offer>(b);
            let _ = decode::<Want>(b);
            let _ = decode::<Cancel>(b);
            let _ = decode::<DeliveryHeader>(b);
            let _ = decode_prefix::<DeliveryHeader>(b);
        }
    }
}
