//! Fetching the wanted blocks of one offer: in groups of at most
//! `max_delivery_bytes`, each its own delivery, run at once (each under
//! one of the node's `max_deliveries` permits), so that one bin with
//! several large blocks does not receive them one after another. The first
//! group is wanted of the offer itself; each further one of a fresh offer
//! of just its BinIDs (an offer is delivered once).

use std::sync::atomic::{AtomicI64, Ordering};

use futures::future::join_all;
use keep_locator::BlockHash;
use keep_remote::Remote;
use tokio_util::sync::CancellationToken;

use super::claims::Claim;
use super::receive::{Received, receive};
use super::{PullError, Shared, client};
use crate::bitvector::BitVector;
use crate::wire::{Offer, OfferEntry, OfferRequest, Want};

/// Wanted blocks of one offer, each with its place in the offer and the
/// claim that keeps other pullers off it.
pub(crate) type Group = Vec<(usize, OfferEntry, Claim)>;

/// Fetches every group of `offer` (from `bin` of `peer`); the blocks each
/// group brought, summed, or the first failure once all have ended.
pub(crate) async fn fetch_all(
    shared: &Shared,
    peer: &Remote,
    bin: u8,
    offer: &Offer,
    groups: Vec<Group>,
    cancel: &CancellationToken,
) -> Result<Received, PullError> {
    let fetches = groups.into_iter().enumerate().map(|(k, group)| async move {
        if k == 0 {
            let mut bits = BitVector::new(offer.entries.len());
            for (i, _, _) in &group {
                bits.set(*i)
                    .map_err(|e| PullError::Protocol(e.to_string()))?;
            }
            fetch(shared, peer, offer.ruid, bits, group).await
        } else {
            let (ruid, bits, group) = reoffer(shared, peer, bin, offer.epoch, group).await?;
            fetch(shared, peer, ruid, bits, group).await
        }
    });
    let all = join_all(fetches);
    let results = tokio::select! {
        results = all => results,
        () = cancel.cancelled() => return Err(PullError::Task("cancelled".into())),
    };
    let mut got = Received::default();
    for result in results {
        let r = result?;
        got.blocks += r.blocks;
        got.bytes += r.bytes;
    }
    Ok(got)
}

/// A fresh offer of exactly the group's BinIDs; the group's entries still
/// in it (a block gone at the peer since is not there any more).
async fn reoffer(
    shared: &Shared,
    peer: &Remote,
    bin: u8,
    epoch: u64,
    group: Group,
) -> Result<(u32, BitVector, Group), PullError> {
    let (first, last) = match (group.first(), group.last()) {
        (Some(f), Some(l)) => (f.1.bin_id, l.1.bin_id),
        _ => return Err(PullError::Protocol("an empty group".into())),
    };
    let req = OfferRequest {
        bin,
        from: first,
        to: last,
        limit: u32::try_from(last - first + 1).unwrap_or(u32::MAX),
    };
    let offer = client::offer(peer, &req, std::time::Duration::ZERO, shared.timeouts()).await?;
    if offer.epoch != epoch {
        return Err(PullError::Protocol("the peer's epoch changed".into()));
    }
    let mut bits = BitVector::new(offer.entries.len());
    let mut kept = Vec::new();
    let mut group = group.into_iter().peekable();
    for (i, e) in offer.entries.iter().enumerate() {
        while group.next_if(|(_, g, _)| g.bin_id < e.bin_id).is_some() {}
        if let Some((_, g, claim)) = group.next_if(|(_, g, _)| g.bin_id == e.bin_id)
            && g.hash == e.hash
        {
            bits.set(i)
                .map_err(|e| PullError::Protocol(e.to_string()))?;
            kept.push((i, g, claim));
        }
    }
    Ok((offer.ruid, bits, kept))
}

/// One delivery: wants `bits` of offer `ruid` and stores what comes.
async fn fetch(
    shared: &Shared,
    peer: &Remote,
    ruid: u32,
    bits: BitVector,
    group: Group,
) -> Result<Received, PullError> {
    if group.is_empty() {
        let _ = client::cancel(peer, ruid, shared.timeouts()).await;
        return Ok(Received::default());
    }
    let _turn = shared
        .deliveries
        .acquire()
        .await
        .map_err(|e| PullError::Task(e.to_string()))?;
    let owed = Owed::new(shared, group.len());
    shared.metrics.wanted.inc_by(group.len() as u64);
    let body = client::want(peer, &Want { ruid, bits }, shared.timeouts()).await?;
    let hashes: Vec<BlockHash> = group.iter().map(|(_, e, _)| e.block_hash()).collect();
    let got = receive(
        &shared.store,
        &shared.metrics,
        body,
        hashes,
        shared.settings.request_timeout,
        || owed.one_arrived(),
    )
    .await?;
    drop(group); // the claims: released once the blocks are stored
    Ok(got)
}

/// The owed-blocks gauge's share of one delivery.
struct Owed<'a> {
    shared: &'a Shared,
    left: AtomicI64,
}

impl<'a> Owed<'a> {
    fn new(shared: &'a Shared, n: usize) -> Self {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        shared.metrics.owed_blocks.inc_by(n);
        Owed {
            shared,
            left: AtomicI64::new(n),
        }
    }

    fn one_arrived(&self) {
        let took = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n > 0).then(|| n - 1)
            });
        if took.is_ok() {
            self.shared.metrics.owed_blocks.dec();
        }
    }
}

impl Drop for Owed<'_> {
    fn drop(&mut self) {
        let left = self.left.load(Ordering::Relaxed);
        self.shared.metrics.owed_blocks.dec_by(left);
    }
}
