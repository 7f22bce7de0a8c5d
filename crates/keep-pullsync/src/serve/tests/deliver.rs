//! Deliveries: wanted blocks through the frames and back, refusals,
//! cancel, blocks gone or corrupt since the offer.

use std::time::Duration;

use bytes::Bytes;
use keep_locator::BlockHash;
use keep_store::StoreError;

use super::fixture::{Node, blocks_in_bin};
use crate::bitvector::BitVector;
use crate::serve::{Delivery, FrameReader, ReadError, ServeError, ServeSettings};
use crate::wire::{DeliveryHeader, Offer, OfferRequest};

const BIN: u8 = 3;

/// Offers every entry of [`BIN`] from `from` on (none live).
async fn offer_from(node: &Node, from: u64) -> Offer {
    let req = OfferRequest {
        bin: BIN,
        from,
        to: OfferRequest::LIVE,
        limit: 1000,
    };
    node.offerer.offer(req, Duration::ZERO).await.unwrap()
}

/// A want of the entries at `indices` of `offer`.
fn want(offer: &Offer, indices: &[usize]) -> BitVector {
    let mut bits = BitVector::new(offer.entries.len());
    for &i in indices {
        bits.set(i).unwrap();
    }
    bits
}

/// Every frame of `delivery`, read as the puller would, each block whole.
async fn receive(
    delivery: Delivery,
    wanted: Vec<BlockHash>,
) -> Result<Vec<(DeliveryHeader, Bytes)>, ReadError> {
    let mut reader = FrameReader::new(delivery, wanted);
    let mut frames = Vec::new();
    while let Some(header) = reader.next_frame().await? {
        frames.push((header, reader.read_block().await?));
    }
    Ok(frames)
}

fn is_store_error(e: &ReadError, pred: impl Fn(&StoreError) -> bool) -> bool {
    let ReadError::Body(body) = e else {
        return false;
    };
    matches!(body.downcast_ref::<ServeError>(), Some(ServeError::Store(s)) if pred(s))
}

#[tokio::test]
async fn wanted_blocks_round_trip_through_the_frames() {
    let node = Node::new();
    let mut blocks = blocks_in_bin(BIN, 4, 100);
    blocks.push(blocks_in_bin(BIN, 1, (3 << 20) + 17).remove(0)); // streamed in chunks
    blocks.extend(blocks_in_bin(BIN, 5, 40_000).into_iter().skip(1));
    let mut hashes = Vec::new();
    for data in &blocks {
        hashes.push(node.put(data).await);
    }
    let offer = offer_from(&node, 1).await;
    assert_eq!(offer.entries.len(), blocks.len());
    let indices = [0, 2, 3, 4, 6, 8];
    let delivery = node
        .deliverer
        .deliver(offer.ruid, &want(&offer, &indices))
        .unwrap();
    assert_eq!(delivery.frames(), indices.len());
    let wanted: Vec<BlockHash> = indices.iter().map(|&i| hashes[i]).collect();
    let frames = receive(delivery, wanted.clone()).await.unwrap();
    assert_eq!(frames.len(), indices.len());
    for ((header, data), &i) in frames.iter().zip(&indices) {
        assert_eq!(header.block_hash(), hashes[i]);
        assert!(header.present);
        assert_eq!(header.size, blocks[i].len() as u64);
        assert_eq!(&data[..], &blocks[i][..], "block {i}");
    }
}

#[tokio::test]
async fn small_blocks_go_to_the_body_gathered() {
    use futures::StreamExt;
    let node = Node::new();
    let blocks = blocks_in_bin(BIN, 40, 4096);
    let mut hashes = Vec::new();
    for data in &blocks {
        hashes.push(node.put(data).await);
    }
    let offer = offer_from(&node, 1).await;
    let all: Vec<usize> = (0..blocks.len()).collect();
    let delivery = node
        .deliverer
        .deliver(offer.ruid, &want(&offer, &all))
        .unwrap();
    let pieces: Vec<Bytes> = delivery.map(|p| p.unwrap()).collect().await;
    assert_eq!(pieces.len(), 1, "40 blocks of 4 KiB in one piece");
    let body = futures::stream::iter(pieces.into_iter().map(Ok::<_, ServeError>));
    let mut reader = FrameReader::new(body, hashes.clone());
    for data in &blocks {
        assert!(reader.next_frame().await.unwrap().unwrap().present);
        assert_eq!(&reader.read_block().await.unwrap()[..], &data[..]);
    }
    assert!(reader.next_frame().await.unwrap().is_none());
}

#[tokio::test]
async fn a_want_of_nothing_is_an_empty_body() {
    let node = Node::new();
    node.put(&blocks_in_bin(BIN, 1, 100)[0]).await;
    let offer = offer_from(&node, 1).await;
    let delivery = node
        .deliverer
        .deliver(offer.ruid, &want(&offer, &[]))
        .unwrap();
    assert_eq!(delivery.frames(), 0);
    assert!(receive(delivery, vec![]).await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_used_and_misfit_wants_are_refused() {
    let node = Node::new();
    for data in blocks_in_bin(BIN, 3, 100) {
        node.put(&data).await;
    }
    let offer = offer_from(&node, 1).await;
    let unknown = offer.ruid.wrapping_add(1).max(1);
    assert!(matches!(
        node.deliverer.deliver(unknown, &want(&offer, &[0])),
        Err(ServeError::UnknownRuid(r)) if r == unknown
    ));
    // A want of the wrong length is refused, and the offer stays.
    assert!(matches!(
        node.deliverer.deliver(offer.ruid, &BitVector::new(4)),
        Err(ServeError::BadWant {
            bits: 4,
            entries: 3
        })
    ));
    let delivery = node
        .deliverer
        .deliver(offer.ruid, &want(&offer, &[1]))
        .unwrap();
    // A delivery is asked for once.
    assert!(matches!(
        node.deliverer.deliver(offer.ruid, &want(&offer, &[1])),
        Err(ServeError::UnknownRuid(_))
    ));
    assert_eq!(
        receive(delivery, vec![offer.entries[1].block_hash()])
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        node.deliverer.deliver(offer.ruid, &want(&offer, &[1])),
        Err(ServeError::UnknownRuid(_))
    ));
}

#[tokio::test]
async fn cancel_forgets_an_offer_and_stops_a_delivery() {
    let node = Node::new();
    // Blocks large enough to go to the body one by one (small ones are
    // gathered, and a cancel stops the body at its next piece).
    let size = 100 << 10;
    for data in blocks_in_bin(BIN, 3, size) {
        node.put(&data).await;
    }
    let offer = offer_from(&node, 1).await;
    assert!(node.deliverer.cancel(offer.ruid));
    assert!(!node.deliverer.cancel(offer.ruid));
    assert!(matches!(
        node.deliverer.deliver(offer.ruid, &want(&offer, &[0])),
        Err(ServeError::UnknownRuid(_))
    ));

    let offer = offer_from(&node, 1).await;
    let all = want(&offer, &[0, 1, 2]);
    let delivery = node.deliverer.deliver(offer.ruid, &all).unwrap();
    let wanted = offer.entries.iter().map(|e| e.block_hash());
    let mut reader = FrameReader::new(delivery, wanted);
    let first = reader.next_frame().await.unwrap().unwrap();
    assert_eq!(first.block_hash(), offer.entries[0].block_hash());
    assert_eq!(reader.read_block().await.unwrap().len(), size);
    assert!(node.deliverer.cancel(offer.ruid));
    let stopped = reader.next_frame().await.unwrap_err();
    let ReadError::Body(body) = stopped else {
        panic!("{stopped:?}");
    };
    assert!(matches!(
        body.downcast_ref::<ServeError>(),
        Some(ServeError::Cancelled(r)) if *r == offer.ruid
    ));
    assert!(matches!(reader.next_frame().await, Err(ReadError::Failed)));
    // Done with: the ruid is unknown.
    drop(reader);
    assert!(!node.deliverer.cancel(offer.ruid));
}

#[tokio::test]
async fn a_block_trashed_since_the_offer_is_reported_missing() {
    let node = Node::new();
    let blocks = blocks_in_bin(BIN, 3, 100);
    let mut hashes = Vec::new();
    for data in &blocks {
        hashes.push(node.put(data).await);
    }
    let offer = offer_from(&node, 1).await;
    node.trash(&hashes[1]).await;
    let delivery = node
        .deliverer
        .deliver(offer.ruid, &want(&offer, &[0, 1, 2]))
        .unwrap();
    let frames = receive(delivery, hashes.clone()).await.unwrap();
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[1].0, DeliveryHeader::missing(hashes[1]));
    assert!(frames[1].1.is_empty());
    for i in [0, 2] {
        assert!(frames[i].0.present);
        assert_eq!(&frames[i].1[..], &blocks[i][..]);
    }
}

#[tokio::test]
async fn a_corrupt_small_block_ends_the_delivery_with_an_error() {
    let node = Node::new();
    let blocks = blocks_in_bin(BIN, 3, 100);
    let mut hashes = Vec::new();
    for data in &blocks {
        hashes.push(node.put(data).await);
    }
    let offer = offer_from(&node, 1).await;
    assert!(node.mem.corrupt(&hashes[1]));
    let delivery = node
        .deliverer
        .deliver(offer.ruid, &want(&offer, &[0, 1, 2]))
        .unwrap();
    let mut reader = FrameReader::new(delivery, hashes.clone());
    assert!(reader.next_frame().await.unwrap().unwrap().present);
    assert_eq!(&reader.read_block().await.unwrap()[..], &blocks[0][..]);
    let e = reader.next_frame().await.unwrap_err();
    assert!(
        is_store_error(&e, |s| matches!(s, StoreError::Corrupt)),
        "{e:?}"
    );
    assert_eq!(node.mem.quarantined(), [hashes[1]]);
}

#[tokio::test]
async fn a_corrupt_large_block_never_completes() {
    let node = Node::new();
    let data = blocks_in_bin(BIN, 1, (2 << 20) + 5).remove(0);
    let hash = node.put(&data).await;
    let offer = offer_from(&node, 1).await;
    assert!(node.mem.corrupt(&hash));
    let delivery = node
        .deliverer
        .deliver(offer.ruid, &want(&offer, &[0]))
        .unwrap();
    let mut reader = FrameReader::new(delivery, [hash]);
    let header = reader.next_frame().await.unwrap().unwrap();
    assert_eq!((header.present, header.size), (true, data.len() as u64));
    let e = reader.read_block().await.unwrap_err();
    assert!(
        is_store_error(&e, |s| matches!(s, StoreError::Corrupt)),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_oldest_offers_are_forgotten_past_the_bound() {
    let settings = ServeSettings {
        max_offers: 2,
        ..ServeSettings::default()
    };
    let node = Node::with_settings(settings);
    for data in blocks_in_bin(BIN, 3, 100) {
        node.put(&data).await;
    }
    let offers = [
        offer_from(&node, 1).await,
        offer_from(&node, 2).await,
        offer_from(&node, 3).await,
    ];
    assert_eq!(node.offerer.offers_waiting(), 2);
    let one = |o: &Offer| want(o, &[0]);
    assert!(matches!(
        node.deliverer.deliver(offers[0].ruid, &one(&offers[0])),
        Err(ServeError::UnknownRuid(_))
    ));
    assert!(
        node.deliverer
            .deliver(offers[1].ruid, &one(&offers[1]))
            .is_ok()
    );
    assert!(
        node.deliverer
            .deliver(offers[2].ruid, &one(&offers[2]))
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn an_offer_expires_after_its_ttl() {
    let node = Node::new();
    node.put(&blocks_in_bin(BIN, 1, 100)[0]).await;
    let ttl = ServeSettings::default().offer_ttl;
    let old = offer_from(&node, 1).await;
    tokio::time::advance(ttl - Duration::from_secs(1)).await;
    let young = offer_from(&node, 1).await;
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(matches!(
        node.deliverer.deliver(old.ruid, &want(&old, &[0])),
        Err(ServeError::UnknownRuid(_))
    ));
    assert!(
        node.deliverer
            .deliver(young.ruid, &want(&young, &[0]))
            .is_ok()
    );
}
