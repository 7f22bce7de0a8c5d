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

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Uri};
use keep_introducer::client::{ClientConfig, IntroducerClient, NodeInfo};
use keep_introducer::{ClusterKey, DOWNLOAD_STORAGE, UPLOAD_STORAGE};
use keep_remote::{HeartbeatConfig, NodeCredential, Pool, RemoteConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth;
use crate::node::{Node, StartError};

/// A node's cluster membership.
#[derive(Debug)]
pub struct Cluster {
    pool: Pool,
    credential: NodeCredential,
    introducer: Option<IntroducerClient>,
    info: NodeInfo,
    cancel: CancellationToken,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Cluster {
    /// Joins the cluster: starts the heartbeats, publishes this node to
    /// the introducers and follows the peer set they announce.
    pub async fn start(
        node: &Arc<Node>,
        key: &ClusterKey,
        public_url: String,
    ) -> Result<Cluster, StartError> {
        let credential = NodeCredential::from_cluster_key(key.as_bytes());
        let pool = Pool::new(
            node.uuid().to_owned(),
            credential.clone(),
            RemoteConfig::default(),
            HeartbeatConfig::default(),
        );
        let cancel = CancellationToken::new();
        let mut tasks = vec![pool.run_heartbeats(cancel.clone())];
        let mut info = NodeInfo::new(node.uuid(), public_url);
        info.nickname = node.uuid().to_owned();
        let introducer = if node.config().introducers.is_empty() {
            None
        } else {
            let state = node.state_dir().join(".keepstore-introducer");
            let config = ClientConfig::new(node.config().introducers.clone(), key.clone(), state);
            let client = IntroducerClient::start_with_cancel(config, &cancel)
                .await
                .map_err(|e| StartError::Config(format!("introducer: {e}")))?;
            client
                .publish(&info, services(node))
                .await
                .map_err(|e| StartError::Config(format!("introducer: {e}")))?;
            tasks.push(pool.follow(
                client.subscribe_to(DOWNLOAD_STORAGE),
                client.subscribe_to(UPLOAD_STORAGE),
                cancel.clone(),
            ));
            Some(client)
        };
        Ok(Cluster {
            pool,
            credential,
            introducer,
            info,
            cancel,
            tasks: std::sync::Mutex::new(tasks),
        })
    }

    /// The peers.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether a request comes from another node of the cluster.
    pub fn is_peer(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        auth::token(headers, uri).is_some_and(|t| self.credential.matches(&t))
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
        if client.flush(Duration::from_secs(3)).await {
            tracing::info!("introducers know this node is draining (download only)");
        } else {
            tracing::warn!("not every introducer acknowledged the draining state in time");
        }
    }

    /// Stops heartbeats and the introducer client.
    pub async fn stop(&self) {
        self.cancel.cancel();
        if let Some(client) = &self.introducer {
            client.shutdown().await;
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// What this node offers: read-only nodes (by flag or because no volume
/// takes writes) publish download only.
fn services(node: &Node) -> &'static [&'static str] {
    let writable = node.volumes().iter().any(|v| v.params().allow_write);
    if node.config().read_only || !writable {
        &[DOWNLOAD_STORAGE]
    } else {
        &[UPLOAD_STORAGE, DOWNLOAD_STORAGE]
    }
}
