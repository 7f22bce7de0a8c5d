//! One peer node and the requests this node sends it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use keep_locator::{BlockHash, MAX_BLOCK_SIZE};
use tokio::time::Instant;

use crate::body::{self, RequestBody};
use crate::protocol::{
    self, DRAINING_HEADER, LOCAL_ONLY_HEADER, NODE_ROUTE, NodeStatus, PROTOCOL_VERSION,
};
use crate::{NodeCredential, RemoteError};

/// The largest small answer (node status, locator line, error text) read
/// from a peer.
const MAX_SMALL_BODY: usize = 64 * 1024;

/// How much of an error answer's body goes into [`RemoteError::Status`].
const MAX_MESSAGE: usize = 512;

/// Timeouts of node-to-node requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    /// How long making a TCP connection may take (default 1 s): a dead
    /// peer costs at most this much.
    pub connect_timeout: Duration,
    /// The deadline of a whole non-streaming request: node status
    /// (default 30 s), and the default wait for the answer to a
    /// [`Remote::call`]. For a replicate it bounds each wait for the peer
    /// (to take the next chunk, or to answer once it has them all), and for
    /// a read (or a [`crate::Fetcher`]'s fetch) each gap between chunks
    /// after the first.
    pub request_timeout: Duration,
    /// How long a forwarded read, an existence check or a
    /// [`crate::Fetcher`]'s fetch may wait for the answer and its first
    /// byte, per server (default 5 s).
    pub read_first_byte_timeout: Duration,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(30),
            read_first_byte_timeout: Duration::from_secs(5),
        }
    }
}

/// How [`Remote::call`] makes its request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Send `X-Keep-Local-Only: true`: the peer answers from its own
    /// volumes only and never forwards the request (block routes require
    /// it from nodes).
    pub local_only: bool,
    /// How long the answer's head may take, connecting included; `None`
    /// means the remote's [`RemoteConfig::request_timeout`].
    pub first_byte_timeout: Option<Duration>,
    /// Further headers to send (a `Content-Type`, say). `Authorization`,
    /// `Content-Length` and `X-Keep-Local-Only` among them are ignored:
    /// the node credential, the body and `local_only` decide those.
    pub headers: http::HeaderMap,
}

/// A successful replicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replicated {
    /// The peer said it is shutting down: give it no further blocks.
    pub draining: bool,
    /// The locator line the peer answered, without its line ending.
    pub locator: String,
}

/// A block a peer is sending.
pub struct RemoteBlock {
    /// The block's size, as the request named it and the answer confirmed.
    pub size: u64,
    /// Whether the answer carried `X-Keep-Draining: true`.
    pub draining: bool,
    /// The content, in the order it arrives: exactly `size` bytes in all,
    /// else the stream's last item is an error. The content is not checked
    /// against the block hash here; the caller does that as it relays it.
    pub chunks: BoxStream<'static, Result<Bytes, RemoteError>>,
}

impl fmt::Debug for RemoteBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteBlock")
            .field("size", &self.size)
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

/// A peer node: where it answers, who it should be, and an HTTP client of
/// its own (a pool of keep-alive connections to it).
pub struct Remote {
    /// A name for logs: the peer's nickname, else its uuid.
    pub name: String,
    /// The peer's base url, `http://HOST:PORT`, as announced.
    pub url: String,
    /// The uuid the peer announced; its answers must carry the same.
    pub uuid: String,
    authorization: HeaderValue,
    client: Client<HttpConnector, RequestBody>,
    config: RemoteConfig,
    replicas_sent: AtomicU64,
    reads_forwarded: AtomicU64,
}

/// What this node has done with a peer, for status pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PeerCounts {
    /// Blocks the peer stored at this node's request ([`Remote::replicate`]).
    pub replicas_sent: u64,
    /// Reads the peer answered with a block ([`Remote::read`]).
    pub reads_forwarded: u64,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("uuid", &self.uuid)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// A peer at `url` (its base url) that should answer as `uuid`. Nothing
    /// is sent until a request is made; an unusable url then fails each
    /// request with [`RemoteError::Connect`].
    pub fn new(
        name: impl Into<String>,
        url: impl Into<String>,
        uuid: impl Into<String>,
        credential: NodeCredential,
        config: &RemoteConfig,
    ) -> Remote {
        let client = http_client(config);
        let mut authorization = HeaderValue::from_str(&credential.authorization())
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid-credential"));
        authorization.set_sensitive(true);
        Remote {
            name: name.into(),
            url: url.into(),
            uuid: uuid.into(),
            authorization,
            client,
            config: config.clone(),
            replicas_sent: AtomicU64::new(0),
            reads_forwarded: AtomicU64::new(0),
        }
    }

    /// What this node has done with the peer since it joined the pool.
    pub fn counts(&self) -> PeerCounts {
        PeerCounts {
            replicas_sent: self.replicas_sent.load(Ordering::Relaxed),
            reads_forwarded: self.reads_forwarded.load(Ordering::Relaxed),
        }
    }

    /// Liveness, and the first contact too: asks the peer for its status
    /// and checks that it is the node the introducer announced (same uuid)
    /// and speaks [`PROTOCOL_VERSION`] (a different node now answering at
    /// this url is an error). `draining` is also set when the answer
    /// carries `X-Keep-Draining: true`.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Identity`] for another uuid, another protocol, or a
    /// peer that does not know the route; otherwise as any request.
    pub async fn heartbeat(&self) -> Result<NodeStatus, RemoteError> {
        self.node_status().await
    }

    async fn node_status(&self) -> Result<NodeStatus, RemoteError> {
        let deadline = Instant::now() + self.config.request_timeout;
        let req = self.request(Method::GET, NODE_ROUTE, false, body::empty())?;
        let resp = self.send(req, deadline).await?;
        let draining = protocol::flag(resp.headers(), DRAINING_HEADER);
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(RemoteError::Identity(format!(
                    "{} does not answer {NODE_ROUTE}: not a node speaking protocol {PROTOCOL_VERSION}",
                    self.url
                )));
            }
            _ => return Err(status_error(resp, deadline).await),
        }
        let bytes = read_small(resp.into_body(), deadline).await?;
        let mut status: NodeStatus = serde_json::from_slice(&bytes)
            .map_err(|e| RemoteError::Protocol(format!("unreadable node status: {e}")))?;
        if status.uuid != self.uuid {
            return Err(RemoteError::Identity(format!(
                "{} answers as {:?}, announced as {:?}",
                self.url, status.uuid, self.uuid
            )));
        }
        if status.protocol != PROTOCOL_VERSION {
            return Err(RemoteError::Identity(format!(
                "{} speaks node protocol {}, not {PROTOCOL_VERSION}",
                self.url, status.protocol
            )));
        }
        status.draining |= draining;
        Ok(status)
    }

    /// Stores a block on the peer's own volumes: `PUT /{md5}` with
    /// `X-Keep-Local-Only: true` and `Content-Length: size`, streaming
    /// `body`, which must hold exactly `size` bytes.
    ///
    /// No overall deadline applies, since the caller's stream may be slow;
    /// instead the peer may keep us waiting at most `request_timeout` at a
    /// time (to connect and take the next chunk, or to answer after the last).
    ///
    /// # Errors
    ///
    /// [`RemoteError::Body`] when `body` fails or holds another number of
    /// bytes (the peer is not to blame); [`RemoteError::Status`] (with the
    /// draining flag) when the peer refuses; [`RemoteError::Protocol`] when
    /// its 200 answer is not a locator line for this block.
    pub async fn replicate(
        &self,
        hash: &BlockHash,
        size: u64,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    ) -> Result<Replicated, RemoteError> {
        if size > MAX_BLOCK_SIZE {
            return Err(RemoteError::Body(format!(
                "a block of {size} bytes is larger than {MAX_BLOCK_SIZE}"
            )));
        }
        let (body, progress) = body::upload(body, size);
        let mut req = self.request(Method::PUT, &protocol::replicate_path(hash), true, body)?;
        req.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        let sent = tokio::select! {
            sent = self.client.request(req) => sent,
            () = progress.stalled(self.config.request_timeout) => return Err(RemoteError::Timeout),
        };
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                return Err(match progress.failure() {
                    Some(why) => RemoteError::Body(why),
                    None => transport_error(&e),
                });
            }
        };
        let deadline = Instant::now() + self.config.request_timeout;
        let draining = protocol::flag(resp.headers(), DRAINING_HEADER);
        if resp.status() != StatusCode::OK {
            return Err(status_error(resp, deadline).await);
        }
        let bytes = read_small(resp.into_body(), deadline).await?;
        let locator = String::from_utf8_lossy(&bytes).trim().to_owned();
        let want = format!("{hash}+{size}");
        match locator.strip_prefix(&want) {
            Some(rest) if rest.is_empty() || rest.starts_with('+') => {
                self.replicas_sent.fetch_add(1, Ordering::Relaxed);
                Ok(Replicated { draining, locator })
            }
            _ => Err(RemoteError::Protocol(format!(
                "replicate of {want} answered {:?}",
                truncate(&locator, 100)
            ))),
        }
    }

    /// A forwarded read: `GET /{md5}+{size}` with `X-Keep-Local-Only:
    /// true`, so the peer answers from its own volumes only. The answer and
    /// its first byte must come within `read_first_byte_timeout`; the block
    /// is then streamed, never buffered. `size` is the client's hint: the
    /// peer's `Content-Length` decides the block's size, as a local read
    /// answers a locator with a wrong size hint (the bytes are verified by
    /// their hash anyway).
    ///
    /// # Errors
    ///
    /// [`RemoteError::NotFound`] when the peer does not hold the block.
    pub async fn read(&self, hash: &BlockHash, size: u64) -> Result<RemoteBlock, RemoteError> {
        let first_byte = Instant::now() + self.config.read_first_byte_timeout;
        let req = self.request(
            Method::GET,
            &protocol::block_path(hash, size),
            true,
            body::empty(),
        )?;
        let resp = self.send(req, first_byte).await?;
        let size = content_length(&resp)?.unwrap_or(size);
        let block = block_answer(resp, size, first_byte, &self.config, || {
            format!("read of {hash}+{size}")
        })
        .await?;
        self.reads_forwarded.fetch_add(1, Ordering::Relaxed);
        Ok(block)
    }

    /// The block's size if the peer holds it (its `Content-Length`, not the
    /// hint `size`): `HEAD /{md5}+{size}` with `X-Keep-Local-Only: true`,
    /// within `read_first_byte_timeout`.
    pub async fn has(&self, hash: &BlockHash, size: u64) -> Result<Option<u64>, RemoteError> {
        let deadline = Instant::now() + self.config.read_first_byte_timeout;
        let req = self.request(
            Method::HEAD,
            &protocol::block_path(hash, size),
            true,
            body::empty(),
        )?;
        let resp = self.send(req, deadline).await?;
        match resp.status() {
            StatusCode::OK => Ok(Some(content_length(&resp)?.unwrap_or(size))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(resp, deadline).await),
        }
    }

    /// A node-to-node request of the caller's own making, for routes this
    /// type has no method of its own for (a sync protocol's, say): `method`
    /// to `path` (the path and query, from its leading `/`) on this peer,
    /// carrying the node credential, with `body` as the request body (and
    /// its `Content-Length`; pass [`Bytes::new()`] for none) and the
    /// [`RequestOptions`].
    ///
    /// The answer's head must come within the options' first-byte timeout
    /// (connecting included). The answer is returned whatever its status;
    /// its body is the caller's to read, under deadlines of its own (a
    /// peer may stall mid-body). A draining peer marks any answer with
    /// [`DRAINING_HEADER`] (read it with [`protocol::flag`]).
    ///
    /// ```no_run
    /// use http::{Method, StatusCode};
    /// use keep_remote::{Remote, RequestOptions};
    ///
    /// # async fn example(remote: &Remote) -> Result<(), keep_remote::RemoteError> {
    /// let options = RequestOptions {
    ///     local_only: true,
    ///     first_byte_timeout: Some(std::time::Duration::from_secs(5)),
    ///     ..RequestOptions::default()
    /// };
    /// let resp = remote
    ///     .call(Method::POST, "/_keep/example?since=0", "hello".into(), &options)
    ///     .await?;
    /// assert_eq!(resp.status(), StatusCode::OK);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`RemoteError::Request`] for a path or header HTTP cannot carry
    /// (nothing is sent); [`RemoteError::Connect`], [`RemoteError::Timeout`]
    /// or [`RemoteError::Transport`] when no answer came.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        options: &RequestOptions,
    ) -> Result<Response<Incoming>, RemoteError> {
        if !path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err() {
            return Err(RemoteError::Request(format!(
                "{:?} is not a path and query starting with '/'",
                truncate(path, 100)
            )));
        }
        let deadline = Instant::now()
            + options
                .first_byte_timeout
                .unwrap_or(self.config.request_timeout);
        let body = http_body_util::Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync();
        let mut req = self.request(method, path, options.local_only, body)?;
        for (name, value) in &options.headers {
            if name != header::AUTHORIZATION
                && name != header::CONTENT_LENGTH
                && name.as_str() != LOCAL_ONLY_HEADER
            {
                req.headers_mut().append(name, value.clone());
            }
        }
        self.send(req, deadline).await
    }

    /// A request to `path` on this peer, with the credential and, for
    /// block routes, `X-Keep-Local-Only: true`.
    fn request(
        &self,
        method: Method,
        path: &str,
        local_only: bool,
        body: RequestBody,
    ) -> Result<Request<RequestBody>, RemoteError> {
        let uri: Uri = format!("{}{path}", self.url.trim_end_matches('/'))
            .parse()
            .map_err(|e| RemoteError::Connect(format!("bad peer url {:?}: {e}", self.url)))?;
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, self.authorization.clone());
        if local_only {
            req = req.header(LOCAL_ONLY_HEADER, HeaderValue::from_static("true"));
        }
        req.body(body)
            .map_err(|e| RemoteError::Connect(format!("bad peer url {:?}: {e}", self.url)))
    }

    /// Sends `req`; the answer's head must arrive by `deadline`.
    async fn send(
        &self,
        req: Request<RequestBody>,
        deadline: Instant,
    ) -> Result<Response<Incoming>, RemoteError> {
        tokio::time::timeout_at(deadline, self.client.request(req))
            .await
            .map_err(|_| RemoteError::Timeout)?
            .map_err(|e| transport_error(&e))
    }
}

/// The HTTP client of a [`Remote`] or a [`crate::Fetcher`]: a pool of
/// keep-alive connections (idle ones closed after 30 s), each made within
/// `connect_timeout`, with `TCP_NODELAY`.
pub(crate) fn http_client(config: &RemoteConfig) -> Client<HttpConnector, RequestBody> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(config.connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// A client error as a [`RemoteError`]: no connection is
/// [`RemoteError::Connect`], a connection lost later
/// [`RemoteError::Transport`].
pub(crate) fn transport_error(e: &hyper_util::client::legacy::Error) -> RemoteError {
    if e.is_connect() {
        RemoteError::Connect(error_chain(e))
    } else {
        RemoteError::Transport(error_chain(e))
    }
}

/// An error and its sources, joined with `": "`.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A response that is not the expected one, as [`RemoteError::Status`].
async fn status_error(resp: Response<Incoming>, deadline: Instant) -> RemoteError {
    let status = resp.status().as_u16();
    let draining = protocol::flag(resp.headers(), DRAINING_HEADER);
    let message = match read_small(resp.into_body(), deadline).await {
        Ok(bytes) => truncate(String::from_utf8_lossy(&bytes).trim(), MAX_MESSAGE).to_owned(),
        Err(_) => String::new(),
    };
    RemoteError::Status {
        status,
        message,
        draining,
    }
}

/// Reads a small answer body whole, by `deadline`.
async fn read_small(body: Incoming, deadline: Instant) -> Result<Bytes, RemoteError> {
    let collected = tokio::time::timeout_at(deadline, Limited::new(body, MAX_SMALL_BODY).collect())
        .await
        .map_err(|_| RemoteError::Timeout)?
        .map_err(|e| RemoteError::Transport(error_chain(&*e)))?;
    Ok(collected.to_bytes())
}

/// The answer's `Content-Length`, if it has one.
fn content_length(resp: &Response<Incoming>) -> Result<Option<u64>, RemoteError> {
    resp.headers()
        .get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| RemoteError::Protocol(format!("bad Content-Length {v:?}")))
        })
        .transpose()
}

/// A block's answer: `200` with `size` bytes streamed (a first-byte
/// deadline, then `request_timeout` per gap), `404` as
/// [`RemoteError::NotFound`], any other status as [`RemoteError::Status`],
/// another announced length as [`RemoteError::Protocol`] (`what` names
/// the request in that message).
pub(crate) async fn block_answer(
    resp: Response<Incoming>,
    size: u64,
    first_byte: Instant,
    config: &RemoteConfig,
    what: impl FnOnce() -> String,
) -> Result<RemoteBlock, RemoteError> {
    let draining = protocol::flag(resp.headers(), DRAINING_HEADER);
    match resp.status() {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => return Err(RemoteError::NotFound),
        _ => return Err(status_error(resp, first_byte).await),
    }
    if let Some(len) = content_length(&resp)?
        && len != size
    {
        return Err(RemoteError::Protocol(format!(
            "{} answered {len} bytes",
            what()
        )));
    }
    let chunks = body::download(resp.into_body(), size, first_byte, config.request_timeout);
    Ok(RemoteBlock {
        size,
        draining,
        chunks,
    })
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_at_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn debug_hides_the_credential() {
        let cred = NodeCredential::from_cluster_key(b"k");
        let r = Remote::new(
            "n",
            "http://127.0.0.1:1",
            "zzzzz-bi6l4-000000000000001",
            cred.clone(),
            &RemoteConfig::default(),
        );
        let shown = format!("{r:?}");
        assert!(!shown.contains(&cred.expose()[4..]), "{shown}");
        assert!(shown.contains("zzzzz-bi6l4-000000000000001"), "{shown}");
    }

    #[tokio::test]
    async fn bad_url_is_a_connect_error() {
        let r = Remote::new(
            "n",
            "not a url",
            "u",
            NodeCredential::from_cluster_key(b"k"),
            &RemoteConfig::default(),
        );
        let err = r.heartbeat().await.unwrap_err();
        assert!(matches!(err, RemoteError::Connect(_)), "{err}");
    }
}
