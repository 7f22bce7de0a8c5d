//! Binding and serving a node.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use keep_http::ServeOptions;
use tokio::net::TcpListener;

use crate::keepstore::{Keepstore, StartError};
use crate::router;

/// A node bound to its listening socket, ready to serve.
#[derive(Debug)]
pub struct Server {
    node: Arc<Keepstore>,
    listener: TcpListener,
}

impl Server {
    /// Binds the node's configured listen address; the node joins no
    /// cluster (see [`Server::start`]).
    pub async fn bind(node: Keepstore) -> std::io::Result<Server> {
        let listener = TcpListener::bind(node.config().listen).await?;
        Ok(Server::from_listener(node, listener))
    }

    /// Binds the node's listen address and joins its cluster (when it has a
    /// cluster key): heartbeats, and publishing to the introducers. The
    /// node's public URL defaults to `http://` and the bound address.
    pub async fn start(mut node: Keepstore) -> Result<Server, StartError> {
        let listener = TcpListener::bind(node.config().listen)
            .await
            .map_err(|e| StartError::Config(format!("cannot listen: {e}")))?;
        let url = match &node.config().public_url {
            Some(u) => u.clone(),
            None => format!(
                "http://{}",
                listener
                    .local_addr()
                    .map_err(|e| StartError::Config(e.to_string()))?
            ),
        };
        node.join_cluster(url).await?;
        Ok(Server::from_listener(node, listener))
    }

    /// Serves on a listener the caller bound.
    pub fn from_listener(node: Keepstore, listener: TcpListener) -> Server {
        Server {
            node: Arc::new(node),
            listener,
        }
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The node being served.
    pub fn node(&self) -> &Arc<Keepstore> {
        &self.node
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests for
    /// up to the configured grace period. Returns whether all finished.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> bool {
        let cfg = self.node.config();
        let opts = ServeOptions {
            max_connections: cfg.max_connections,
            shutdown_grace: cfg.shutdown_grace,
            header_read_timeout: cfg.header_read_timeout,
            write_timeout: cfg.response_write_timeout,
        };
        self.node.start_workers();
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
        let node = self.node.clone();
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
        if !self.node.stop_workers().await {
            tracing::warn!("some background workers did not stop in time");
        }
        drained
    }
}
