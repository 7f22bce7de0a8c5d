//! How far this node has synced each peer, as the pullers report it: for
//! status pages and `keepctl`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::bins::BINS;

/// One bin of one peer, as its puller last saw it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BinState {
    /// The peer's last BinID in the bin, as last learned.
    pub(crate) cursor: u64,
    /// Every BinID up to this one is synced.
    pub(crate) synced: u64,
    /// Blocks and bytes received from this bin since the puller started.
    pub(crate) received_blocks: u64,
    pub(crate) received_bytes: u64,
    /// Whether the cursors were learned (under the current epoch).
    pub(crate) known: bool,
}

#[derive(Debug, Default)]
struct PeerState {
    epoch: Option<u64>,
    bins: BTreeMap<u8, BinState>,
}

/// Every peer's sync progress. Bounded: one entry per peer pulled from,
/// [`BINS`] bins each; a peer's entry goes when its pullers stop.
#[derive(Debug, Default)]
pub struct SyncProgress {
    peers: Mutex<BTreeMap<String, PeerState>>,
}

/// How far this node has synced one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerProgress {
    /// The peer's uuid.
    pub uuid: String,
    /// The peer's pull-index epoch, once learned.
    pub epoch: Option<u64>,
    /// Bins whose cursor is known (of [`BINS`]).
    pub bins_known: usize,
    /// Entries the peer's index has, over the known bins (the sum of
    /// their cursors).
    pub entries: u64,
    /// Of those, how many are synced.
    pub synced: u64,
    /// Blocks received from the peer since its pullers started.
    pub received_blocks: u64,
    /// Their bytes.
    pub received_bytes: u64,
    /// Whether every bin is synced up to its cursor: the peer is followed
    /// live.
    pub caught_up: bool,
}

impl SyncProgress {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PeerState>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes one bin's state; a new epoch resets the peer's bins' cursors.
    pub(crate) fn update(
        &self,
        peer: &str,
        epoch: Option<u64>,
        bin: u8,
        f: impl FnOnce(&mut BinState),
    ) {
        let mut peers = self.lock();
        let state = peers.entry(peer.to_owned()).or_default();
        if epoch.is_some() && state.epoch != epoch {
            state.epoch = epoch;
            for b in state.bins.values_mut() {
                b.known = false;
            }
        }
        f(state.bins.entry(bin).or_default());
    }

    /// Drops a peer whose pullers stopped.
    pub(crate) fn forget(&self, peer: &str) {
        self.lock().remove(peer);
    }

    /// Every peer pulled from, in uuid order.
    pub fn peers(&self) -> Vec<PeerProgress> {
        self.lock()
            .iter()
            .map(|(uuid, state)| {
                let known: Vec<&BinState> = state.bins.values().filter(|b| b.known).collect();
                let entries = known.iter().map(|b| b.cursor).sum();
                let synced = known.iter().map(|b| b.synced.min(b.cursor)).sum();
                PeerProgress {
                    uuid: uuid.clone(),
                    epoch: state.epoch,
                    bins_known: known.len(),
                    entries,
                    synced,
                    received_blocks: state.bins.values().map(|b| b.received_blocks).sum(),
                    received_bytes: state.bins.values().map(|b| b.received_bytes).sum(),
                    caught_up: known.len() == BINS && synced == entries,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_known_bins_and_forgets_a_peer_that_left() {
        let p = SyncProgress::default();
        for bin in 0..BINS as u8 {
            p.update("a", Some(7), bin, |b| {
                b.known = true;
                b.cursor = 10;
                b.synced = if bin == 0 { 4 } else { 10 };
            });
        }
        p.update("a", Some(7), 3, |b| {
            b.received_blocks += 2;
            b.received_bytes += 100;
        });
        let a = &p.peers()[0];
        assert_eq!(
            (a.entries, a.synced),
            (10 * BINS as u64, 10 * BINS as u64 - 6)
        );
        assert_eq!((a.received_blocks, a.received_bytes), (2, 100));
        assert!(!a.caught_up);
        p.update("a", Some(7), 0, |b| b.synced = 12);
        assert!(
            p.peers()[0].caught_up,
            "synced past the cursor counts as the cursor"
        );
        // A new epoch: the cursors are to be learned again.
        p.update("a", Some(8), 1, |_| {});
        assert_eq!(p.peers()[0].bins_known, 0);
        p.forget("a");
        assert!(p.peers().is_empty());
    }
}
