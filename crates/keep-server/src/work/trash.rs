//! Trash workers and the empty-trash worker.
//!
//! Architecture invariant: a copy is trashed only if it is older than the
//! signing TTL (someone may still hold a signature for a younger one) and
//! its mtime is still exactly the one the list was made with (it was not
//! written again since); the check and the trash are one atomic step on the
//! volume.

use std::sync::Arc;
use std::time::Duration;

use keep_store::Store;
use keep_volume::VolumeError;
use keep_worker::{WorkError, Worker, WorkerState, WorkerStatus};
use keep_workqueue::WorkQueue;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Next, Outcomes, Taker, TrashItem, count};

/// One trash worker (named `trash N`): takes trash entries until the
/// list is closed.
#[derive(Debug)]
pub struct TrashWorker {
    id: usize,
    list: Taker<TrashItem>,
    store: Arc<Store>,
    signing_ttl: Duration,
    outcomes: Outcomes,
    handled: u64,
}

impl TrashWorker {
    pub(crate) fn new(
        id: usize,
        queue: WorkQueue<TrashItem>,
        store: Arc<Store>,
        signing_ttl: Duration,
        outcomes: Outcomes,
    ) -> Self {
        TrashWorker {
            id,
            list: Taker::new(queue),
            store,
            signing_ttl,
            outcomes,
            handled: 0,
        }
    }

    async fn trash_one(&self, item: &TrashItem) -> &'static str {
        let ttl_ns = i64::try_from(self.signing_ttl.as_nanos()).unwrap_or(i64::MAX);
        if keep_volume::unix_nanos_now().saturating_sub(item.mtime) < ttl_ns {
            return "too_young";
        }
        let volumes: Vec<_> = match &item.mount {
            Some(uuid) => match self.store.volume(uuid) {
                Some(v) => vec![v.clone()],
                None => return "unknown_mount",
            },
            None => self.store.volumes().to_vec(),
        };
        let mut outcome = "not_found";
        for vol in volumes.iter().filter(|v| v.params().allow_trash) {
            match vol.trash(&item.hash, Some(item.mtime)).await {
                Ok(()) => outcome = "trashed",
                Err(VolumeError::NotFound) => {}
                Err(VolumeError::MtimeMismatch { .. }) => {
                    if outcome == "not_found" {
                        outcome = "mtime_mismatch";
                    }
                }
                Err(_) => {
                    // Logged and counted by the volume's health wrapper.
                    if outcome != "trashed" {
                        outcome = "failed";
                    }
                }
            }
        }
        outcome
    }
}

impl Worker for TrashWorker {
    fn name(&self) -> String {
        format!("trash {}", self.id)
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus {
            progress: Some(format!("{} entries handled", self.handled)),
            queue_length: Some(self.list.queued()),
            ..WorkerStatus::default()
        }
    }

    async fn work(&mut self, _cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        let ticket = match self.list.take() {
            Next::Entry(t) => t,
            Next::Empty => return Ok(WorkerState::Idle),
            Next::Closed => return Ok(WorkerState::Done),
        };
        let outcome = self.trash_one(&ticket).await;
        count(&self.outcomes, outcome);
        tracing::info!(block = %ticket.hash, outcome, "trash entry");
        ticket.done();
        self.handled += 1;
        Ok(WorkerState::Busy)
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        self.list.wait().await
    }
}

/// The empty-trash worker (named `empty trash`): every
/// `trash_check_interval`, from start on, deletes trashed blocks whose
/// lifetime has passed, on every volume that allows trash.
#[derive(Debug)]
pub struct EmptyTrashWorker {
    store: Arc<Store>,
    interval: Duration,
    next: Instant,
    deleted: u64,
    passes: u64,
}

impl EmptyTrashWorker {
    pub(crate) fn new(store: Arc<Store>, interval: Duration) -> Self {
        EmptyTrashWorker {
            store,
            interval,
            next: Instant::now(),
            deleted: 0,
            passes: 0,
        }
    }
}

impl Worker for EmptyTrashWorker {
    fn name(&self) -> String {
        "empty trash".into()
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus {
            progress: Some(format!(
                "{} passes, {} blocks deleted",
                self.passes, self.deleted
            )),
            ..WorkerStatus::default()
        }
    }

    async fn work(&mut self, _cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        if Instant::now() < self.next {
            return Ok(WorkerState::Idle);
        }
        self.next = Instant::now() + self.interval;
        self.passes += 1;
        let mut failed = None;
        for vol in self
            .store
            .volumes()
            .iter()
            .filter(|v| v.params().allow_trash)
        {
            match vol.empty_trash().await {
                Ok(stats) => {
                    self.deleted += stats.deleted;
                    if stats.deleted > 0 {
                        tracing::info!(volume = %vol.params().uuid, deleted = stats.deleted, bytes = stats.deleted_bytes, remaining = stats.remaining, "emptied trash");
                    }
                }
                Err(e) => failed = Some(format!("{}: {e}", vol.params().uuid)),
            }
        }
        match failed {
            // Counted as the worker's error; the next pass comes at its
            // usual time (the runner's backoff is shorter than that).
            Some(e) => Err(e.into()),
            None => Ok(WorkerState::Idle),
        }
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        tokio::time::sleep_until(self.next).await;
        WorkerState::Busy
    }
}
