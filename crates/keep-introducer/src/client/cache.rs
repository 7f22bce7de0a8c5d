//! The cache writer: keeps [`super::CACHE_FILE`] in step with what the
//! client knows, coalescing bursts of changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keep_worker::{WorkError, Worker, WorkerState, WorkerStatus};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::persist;
use super::state::Shared;

/// The worker named `"introducer cache"`.
#[derive(Debug)]
pub(crate) struct CacheWriter {
    shared: Arc<Shared>,
    changed: watch::Receiver<u64>,
    /// The version of the known table the cache file holds.
    written: Arc<AtomicU64>,
    /// The client's token (a child of the registry's).
    cancel: CancellationToken,
    /// Dropped with the worker: tells the client it stopped.
    _running: mpsc::Sender<()>,
}

impl CacheWriter {
    pub(crate) fn new(
        shared: Arc<Shared>,
        written: Arc<AtomicU64>,
        cancel: CancellationToken,
        running: mpsc::Sender<()>,
    ) -> Self {
        CacheWriter {
            changed: shared.known_changed.subscribe(),
            shared,
            written,
            cancel,
            _running: running,
        }
    }
}

impl Worker for CacheWriter {
    fn name(&self) -> String {
        "introducer cache".into()
    }

    fn status(&self) -> WorkerStatus {
        let known = *self.changed.borrow();
        let written = self.written.load(Ordering::Relaxed);
        WorkerStatus {
            progress: Some(if known == written {
                "written".to_owned()
            } else {
                "changes to write".to_owned()
            }),
            ..WorkerStatus::default()
        }
    }

    async fn work(&mut self, _cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        self.changed.borrow_and_update();
        store_if_changed(&self.shared, &self.written).await?;
        if self.cancel.is_cancelled() {
            return Ok(WorkerState::Done);
        }
        Ok(WorkerState::Idle)
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        tokio::select! {
            _ = self.changed.changed() => {}
            () = self.cancel.cancelled() => {}
        }
        WorkerState::Busy
    }
}

/// Writes the known table to the cache unless the cache already holds its
/// current version; `written` records the version written.
pub(crate) async fn store_if_changed(
    shared: &Arc<Shared>,
    written: &AtomicU64,
) -> Result<(), WorkError> {
    // The version first: the table read after it is at least that new.
    let version = *shared.known_changed.borrow();
    if version == written.load(Ordering::Relaxed) {
        return Ok(());
    }
    let list = shared.known();
    let dir = shared.state_dir.clone();
    tokio::task::spawn_blocking(move || persist::store_cache(&dir, &list))
        .await
        .map_err(|e| format!("announcement cache task failed: {e}"))?
        .map_err(|e| format!("cannot write the announcement cache: {e}"))?;
    written.store(version, Ordering::Relaxed);
    Ok(())
}
