//! Heartbeats: each peer's health, and the loop that keeps it current.

use std::time::{Duration, SystemTime};

use keep_worker::{WorkError, Worker, WorkerState, WorkerStatus};
use tokio_util::sync::CancellationToken;

use crate::pool::Member;
use crate::protocol::NodeStatus;
use crate::{Pool, RemoteError};

/// How often peers are checked, and how many misses make one down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Time between heartbeats (default 2 s). A heartbeat that gets no
    /// answer within one period (or `request_timeout`, if shorter) failed.
    pub period: Duration,
    /// Consecutive failed heartbeats that mark a peer down (default 2; 0
    /// counts as 1).
    pub failures_to_down: u32,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            period: Duration::from_secs(2),
            failures_to_down: 2,
        }
    }
}

/// What the pool knows of one peer's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHealth {
    /// Whether requests should go to it. A new peer starts up.
    pub up: bool,
    /// Whether it answered a heartbeat as the node announced (and no
    /// identity check failed since).
    pub initialized: bool,
    /// Failed heartbeats since the last answer.
    pub consecutive_failures: u32,
    /// It said it is shutting down.
    pub draining: bool,
    /// It said it serves reads only.
    pub read_only: bool,
    /// Its last status answer.
    pub status: Option<NodeStatus>,
    /// When it last answered a heartbeat.
    pub last_seen: Option<SystemTime>,
    /// The last failure, for status pages.
    pub last_error: Option<String>,
}

impl PeerHealth {
    pub(crate) fn new() -> Self {
        PeerHealth {
            up: true,
            initialized: false,
            consecutive_failures: 0,
            draining: false,
            read_only: false,
            status: None,
            last_seen: None,
            last_error: None,
        }
    }

    /// Takes in the result of one heartbeat.
    fn record_heartbeat(
        &mut self,
        result: Result<NodeStatus, RemoteError>,
        failures_to_down: u32,
        peer: &str,
    ) {
        match result {
            Ok(status) => {
                if !self.up {
                    tracing::info!(peer, "peer is up again");
                }
                if status.draining && !self.draining {
                    tracing::info!(peer, "peer is draining");
                }
                self.up = true;
                self.initialized = true;
                self.consecutive_failures = 0;
                self.draining = status.draining;
                self.read_only = status.read_only;
                self.status = Some(status);
                self.last_seen = Some(SystemTime::now());
                self.last_error = None;
            }
            Err(e) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                tracing::debug!(peer, error = %e, failures = self.consecutive_failures, "heartbeat failed");
                if self.consecutive_failures >= failures_to_down.max(1) {
                    self.mark_down(peer, &e);
                }
                self.note_failure(&e, peer);
            }
        }
    }

    /// Takes in a failed request the node made.
    pub(crate) fn record_request_failure(
        &mut self,
        err: &RemoteError,
        failures_to_down: u32,
        peer: &str,
    ) {
        if err.is_down() {
            self.consecutive_failures = self.consecutive_failures.max(failures_to_down.max(1));
            self.mark_down(peer, err);
        }
        self.note_failure(err, peer);
    }

    fn mark_down(&mut self, peer: &str, err: &RemoteError) {
        if self.up {
            tracing::warn!(peer, error = %err, "peer is down");
        }
        self.up = false;
    }

    /// What every failure teaches, whether it marks the peer down or not.
    fn note_failure(&mut self, err: &RemoteError, peer: &str) {
        if err.is_draining() {
            self.draining = true;
        }
        if let RemoteError::Identity(_) = err {
            tracing::warn!(peer, error = %err, "peer failed its identity check");
            self.up = false;
            self.initialized = false;
        }
        self.last_error = Some(err.to_string());
    }
}

impl Pool {
    /// The heartbeat worker, to spawn on the node's [`keep_worker::Workers`].
    pub fn heartbeat_worker(&self) -> HeartbeatWorker {
        let period = self.inner.heartbeat.period.max(Duration::from_millis(1));
        HeartbeatWorker {
            pool: self.clone(),
            first_tick: tokio::time::Instant::now() + period,
            tick: None,
            everyone: true,
        }
    }

    /// One heartbeat to each of `members`, concurrently.
    async fn beat_all(&self, members: Vec<Member>) {
        let limit = self
            .inner
            .config
            .request_timeout
            .min(self.inner.heartbeat.period);
        let failures_to_down = self.inner.heartbeat.failures_to_down;
        futures::future::join_all(members.into_iter().map(|m| async move {
            let result = tokio::time::timeout(limit, m.remote.heartbeat())
                .await
                .unwrap_or(Err(RemoteError::Timeout));
            m.health()
                .record_heartbeat(result, failures_to_down, &m.remote.uuid);
        }))
        .await;
    }
}

/// The worker named `"heartbeat"` ([`Pool::heartbeat_worker`]): every
/// `period`, every peer is sent a heartbeat, concurrently, each bounded by
/// `request_timeout` and the period; a peer that joins the pool is
/// contacted at once (its first heartbeat checks that it is the node
/// announced). A peer is marked down after `failures_to_down` consecutive
/// failures and up again on the next answer; its draining and read-only
/// flags are taken from each answer. Its progress reads "3 peers, 2 up";
/// its details name the peers that are down.
#[derive(Debug)]
pub struct HeartbeatWorker {
    pool: Pool,
    /// When the second round is due: one period after the worker was
    /// made, however long the first round took.
    first_tick: tokio::time::Instant,
    /// The period's ticks (made at the first wait, from `first_tick` on).
    tick: Option<tokio::time::Interval>,
    /// Whether the next step beats every peer (a tick) or only the ones
    /// not contacted yet (a peer joined).
    everyone: bool,
}

impl Worker for HeartbeatWorker {
    fn name(&self) -> String {
        "heartbeat".into()
    }

    fn status(&self) -> WorkerStatus {
        let members = self.pool.members();
        let mut details = Vec::new();
        let mut up = 0;
        for m in &members {
            let h = m.health();
            if h.up {
                up += 1;
            } else {
                let error = h.last_error.as_deref().unwrap_or("no answer");
                details.push(format!("{} down: {error}", m.remote.uuid));
            }
        }
        WorkerStatus {
            progress: Some(format!("{} peers, {up} up", members.len())),
            queue_length: None,
            details,
        }
    }

    async fn work(&mut self, cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        let everyone = std::mem::take(&mut self.everyone);
        let members: Vec<Member> = self
            .pool
            .members()
            .into_iter()
            .filter(|m| everyone || !m.health().initialized)
            .collect();
        tokio::select! {
            () = cancel.cancelled() => {}
            () = self.pool.beat_all(members) => {}
        }
        Ok(WorkerState::Idle)
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        let period = self
            .pool
            .inner
            .heartbeat
            .period
            .max(Duration::from_millis(1));
        let first_tick = self.first_tick;
        let tick = self.tick.get_or_insert_with(|| {
            let mut tick = tokio::time::interval_at(first_tick, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick
        });
        // Both are cancel-safe: a tick or a join notice is taken only when
        // its branch completes.
        tokio::select! {
            _ = tick.tick() => self.everyone = true,
            () = self.pool.inner.joined.notified() => {}
        }
        WorkerState::Busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(draining: bool, read_only: bool) -> NodeStatus {
        NodeStatus {
            uuid: "u".into(),
            protocol: 1,
            version: "v".into(),
            draining,
            read_only,
        }
    }

    #[test]
    fn down_after_consecutive_failures_up_after_one_answer() {
        let mut h = PeerHealth::new();
        assert!(h.up);
        h.record_heartbeat(Err(RemoteError::Connect("refused".into())), 2, "p");
        assert!(h.up, "one failure is not enough");
        h.record_heartbeat(Err(RemoteError::Timeout), 2, "p");
        assert!(!h.up);
        h.record_heartbeat(Ok(status(true, true)), 2, "p");
        assert!(h.up && h.initialized && h.draining && h.read_only);
        assert_eq!(h.consecutive_failures, 0);
        h.record_heartbeat(Ok(status(false, false)), 2, "p");
        assert!(!h.draining && !h.read_only);
    }

    #[test]
    fn an_answer_in_between_resets_the_count() {
        let mut h = PeerHealth::new();
        h.record_heartbeat(Err(RemoteError::Timeout), 2, "p");
        h.record_heartbeat(Ok(status(false, false)), 2, "p");
        h.record_heartbeat(Err(RemoteError::Timeout), 2, "p");
        assert!(h.up);
    }

    #[test]
    fn identity_failure_is_down_at_once_until_a_good_answer() {
        let mut h = PeerHealth::new();
        h.record_heartbeat(Ok(status(false, false)), 3, "p");
        h.record_heartbeat(Err(RemoteError::Identity("other".into())), 3, "p");
        assert!(!h.up && !h.initialized);
    }

    /// Listed as "heartbeat"; a peer that refuses connections is down
    /// after two periods, and the status says so.
    #[tokio::test]
    async fn the_worker_reports_peers_up_and_down() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let pool = Pool::new(
            "self".into(),
            crate::NodeCredential::from_cluster_key(b"k"),
            crate::RemoteConfig::default(),
            HeartbeatConfig {
                period: Duration::from_millis(20),
                failures_to_down: 2,
            },
        );
        pool.update(
            vec![crate::PeerInfo {
                uuid: "gone".into(),
                url,
                nickname: String::new(),
            }],
            ["gone".to_owned()].into(),
        );
        let workers = keep_worker::Workers::new();
        workers.spawn(pool.heartbeat_worker());
        let down =
            || workers.list().pop().unwrap().status.progress.as_deref() == Some("1 peers, 0 up");
        for _ in 0..500 {
            if down() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!pool.is_up("gone"));
        let info = workers.list().pop().unwrap();
        assert_eq!(info.name, "heartbeat");
        assert!(info.iterations >= 2, "{info:?}");
        assert_eq!(info.status.progress.as_deref(), Some("1 peers, 0 up"));
        assert!(
            info.status.details[0].starts_with("gone down: "),
            "{info:?}"
        );
        assert!(workers.shutdown(Duration::from_secs(1)).await);
    }

    #[test]
    fn request_failures() {
        let mut h = PeerHealth::new();
        h.record_request_failure(&RemoteError::NotFound, 2, "p");
        assert!(h.up);
        h.record_request_failure(
            &RemoteError::Status {
                status: 503,
                message: String::new(),
                draining: true,
            },
            2,
            "p",
        );
        assert!(h.up && h.draining);
        h.record_request_failure(&RemoteError::Connect("refused".into()), 2, "p");
        assert!(!h.up);
        h.record_heartbeat(Ok(status(false, false)), 2, "p");
        assert!(h.up && !h.draining);
    }
}
