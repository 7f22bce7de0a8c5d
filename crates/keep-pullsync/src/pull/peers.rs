//! Which peers this node pulls from: every peer in the pool while this
//! node takes uploads (a read-only or draining node is never responsible,
//! so it pulls nothing). Each gets one [`BinPuller`] per bin, under a
//! cancel token of its own, so a peer that leaves the pool (or comes back
//! under another URL) stops its syncs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keep_worker::{Backoff, SpawnOptions, WorkError, Worker, WorkerState, WorkerStatus, Workers};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{BinPuller, Shared};
use crate::bins::BINS;
use crate::feed::ScanReport;

/// The pullers' retry policy: a peer that fails is asked again soon (it
/// is usually back within seconds: a restart).
const PULLER_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(500),
    max: Duration::from_secs(10),
    jitter: true,
};

/// How often the synced intervals are made durable.
const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The worker (`pullsync peers`) that starts and stops the pullers.
#[derive(Debug)]
pub struct PeerPullers {
    shared: Arc<Shared>,
    workers: Workers,
    scan: watch::Receiver<ScanReport>,
    started: bool,
    /// Per peer uuid: the url its pullers use, and their token.
    running: HashMap<String, (String, CancellationToken)>,
    last_flush: Instant,
}

impl PeerPullers {
    pub(crate) fn new(
        shared: Arc<Shared>,
        workers: Workers,
        scan: watch::Receiver<ScanReport>,
    ) -> Self {
        PeerPullers {
            shared,
            workers,
            scan,
            started: false,
            running: HashMap::new(),
            last_flush: Instant::now(),
        }
    }

    /// Once the first scan of the volumes is done: if it found blocks
    /// missing that the index listed (a wiped or damaged volume), what was
    /// synced is void, so everything is offered again.
    async fn start(&mut self) -> Result<bool, WorkError> {
        let report = *self.scan.borrow();
        if !report.done {
            return Ok(false);
        }
        if report.removed > 0 {
            tracing::warn!(
                lost = report.removed,
                "blocks went missing from the volumes; pulling everything from peers again"
            );
            self.shared.intervals(|s| s.clear()).await?;
        }
        self.started = true;
        Ok(true)
    }

    fn stop(&mut self, uuid: &str) {
        if let Some((_, token)) = self.running.remove(uuid) {
            tracing::info!(peer = %uuid, "pullsync from this peer stops");
            token.cancel();
            self.shared.progress.forget(uuid);
        }
    }

    fn follow_pool(&mut self) {
        let peers = if self.shared.responsibility.takes_uploads() {
            self.shared.pool.remotes()
        } else {
            Vec::new()
        };
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|uuid| !peers.iter().any(|p| &p.uuid == *uuid))
            .cloned()
            .collect();
        for uuid in gone {
            self.stop(&uuid);
        }
        for peer in peers {
            if self
                .running
                .get(&peer.uuid)
                .is_some_and(|(url, _)| *url == peer.url)
            {
                continue;
            }
            self.stop(&peer.uuid);
            tracing::info!(peer = %peer.uuid, url = %peer.url, "pullsync from this peer starts");
            let token = self.workers.cancel_token().child_token();
            for bin in 0..BINS {
                let bin = u8::try_from(bin).expect("BINS fits in u8");
                let puller = BinPuller::new(peer.clone(), bin, self.shared.clone());
                self.workers.spawn_with(
                    puller,
                    SpawnOptions {
                        tranquility: self.shared.settings.tranquility,
                        backoff: PULLER_BACKOFF,
                        cancel: Some(token.clone()),
                    },
                );
            }
            self.running
                .insert(peer.uuid.clone(), (peer.url.clone(), token));
        }
        self.workers.prune();
    }
}

impl Drop for PeerPullers {
    fn drop(&mut self) {
        for (_, token) in self.running.values() {
            token.cancel();
        }
    }
}

impl Worker for PeerPullers {
    fn name(&self) -> String {
        "pullsync peers".into()
    }

    fn status(&self) -> WorkerStatus {
        let progress = if self.started {
            format!("pulling from {} peers", self.running.len())
        } else {
            "waiting for the pull index scan".into()
        };
        WorkerStatus {
            progress: Some(progress),
            ..WorkerStatus::default()
        }
    }

    async fn work(&mut self, _cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        if !self.started && !self.start().await? {
            return Ok(WorkerState::Idle);
        }
        self.follow_pool();
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.shared.intervals(|s| s.flush()).await?;
            self.last_flush = Instant::now();
        }
        Ok(WorkerState::Idle)
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        let check = self.shared.settings.peer_check;
        if self.started {
            tokio::time::sleep(check).await;
        } else {
            let _ = tokio::time::timeout(check, self.scan.changed()).await;
        }
        WorkerState::Busy
    }
}
