//! Heartbeats: each peer's health, and the loop that keeps it current.

use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
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
    /// Whether it passed `initialize` (and no identity check failed since).
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

    /// Takes in the result of one heartbeat (or `initialize`).
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
    /// The heartbeat loop: every `period`, every peer is sent a heartbeat
    /// (`initialize` until it passes once) concurrently, each bounded by
    /// `request_timeout` and the period. A peer is marked down after
    /// `failures_to_down` consecutive failures and up again on the next
    /// answer; its draining and read-only flags are taken from each answer.
    /// Peers that join the pool are contacted at once. Stops on `cancel`.
    pub fn run_heartbeats(&self, cancel: CancellationToken) -> JoinHandle<()> {
        let pool = self.clone();
        tokio::spawn(async move {
            let period = pool.inner.heartbeat.period.max(Duration::from_millis(1));
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let everyone = tokio::select! {
                    biased;
                    () = cancel.cancelled() => return,
                    _ = tick.tick() => true,
                    () = pool.inner.joined.notified() => false,
                };
                let members: Vec<Member> = pool
                    .members()
                    .into_iter()
                    .filter(|m| everyone || !m.health().initialized)
                    .collect();
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = pool.beat_all(members) => {}
                }
            }
        })
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
            let initialized = m.health().initialized;
            let call = async {
                if initialized {
                    m.remote.heartbeat().await
                } else {
                    m.remote.initialize().await
                }
            };
            let result = tokio::time::timeout(limit, call)
                .await
                .unwrap_or(Err(RemoteError::Timeout));
            m.health()
                .record_heartbeat(result, failures_to_down, &m.remote.uuid);
        }))
        .await;
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
    fn identity_failure_is_down_at_once_and_needs_initialize() {
        let mut h = PeerHealth::new();
        h.record_heartbeat(Ok(status(false, false)), 3, "p");
        h.record_heartbeat(Err(RemoteError::Identity("other".into())), 3, "p");
        assert!(!h.up && !h.initialized);
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
