//! One bin of one peer: its cursor, what is synced of it, and the
//! exchanges (offer, want, deliver) that close the gaps.

use std::sync::Arc;
use std::time::Duration;

use keep_remote::Remote;
use keep_worker::{WorkError, Worker, WorkerState, WorkerStatus};
use tokio_util::sync::CancellationToken;

use super::fetch::{Group, fetch_all};
use super::receive::Received;
use super::{PullError, Shared, client};
use crate::bins::BINS;
use crate::intervals::IntervalSet;
use crate::wire::{Offer, OfferEntry, OfferRequest};

/// The worker (`pullsync <peer> bin <b>`) that syncs one bin of one peer.
#[derive(Debug)]
pub struct BinPuller {
    peer: Arc<Remote>,
    bin: u8,
    shared: Arc<Shared>,
    epoch: Option<u64>,
    cursor: u64,
    synced: IntervalSet,
    /// A live offer that arrived while waiting, for the next step.
    live: Option<(u64, Offer)>,
    /// A live request that failed while waiting, for the next step.
    failed: Option<PullError>,
    received: Received,
}

/// The blocks of one offer this node wants, and what the offer covers.
struct Plan {
    /// The wanted blocks, in deliveries of at most `max_delivery_bytes`.
    groups: Vec<Group>,
    /// Wanted from this peer by another puller at the moment.
    elsewhere: Vec<OfferEntry>,
    /// The highest BinID this exchange settles (below the offer's topmost
    /// when the wants were cut at `max_deliveries` groups).
    covered: u64,
}

impl BinPuller {
    pub(crate) fn new(peer: Arc<Remote>, bin: u8, shared: Arc<Shared>) -> Self {
        BinPuller {
            peer,
            bin,
            shared,
            epoch: None,
            cursor: 0,
            synced: IntervalSet::new(),
            live: None,
            failed: None,
            received: Received::default(),
        }
    }

    fn peer_is_up(&self) -> bool {
        self.shared.pool.is_up(&self.peer.uuid)
    }

    fn note_failure(&self, e: &PullError) {
        if let PullError::Client(client::ClientError::Remote(r)) = e {
            self.shared.pool.report_failure(&self.peer.uuid, r);
        }
    }

    /// Learns the peer's epoch and this bin's cursor, and what was synced
    /// under that epoch.
    async fn load_cursors(&mut self) -> Result<(), PullError> {
        let reply = client::cursors(&self.peer, self.shared.timeouts()).await?;
        if reply.cursors.len() != BINS {
            return Err(PullError::Protocol(format!(
                "{} cursors, not {BINS}",
                reply.cursors.len()
            )));
        }
        let (peer, bin, epoch) = (self.peer.uuid.clone(), self.bin, reply.epoch);
        self.synced = self
            .shared
            .intervals(move |s| s.get(&peer, bin, epoch))
            .await?;
        self.cursor = reply.cursors[usize::from(self.bin)];
        self.epoch = Some(reply.epoch);
        self.report();
        Ok(())
    }

    /// Tells the node's sync progress where this bin stands.
    fn report(&self) {
        let synced = self.synced.first_gap(1).map_or(u64::MAX, |(s, _)| s - 1);
        let (cursor, received, known) = (self.cursor, self.received, self.epoch.is_some());
        self.shared
            .progress
            .update(&self.peer.uuid, self.epoch, self.bin, |b| {
                b.cursor = cursor;
                b.synced = synced;
                b.received_blocks = received.blocks;
                b.received_bytes = received.bytes;
                b.known = known;
            });
    }

    /// The first BinID not synced yet.
    fn next_from(&self) -> Option<(u64, Option<u64>)> {
        self.synced.first_gap(1)
    }

    /// One historical exchange; false if there is nothing below the cursor.
    async fn historical(&mut self, cancel: &CancellationToken) -> Result<bool, PullError> {
        let Some((from, gap_end)) = self.next_from() else {
            return Ok(false);
        };
        if from > self.cursor {
            return Ok(false);
        }
        let req = OfferRequest {
            bin: self.bin,
            from,
            to: gap_end.unwrap_or(u64::MAX).min(self.cursor),
            limit: self.shared.settings.offer_limit,
        };
        let offer = client::offer(&self.peer, &req, Duration::ZERO, self.shared.timeouts()).await?;
        self.exchange(from, offer, cancel).await?;
        Ok(true)
    }

    /// Wants what this node lacks of `offer`, receives it, records what
    /// the exchange settled.
    async fn exchange(
        &mut self,
        from: u64,
        offer: Offer,
        cancel: &CancellationToken,
    ) -> Result<(), PullError> {
        if Some(offer.epoch) != self.epoch {
            self.epoch = None; // the peer started over: ask its cursors again
            return Ok(());
        }
        check_offer(from, &offer)?;
        let metrics = &self.shared.metrics;
        metrics.offered.inc_by(offer.entries.len() as u64);
        let plan = self.plan(&offer).await?;
        let Plan {
            groups,
            elsewhere,
            mut covered,
        } = plan;
        if groups.is_empty() {
            if !offer.entries.is_empty() {
                let _ = client::cancel(&self.peer, offer.ruid, self.shared.timeouts()).await;
            }
        } else {
            let shared = self.shared.clone();
            let got = fetch_all(&shared, &self.peer, self.bin, &offer, groups, cancel).await?;
            self.received.blocks += got.blocks;
            self.received.bytes += got.bytes;
        }
        for e in elsewhere {
            let hash = e.block_hash();
            let wait = self.shared.settings.request_timeout;
            let released = self.shared.claims.released(&hash, wait).await;
            if !released || self.shared.store.holds(&hash).await?.is_none() {
                covered = covered.min(e.bin_id - 1);
            }
        }
        self.cursor = self.cursor.max(offer.topmost);
        self.record(from, covered).await
    }

    /// Decides which offered blocks to want: those this node is
    /// responsible for, lacks, has not in its trash, and no other puller
    /// is fetching. A block is claimed before the store is asked, so two
    /// pullers never both find it missing and both fetch it.
    async fn plan(&self, offer: &Offer) -> Result<Plan, PullError> {
        let holders = self.shared.responsibility.holders();
        let mut plan = Plan {
            groups: Vec::new(),
            elsewhere: Vec::new(),
            covered: offer.topmost,
        };
        let mut claimed = Vec::new();
        for (i, e) in offer.entries.iter().enumerate() {
            if !holders.responsible(&e.block_hash()) {
                continue;
            }
            match self.shared.claims.claim(e.block_hash()) {
                Some(claim) => claimed.push((i, *e, claim)),
                None => plan.elsewhere.push(*e),
            }
        }
        let hashes: Vec<_> = claimed.iter().map(|(_, e, _)| e.block_hash()).collect();
        let lacking = self.shared.store.lacking(&hashes).await?;
        let checked = claimed
            .into_iter()
            .zip(lacking)
            .map(|((i, e, claim), lacking)| (i, e, claim, lacking));
        let settings = &self.shared.settings;
        let mut bytes = 0u64;
        for (i, e, claim, lacking) in checked {
            if !lacking {
                continue;
            }
            let fits = plan
                .groups
                .last()
                .is_some_and(|_| bytes.saturating_add(e.size) <= settings.max_delivery_bytes);
            if !fits {
                if plan.groups.len() >= settings.max_deliveries.max(1) {
                    plan.covered = plan.covered.min(e.bin_id - 1);
                    break;
                }
                plan.groups.push(Vec::new());
                bytes = 0;
            }
            bytes = bytes.saturating_add(e.size);
            if let Some(group) = plan.groups.last_mut() {
                group.push((i, e, claim));
            }
        }
        plan.elsewhere.retain(|e| e.bin_id <= plan.covered);
        Ok(plan)
    }

    /// Records `[from, to]` as synced (lazily durable: losing it costs
    /// offers, not bytes, since the blocks are stored first).
    async fn record(&mut self, from: u64, to: u64) -> Result<(), PullError> {
        if to < from {
            return Ok(());
        }
        let Some(epoch) = self.epoch else {
            return Ok(());
        };
        self.synced.add(from, to);
        self.report();
        let (peer, bin, set) = (self.peer.uuid.clone(), self.bin, self.synced.clone());
        self.shared
            .intervals(move |s| s.put(&peer, bin, epoch, &set))
            .await
    }

    async fn step(&mut self, cancel: &CancellationToken) -> Result<WorkerState, PullError> {
        if let Some(e) = self.failed.take() {
            self.epoch = None;
            return Err(e);
        }
        if !self.peer_is_up() {
            return Ok(WorkerState::Idle);
        }
        if self.epoch.is_none() {
            self.load_cursors().await?;
            return Ok(WorkerState::Busy);
        }
        if let Some((from, offer)) = self.live.take() {
            self.exchange(from, offer, cancel).await?;
            return Ok(WorkerState::Busy);
        }
        Ok(if self.historical(cancel).await? {
            WorkerState::Busy
        } else {
            WorkerState::Idle
        })
    }
}

/// Checks that an offer keeps to the protocol: entries in this bin's
/// order, within `[from, topmost]`.
fn check_offer(from: u64, offer: &Offer) -> Result<(), PullError> {
    let mut last = from - 1;
    for e in &offer.entries {
        if e.bin_id <= last || e.bin_id > offer.topmost {
            return Err(PullError::Protocol(format!(
                "offer entry with BinID {} out of order (after {last}, topmost {})",
                e.bin_id, offer.topmost
            )));
        }
        last = e.bin_id;
    }
    Ok(())
}

impl Worker for BinPuller {
    fn name(&self) -> String {
        format!("pullsync {} bin {:x}", self.peer.uuid, self.bin)
    }

    fn status(&self) -> WorkerStatus {
        let synced = self.synced.first_gap(1).map_or(u64::MAX, |(s, _)| s - 1);
        let progress = match self.epoch {
            Some(_) => format!(
                "synced {synced} of {}; received {} blocks, {} bytes",
                self.cursor, self.received.blocks, self.received.bytes
            ),
            None => "asking the peer's cursors".into(),
        };
        WorkerStatus {
            progress: Some(progress),
            ..WorkerStatus::default()
        }
    }

    async fn work(&mut self, cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        match self.step(cancel).await {
            Ok(state) => Ok(state),
            Err(e) => {
                self.note_failure(&e);
                Err(e.into())
            }
        }
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        let check = self.shared.settings.peer_check;
        let from = match self.next_from() {
            Some((from, _)) if self.epoch.is_some() && self.peer_is_up() => from,
            _ => {
                tokio::time::sleep(check).await;
                return WorkerState::Busy;
            }
        };
        let req = OfferRequest {
            bin: self.bin,
            from,
            to: OfferRequest::LIVE,
            limit: self.shared.settings.offer_limit,
        };
        let wait = self.shared.settings.live_wait;
        match client::offer(&self.peer, &req, wait, self.shared.timeouts()).await {
            Ok(offer) => self.live = Some((from, offer)),
            Err(e) => self.failed = Some(e.into()),
        }
        WorkerState::Busy
    }
}
