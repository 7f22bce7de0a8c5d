//! Pull workers: fetch a listed block from the listed servers, in order,
//! until one delivers it whole and verified.
//!
//! As in Keep (story 3761): each try uses a fresh random token and a
//! permission signature about 60 seconds in the future (the cluster shares
//! the signing key), the bytes are verified against the hash and size, and
//! the block is stored through the same path as a client PUT. No retry
//! loop: the next list will ask again. A server that sends other bytes than
//! the hash is a failure and nothing of it is stored.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keep_locator::Locator;
use keep_volume::{BlockBody, BodyError};

use super::{PullItem, count};
use crate::node::Node;
use crate::store::store;

/// Longest wait for a server to connect, or to send the next bytes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Takes pull entries until the list is closed.
pub async fn worker(node: Arc<Node>) {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(connector);
    while let Ok(ticket) = node.work().pull.next().await {
        let item: &PullItem = &ticket;
        let mut outcome = "failed";
        for server in &item.servers {
            match pull_from(&node, &client, item, server).await {
                Ok(()) => {
                    outcome = "ok";
                    tracing::info!(block = %item.hash, server, "pulled");
                    break;
                }
                Err(e) => tracing::warn!(block = %item.hash, server, error = %e, "pull failed"),
            }
        }
        count(&node.metrics().pulls, outcome);
        ticket.done();
    }
}

async fn pull_from(
    node: &Node,
    client: &HttpClient,
    item: &PullItem,
    server: &str,
) -> Result<(), String> {
    let token = random_token();
    let mut locator = Locator::new(item.hash, item.size);
    if let Some(key) = &node.config().signing_key {
        let ttl = node.config().signing_ttl;
        locator = key.sign(&locator, &token, crate::unix_now() + 60, ttl);
    }
    let url = format!("{}/{locator}", server.trim_end_matches('/'));
    let req = Request::get(&url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::new())
        .map_err(|e| format!("bad url {url}: {e}"))?;
    let _reservation = node
        .budget()
        .reserve(item.size)
        .await
        .map_err(|e| e.message)?;
    let resp = tokio::time::timeout(IDLE_TIMEOUT, client.request(req))
        .await
        .map_err(|_| "no answer in time".to_owned())?
        .map_err(|e| format!("request failed: {e}"))?;
    if resp.status() != StatusCode::OK {
        return Err(format!("server answered {}", resp.status()));
    }
    let stream = resp
        .into_body()
        .into_data_stream()
        .map(|r| r.map_err(|e| BodyError::Source(e.to_string())));
    let stream = futures::stream::unfold(stream.boxed(), |mut s| async move {
        match tokio::time::timeout(IDLE_TIMEOUT, s.next()).await {
            Ok(Some(item)) => Some((item, s)),
            Ok(None) => None,
            Err(_) => Some((Err(BodyError::Source("server stalled".into())), s)),
        }
    })
    .boxed();
    let body = BlockBody::new(item.hash, Some(item.size), stream);
    store(node, item.hash, body, item.mount.as_deref(), &[])
        .await
        .map(|_| ())
        .map_err(|e| format!("{} {}", e.status, e.message))
}

/// A throwaway token: Keep checks the signature, not the token.
fn random_token() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..32)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}
