//! Volume-health recovery: a worker that asks each suspect volume for its
//! status once its suspect period is over, so a volume that answers again
//! is tried again without a client's request paying for the check, and one
//! that still fails is passed over for longer. (A status answer only ends
//! the period; the volume is cleared for good by its next answer on the
//! data path: see [`crate::health`].)

use std::sync::Arc;
use std::time::Duration;

use keep_volume::Volume;
use keep_worker::{WorkError, Worker, WorkerState, WorkerStatus};
use tokio_util::sync::CancellationToken;

use crate::VolumeHealth;

/// The worker (named `volume recovery`); see the module docs.
#[derive(Debug)]
pub struct RecoveryWorker {
    volumes: Vec<Arc<dyn Volume>>,
    health: Arc<VolumeHealth>,
    suspect: usize,
    recovered: u64,
}

/// How long the worker sleeps when no volume is suspect, at most (it is
/// woken at once when one becomes suspect).
const IDLE_CHECK: Duration = Duration::from_secs(60);

impl RecoveryWorker {
    pub(crate) fn new(volumes: Vec<Arc<dyn Volume>>, health: Arc<VolumeHealth>) -> Self {
        RecoveryWorker {
            volumes,
            health,
            suspect: 0,
            recovered: 0,
        }
    }
}

impl Worker for RecoveryWorker {
    fn name(&self) -> String {
        "volume recovery".into()
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus {
            progress: Some(format!(
                "{} of {} volumes suspect; {} recovered",
                self.suspect,
                self.volumes.len(),
                self.recovered
            )),
            ..WorkerStatus::default()
        }
    }

    async fn work(&mut self, _cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        let (due, _) = self.health.due();
        for uuid in due {
            let Some(vol) = self.volumes.iter().find(|v| v.params().uuid == uuid) else {
                continue;
            };
            // The volumes are health-checked: an answer clears the
            // suspicion, a failure extends it.
            if vol.status().await.is_ok() {
                self.recovered += 1;
            }
        }
        self.suspect = self
            .volumes
            .iter()
            .filter(|v| self.health.is_suspect(&v.params().uuid))
            .count();
        Ok(WorkerState::Idle)
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        let wait = match self.health.due() {
            (due, _) if !due.is_empty() => return WorkerState::Busy,
            (_, Some(next)) => next.saturating_duration_since(std::time::Instant::now()),
            (_, None) => IDLE_CHECK,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = self.health.changed.notified() => {}
        }
        WorkerState::Busy
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use keep_volume::testing::{Fault, FaultyVolume, MemVolume, Op, Schedule};
    use keep_volume::{Volume, VolumeParams};
    use keep_worker::{Worker, WorkerState};
    use tokio_util::sync::CancellationToken;

    use crate::Store;

    /// The worker leaves a suspect volume alone during its period, asks it
    /// once the period is over, extends the period while it still fails,
    /// and clears it once it answers.
    #[tokio::test]
    async fn a_suspect_volume_is_asked_when_due_and_cleared_when_it_answers() {
        let uuid = "zzzzz-nyw5e-000000000000001";
        let faulty = Arc::new(FaultyVolume::new(Arc::new(MemVolume::new(
            VolumeParams::new(uuid),
        ))));
        let store = Store::with_volumes(vec![faulty.clone() as Arc<dyn Volume>], 16 << 20);
        faulty.inject(Op::Status, Fault::Unavailable, Schedule::Times(2));
        assert!(store.volumes()[0].status().await.is_err());
        assert!(store.health().is_suspect(uuid));
        let mut worker = store.recovery_worker();
        let cancel = CancellationToken::new();
        let asked = faulty.calls(Op::Status);
        worker.work(&cancel).await.unwrap();
        assert_eq!(
            faulty.calls(Op::Status),
            asked,
            "not asked during its period"
        );
        store.health().expire(uuid);
        assert!(matches!(worker.wait_for_work().await, WorkerState::Busy));
        worker.work(&cancel).await.unwrap();
        assert_eq!(faulty.calls(Op::Status), asked + 1);
        assert!(store.health().is_suspect(uuid), "still failing");
        assert_eq!(store.health().failures(uuid), Some(2), "for longer");
        store.health().expire(uuid);
        worker.work(&cancel).await.unwrap();
        assert!(!store.health().is_suspect(uuid), "it answered");
        assert_eq!(
            worker.status().progress.as_deref(),
            Some("0 of 1 volumes suspect; 1 recovered")
        );
        assert_eq!(
            store.health().failures(uuid),
            Some(2),
            "kept until a read answers"
        );
        worker.work(&cancel).await.unwrap();
        assert_eq!(faulty.calls(Op::Status), asked + 2, "asked once, not again");
        assert!(
            store.volumes()[0]
                .open(&keep_locator::BlockHash::EMPTY)
                .await
                .is_err()
        );
        assert_eq!(
            store.health().failures(uuid),
            None,
            "cleared by a data-path answer"
        );
    }
}
