//! The registry: spawns workers, lists them, tunes them, stops them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::runner::{self, Shared, lock};
use crate::worker::{Worker, WorkerStatus};

/// Options a worker is spawned with; the default: tranquility 0, backoff
/// 1 s doubling up to 60 s, with jitter.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// After a busy step that took `t`, the runner sleeps `t × tranquility`
    /// before the next one (0, the default: no pause), so a worker with
    /// much to do leaves room for the node's real work.
    pub tranquility: u32,
    /// The pause after a failed step, by the number of failures in a row
    /// (default 1 s doubling up to 60 s, with jitter).
    pub backoff: Backoff,
    /// A token of the worker's own, for a part that stops its workers
    /// before the registry does: it must be a child of
    /// [`Workers::cancel_token`] (so the registry's shutdown stops the
    /// worker too); the runner watches it instead of the registry's, in
    /// its steps and in every pause and wait. Default: the registry's.
    pub cancel: Option<CancellationToken>,
}

/// A worker's number in its registry, in spawn order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct WorkerId(pub u64);

/// One row of `GET /_keep/workers`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkerInfo {
    /// Its [`WorkerId`].
    pub id: u64,
    /// [`Worker::name`], taken when it was spawned.
    pub name: String,
    /// `"busy"` (in a step), `"idle"` (waiting for work), `"throttled"`
    /// (pausing: tranquility, a throttled step or the backoff after a
    /// failure) or `"done"` (its task ended).
    pub state: &'static str,
    /// Steps taken, failed ones included.
    pub iterations: u64,
    /// Steps that failed (or panicked), in all.
    pub errors: u64,
    /// Steps that failed since the last one that did not.
    pub consecutive_errors: u64,
    /// The last failure, kept after later successes.
    pub last_error: Option<String>,
    /// When it happened, in unix seconds.
    pub last_error_at: Option<u64>,
    /// Its current tranquility.
    pub tranquility: u32,
    /// What it last told about itself.
    #[serde(flatten)]
    pub status: WorkerStatus,
}

/// The registry and runner: cheap to clone (clones share one registry),
/// owned by the composition root.
///
/// Every worker runs in its own tokio task (so [`Workers::spawn`] must be
/// called inside a tokio runtime) with the registry's cancel token; the
/// registry keeps each one's [`WorkerInfo`] until it is dropped. A worker
/// is dropped only once its row says `"done"`, so a worker's own `Drop`
/// can tell its owner that it stopped.
#[derive(Clone, Debug, Default)]
pub struct Workers {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancel: CancellationToken,
    next_id: AtomicU64,
    entries: Mutex<Vec<Entry>>,
}

#[derive(Debug)]
struct Entry {
    record: Shared,
    /// Taken by [`Workers::shutdown`].
    task: Option<JoinHandle<()>>,
}

impl Workers {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `worker` with the default [`SpawnOptions`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn<W: Worker>(&self, worker: W) -> WorkerId {
        self.spawn_with(worker, SpawnOptions::default())
    }

    /// Spawns `worker` on its own task. After [`Workers::shutdown`] began
    /// the worker is listed but never stepped.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn_with<W: Worker>(&self, worker: W, opts: SpawnOptions) -> WorkerId {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let record: Shared = Arc::new(Mutex::new(WorkerInfo {
            id,
            name: worker.name(),
            state: "busy",
            iterations: 0,
            errors: 0,
            consecutive_errors: 0,
            last_error: None,
            last_error_at: None,
            tranquility: opts.tranquility,
            status: worker.status(),
        }));
        let mut entries = self.entries();
        let cancel = opts
            .cancel
            .clone()
            .unwrap_or_else(|| self.inner.cancel.clone());
        let task = tokio::spawn(runner::run(worker, record.clone(), opts, cancel));
        entries.push(Entry {
            record,
            task: Some(task),
        });
        WorkerId(id)
    }

    /// Every worker, in spawn order, done ones included.
    pub fn list(&self) -> Vec<WorkerInfo> {
        self.records().iter().map(|r| lock(r).clone()).collect()
    }

    /// Forgets the rows of workers that are done (their tasks ended), so
    /// that a part which starts and stops workers as peers come and go
    /// does not grow the list; returns how many were forgotten.
    pub fn prune(&self) -> usize {
        let mut entries = self.entries();
        let before = entries.len();
        entries.retain(|e| {
            let finished = e.task.as_ref().is_none_or(JoinHandle::is_finished);
            !(finished && lock(&e.record).state == "done")
        });
        before - entries.len()
    }

    /// Sets the tranquility of every worker whose name starts with
    /// `name_prefix` (an empty prefix: all of them); it applies from their
    /// next busy step. Returns how many workers matched.
    pub fn set_tranquility(&self, name_prefix: &str, t: u32) -> usize {
        let mut changed = 0;
        for record in self.records() {
            let mut r = lock(&record);
            if r.name.starts_with(name_prefix) {
                r.tranquility = t;
                changed += 1;
            }
        }
        changed
    }

    /// The token every worker gets: cancelled when [`Workers::shutdown`]
    /// begins. Its children suit tasks that should stop with the workers.
    pub fn cancel_token(&self) -> CancellationToken {
        self.inner.cancel.clone()
    }

    /// Cancels every worker, waits for them up to `deadline`, aborts the
    /// rest (logging their names; they are listed as done, with an
    /// `aborted` error). Returns true if all exited in time.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.inner.cancel.cancel();
        let until = tokio::time::Instant::now() + deadline;
        let tasks: Vec<(Shared, JoinHandle<()>)> = self
            .entries()
            .iter_mut()
            .filter_map(|e| Some((e.record.clone(), e.task.take()?)))
            .collect();
        let mut all = true;
        for (record, mut task) in tasks {
            match tokio::time::timeout_at(until, &mut task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(worker = %lock(&record).name, error = %e, "worker task failed");
                }
                Err(_) => {
                    tracing::error!(worker = %lock(&record).name, ?deadline,
                        "worker did not stop by the shutdown deadline; aborting it");
                    task.abort();
                    runner::mark_aborted(&record);
                    all = false;
                }
            }
        }
        all
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.inner.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn records(&self) -> Vec<Shared> {
        self.entries().iter().map(|e| e.record.clone()).collect()
    }
}
