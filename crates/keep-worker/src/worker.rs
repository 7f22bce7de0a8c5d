//! What a worker is: the trait, the state a step returns, and what a
//! worker tells about itself.

use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// What a worker's last step says about the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// There is more to do: call [`Worker::work`] again at once (after the
    /// tranquility pause, if one is set).
    Busy,
    /// There is more to do, but not before this much time has passed.
    Throttled(Duration),
    /// Nothing to do until [`Worker::wait_for_work`] says so.
    Idle,
    /// Finished for good: the runner exits.
    Done,
}

/// What a worker tells about itself (captured by the runner after every
/// step and before every wait).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WorkerStatus {
    /// Where it is, for people ("3 peers, 2 up").
    pub progress: Option<String>,
    /// How many items wait for it, if it has a queue.
    pub queue_length: Option<u64>,
    /// Anything else worth showing, one line each.
    pub details: Vec<String>,
}

/// The error a step fails with: anything that can be shown and sent
/// between threads. The runner logs it, counts it and backs off.
pub type WorkError = Box<dyn std::error::Error + Send + Sync>;

/// One kind of background work, run by [`crate::Workers`] one step at a
/// time.
///
/// A worker owns its state; the runner calls [`Worker::work`] while it
/// returns [`WorkerState::Busy`], waits with [`Worker::wait_for_work`]
/// when it returns [`WorkerState::Idle`], sleeps when it returns
/// [`WorkerState::Throttled`] or fails, and stops at
/// [`WorkerState::Done`] or when the registry shuts down.
pub trait Worker: Send + 'static {
    /// The name it is listed and logged under (`"heartbeat"`,
    /// `"introducer http://10.0.0.1:25108"`).
    fn name(&self) -> String;

    /// What it tells about itself now; called after every step and before
    /// every wait, so it must be cheap and must not block.
    fn status(&self) -> WorkerStatus {
        WorkerStatus::default()
    }

    /// One step. Must not wait for work to arrive (return
    /// [`WorkerState::Idle`] instead); long steps should watch `cancel`,
    /// which is cancelled when the registry shuts down.
    ///
    /// # Errors
    ///
    /// Whatever made the step fail: the runner counts it, logs it and
    /// calls `work` again after its backoff.
    fn work(
        &mut self,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<WorkerState, WorkError>> + Send;

    /// Waits until there may be work; returns the state to go on with
    /// (usually [`WorkerState::Busy`]). The runner cancels it (drops the
    /// future) on shutdown, so it must be cancel-safe.
    fn wait_for_work(&mut self) -> impl Future<Output = WorkerState> + Send;
}
