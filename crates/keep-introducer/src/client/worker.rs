//! One worker per introducer: sends this node's announcements and
//! withdrawals, then long-polls the announcement table (tombstones
//! included) and merges what it hears.
//!
//! The worker sends the publication again whenever it changes, whenever
//! the introducer comes back after being unreachable, and whenever the
//! introducer's table lacks it (a restarted introducer that lost its state,
//! or a replacement). Until an introducer answers, publications simply wait
//! in the outbox: that is the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::state::{Shared, lacks_own};
use super::transport::{Transport, TransportError};
use crate::wire::ListQuery;

/// Retry pacing and long-poll length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) poll_wait: Duration,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
}

/// What a publication attempt came to.
enum Sent {
    /// Every announcement is held by the introducer.
    Done,
    /// The introducer holds a higher seqnum for this node: sign again above it.
    Replay(u64),
    /// Try again later.
    Failed,
}

pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) transport: Transport,
    pub(crate) base: String,
    pub(crate) connected: Arc<AtomicBool>,
    pub(crate) timing: Timing,
    pub(crate) cancel: CancellationToken,
}

impl Worker {
    pub(crate) async fn run(self) {
        let mut outbox_rx = self.shared.outbox.subscribe();
        let mut interest_rx = self.shared.interest.subscribe();
        let mut need_publish = true;
        let mut token: Option<String> = None;
        let mut polled: Vec<String> = Vec::new();
        let mut failures = 0u32;
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            let outbox = outbox_rx.borrow_and_update().clone();
            interest_rx.borrow_and_update();
            if need_publish && !outbox.signed.is_empty() {
                match self.send_all(&outbox.signed).await {
                    Sent::Done => {
                        need_publish = false;
                        let seqnum = outbox.max_seqnum();
                        self.shared.acks.send_modify(|acks| {
                            acks.insert(self.base.clone(), seqnum);
                        });
                    }
                    Sent::Replay(stored) => {
                        // Paced, so two nodes misconfigured with one uuid
                        // cannot outbid each other at full speed.
                        failures += 1;
                        self.pause(failures).await;
                        // Signing again changes the outbox, which wakes every worker.
                        if let Err(e) = self.shared.publish(None, stored).await {
                            tracing::error!(error = %e, "cannot sign again after a replay refusal");
                        }
                        continue;
                    }
                    Sent::Failed => {
                        self.set_connected(false);
                        failures += 1;
                        self.pause(failures).await;
                        continue;
                    }
                }
            }
            let services = self.shared.polled_services();
            if services.is_empty() {
                tokio::select! {
                    _ = outbox_rx.changed() => need_publish = true,
                    _ = interest_rx.changed() => {}
                    () = self.cancel.cancelled() => return,
                }
                continue;
            }
            if services != polled {
                token = None;
                polled = services.clone();
            }
            let query = ListQuery {
                services,
                wait: if token.is_some() {
                    self.timing.poll_wait
                } else {
                    Duration::ZERO
                },
                since: token.clone(),
                withdrawn: true,
            };
            tokio::select! {
                result = self.transport.list(&self.base, &query) => match result {
                    Ok((list, version)) => {
                        if failures > 0 {
                            tracing::info!(introducer = %self.base, "introducer reachable again");
                            need_publish = true;
                        }
                        failures = 0;
                        self.set_connected(true);
                        if lacks_own(&outbox, &query.services, &list) {
                            need_publish = true;
                        }
                        self.shared.merge(list);
                        token = Some(version).filter(|v| !v.is_empty());
                        if token.is_none() {
                            // Not an introducer that long-polls: do not spin.
                            self.sleep(self.timing.retry_max).await;
                        }
                    }
                    Err(e) => {
                        if self.connected.load(Ordering::Relaxed) {
                            tracing::warn!(introducer = %self.base, error = %e, "introducer lost");
                        }
                        self.set_connected(false);
                        token = None;
                        failures += 1;
                        self.pause(failures).await;
                    }
                },
                _ = outbox_rx.changed() => need_publish = true,
                _ = interest_rx.changed() => {}
                () = self.cancel.cancelled() => return,
            }
        }
    }

    async fn send_all(&self, signed: &[crate::SignedAnnouncement]) -> Sent {
        for ann in signed {
            let sent = tokio::select! {
                sent = self.transport.announce(&self.base, ann) => sent,
                () = self.cancel.cancelled() => return Sent::Failed,
            };
            match sent {
                Ok(_) => {}
                Err(TransportError::Refused {
                    reply: Some(reply), ..
                }) if reply.outcome == "replay" => {
                    let stored = reply.stored_seqnum.unwrap_or(ann.announcement.seqnum);
                    tracing::warn!(introducer = %self.base, stored, ours = ann.announcement.seqnum,
                        "introducer holds a newer announcement of ours; signing above it");
                    return Sent::Replay(stored);
                }
                Err(e @ TransportError::Refused { .. }) => {
                    tracing::error!(introducer = %self.base, error = %e,
                        "introducer refused our announcement (is the cluster key the same?)");
                    return Sent::Failed;
                }
                Err(e) => {
                    if self.connected.load(Ordering::Relaxed) {
                        tracing::warn!(introducer = %self.base, error = %e, "cannot publish; will retry");
                    }
                    return Sent::Failed;
                }
            }
        }
        Sent::Done
    }

    fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    /// Sleeps before retry number `failures`: doubling from `retry_min`
    /// up to `retry_max`, with jitter so many clients do not retry in step.
    async fn pause(&self, failures: u32) {
        let exp = self
            .timing
            .retry_min
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(self.timing.retry_max);
        let jitter = rand::rng().random_range(0.5..1.0);
        self.sleep(exp.mul_f64(jitter)).await;
    }

    /// Sleeps for `d`, or until the client stops.
    async fn sleep(&self, d: Duration) {
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = self.cancel.cancelled() => {}
        }
    }
}
