//! The composition root: a running node's parts, built once and owned
//! here. Each handler and worker is handed the parts it uses (the storage
//! core, the pool, its own settings), not this whole.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use keep_pullsync::{Pullsync, Responsibility};
use keep_status::{Redactor, Traffic};
use keep_store::{Store, VolumeLocation};
use keep_worker::Workers;

use crate::cluster::{Cluster, ClusterSettings};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::work::WorkLists;
use crate::work::pull::PullWorker;
use crate::work::trash::{EmptyTrashWorker, TrashWorker};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A volume could not be opened.
    #[error(transparent)]
    Volume(#[from] keep_store::OpenError),
    /// The node's own state could not be read or written.
    #[error("state {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The cluster could not be joined.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::JoinError),
    /// Pullsync's files could not be opened.
    #[error("pullsync: {0}")]
    Pullsync(#[from] keep_pullsync::DbError),
    /// Something else in the configuration.
    #[error("{0}")]
    Config(String),
}

/// A storage node: its identity and configuration, the storage core, the
/// work lists, the background workers, and (once joined) its cluster.
#[derive(Debug)]
pub struct Keepstore {
    uuid: String,
    config: Config,
    state_dir: PathBuf,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    work: WorkLists,
    workers: Workers,
    cluster: Option<Cluster>,
    pullsync: Option<Pullsync>,
    draining: Arc<AtomicBool>,
    started_at: SystemTime,
    public_url: Option<String>,
    traffic: Traffic,
    redactor: Redactor,
}

impl Keepstore {
    /// Opens every configured volume and settles the node's uuid.
    pub async fn open(config: Config) -> Result<Keepstore, StartError> {
        let store = Store::open(&config.store()).await?;
        let state_dir = state_dir(&config);
        std::fs::create_dir_all(&state_dir).map_err(|source| StartError::State {
            path: state_dir.clone(),
            source,
        })?;
        let uuid = match &config.uuid {
            Some(u) => u.clone(),
            None => {
                let path = state_dir.join(".keepstore-node-uuid");
                keep_store::uuid::persistent_uuid(&path, "bi6l4")
                    .map_err(|source| StartError::State { path, source })?
            }
        };
        Ok(Keepstore::with_store(config, uuid, store))
    }

    /// A node over a storage core the caller built (any volume backend).
    pub fn with_store(config: Config, uuid: String, store: Store) -> Keepstore {
        let metrics = Arc::new(Metrics::new(store.metrics()));
        let redactor = redactor(&config);
        Keepstore {
            uuid,
            state_dir: state_dir(&config),
            public_url: config.public_url.clone(),
            work: WorkLists::new(config.max_work_list_items),
            config,
            store: Arc::new(store),
            metrics,
            workers: Workers::new(),
            cluster: None,
            pullsync: None,
            draining: Arc::new(AtomicBool::new(false)),
            started_at: SystemTime::now(),
            traffic: Traffic::default(),
            redactor,
        }
    }

    /// Joins the cluster the config names, if it names one (a cluster
    /// key): heartbeats, publishing to the introducers, following peers.
    /// `public_url` is how other nodes reach this one.
    pub async fn join_cluster(&mut self, public_url: String) -> Result<(), StartError> {
        self.public_url = Some(public_url.clone());
        let Some(key) = &self.config.cluster_key else {
            return Ok(());
        };
        keep_remote::check_url(&public_url)
            .map_err(|m| StartError::Config(format!("public_url: {m}")))?;
        let settings = ClusterSettings {
            uuid: self.uuid.clone(),
            public_url,
            key: key.clone(),
            introducers: self.config.introducers.clone(),
            state_dir: self.state_dir.join(".keepstore-introducer"),
            read_only: self.read_only(),
            remote: self.config.remote.clone(),
            heartbeat: self.config.heartbeat.clone(),
            introducer: self.config.introducer_client,
            drain_timeout: self.config.drain_timeout,
        };
        self.cluster = Some(Cluster::start(settings, &self.workers).await?);
        if self.config.pullsync.enabled {
            let serve = keep_pullsync::serve::ServeSettings::default();
            self.pullsync = Some(Pullsync::open(&self.state_dir, self.store.clone(), serve)?);
        }
        Ok(())
    }

    /// Starts the node's own background workers: pull and trash workers,
    /// empty-trash, volume-health recovery, and pullsync's (the pull index
    /// and the pullers) in a cluster.
    pub fn start_workers(&self) {
        let config = &self.config;
        let fetcher = keep_remote::Fetcher::new(&config.pull_timeouts);
        let signing = config
            .signing_key
            .clone()
            .map(|key| (key, config.signing_ttl));
        for id in 1..=config.pull_workers {
            self.workers.spawn(PullWorker::new(
                id,
                self.work.pull.clone(),
                self.store.clone(),
                fetcher.clone(),
                signing.clone(),
                self.metrics.pulls.clone(),
            ));
        }
        for id in 1..=config.trash_workers {
            self.workers.spawn(TrashWorker::new(
                id,
                self.work.trash.clone(),
                self.store.clone(),
                config.signing_ttl,
                self.metrics.trashes.clone(),
            ));
        }
        self.workers.spawn(EmptyTrashWorker::new(
            self.store.clone(),
            config.trash_check_interval,
        ));
        self.workers.spawn(self.store.recovery_worker());
        if let (Some(sync), Some(cluster)) = (&self.pullsync, &self.cluster) {
            let read_only = self.read_only();
            let draining = self.draining.clone();
            let takes_uploads = Arc::new(move || !read_only && !draining.load(Ordering::Relaxed));
            let replication = usize::try_from(config.replication).unwrap_or(usize::MAX);
            let responsibility = Responsibility::new(
                self.uuid.clone(),
                replication,
                cluster.pool().clone(),
                takes_uploads,
            );
            sync.start(
                &self.workers,
                cluster.pool().clone(),
                responsibility,
                config.pullsync.pull.clone(),
                config.pullsync.index_flush_interval,
            );
        }
    }

    /// Stops the background workers: the lists are closed (workers finish
    /// their current entry), then every worker gets the configured deadline.
    pub async fn stop_workers(&self) -> bool {
        self.work.close();
        let stopped = self
            .workers
            .shutdown(self.config.worker_shutdown_deadline)
            .await;
        if let Some(sync) = &self.pullsync
            && let Err(e) = sync.flush()
        {
            tracing::warn!(error = %e, "could not flush the pull index");
        }
        stopped
    }

    /// This node's uuid.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The storage core.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The pull and trash lists.
    pub fn work(&self) -> &WorkLists {
        &self.work
    }

    /// The background workers.
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    /// Its cluster membership, once joined.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// Its pullsync, once it joined a cluster (unless turned off).
    pub fn pullsync(&self) -> Option<&Pullsync> {
        self.pullsync.as_ref()
    }

    /// Where the node keeps its own state.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Whether the node serves reads only (by flag, or because no volume
    /// takes writes).
    pub fn read_only(&self) -> bool {
        self.config.read_only || !self.store.writable()
    }

    /// When the node started.
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// How other nodes reach this one: the configured public URL, or the
    /// one it joined its cluster with.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// Block PUTs and GETs of the last ten minutes.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Cleans what the status page shows of this node's secrets,
    /// signatures and tokens.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Whether the node is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Marks the node as shutting down.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}

impl Drop for Keepstore {
    /// A node dropped without [`Keepstore::stop_workers`] (a failed start,
    /// an embedder's dropped future) still stops its workers, so none
    /// keeps the volumes open.
    fn drop(&mut self) {
        self.workers.cancel_token().cancel();
    }
}

/// A redactor that knows the node's own secrets: the root token, the
/// cluster key and the node credential made from it.
fn redactor(config: &Config) -> Redactor {
    let mut secrets = Vec::new();
    if let Some(token) = &config.system_root_token {
        secrets.push(token.expose().to_owned());
    }
    if let Some(key) = &config.cluster_key {
        secrets.push(String::from_utf8_lossy(key.as_bytes()).into_owned());
        secrets.push(keep_remote::node_credential(key.as_bytes()));
    }
    Redactor::new(secrets)
}

/// Where the node keeps its own state: `state_dir`, else the first
/// directory volume, else `./keepstore-state` (S3 volumes only).
fn state_dir(config: &Config) -> PathBuf {
    config
        .state_dir
        .clone()
        .or_else(|| {
            config.volumes.iter().find_map(|v| match &v.location {
                VolumeLocation::Directory(p) => Some(p.clone()),
                VolumeLocation::S3(_) => None,
            })
        })
        .unwrap_or_else(|| PathBuf::from("keepstore-state"))
}
