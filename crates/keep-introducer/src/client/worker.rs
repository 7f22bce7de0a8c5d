//! One worker per introducer: sends this node's announcements and
//! withdrawals, then long-polls the announcement table (tombstones
//! included) and merges what it hears.
//!
//! The worker sends the publication again whenever it changes, whenever
//! the introducer comes back after being unreachable, and whenever the
//! introducer's table lacks it (a restarted introducer that lost its state,
//! or a replacement). Until an introducer answers, publications simply wait
//! in the outbox: that is the queue. A failed request fails the step, so
//! the runner's backoff (the client's `retry_min` doubling up to
//! `retry_max`, with jitter) paces the retries; the long-poll itself is the
//! worker's wait for work.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keep_worker::{WorkError, Worker, WorkerState, WorkerStatus};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::state::{Outbox, Shared, lacks_own};
use super::transport::{Transport, TransportError};
use crate::SignedAnnouncement;
use crate::wire::ListQuery;

/// A read of the introducer's table: what was asked and what came back.
type Answer = (
    ListQuery,
    Result<(Vec<SignedAnnouncement>, String), TransportError>,
);

/// How long the worker waits for the introducer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// How long one long-poll waits for a change.
    pub(crate) poll_wait: Duration,
    /// The pause between reads of an introducer that does not long-poll.
    pub(crate) repoll: Duration,
}

/// The worker named `introducer <base url>`.
#[derive(Debug)]
pub(crate) struct IntroducerWorker {
    shared: Arc<Shared>,
    transport: Transport,
    base: String,
    connected: Arc<AtomicBool>,
    timing: Timing,
    /// The client's token (a child of the registry's).
    cancel: CancellationToken,
    outbox_rx: watch::Receiver<Arc<Outbox>>,
    interest_rx: watch::Receiver<BTreeSet<String>>,
    /// The outbox must be sent (again) before the next read.
    need_publish: bool,
    /// The introducer refused our publication as a replay of this seqnum:
    /// the next step signs it again above that.
    resign_above: Option<u64>,
    /// The table's version token from the last read, for the long-poll.
    token: Option<String>,
    /// The services the token is for.
    polled: Vec<String>,
    /// The last request failed.
    failed: bool,
    /// A long-poll's answer, for the next step to take in.
    answer: Option<Answer>,
    /// Dropped with the worker: tells the client it stopped.
    _running: mpsc::Sender<()>,
}

/// What a publication attempt came to.
enum Sent {
    /// Every announcement is held by the introducer.
    Done,
    /// The client is stopping.
    Cancelled,
}

impl IntroducerWorker {
    pub(crate) fn new(
        shared: Arc<Shared>,
        transport: Transport,
        base: String,
        connected: Arc<AtomicBool>,
        timing: Timing,
        cancel: CancellationToken,
        running: mpsc::Sender<()>,
    ) -> Self {
        IntroducerWorker {
            outbox_rx: shared.outbox.subscribe(),
            interest_rx: shared.interest.subscribe(),
            shared,
            transport,
            base,
            connected,
            timing,
            cancel,
            need_publish: true,
            resign_above: None,
            token: None,
            polled: Vec::new(),
            failed: false,
            answer: None,
            _running: running,
        }
    }

    /// Sends every signed announcement and withdrawal of the publication.
    async fn send_all(&mut self, signed: &[SignedAnnouncement]) -> Result<Sent, WorkError> {
        for ann in signed {
            let sent = tokio::select! {
                sent = self.transport.announce(&self.base, ann) => sent,
                () = self.cancel.cancelled() => return Ok(Sent::Cancelled),
            };
            match sent {
                Ok(_) => {}
                Err(TransportError::Refused {
                    reply: Some(reply), ..
                }) if reply.outcome == "replay" => {
                    // Paced by the backoff, so two nodes misconfigured with
                    // one uuid cannot outbid each other at full speed.
                    let stored = reply.stored_seqnum.unwrap_or(ann.announcement.seqnum);
                    self.failed = true;
                    self.resign_above = Some(stored);
                    return Err(format!(
                        "introducer holds a newer announcement of ours (seqnum {stored}, ours {}); \
                         signing above it",
                        ann.announcement.seqnum
                    )
                    .into());
                }
                Err(e @ TransportError::Refused { .. }) => {
                    self.set_connected(false);
                    self.failed = true;
                    return Err(format!(
                        "introducer refused our announcement (is the cluster key the same?): {e}"
                    )
                    .into());
                }
                Err(e) => {
                    self.set_connected(false);
                    self.failed = true;
                    return Err(format!("cannot publish; will retry: {e}").into());
                }
            }
        }
        Ok(Sent::Done)
    }

    /// Takes in a read of the table. `Some` is the pause before the next
    /// read, for an introducer that does not long-poll.
    fn take_answer(
        &mut self,
        (query, result): Answer,
        outbox: &Outbox,
    ) -> Result<Option<WorkerState>, WorkError> {
        match result {
            Ok((list, version)) => {
                if self.failed {
                    tracing::info!(introducer = %self.base, "introducer reachable again");
                    self.need_publish = true;
                }
                self.failed = false;
                self.set_connected(true);
                if lacks_own(outbox, &query.services, &list) {
                    self.need_publish = true;
                }
                self.shared.merge(list);
                self.token = Some(version).filter(|v| !v.is_empty());
                // Not an introducer that long-polls: do not spin.
                Ok(self
                    .token
                    .is_none()
                    .then_some(WorkerState::Throttled(self.timing.repoll)))
            }
            Err(e) => {
                self.set_connected(false);
                self.token = None;
                self.failed = true;
                Err(Box::new(e))
            }
        }
    }

    fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }
}

impl Worker for IntroducerWorker {
    fn name(&self) -> String {
        format!("introducer {}", self.base)
    }

    fn status(&self) -> WorkerStatus {
        let progress = if self.connected.load(Ordering::Relaxed) {
            format!("connected, polling {} services", self.polled.len())
        } else if self.failed {
            "unreachable".to_owned()
        } else {
            "connecting".to_owned()
        };
        let unsent = if self.need_publish {
            self.outbox_rx.borrow().signed.len() as u64
        } else {
            0
        };
        WorkerStatus {
            progress: Some(progress),
            queue_length: Some(unsent),
            details: Vec::new(),
        }
    }

    async fn work(&mut self, _cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        if self.cancel.is_cancelled() {
            return Ok(WorkerState::Done);
        }
        if let Some(stored) = self.resign_above.take() {
            // Signing again changes the outbox, which wakes every worker.
            if let Err(e) = self.shared.publish(None, stored).await {
                tracing::error!(error = %e, "cannot sign again after a replay refusal");
            }
        }
        if self.outbox_rx.has_changed().unwrap_or(false) {
            self.need_publish = true;
        }
        let outbox = self.outbox_rx.borrow_and_update().clone();
        self.interest_rx.borrow_and_update();
        if self.need_publish && !outbox.signed.is_empty() {
            match self.send_all(&outbox.signed).await? {
                Sent::Cancelled => return Ok(WorkerState::Done),
                Sent::Done => {
                    self.need_publish = false;
                    let seqnum = outbox.max_seqnum();
                    self.shared.acks.send_modify(|acks| {
                        acks.insert(self.base.clone(), seqnum);
                    });
                }
            }
        }
        let mut pause = None;
        if let Some(answer) = self.answer.take() {
            pause = self.take_answer(answer, &outbox)?;
        }
        let services = self.shared.polled_services();
        if services.is_empty() {
            self.token = None;
            self.polled.clear();
            return Ok(WorkerState::Idle);
        }
        if services != self.polled {
            self.token = None;
            self.polled = services.clone();
        }
        if self.token.is_none() && pause.is_none() {
            // The whole table now; the long-polls wait for changes.
            let query = ListQuery {
                services,
                wait: Duration::ZERO,
                since: None,
                withdrawn: true,
            };
            let result = tokio::select! {
                result = self.transport.list(&self.base, &query) => result,
                () = self.cancel.cancelled() => return Ok(WorkerState::Done),
            };
            pause = self.take_answer((query, result), &outbox)?;
        }
        Ok(match pause {
            Some(pause) => pause,
            // Sent again at once: the introducer came back, or lacks it.
            None if self.need_publish && !outbox.signed.is_empty() => WorkerState::Busy,
            None => WorkerState::Idle,
        })
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        let IntroducerWorker {
            transport,
            base,
            token,
            polled,
            timing,
            outbox_rx,
            interest_rx,
            cancel,
            answer,
            need_publish,
            ..
        } = self;
        let long_poll = async {
            match token.clone() {
                Some(since) if !polled.is_empty() => {
                    let query = ListQuery {
                        services: polled.clone(),
                        wait: timing.poll_wait,
                        since: Some(since),
                        withdrawn: true,
                    };
                    let result = transport.list(base, &query).await;
                    (query, result)
                }
                _ => std::future::pending().await,
            }
        };
        // Every branch is cancel-safe: the answer or the change is kept
        // only when its branch completes.
        tokio::select! {
            got = long_poll => *answer = Some(got),
            _ = outbox_rx.changed() => *need_publish = true,
            _ = interest_rx.changed() => {}
            () = cancel.cancelled() => {}
        }
        WorkerState::Busy
    }
}
