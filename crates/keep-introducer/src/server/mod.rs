//! The introducer service as a library: [`run`] serves the routes of the
//! crate's wire protocol on a bound listener until shutdown.

mod metrics;
mod routes;
pub mod status;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use keep_http::ServeOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::ClusterKey;
use crate::store::{Snapshot, Store, StoreError};

/// How the introducer runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the announcement table is kept.
    pub state_dir: PathBuf,
    /// Verifies announcements.
    pub cluster_key: ClusterKey,
    /// The longest a subscriber's `wait` is honoured.
    pub max_wait: Duration,
    /// Accept-loop limits.
    pub serve: ServeOptions,
    /// Whether `GET /` (to a browser) and `GET /_status.json` answer the
    /// status page.
    pub status_pages: bool,
}

impl ServerConfig {
    /// The defaults: waits of up to 60 s, keep-http's accept-loop limits.
    pub fn new(state_dir: impl Into<PathBuf>, cluster_key: ClusterKey) -> Self {
        ServerConfig {
            state_dir: state_dir.into(),
            cluster_key,
            max_wait: Duration::from_secs(60),
            serve: ServeOptions::default(),
            status_pages: true,
        }
    }
}

/// The introducer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The state directory could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task loading the state panicked.
    #[error("loading the state failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct State {
    /// The table; only written from blocking tasks.
    store: Mutex<Store>,
    /// The latest table, for readers and waiting subscribers.
    snapshot: watch::Sender<Arc<Snapshot>>,
    key: ClusterKey,
    metrics: metrics::Metrics,
    max_wait: Duration,
    /// Cancelled when shutdown begins: waiting subscribers answer at once.
    stopping: CancellationToken,
    /// When the introducer started.
    started_at: SystemTime,
    status_pages: bool,
    /// Cleans what the status page shows.
    redactor: keep_status::Redactor,
}

/// Loads the table from `config.state_dir`, then serves on `listener` until
/// `shutdown` resolves. Subscribers waiting on a long-poll are answered at
/// once when shutdown begins, so draining does not wait for them.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let (dir, key) = (config.state_dir.clone(), config.cluster_key.clone());
    let store = tokio::task::spawn_blocking(move || Store::open(&dir, &key)).await??;
    let snapshot = Arc::new(store.snapshot().clone());
    tracing::info!(state_dir = %config.state_dir.display(),
        announcements = snapshot.announcements(&[]).len(),
        tombstones = snapshot.entries(&[]).len() - snapshot.announcements(&[]).len(),
        "introducer state loaded");
    let state = Arc::new(State {
        store: Mutex::new(store),
        snapshot: watch::Sender::new(snapshot.clone()),
        key: config.cluster_key.clone(),
        metrics: metrics::Metrics::new(),
        max_wait: config.max_wait,
        stopping: CancellationToken::new(),
        started_at: SystemTime::now(),
        status_pages: config.status_pages,
        redactor: status::redactor(&config.cluster_key),
    });
    state.update_table_gauge(&snapshot);
    let stopping = state.stopping.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.cancel();
    };
    let handler = move |req| routes::handle(state.clone(), req);
    keep_http::serve(listener, handler, shutdown, config.serve).await;
    Ok(())
}

impl State {
    fn update_table_gauge(&self, snap: &Snapshot) {
        let n = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        for (service, (live, withdrawn)) in snap.counts() {
            let label = metrics::ServiceLabel { service };
            self.metrics.table.get_or_create(&label).set(n(live));
            self.metrics
                .tombstones
                .get_or_create(&label)
                .set(n(withdrawn));
        }
    }
}
