//! The runner's rules, on a paused clock where time matters.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keep_worker::{
    Backoff, SpawnOptions, WorkError, Worker, WorkerInfo, WorkerState, WorkerStatus, Workers,
};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Plays a script of step results, then is done; `wait_for_work` waits
/// for `wake`. Counts its steps in `steps`.
struct Scripted {
    name: String,
    script: VecDeque<Result<WorkerState, String>>,
    wake: Arc<Notify>,
    steps: Arc<AtomicU64>,
}

impl Scripted {
    fn new(name: &str, script: Vec<Result<WorkerState, String>>) -> Self {
        Scripted {
            name: name.into(),
            script: script.into(),
            wake: Arc::new(Notify::new()),
            steps: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Worker for Scripted {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus {
            progress: Some(format!("{} steps", self.steps.load(Ordering::SeqCst))),
            queue_length: Some(self.script.len() as u64),
            details: Vec::new(),
        }
    }

    async fn work(&mut self, _cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        self.steps.fetch_add(1, Ordering::SeqCst);
        match self.script.pop_front() {
            Some(Ok(state)) => Ok(state),
            Some(Err(e)) => Err(e.into()),
            None => Ok(WorkerState::Done),
        }
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        self.wake.notified().await;
        WorkerState::Busy
    }
}

/// Busy forever; each step takes `step` (of clock time).
struct Spinner {
    step: Duration,
    steps: Arc<AtomicU64>,
    watch_cancel: bool,
}

impl Worker for Spinner {
    fn name(&self) -> String {
        "spinner".into()
    }

    async fn work(&mut self, cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        if self.watch_cancel {
            tokio::select! {
                () = tokio::time::sleep(self.step) => {}
                () = cancel.cancelled() => return Ok(WorkerState::Idle),
            }
        } else {
            tokio::time::sleep(self.step).await;
        }
        self.steps.fetch_add(1, Ordering::SeqCst);
        Ok(WorkerState::Busy)
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        std::future::pending().await
    }
}

struct Panicker;

impl Worker for Panicker {
    fn name(&self) -> String {
        "panicker".into()
    }

    async fn work(&mut self, _cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
        panic!("boom");
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        WorkerState::Busy
    }
}

fn info(workers: &Workers, name: &str) -> WorkerInfo {
    workers
        .list()
        .into_iter()
        .find(|w| w.name == name)
        .expect("listed")
}

/// Waits (on the clock, which is paused: this advances it) until `cond`.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting until {what}");
}

fn no_jitter(first_ms: u64, max_ms: u64) -> SpawnOptions {
    SpawnOptions {
        tranquility: 0,
        backoff: Backoff {
            first: Duration::from_millis(first_ms),
            max: Duration::from_millis(max_ms),
            jitter: false,
        },
        ..SpawnOptions::default()
    }
}

#[tokio::test(start_paused = true)]
async fn states_busy_throttled_idle_done() {
    let workers = Workers::new();
    let w = Scripted::new(
        "scripted",
        vec![
            Ok(WorkerState::Busy),
            Ok(WorkerState::Throttled(Duration::from_secs(5))),
            Ok(WorkerState::Idle),
            Ok(WorkerState::Busy),
        ],
    );
    let wake = w.wake.clone();
    let id = workers.spawn(w);
    assert_eq!(id, keep_worker::WorkerId(0));
    let start = Instant::now();
    until("idle", || info(&workers, "scripted").state == "idle").await;
    assert!(start.elapsed() >= Duration::from_secs(5), "throttled 5 s");
    let idle = info(&workers, "scripted");
    assert_eq!(idle.iterations, 3);
    assert_eq!(idle.status.progress.as_deref(), Some("3 steps"));
    assert_eq!(idle.status.queue_length, Some(1));

    wake.notify_one();
    until("done", || info(&workers, "scripted").state == "done").await;
    let done = info(&workers, "scripted");
    assert_eq!(done.iterations, 5, "the last step said done");
    assert_eq!((done.errors, done.last_error), (0, None));
    assert_eq!(done.status.queue_length, Some(0));
    assert!(workers.shutdown(Duration::from_secs(1)).await);
}

#[tokio::test(start_paused = true)]
async fn errors_are_counted_backed_off_and_reset() {
    let workers = Workers::new();
    let w = Scripted::new(
        "flaky",
        vec![
            Err("first".into()),
            Err("second".into()),
            Err("third".into()),
            Ok(WorkerState::Idle),
        ],
    );
    let start = Instant::now();
    workers.spawn_with(w, no_jitter(100, 250));
    until("one failure", || info(&workers, "flaky").errors == 1).await;
    let one = info(&workers, "flaky");
    assert_eq!(one.state, "throttled");
    assert_eq!(one.consecutive_errors, 1);
    assert_eq!(one.last_error.as_deref(), Some("first"));
    assert!(one.last_error_at.is_some_and(|t| t > 1_600_000_000));

    until("idle", || info(&workers, "flaky").state == "idle").await;
    // 100 + 200 + 250 ms of backoff.
    assert!(
        start.elapsed() >= Duration::from_millis(550),
        "{:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    let idle = info(&workers, "flaky");
    assert_eq!((idle.errors, idle.consecutive_errors), (3, 0));
    assert_eq!(idle.iterations, 4);
    assert_eq!(
        idle.last_error.as_deref(),
        Some("third"),
        "kept after success"
    );
    assert!(workers.shutdown(Duration::from_secs(1)).await);
}

#[tokio::test(start_paused = true)]
async fn tranquility_slows_a_busy_worker() {
    let workers = Workers::new();
    let (calm, quick) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let step = Duration::from_millis(10);
    workers.spawn_with(
        Spinner {
            step,
            steps: calm.clone(),
            watch_cancel: true,
        },
        SpawnOptions {
            tranquility: 3,
            ..SpawnOptions::default()
        },
    );
    workers.spawn(Spinner {
        step,
        steps: quick.clone(),
        watch_cancel: true,
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (calm_n, quick_n) = (calm.load(Ordering::SeqCst), quick.load(Ordering::SeqCst));
    assert!(
        (24..=26).contains(&calm_n),
        "10 ms of work, 30 ms of rest: {calm_n}"
    );
    assert!((99..=101).contains(&quick_n), "{quick_n}");
    assert!(workers.list().iter().all(|w| w.state != "done"));

    // Calm both down from now on.
    assert_eq!(workers.set_tranquility("spin", 1), 2);
    assert_eq!(workers.set_tranquility("nobody", 1), 0);
    assert!(workers.list().iter().all(|w| w.tranquility == 1));
    let before = quick.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = quick.load(Ordering::SeqCst) - before;
    assert!((49..=51).contains(&after), "{after}");
    assert!(workers.shutdown(Duration::from_secs(1)).await);
}

#[tokio::test(start_paused = true)]
async fn idle_waits_until_woken() {
    let workers = Workers::new();
    let w = Scripted::new("idler", vec![Ok(WorkerState::Idle), Ok(WorkerState::Idle)]);
    let (wake, steps) = (w.wake.clone(), w.steps.clone());
    workers.spawn(w);
    until("idle", || info(&workers, "idler").state == "idle").await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(steps.load(Ordering::SeqCst), 1, "no step while idle");
    assert_eq!(info(&workers, "idler").state, "idle");
    wake.notify_one();
    until("second step", || steps.load(Ordering::SeqCst) == 2).await;
    until("idle again", || info(&workers, "idler").state == "idle").await;
    assert_eq!(info(&workers, "idler").iterations, 2);
    assert!(workers.shutdown(Duration::from_secs(1)).await);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_idle_throttled_and_backing_off_workers_promptly() {
    let workers = Workers::new();
    workers.spawn(Scripted::new("idle", vec![Ok(WorkerState::Idle)]));
    workers.spawn(Scripted::new(
        "throttled",
        vec![Ok(WorkerState::Throttled(Duration::from_secs(3600)))],
    ));
    workers.spawn_with(
        Scripted::new("failing", vec![Err("down".into())]),
        no_jitter(3_600_000, 3_600_000),
    );
    workers.spawn_with(
        Spinner {
            step: Duration::from_secs(3600),
            steps: Arc::new(AtomicU64::new(0)),
            watch_cancel: true,
        },
        SpawnOptions::default(),
    );
    until("all waiting", || {
        let states: Vec<&str> = workers.list().iter().map(|w| w.state).collect();
        states == ["idle", "throttled", "throttled", "busy"]
    })
    .await;
    let start = Instant::now();
    assert!(workers.shutdown(Duration::from_secs(10)).await);
    assert!(
        start.elapsed() < Duration::from_millis(10),
        "{:?}",
        start.elapsed()
    );
    assert!(workers.list().iter().all(|w| w.state == "done"));
    assert!(workers.cancel_token().is_cancelled());
    // A second shutdown has nothing left to wait for.
    assert!(workers.shutdown(Duration::ZERO).await);
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_ignores_cancel_is_aborted_at_the_deadline() {
    let workers = Workers::new();
    let steps = Arc::new(AtomicU64::new(0));
    workers.spawn(Spinner {
        step: Duration::from_secs(3600),
        steps: steps.clone(),
        watch_cancel: false,
    });
    workers.spawn(Scripted::new("polite", vec![Ok(WorkerState::Idle)]));
    until("polite idle", || info(&workers, "polite").state == "idle").await;
    let start = Instant::now();
    assert!(!workers.shutdown(Duration::from_secs(2)).await);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let stuck = info(&workers, "spinner");
    assert_eq!(stuck.state, "done");
    assert!(
        stuck
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("aborted")),
        "{stuck:?}"
    );
    assert_eq!(steps.load(Ordering::SeqCst), 0);
    assert_eq!(info(&workers, "polite").state, "done");
    assert_eq!(info(&workers, "polite").last_error, None);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_worker_is_reported_and_the_registry_goes_on() {
    let workers = Workers::new();
    workers.spawn(Panicker);
    until("done", || info(&workers, "panicker").state == "done").await;
    let p = info(&workers, "panicker");
    assert_eq!(p.last_error.as_deref(), Some("panicked: boom"));
    assert_eq!(p.errors, 1);

    let w = Scripted::new("after", vec![Ok(WorkerState::Busy)]);
    workers.spawn(w);
    until("the next one runs", || {
        info(&workers, "after").state == "done"
    })
    .await;
    assert_eq!(workers.list().len(), 2);
    assert!(workers.shutdown(Duration::from_secs(1)).await);
}

#[tokio::test(start_paused = true)]
async fn spawned_after_shutdown_is_never_stepped() {
    let workers = Workers::new();
    assert!(workers.shutdown(Duration::from_secs(1)).await);
    let w = Scripted::new("late", vec![Ok(WorkerState::Busy)]);
    let steps = w.steps.clone();
    workers.clone().spawn(w);
    until("done", || info(&workers, "late").state == "done").await;
    assert_eq!(steps.load(Ordering::SeqCst), 0);
}

#[test]
fn info_serializes_as_one_flat_row() {
    let info = WorkerInfo {
        id: 3,
        name: "heartbeat".into(),
        state: "idle",
        iterations: 7,
        errors: 1,
        consecutive_errors: 0,
        last_error: Some("timeout".into()),
        last_error_at: Some(1_700_000_000),
        tranquility: 2,
        status: WorkerStatus {
            progress: Some("3 peers, 2 up".into()),
            queue_length: None,
            details: vec!["x".into()],
        },
    };
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "id": 3, "name": "heartbeat", "state": "idle", "iterations": 7,
            "errors": 1, "consecutive_errors": 0, "last_error": "timeout",
            "last_error_at": 1_700_000_000u64, "tranquility": 2,
            "progress": "3 peers, 2 up", "queue_length": null, "details": ["x"],
        })
    );
}

/// A worker spawned with a token of its own stops when that token is
/// cancelled, even in the middle of a long backoff, while the registry
/// and its other workers go on.
#[tokio::test(start_paused = true)]
async fn a_workers_own_token_stops_it_in_its_backoff() {
    let workers = Workers::new();
    let own = workers.cancel_token().child_token();
    let failing = Scripted::new("failing", vec![Err("down".into()); 10]);
    let other = Scripted::new("other", vec![Ok(WorkerState::Idle)]);
    workers.spawn_with(
        failing,
        SpawnOptions {
            cancel: Some(own.clone()),
            ..no_jitter(60_000, 60_000)
        },
    );
    workers.spawn(other);
    until("the first failure", || workers.list()[0].errors == 1).await;
    let started = Instant::now();
    own.cancel();
    until("the failing worker is done", || {
        workers.list()[0].state == "done"
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "not after its 60 s backoff"
    );
    assert_eq!(workers.list()[1].state, "idle", "the others go on");
    assert!(workers.shutdown(Duration::from_secs(1)).await);
}

/// `prune` forgets the rows of finished workers and keeps the others.
#[tokio::test]
async fn prune_forgets_finished_workers_only() {
    let workers = Workers::new();
    workers.spawn(Scripted::new("finishes", vec![Ok(WorkerState::Done)]));
    workers.spawn(Scripted::new("waits", vec![Ok(WorkerState::Idle)]));
    until("one done, one idle", || {
        let l = workers.list();
        l[0].state == "done" && l[1].state == "idle"
    })
    .await;
    until("the finished task ended", || workers.prune() == 1).await;
    let names: Vec<String> = workers.list().into_iter().map(|w| w.name).collect();
    assert_eq!(names, ["waits"]);
    assert_eq!(workers.prune(), 0);
    assert!(workers.shutdown(Duration::from_secs(1)).await);
}
