//! The node's place in a cluster: its peers (a [`Pool`] fed by the
//! introducers), the credential nodes use with each other, replication of
//! new blocks, forwarded reads, and draining on shutdown.
//!
//! Node-to-node requests carry `Authorization: Bearer <node credential>`
//! (derived from the cluster key; distinct from client tokens and the
//! system root token) and `X-Keep-Local-Only: true`, so the receiving node
//! neither replicates nor forwards again: no loops.

pub mod forward;
pub mod replicate;

use std::path::PathBuf;
use std::time::Duration;

use http::HeaderMap;
use keep_introducer::client::{ClientConfig, IntroducerClient, NodeInfo};
use keep_introducer::{ClusterKey, DOWNLOAD_STORAGE, UPLOAD_STORAGE};
use keep_remote::{HeartbeatConfig, NodeCredential, Pool, RemoteConfig};
use keep_worker::Workers;

use crate::auth;

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
#[error("introducer: {0}")]
pub struct JoinError(#[from] keep_introducer::client::ClientError);

/// What joining a cluster takes.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This node's uuid.
    pub uuid: String,
    /// How other nodes reach this one.
    pub public_url: String,
    /// The cluster's shared secret.
    pub key: ClusterKey,
    /// Introducer URLs (none: the peer set stays empty).
    pub introducers: Vec<String>,
    /// Where the introducer client keeps its state.
    pub state_dir: PathBuf,
    /// Whether this node serves reads only (it publishes download only).
    pub read_only: bool,
    /// Timeouts of node-to-node requests.
    pub remote: RemoteConfig,
    /// How peers are watched.
    pub heartbeat: HeartbeatConfig,
    /// How the node talks to its introducers.
    pub introducer: crate::config::IntroducerTiming,
    /// How long `drain` waits for the introducers to hear it.
    pub drain_timeout: Duration,
}

/// A node's cluster membership.
#[derive(Debug)]
pub struct Cluster {
    pool: Pool,
    credential: NodeCredential,
    introducer: Option<IntroducerClient>,
    info: NodeInfo,
    drain_timeout: Duration,
}

impl Cluster {
    /// Joins the cluster: starts the heartbeats, publishes this node to
    /// the introducers and follows the peer set they announce, all as
    /// workers of `workers`.
    pub async fn start(settings: ClusterSettings, workers: &Workers) -> Result<Cluster, JoinError> {
        let credential = NodeCredential::from_cluster_key(settings.key.as_bytes());
        let pool = Pool::new(
            settings.uuid.clone(),
            credential.clone(),
            settings.remote,
            settings.heartbeat,
        );
        workers.spawn(pool.heartbeat_worker());
        let mut info = NodeInfo::new(&settings.uuid, settings.public_url);
        info.nickname = settings.uuid.clone();
        let introducer = if settings.introducers.is_empty() {
            None
        } else {
            let mut config =
                ClientConfig::new(settings.introducers, settings.key, settings.state_dir);
            let timing = settings.introducer;
            config.poll_wait = timing.poll_wait;
            config.request_timeout = timing.request_timeout;
            config.retry_min = timing.retry_min;
            config.retry_max = timing.retry_max;
            let client = IntroducerClient::start(config, workers).await?;
            client.publish(&info, services(settings.read_only)).await?;
            workers.spawn(pool.follow_worker(
                client.subscribe_to(DOWNLOAD_STORAGE),
                client.subscribe_to(UPLOAD_STORAGE),
            ));
            Some(client)
        };
        Ok(Cluster {
            pool,
            credential,
            introducer,
            info,
            drain_timeout: settings.drain_timeout,
        })
    }

    /// The peers.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether a request comes from another node of the cluster: its
    /// `Authorization: Bearer` header carries the node credential (only
    /// there: not in a query string or a cookie).
    pub fn is_peer(&self, headers: &HeaderMap) -> bool {
        auth::bearer(headers).is_some_and(|t| self.credential.matches(&t))
    }

    /// Tells the introducers this node takes no more uploads, and waits
    /// (a little) until they have heard it.
    pub async fn drain(&self) {
        let Some(client) = &self.introducer else {
            return;
        };
        if let Err(e) = client.publish(&self.info, &[DOWNLOAD_STORAGE]).await {
            tracing::warn!(error = %e, "could not publish the draining state");
            return;
        }
        if client.flush(self.drain_timeout).await {
            tracing::info!("introducers know this node is draining (download only)");
        } else {
            tracing::warn!("not every introducer acknowledged the draining state in time");
        }
    }

    /// Stops the introducer client (its cache is written; its workers end).
    pub async fn stop(&self) {
        if let Some(client) = &self.introducer {
            client.shutdown().await;
        }
    }
}

/// What this node offers: a read-only node publishes download only.
fn services(read_only: bool) -> &'static [&'static str] {
    if read_only {
        &[DOWNLOAD_STORAGE]
    } else {
        &[UPLOAD_STORAGE, DOWNLOAD_STORAGE]
    }
}
