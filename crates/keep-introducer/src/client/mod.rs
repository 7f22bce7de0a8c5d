//! The client library: publishes this node's services to every introducer
//! (and withdraws the ones it stops offering), and keeps a merged, cached
//! view of the peers of the services it subscribed to.
//!
//! ```no_run
//! use keep_introducer::client::{ClientConfig, IntroducerClient, NodeInfo};
//! use keep_introducer::{ClusterKey, DOWNLOAD_STORAGE, UPLOAD_STORAGE};
//! use keep_locator::BlockHash;
//! use keep_worker::Workers;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let workers = Workers::new();
//! let key = ClusterKey::from_file("cluster-key".as_ref())?;
//! let config = ClientConfig::new(
//!     vec!["http://127.0.0.1:25108".into()],
//!     key,
//!     "./keep-data/introducer-client",
//! );
//! let client = IntroducerClient::start(config, &workers).await?;
//! let node = NodeInfo::new("zzzzz-bi6l4-000000000000001", "http://127.0.0.1:25107");
//! client.publish(&node, &[UPLOAD_STORAGE, DOWNLOAD_STORAGE]).await?;
//! let mut peers = client.subscribe_to(DOWNLOAD_STORAGE);
//! peers.changed().await?;
//! let order = client.get_permuted_peers(DOWNLOAD_STORAGE, &BlockHash::of(b"foo"));
//! println!("probe order: {:?}", order.iter().map(|p| &p.url).collect::<Vec<_>>());
//! client.shutdown().await;
//! workers.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(())
//! # }
//! ```

mod cache;
mod peers;
mod persist;
mod state;
mod transport;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use keep_locator::BlockHash;
use keep_worker::{Backoff, SpawnOptions, Workers};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use peers::{Peer, permute};
pub use persist::{CACHE_FILE, PUBLISHED_FILE, SEQNUM_FILE};

use crate::ClusterKey;
use crate::announcement::is_token;
use state::Shared;
use transport::Transport;
use worker::{IntroducerWorker, Timing};

/// How long one long-poll waits for a change, unless configured.
pub const DEFAULT_POLL_WAIT: Duration = Duration::from_secs(30);
/// The deadline of one request (on top of the poll wait), unless configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The first pause after a failed request, unless configured.
pub const DEFAULT_RETRY_MIN: Duration = Duration::from_millis(200);
/// The longest pause between retries, unless configured.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(10);

/// How the client runs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base urls of the introducers, `http://HOST:PORT`.
    pub introducers: Vec<String>,
    /// Signs what this node publishes and verifies what it hears.
    pub cluster_key: ClusterKey,
    /// Holds the seqnum file, the record of what was published and the
    /// announcement cache.
    pub state_dir: PathBuf,
    /// How long one long-poll waits for a change.
    pub poll_wait: Duration,
    /// The deadline of one request, on top of `poll_wait` for long-polls.
    pub request_timeout: Duration,
    /// The first pause after a failed request; doubles up to `retry_max`
    /// (the workers' [`Backoff`], with jitter).
    pub retry_min: Duration,
    /// The longest pause between retries, and between reads of an
    /// introducer that does not long-poll.
    pub retry_max: Duration,
}

impl ClientConfig {
    /// The defaults: [`DEFAULT_POLL_WAIT`] long-polls,
    /// [`DEFAULT_REQUEST_TIMEOUT`] request deadline, retries between
    /// [`DEFAULT_RETRY_MIN`] and [`DEFAULT_RETRY_MAX`].
    pub fn new(
        introducers: Vec<String>,
        cluster_key: ClusterKey,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        ClientConfig {
            introducers,
            cluster_key,
            state_dir: state_dir.into(),
            poll_wait: DEFAULT_POLL_WAIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry_min: DEFAULT_RETRY_MIN,
            retry_max: DEFAULT_RETRY_MAX,
        }
    }
}

/// Who this node is, for its announcements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's uuid.
    pub uuid: String,
    /// Where its services answer.
    pub url: String,
    /// A name for people.
    pub nickname: String,
    /// Its software version.
    pub version: String,
}

impl NodeInfo {
    /// A node with an empty nickname and this crate's version.
    pub fn new(uuid: impl Into<String>, url: impl Into<String>) -> Self {
        NodeInfo {
            uuid: uuid.into(),
            url: url.into(),
            nickname: String::new(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Why the client could not start or publish.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An introducer url is not `http://HOST:PORT`.
    #[error("introducer url {url:?}: {reason}")]
    BadUrl {
        /// The url given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// What would be published is not a valid announcement.
    #[error("cannot publish: {0}")]
    Invalid(#[from] crate::AnnouncementError),
    /// The state directory could not be read or written.
    #[error("introducer client state: {0}")]
    State(std::io::Error),
}

/// A node's connection to its introducers: one worker per introducer,
/// named `introducer <base url>`, and the cache writer, named
/// `"introducer cache"`, on the registry [`IntroducerClient::start`] was
/// given. They stop when the registry shuts down, when
/// [`IntroducerClient::shutdown`] is called (which also waits for them and
/// writes the cache one last time) or when the client is dropped.
#[derive(Debug)]
pub struct IntroducerClient {
    shared: Arc<Shared>,
    bases: Vec<String>,
    connected: Vec<Arc<AtomicBool>>,
    /// The workers' token: a child of the registry's.
    cancel: CancellationToken,
    /// Closed once every worker of this client has stopped.
    running: tokio::sync::Mutex<mpsc::Receiver<()>>,
    /// The version of the known table the cache file holds.
    cache_written: Arc<AtomicU64>,
}

impl IntroducerClient {
    /// Loads the seqnum, the record of what was published and the
    /// announcement cache from `config.state_dir`, then spawns one worker
    /// per introducer and the cache writer on `workers` (failed requests
    /// are retried after the registry's backoff, from `retry_min` doubling
    /// up to `retry_max`, with jitter). Must be called inside a tokio
    /// runtime.
    pub async fn start(config: ClientConfig, workers: &Workers) -> Result<Self, ClientError> {
        for url in &config.introducers {
            transport::check_base(url).map_err(|reason| ClientError::BadUrl {
                url: url.clone(),
                reason,
            })?;
        }
        let shared =
            Arc::new(Shared::load(config.cluster_key.clone(), config.state_dir.clone()).await?);
        let cancel = workers.cancel_token().child_token();
        let transport = Transport::new(config.request_timeout);
        let retry_max = config.retry_max.max(config.retry_min);
        // The client's own token, so that `shutdown` stops its workers at
        // once, even one pausing between retries.
        let options = SpawnOptions {
            tranquility: 0,
            backoff: Backoff {
                first: config.retry_min,
                max: retry_max,
                jitter: true,
            },
            cancel: Some(cancel.clone()),
        };
        let (running_tx, running) = mpsc::channel(1);
        let cache_written = Arc::new(AtomicU64::new(*shared.known_changed.borrow()));
        let mut connected = Vec::new();
        let bases = config.introducers.clone();
        for base in config.introducers {
            let flag = Arc::new(AtomicBool::new(false));
            connected.push(flag.clone());
            let worker = IntroducerWorker::new(
                shared.clone(),
                transport.clone(),
                base,
                flag,
                Timing {
                    poll_wait: config.poll_wait,
                    repoll: retry_max,
                },
                cancel.clone(),
                running_tx.clone(),
            );
            workers.spawn_with(worker, options.clone());
        }
        let cache = cache::CacheWriter::new(
            shared.clone(),
            cache_written.clone(),
            cancel.clone(),
            running_tx,
        );
        workers.spawn_with(cache, options);
        Ok(IntroducerClient {
            shared,
            bases,
            connected,
            cancel,
            running: tokio::sync::Mutex::new(running),
            cache_written,
        })
    }

    /// Publishes `services` for `node` to every introducer, replacing what
    /// this client published before: every (service, uuid) published
    /// before and missing now, by this process or by an earlier one with
    /// the same state directory, is withdrawn with a signed withdrawal (an
    /// empty list withdraws everything). The announcements and withdrawals
    /// get one fresh seqnum, recorded in the state directory with what is
    /// published before this returns; delivery happens in the background,
    /// now or whenever an introducer becomes reachable. Withdrawals are
    /// sent again with every later publication until the service is
    /// published anew, so an introducer that was away learns them too.
    pub async fn publish(&self, node: &NodeInfo, services: &[&str]) -> Result<(), ClientError> {
        for service in services {
            if !is_token(service) {
                return Err(crate::AnnouncementError::Invalid {
                    field: "service",
                    reason: "must be 1 to 64 of A-Z a-z 0-9 _ . -",
                }
                .into());
            }
        }
        let probe = crate::Announcement {
            service: services.first().copied().unwrap_or("none").to_owned(),
            uuid: node.uuid.clone(),
            url: node.url.clone(),
            nickname: node.nickname.clone(),
            version: node.version.clone(),
            seqnum: 0,
            nonce: "0".into(),
            withdrawn: false,
        };
        probe.check_new()?;
        let services = services.iter().map(|s| (*s).to_owned()).collect();
        self.shared.publish(Some((node.clone(), services)), 0).await
    }

    /// Waits until every introducer has acknowledged the latest
    /// publication (announcements and withdrawals), or `timeout` passes.
    /// Returns whether all did. A node calls it before it exits, so that
    /// its withdrawal of `upload_storage` is not lost with the process.
    pub async fn flush(&self, timeout: std::time::Duration) -> bool {
        let target = self.shared.outbox.borrow().max_seqnum();
        let mut acks = self.shared.acks.subscribe();
        let all_acked = |acks: &std::collections::HashMap<String, u64>| {
            self.bases
                .iter()
                .all(|b| acks.get(b).is_some_and(|s| *s >= target))
        };
        tokio::time::timeout(timeout, async {
            loop {
                if all_acked(&acks.borrow_and_update()) {
                    return;
                }
                if acks.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
            && all_acked(&acks.borrow())
    }

    /// Subscribes to `service` and returns a watch of its peers (by uuid),
    /// starting with what is already known (the cache, this node's own
    /// publications). A peer leaves the watch when a withdrawal newer than
    /// its announcement arrives through any introducer. Calling it again
    /// for the same service is cheap.
    pub fn subscribe_to(&self, service: &str) -> watch::Receiver<Vec<Peer>> {
        self.shared.subscribe(service)
    }

    /// The peers known to offer `service`, by uuid. Only services passed to
    /// [`Self::subscribe_to`] or published by this node are kept up to date.
    pub fn get_peers(&self, service: &str) -> Vec<Peer> {
        self.shared.peers(service)
    }

    /// The peers of `service` in the order clients probe them for `block`
    /// (the Arvados rendezvous order, see [`permute`]).
    pub fn get_permuted_peers(&self, service: &str, block: &BlockHash) -> Vec<Peer> {
        permute(self.get_peers(service), block)
    }

    /// How many introducers answered this client's last request.
    pub fn connected_introducers(&self) -> usize {
        self.connected
            .iter()
            .filter(|c| c.load(Ordering::Relaxed))
            .count()
    }

    /// Stops this client's workers and waits for them (whether they stop
    /// now or stopped already with the registry), then writes the cache
    /// one last time if it changed.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let mut running = self.running.lock().await;
        while running.recv().await.is_some() {}
        if let Err(e) = cache::store_if_changed(&self.shared, &self.cache_written).await {
            tracing::error!(error = %e, "introducer client: last cache write failed");
        }
    }
}

impl Drop for IntroducerClient {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
