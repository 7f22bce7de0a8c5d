//! Pull workers: fetch a listed block from the listed servers, in order,
//! until one delivers it whole and verified.
//!
//! As in Keep (story 3761): each try uses a fresh random token and a
//! permission signature about 60 seconds in the future (the cluster shares
//! the signing key), the bytes are verified against the hash and size, and
//! the block is stored through the same path as a client PUT. No retry
//! loop: the next list will ask again. A server that sends other bytes than
//! the hash is a failure and nothing of it is stored.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use keep_locator::{Locator, SigningKey};
use keep_remote::{Fetcher, RemoteError};
use keep_store::{Placement, Store, StoreError};
use keep_volume::{BlockBody, BodyError};
use keep_worker::{WorkError, Worker, WorkerState, WorkerStatus};
use keep_workqueue::WorkQueue;
use tokio_util::sync::CancellationToken;

use super::{Next, Outcomes, PullItem, Taker, count};

/// Why one server did not deliver.
#[derive(Debug, thiserror::Error)]
enum PullError {
    #[error(transparent)]
    Fetch(#[from] RemoteError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One pull worker (named `pull N`): takes pull entries until the list
/// is closed.
#[derive(Debug)]
pub struct PullWorker {
    id: usize,
    list: Taker<PullItem>,
    store: Arc<Store>,
    fetcher: Fetcher,
    signing: Option<(SigningKey, Duration)>,
    outcomes: Outcomes,
    pulled: u64,
    failed: u64,
}

impl PullWorker {
    pub(crate) fn new(
        id: usize,
        queue: WorkQueue<PullItem>,
        store: Arc<Store>,
        fetcher: Fetcher,
        signing: Option<(SigningKey, Duration)>,
        outcomes: Outcomes,
    ) -> Self {
        PullWorker {
            id,
            list: Taker::new(queue),
            store,
            fetcher,
            signing,
            outcomes,
            pulled: 0,
            failed: 0,
        }
    }

    /// Pulls one entry from the first server that delivers it.
    async fn pull(&mut self, item: &PullItem) {
        let mut outcome = "failed";
        for server in &item.servers {
            match self.pull_from(item, server).await {
                Ok(()) => {
                    outcome = "ok";
                    tracing::info!(block = %item.hash, server, "pulled");
                    break;
                }
                Err(e) => tracing::warn!(block = %item.hash, server, error = %e, "pull failed"),
            }
        }
        if outcome == "ok" {
            self.pulled += 1;
        } else {
            self.failed += 1;
        }
        count(&self.outcomes, outcome);
    }

    async fn pull_from(&self, item: &PullItem, server: &str) -> Result<(), PullError> {
        let token = random_token();
        let mut locator = Locator::new(item.hash, item.size);
        if let Some((key, ttl)) = &self.signing {
            locator = key.sign(&locator, &token, crate::clock::unix_now() + 60, *ttl);
        }
        let _reservation = self.store.budget().reserve(item.size).await?;
        let block = self
            .fetcher
            .fetch(server, &locator, &token, item.size)
            .await?;
        let chunks = block
            .chunks
            .map_err(|e| BodyError::Source(e.to_string()))
            .boxed();
        let body = BlockBody::new(item.hash, Some(item.size), chunks);
        let place = Placement {
            mount: item.mount.as_deref(),
            classes: &[],
        };
        self.store.store(item.hash, body, place).await?;
        Ok(())
    }
}

impl Worker for PullWorker {
    fn name(&self) -> String {
        format!("pull {}", self.id)
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus {
            progress: Some(format!("{} pulled, {} failed", self.pulled, self.failed)),
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
        self.pull(&ticket).await;
        ticket.done();
        Ok(WorkerState::Busy)
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        self.list.wait().await
    }
}

/// A throwaway token: Keep checks the signature, not the token.
fn random_token() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..32)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}
