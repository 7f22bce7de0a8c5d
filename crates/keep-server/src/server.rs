//! Binding and serving a node.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use keep_http::ServeOptions;
use tokio::net::TcpListener;

use crate::cluster::Cluster;
use crate::node::{Node, StartError};
use crate::{router, work};
use tokio_util::sync::CancellationToken;

/// A node bound to its listening socket, ready to serve.
#[derive(Debug)]
pub struct Server {
    node: Arc<Node>,
    listener: TcpListener,
}

impl Server {
    /// Binds the node's configured listen address.
    pub async fn bind(node: Arc<Node>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(node.config().listen).await?;
        Ok(Server { node, listener })
    }

    /// Binds the node's listen address and joins its cluster (when it has a
    /// cluster key): heartbeats, and publishing to the introducers.
    pub async fn start(node: Arc<Node>) -> Result<Server, StartError> {
        let server = Server::bind(node)
            .await
            .map_err(|e| StartError::Config(format!("cannot listen: {e}")))?;
        server.join_cluster().await?;
        Ok(server)
    }

    /// Joins the cluster the node's config names, if any. The node's
    /// public URL defaults to `http://` and the bound address.
    pub async fn join_cluster(&self) -> Result<(), StartError> {
        let cfg = self.node.config();
        let Some(key) = &cfg.cluster_key else {
            return Ok(());
        };
        let url = match &cfg.public_url {
            Some(u) => u.clone(),
            None => format!(
                "http://{}",
                self.local_addr()
                    .map_err(|e| StartError::Config(e.to_string()))?
            ),
        };
        let cluster = Cluster::start(&self.node, key, url).await?;
        self.node.set_cluster(cluster);
        Ok(())
    }

    /// Serves on a listener the caller bound.
    pub fn from_listener(node: Arc<Node>, listener: TcpListener) -> Server {
        Server { node, listener }
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The node being served.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests for
    /// up to the configured grace period. Returns whether all finished.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> bool {
        let cfg = self.node.config();
        let opts = ServeOptions {
            max_connections: cfg.max_connections,
            shutdown_grace: cfg.shutdown_grace,
            header_read_timeout: Duration::from_secs(60),
        };
        let node = self.node.clone();
        let cancel = CancellationToken::new();
        let workers = work::spawn_workers(&node, &cancel);
        // On shutdown, say so first (answers carry X-Keep-Draining, the
        // introducers hear download-only), then stop accepting.
        let drainer = self.node.clone();
        let shutdown = async move {
            shutdown.await;
            drainer.set_draining();
            if let Some(cluster) = drainer.cluster() {
                cluster.drain().await;
            }
        };
        let drained = keep_http::serve(
            self.listener,
            move |req| router::handle(node.clone(), req),
            shutdown,
            opts,
        )
        .await;
        if let Some(cluster) = self.node.cluster() {
            cluster.stop().await;
        }
        // Stop background work: workers finish their current entry.
        cancel.cancel();
        self.node.work().close();
        for task in workers {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        drained
    }
}
