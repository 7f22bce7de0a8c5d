//! A fake peer node: the node-to-node routes over an in-memory map, served
//! with `keep_http::serve`. A test double of the real node's server side
//! (written separately in keepstore), with knobs to make it drain, stall,
//! lie about its identity, or hold back a block mid-stream.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use keep_http::{Body, ServeOptions, body};
use keep_locator::BlockHash;
use keep_remote::protocol::{
    DRAINING_HEADER, LOCAL_ONLY_HEADER, NODE_ROUTE, NodeStatus, PROTOCOL_VERSION,
};
use keep_remote::{NodeCredential, RemoteConfig};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The cluster key every test node shares.
pub const CLUSTER_KEY: &[u8] = b"test cluster key";

/// Chunks a fake peer sends a block in.
pub const CHUNK: usize = 64 * 1024;

pub fn credential() -> NodeCredential {
    NodeCredential::from_cluster_key(CLUSTER_KEY)
}

pub fn uuid(i: u32) -> String {
    format!("zzzzz-bi6l4-{i:015}")
}

/// Short timeouts so tests about dead peers finish quickly.
pub fn quick_config() -> RemoteConfig {
    RemoteConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(10),
        read_first_byte_timeout: Duration::from_secs(2),
    }
}

/// One request as the fake peer saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
}

/// The fake peer's state; shared with the test.
#[derive(Debug, Default)]
pub struct FakePeer {
    /// The uuid it answers with.
    pub uuid: Mutex<String>,
    pub protocol: AtomicU32,
    pub draining: AtomicBool,
    pub read_only: AtomicBool,
    /// Handlers never answer while set.
    pub stall: AtomicBool,
    pub blocks: Mutex<HashMap<String, Bytes>>,
    /// Bytes of PUT bodies received so far.
    pub received: AtomicU64,
    pub seen: Mutex<Vec<Seen>>,
    /// When set, a GET sends the first chunk and waits for this before the rest.
    pub gate: Mutex<Option<Arc<Notify>>>,
}

impl FakePeer {
    pub fn new(uuid: &str) -> Arc<Self> {
        Arc::new(FakePeer {
            uuid: Mutex::new(uuid.to_owned()),
            protocol: AtomicU32::new(PROTOCOL_VERSION),
            ..FakePeer::default()
        })
    }

    pub fn store(&self, data: &[u8]) -> BlockHash {
        let hash = BlockHash::of(data);
        self.blocks
            .lock()
            .unwrap()
            .insert(hash.to_hex(), Bytes::copy_from_slice(data));
        hash
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let mut resp = self.clone().route(req).await;
        if self.draining.load(Ordering::SeqCst) {
            resp.headers_mut()
                .insert(DRAINING_HEADER, HeaderValue::from_static("true"));
        }
        resp
    }

    async fn route(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        self.seen.lock().unwrap().push(Seen {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            headers: req.headers().clone(),
        });
        if self.stall.load(Ordering::SeqCst) {
            futures::future::pending::<()>().await;
        }
        let want = credential().authorization();
        if req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            != Some(want.as_bytes())
        {
            return body::text(StatusCode::UNAUTHORIZED, "node credential required");
        }
        let path = req.uri().path().to_owned();
        if path == NODE_ROUTE && req.method() == Method::GET {
            let status = NodeStatus {
                uuid: self.uuid.lock().unwrap().clone(),
                protocol: self.protocol.load(Ordering::SeqCst),
                version: "test".into(),
                draining: self.draining.load(Ordering::SeqCst),
                read_only: self.read_only.load(Ordering::SeqCst),
            };
            return body::json(StatusCode::OK, serde_json::to_vec(&status).unwrap());
        }
        if req.headers().get(LOCAL_ONLY_HEADER).map(|v| v.as_bytes()) != Some(b"true") {
            return body::text(StatusCode::BAD_REQUEST, "node requests must be local-only");
        }
        let name = path.trim_start_matches('/');
        let (md5, size) = match name.split_once('+') {
            Some((md5, size)) => (md5.to_owned(), size.parse::<u64>().ok()),
            None => (name.to_owned(), None),
        };
        match (req.method().clone(), size) {
            (Method::PUT, None) => self.put(md5, req).await,
            (Method::GET | Method::HEAD, Some(size)) => self.get(&md5, size, req.method()).await,
            _ => body::text(StatusCode::BAD_REQUEST, "no such route"),
        }
    }

    async fn put(&self, md5: String, req: Request<Incoming>) -> Response<Body> {
        let Some(declared) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        else {
            return body::text(StatusCode::LENGTH_REQUIRED, "content-length required");
        };
        let mut incoming = req.into_body();
        let mut data = BytesMut::with_capacity(declared);
        while let Some(frame) = incoming.frame().await {
            let Ok(frame) = frame else {
                return body::text(StatusCode::BAD_REQUEST, "body broke off");
            };
            if let Ok(chunk) = frame.into_data() {
                self.received
                    .fetch_add(chunk.len() as u64, Ordering::SeqCst);
                data.extend_from_slice(&chunk);
            }
        }
        if data.len() != declared {
            return body::text(StatusCode::BAD_REQUEST, "short body");
        }
        if BlockHash::of(&data).to_hex() != md5 {
            return body::text(StatusCode::UNPROCESSABLE_ENTITY, "hash mismatch");
        }
        let size = data.len();
        self.blocks
            .lock()
            .unwrap()
            .insert(md5.clone(), data.freeze());
        body::text(StatusCode::OK, format!("{md5}+{size}"))
    }

    async fn get(&self, md5: &str, size: u64, method: &Method) -> Response<Body> {
        let Some(data) = self.blocks.lock().unwrap().get(md5).cloned() else {
            return body::text(StatusCode::NOT_FOUND, "not found");
        };
        // A wrong size hint is answered as a keepstore does: with the
        // block, whose own length the headers give.
        let _ = size;
        let body = if method == Method::HEAD {
            body::empty()
        } else {
            let gate = self.gate.lock().unwrap().clone();
            let chunks: Vec<Bytes> = (0..data.len())
                .step_by(CHUNK)
                .map(|at| data.slice(at..(at + CHUNK).min(data.len())))
                .collect();
            let stream =
                futures::stream::unfold((chunks, 0, gate), |(chunks, i, gate)| async move {
                    if i == 1
                        && let Some(g) = &gate
                    {
                        g.notified().await;
                    }
                    let chunk = chunks.get(i)?.clone();
                    Some((
                        Ok::<_, keep_http::BoxError>(hyper::body::Frame::data(chunk)),
                        (chunks, i + 1, gate),
                    ))
                });
            http_body_util::StreamBody::new(stream).boxed_unsync()
        };
        let mut resp = Response::new(body);
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(data.len()));
        resp
    }
}

/// A fake peer being served.
#[derive(Debug)]
pub struct Running {
    pub peer: Arc<FakePeer>,
    pub addr: SocketAddr,
    stop: CancellationToken,
    server: JoinHandle<bool>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits until its port is closed.
    pub async fn kill(self) -> (Arc<FakePeer>, SocketAddr) {
        self.stop.cancel();
        let _ = self.server.await;
        (self.peer, self.addr)
    }
}

/// Serves `peer` on `addr` (an ephemeral loopback port if `None`).
pub async fn serve(peer: Arc<FakePeer>, addr: Option<SocketAddr>) -> Running {
    let listener = TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let handler_peer = peer.clone();
    let shutdown = stop.clone();
    let server = tokio::spawn(keep_http::serve(
        listener,
        move |req| handler_peer.clone().handle(req),
        async move { shutdown.cancelled().await },
        ServeOptions {
            shutdown_grace: Duration::from_millis(200),
            ..ServeOptions::default()
        },
    ));
    Running {
        peer,
        addr,
        stop,
        server,
    }
}

/// Polls `cond` until it holds or `within` has passed; returns whether it held.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `len` bytes of a pattern that differs from block to block.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

/// A loopback address whose connects hang: a listener that never accepts,
/// its accept queue filled. Keep the returned value alive while using it.
/// `None` if the queue never filled (the kernel answered every connect).
pub async fn black_hole() -> Option<(SocketAddr, impl Sized)> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..64 {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(_)) => return None,
            Err(_) => return Some((addr, (listener, held))),
        }
    }
    None
}
