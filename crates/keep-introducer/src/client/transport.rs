//! HTTP requests to one introducer.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::SignedAnnouncement;
use crate::wire::{ANNOUNCE_PATH, ANNOUNCEMENTS_PATH, AnnounceReply, ListQuery, VERSION_HEADER};

/// The largest announcement table a client reads.
const MAX_LIST_BODY: usize = 16 << 20;

/// What went wrong talking to an introducer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// No answer, a timeout, or a server-side failure: try again later.
    #[error("introducer unreachable: {0}")]
    Unreachable(String),
    /// The introducer answered and refused the request.
    #[error("introducer refused the request ({status}): {reply:?}")]
    Refused {
        status: StatusCode,
        reply: Option<AnnounceReply>,
    },
}

/// A pooled HTTP/1.1 client with a per-request deadline.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Transport {
    pub(crate) fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Transport { client, timeout }
    }

    /// Sends one announcement; `Ok` holds an `accepted` or `duplicate` reply.
    pub(crate) async fn announce(
        &self,
        base: &str,
        ann: &SignedAnnouncement,
    ) -> Result<AnnounceReply, TransportError> {
        let body = serde_json::to_vec(ann).expect("announcements serialize");
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri(base, ANNOUNCE_PATH, "")?)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        let (status, _, bytes) = self.send(req, self.timeout, 64 * 1024).await?;
        let reply = serde_json::from_slice::<AnnounceReply>(&bytes).ok();
        match (status.is_success(), reply) {
            (true, Some(reply)) => Ok(reply),
            (true, None) => Err(TransportError::Unreachable(
                "unreadable announce reply".into(),
            )),
            (false, reply) => Err(TransportError::Refused { status, reply }),
        }
    }

    /// Reads the announcements `query` asks for, and their version token.
    pub(crate) async fn list(
        &self,
        base: &str,
        query: &ListQuery,
    ) -> Result<(Vec<SignedAnnouncement>, String), TransportError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(uri(base, ANNOUNCEMENTS_PATH, &query.to_query())?)
            .body(Full::new(Bytes::new()))
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        let (status, headers, bytes) = self
            .send(req, self.timeout + query.wait, MAX_LIST_BODY)
            .await?;
        if !status.is_success() {
            return Err(TransportError::Refused {
                status,
                reply: None,
            });
        }
        let list = serde_json::from_slice(&bytes)
            .map_err(|e| TransportError::Unreachable(format!("unreadable announcements: {e}")))?;
        let version = headers
            .get(VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok((list, version))
    }

    async fn send(
        &self,
        req: Request<Full<Bytes>>,
        deadline: Duration,
        limit: usize,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), TransportError> {
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| TransportError::Unreachable(e.to_string()))?;
            let (parts, body) = resp.into_parts();
            let bytes = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| TransportError::Unreachable(e.to_string()))?
                .to_bytes();
            if parts.status.is_server_error() {
                return Err(TransportError::Unreachable(format!(
                    "status {}",
                    parts.status
                )));
            }
            Ok((parts.status, parts.headers, bytes))
        };
        tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_| TransportError::Unreachable(format!("no answer within {deadline:?}")))?
    }
}

/// Checks an introducer base url: `http://HOST:PORT`, optionally with a path prefix.
pub(crate) fn check_base(base: &str) -> Result<(), String> {
    let parsed: Uri = base.parse().map_err(|e| format!("{e}"))?;
    if parsed.scheme_str() != Some("http")
        || parsed.authority().is_none()
        || parsed.query().is_some()
    {
        return Err("must look like http://HOST:PORT".into());
    }
    Ok(())
}

fn uri(base: &str, path: &str, query: &str) -> Result<Uri, TransportError> {
    let sep = if query.is_empty() { "" } else { "?" };
    format!("{}{path}{sep}{query}", base.trim_end_matches('/'))
        .parse()
        .map_err(|e| TransportError::Unreachable(format!("bad introducer url {base:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(check_base("http://127.0.0.1:25108").is_ok());
        assert!(check_base("http://intro.example:80/prefix/").is_ok());
        assert!(check_base("https://x:1").is_err());
        assert!(check_base("127.0.0.1:25108").is_err());
        assert_eq!(
            uri("http://h:1/", ANNOUNCEMENTS_PATH, "service=a").unwrap(),
            "http://h:1/v1/announcements?service=a"
        );
    }
}
