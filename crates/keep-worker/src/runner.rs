//! The runner: one task per worker, stepping it and keeping its record.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use futures::FutureExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::registry::{SpawnOptions, WorkerInfo};
use crate::worker::{Worker, WorkerState, WorkerStatus};

/// What the registry knows of one worker, kept current by its runner.
pub(crate) type Shared = Arc<Mutex<WorkerInfo>>;

/// The record, even if a panic poisoned its lock.
pub(crate) fn lock(record: &Shared) -> MutexGuard<'_, WorkerInfo> {
    record.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `worker` until it is done, the registry is cancelled, it panics
/// or its task is aborted; the record says which. The worker is dropped
/// after its record says done.
pub(crate) async fn run<W: Worker>(
    mut worker: W,
    record: Shared,
    opts: SpawnOptions,
    cancel: CancellationToken,
) {
    let mut guard = Finished {
        record: record.clone(),
        done: false,
    };
    let result = AssertUnwindSafe(steps(&mut worker, &record, opts, &cancel))
        .catch_unwind()
        .await;
    let mut r = lock(&record);
    r.state = "done";
    if let Err(panic) = result {
        let message = panic_message(panic.as_ref());
        tracing::error!(worker = %r.name, panic = %message, "worker panicked");
        note_error(&mut r, format!("panicked: {message}"));
        r.errors += 1;
    }
    guard.done = true;
    drop(r);
    drop(worker);
}

/// Marks the record done (aborted) if the runner is dropped before it
/// finished: the registry aborted it at shutdown.
struct Finished {
    record: Shared,
    done: bool,
}

impl Drop for Finished {
    fn drop(&mut self) {
        if !self.done {
            mark_aborted(&self.record);
        }
    }
}

/// Records that the worker's task was aborted.
pub(crate) fn mark_aborted(record: &Shared) {
    let mut r = lock(record);
    r.state = "done";
    note_error(
        &mut r,
        "aborted: did not stop by the shutdown deadline".into(),
    );
}

/// The loop of steps and waits.
async fn steps<W: Worker>(
    worker: &mut W,
    record: &Shared,
    opts: SpawnOptions,
    cancel: &CancellationToken,
) {
    let name = lock(record).name.clone();
    let mut state = WorkerState::Busy;
    loop {
        if cancel.is_cancelled() {
            return;
        }
        state = match state {
            WorkerState::Busy => {
                set_state(record, "busy", None);
                let started = Instant::now();
                let result = worker.work(cancel).await;
                let elapsed = started.elapsed();
                let status = worker.status();
                let mut r = lock(record);
                r.iterations += 1;
                r.status = status;
                match result {
                    Ok(next) => {
                        r.consecutive_errors = 0;
                        match next {
                            WorkerState::Busy if r.tranquility > 0 => {
                                WorkerState::Throttled(elapsed.saturating_mul(r.tranquility))
                            }
                            other => other,
                        }
                    }
                    Err(e) => {
                        note_error(&mut r, e.to_string());
                        r.errors += 1;
                        r.consecutive_errors += 1;
                        let attempt = u32::try_from(r.consecutive_errors).unwrap_or(u32::MAX);
                        let delay = opts.backoff.delay(attempt);
                        tracing::warn!(worker = %name, error = %e, consecutive_errors = attempt,
                            retry_in = ?delay, "worker step failed");
                        WorkerState::Throttled(delay)
                    }
                }
            }
            WorkerState::Throttled(delay) => {
                set_state(record, "throttled", Some(worker.status()));
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => WorkerState::Busy,
                }
            }
            WorkerState::Idle => {
                set_state(record, "idle", Some(worker.status()));
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return,
                    next = worker.wait_for_work() => next,
                }
            }
            WorkerState::Done => {
                tracing::debug!(worker = %name, "worker done");
                return;
            }
        };
    }
}

fn set_state(record: &Shared, state: &'static str, status: Option<WorkerStatus>) {
    let mut r = lock(record);
    r.state = state;
    if let Some(status) = status {
        r.status = status;
    }
}

fn note_error(info: &mut WorkerInfo, message: String) {
    info.last_error = Some(message);
    info.last_error_at = Some(unix_now());
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}
