//! Keeping the pool in step with the introducer.

use std::collections::HashSet;

use keep_introducer::client::Peer;
use keep_worker::{WorkError, Worker, WorkerState, WorkerStatus};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{PeerInfo, Pool};

impl Pool {
    /// The worker that feeds the pool from the introducer, to spawn on the
    /// node's [`keep_worker::Workers`]: `download` and `upload` are the
    /// watches of `download_storage` and `upload_storage` peers
    /// (`IntroducerClient::subscribe_to`).
    pub fn follow_worker(
        &self,
        download: watch::Receiver<Vec<Peer>>,
        upload: watch::Receiver<Vec<Peer>>,
    ) -> FollowWorker {
        FollowWorker {
            pool: self.clone(),
            download,
            upload,
            download_open: true,
            upload_open: true,
            applied: (0, 0),
        }
    }
}

/// The worker named `"membership"` ([`Pool::follow_worker`]): calls
/// [`Pool::update`] with the watches' current values at once and after
/// every change of either; done when both watches are closed. Its progress
/// reads "4 announced, 3 taking uploads" (the introducers' view, this
/// node included; the pool itself holds the others).
#[derive(Debug)]
pub struct FollowWorker {
    pool: Pool,
    download: watch::Receiver<Vec<Peer>>,
    upload: watch::Receiver<Vec<Peer>>,
    download_open: bool,
    upload_open: bool,
    /// How many readable and writable peers the last update had.
    applied: (usize, usize),
}

impl Worker for FollowWorker {
    fn name(&self) -> String {
        "membership".into()
    }

    fn status(&self) -> WorkerStatus {
        let (readable, writable) = self.applied;
        WorkerStatus {
            progress: Some(format!("{readable} announced, {writable} taking uploads")),
            ..WorkerStatus::default()
        }
    }

    async fn work(&mut self, _cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        let readable: Vec<PeerInfo> = self
            .download
            .borrow_and_update()
            .iter()
            .map(PeerInfo::from)
            .collect();
        let writable: HashSet<String> = self
            .upload
            .borrow_and_update()
            .iter()
            .map(|p| p.uuid.clone())
            .collect();
        self.applied = (readable.len(), writable.len());
        self.pool.update(readable, writable);
        if !self.download_open && !self.upload_open {
            return Ok(WorkerState::Done);
        }
        Ok(WorkerState::Idle)
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        // `changed` is cancel-safe; a closed watch is noted and not waited on again.
        tokio::select! {
            changed = self.download.changed(), if self.download_open => {
                self.download_open = changed.is_ok();
            }
            changed = self.upload.changed(), if self.upload_open => {
                self.upload_open = changed.is_ok();
            }
            else => {}
        }
        WorkerState::Busy
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keep_worker::Workers;

    use super::*;
    use crate::{HeartbeatConfig, NodeCredential, RemoteConfig};

    fn peer(uuid: &str) -> Peer {
        Peer {
            uuid: uuid.into(),
            url: format!("http://{uuid}:1"),
            nickname: String::new(),
            version: "test".into(),
            seqnum: 1,
        }
    }

    /// Listed as "membership" with what it applied; done once both watches
    /// closed, after taking in their last values.
    #[tokio::test]
    async fn done_when_both_watches_close() {
        let pool = Pool::new(
            "self".into(),
            NodeCredential::from_cluster_key(b"k"),
            RemoteConfig::default(),
            HeartbeatConfig::default(),
        );
        let (download_tx, download) = watch::channel(vec![peer("a")]);
        let (upload_tx, upload) = watch::channel(vec![peer("a")]);
        let workers = Workers::new();
        workers.spawn(pool.follow_worker(download, upload));
        let listed = || workers.list().pop().unwrap();
        for _ in 0..1000 {
            if listed().state == "idle" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let info = listed();
        assert_eq!((info.name.as_str(), info.state), ("membership", "idle"));
        assert_eq!(
            info.status.progress.as_deref(),
            Some("1 announced, 1 taking uploads")
        );

        download_tx.send_replace(vec![peer("a"), peer("b")]);
        drop(download_tx);
        upload_tx.send_replace(Vec::new());
        drop(upload_tx);
        for _ in 0..1000 {
            if listed().state == "done" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(listed().state, "done");
        assert_eq!(pool.remotes().len(), 2);
        assert!(pool.get("b").is_some());
        assert_eq!(
            listed().status.progress.as_deref(),
            Some("2 announced, 0 taking uploads")
        );
        assert!(workers.shutdown(Duration::from_secs(1)).await);
    }
}
