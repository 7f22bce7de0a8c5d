//! Cursors and offers: paging, topmost, live requests.

use std::time::Duration;

use futures::FutureExt;
use keep_locator::BlockHash;

use super::fixture::{Node, blocks_in_bin};
use crate::bins::BINS;
use crate::serve::ServeError;
use crate::wire::{Offer, OfferRequest};

const BIN: u8 = 7;

fn req(from: u64, to: u64, limit: u32) -> OfferRequest {
    OfferRequest {
        bin: BIN,
        from,
        to,
        limit,
    }
}

fn ids(offer: &Offer) -> Vec<u64> {
    offer.entries.iter().map(|e| e.bin_id).collect()
}

/// A node with `n` small blocks in [`BIN`], BinIDs `1..=n`, in order.
async fn node_with(n: usize) -> (Node, Vec<BlockHash>) {
    let node = Node::new();
    let mut hashes = Vec::new();
    for data in blocks_in_bin(BIN, n, 100) {
        hashes.push(node.put(&data).await);
    }
    (node, hashes)
}

#[tokio::test]
async fn cursors_are_one_reading_of_the_index() {
    let (node, _) = node_with(3).await;
    node.put(b"another bin, most likely").await;
    let reply = node.offerer.cursors();
    let snapshot = node.index.snapshot();
    assert_eq!(reply.epoch, snapshot.epoch);
    assert_eq!(reply.cursors, snapshot.bins.to_vec());
    assert_eq!(reply.cursors.len(), BINS);
    assert_eq!(reply.cursors[usize::from(BIN)], 3);
    node.index.reset().unwrap();
    let after = node.offerer.cursors();
    assert_ne!(after.epoch, reply.epoch);
    assert_eq!(after.cursors, vec![0; BINS]);
}

#[tokio::test]
async fn offers_page_through_a_bin_with_topmost() {
    let (node, hashes) = node_with(5).await;
    let wait = Duration::from_secs(3600);

    let first = node
        .offerer
        .offer(req(1, OfferRequest::LIVE, 2), wait)
        .await
        .unwrap();
    assert_eq!((ids(&first), first.topmost), (vec![1, 2], 2));
    assert_eq!(first.entries[0].block_hash(), hashes[0]);
    assert_eq!(first.entries[0].size, 100);

    let second = node
        .offerer
        .offer(req(3, OfferRequest::LIVE, 2), wait)
        .await
        .unwrap();
    assert_eq!((ids(&second), second.topmost), (vec![3, 4], 4));

    // The range runs out: topmost is the cursor.
    let last = node
        .offerer
        .offer(req(5, OfferRequest::LIVE, 2), wait)
        .await
        .unwrap();
    assert_eq!((ids(&last), last.topmost), (vec![5], 5));

    // A bounded range: topmost is its end.
    let bounded = node.offerer.offer(req(2, 3, 100), wait).await.unwrap();
    assert_eq!((ids(&bounded), bounded.topmost), (vec![2, 3], 3));

    // Removed entries: nothing to offer, but the interval is covered.
    node.index.remove_batch(&hashes[3..]).unwrap();
    let gone = node
        .offerer
        .offer(req(4, OfferRequest::LIVE, 100), wait)
        .await
        .unwrap();
    assert_eq!((ids(&gone), gone.topmost), (vec![], 5));
    let tail = node
        .offerer
        .offer(req(2, OfferRequest::LIVE, 100), wait)
        .await
        .unwrap();
    assert_eq!((ids(&tail), tail.topmost), (vec![2, 3], 5));
    let partly = node
        .offerer
        .offer(req(3, OfferRequest::LIVE, 1), wait)
        .await
        .unwrap();
    assert_eq!((ids(&partly), partly.topmost), (vec![3], 3));

    // Every offer has its own nonzero ruid.
    let ruids = [first.ruid, second.ruid, last.ruid, bounded.ruid, gone.ruid];
    assert!(ruids.iter().all(|&r| r != 0));
    let mut unique = ruids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ruids.len());
    // Only the offers with entries wait for a delivery.
    assert_eq!(node.offerer.offers_waiting(), 6);
}

#[tokio::test]
async fn a_limit_over_the_maximum_is_clamped() {
    let (node, _) = node_with(3).await;
    let offer = node
        .offerer
        .offer(req(1, OfferRequest::LIVE, u32::MAX), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((ids(&offer), offer.topmost), (vec![1, 2, 3], 3));
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let (node, _) = node_with(1).await;
    let wait = Duration::ZERO;
    let mut no_bin = req(1, 2, 1);
    no_bin.bin = BINS as u8;
    let refused = [no_bin, req(0, 2, 1), req(3, 2, 1), req(1, 2, 0)];
    for r in refused {
        let got = node.offerer.offer(r.clone(), wait).await;
        assert!(
            matches!(
                got,
                Err(ServeError::NoSuchBin(16) | ServeError::BadRequest(_))
            ),
            "{r:?}: {got:?}"
        );
    }
}

#[tokio::test]
async fn a_live_offer_waits_and_is_woken_by_an_add() {
    let (node, _) = node_with(2).await;
    let blocks = blocks_in_bin(BIN, 3, 100);
    let offer = node
        .offerer
        .offer(req(3, OfferRequest::LIVE, 10), Duration::from_secs(3600));
    let mut offer = std::pin::pin!(offer);
    // Waiting: the cursor (2) is below `from`.
    assert!((&mut offer).now_or_never().is_none());
    // An add in another bin wakes it, but it waits on.
    node.put(&blocks_in_bin(BIN + 1, 1, 100)[0]).await;
    assert!((&mut offer).now_or_never().is_none());
    let added = node.put(&blocks[2]).await;
    let offer = tokio::time::timeout(Duration::from_secs(10), offer)
        .await
        .expect("woken by the add")
        .unwrap();
    assert_eq!((ids(&offer), offer.topmost), (vec![3], 3));
    assert_eq!(offer.entries[0].block_hash(), added);
}

#[tokio::test(start_paused = true)]
async fn a_live_offer_times_out_empty() {
    let (node, _) = node_with(2).await;
    let started = tokio::time::Instant::now();
    let offer = node
        .offerer
        .offer(req(3, OfferRequest::LIVE, 10), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert_eq!((ids(&offer), offer.topmost), (vec![], 2));
    assert_ne!(offer.ruid, 0);
    assert_eq!(node.offerer.offers_waiting(), 0);
}

#[tokio::test]
async fn an_epoch_change_answers_a_live_offer_at_once() {
    let (node, _) = node_with(2).await;
    let offer = node
        .offerer
        .offer(req(3, OfferRequest::LIVE, 10), Duration::from_secs(3600));
    let mut offer = std::pin::pin!(offer);
    assert!((&mut offer).now_or_never().is_none());
    node.index.reset().unwrap();
    let offer = tokio::time::timeout(Duration::from_secs(10), offer)
        .await
        .expect("answered at the reset")
        .unwrap();
    assert_eq!((ids(&offer), offer.topmost), (vec![], 2));
}

#[tokio::test]
async fn offers_and_deliveries_can_run_on_any_task() {
    fn send_static<T: Send + 'static>(_: &T) {}
    let (node, _) = node_with(1).await;
    let offerer = node.offerer.clone();
    let future = async move { offerer.offer(req(1, 1, 1), Duration::ZERO).await };
    send_static(&future);
    let offer = tokio::spawn(future).await.unwrap().unwrap();
    let mut bits = crate::BitVector::new(1);
    bits.set(0).unwrap();
    let delivery = node.deliverer.deliver(offer.ruid, &bits).unwrap();
    send_static(&delivery);
}
