//! The timed phases: `concurrency` workers share one keep-alive client and
//! take the next operation until the count or the time runs out.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use md5::{Digest, Md5};

use crate::Scheme;
use crate::blocks::{Block, Pool};
use crate::body::{ChunksBody, TailTracker};

/// The HTTP client: HTTP/1.1, keep-alive, `TCP_NODELAY`.
pub type Client = HyperClient<HttpConnector, ChunksBody>;

/// A client keeping up to `concurrency` idle connections.
pub fn client(concurrency: usize) -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    HyperClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .pool_idle_timeout(Duration::from_secs(300))
        .build(connector)
}

/// What every request needs.
#[derive(Debug)]
pub struct Ctx {
    /// The client.
    pub client: Client,
    /// Base URL, without a trailing slash.
    pub base: String,
    /// Path scheme.
    pub scheme: Scheme,
    /// The blocks.
    pub pool: Pool,
    /// Longest wait for one request, body included.
    pub timeout: Duration,
    /// Copies asked for with `X-Keep-Desired-Replicas` (Keep only); the
    /// answer's `X-Keep-Replicas-Stored` must reach it.
    pub replicas: Option<u32>,
}

/// A successful request.
#[derive(Debug)]
pub struct Done {
    /// Block bytes moved.
    pub bytes: u64,
    /// PUT: where to read the block back.
    pub path: Option<String>,
}

/// When a phase stops starting requests.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// After this many.
    Count(u64),
    /// After this long (requests in flight then still finish).
    Elapsed(Duration),
}

/// What a phase measured.
#[derive(Debug, Default)]
pub struct Phase {
    /// Latency of each successful request, in nanoseconds.
    pub latencies: Vec<u64>,
    /// Successful requests.
    pub ops: u64,
    /// Failed requests.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Block bytes of successful requests.
    pub bytes: u64,
    /// Wall time.
    pub wall: Duration,
    /// `(operation index, path)` of PUTs.
    pub paths: Vec<(u64, String)>,
}

impl Phase {
    fn absorb(&mut self, other: Phase) {
        self.latencies.extend(other.latencies);
        self.ops += other.ops;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.bytes += other.bytes;
        self.paths.extend(other.paths);
    }
}

/// Runs `op(0)`, `op(1)`, ... on `concurrency` workers until `until`.
pub async fn phase<F, Fut>(concurrency: usize, until: Until, op: F) -> Phase
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Done, String>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let op = op.clone();
        let next = next.clone();
        workers.spawn(async move {
            let mut mine = Phase::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let more = match until {
                    Until::Count(n) => i < n,
                    Until::Elapsed(d) => start.elapsed() < d,
                };
                if !more {
                    break;
                }
                let t0 = Instant::now();
                match op(i).await {
                    Ok(done) => {
                        mine.latencies
                            .push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
                        mine.ops += 1;
                        mine.bytes += done.bytes;
                        if let Some(p) = done.path {
                            mine.paths.push((i, p));
                        }
                    }
                    Err(e) => {
                        mine.errors += 1;
                        mine.first_error.get_or_insert(e);
                    }
                }
            }
            mine
        });
    }
    let mut all = Phase::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(p) => all.absorb(p),
            Err(e) => {
                all.errors += 1;
                all.first_error.get_or_insert(format!("worker failed: {e}"));
            }
        }
    }
    all.wall = start.elapsed();
    all
}

/// PUTs a block; the answer must be 2xx (and, for Keep, name the block).
pub async fn put(ctx: &Ctx, block: &Block) -> Result<Done, String> {
    let md5 = block.md5_hex();
    let path = ctx.scheme.put_path(&md5);
    let size = ctx.pool.size();
    let mut req = Request::put(format!("{}{path}", ctx.base)).header(header::CONTENT_LENGTH, size);
    if let Some(n) = ctx.replicas {
        req = req.header("x-keep-desired-replicas", n);
    }
    let req = req
        .body(ChunksBody::new(ctx.pool.chunks(block)))
        .map_err(|e| e.to_string())?;
    let work = async {
        let resp = ctx
            .client
            .request(req)
            .await
            .map_err(|e| format!("PUT {path}: {}", chain(&e)))?;
        let status = resp.status();
        let stored: Option<u32> = resp
            .headers()
            .get("x-keep-replicas-stored")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("PUT {path}: reading the answer: {}", chain(&e)))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("PUT {path}: {status}: {}", snippet(&body)));
        }
        if let Some(want) = ctx.replicas
            && stored.unwrap_or(1) < want
        {
            return Err(format!(
                "PUT {path}: {} copies stored of {want}",
                stored.unwrap_or(1)
            ));
        }
        let get_path = ctx.scheme.get_path_after_put(&md5, size, &body)?;
        Ok(Done {
            bytes: size,
            path: Some(get_path),
        })
    };
    with_timeout(ctx.timeout, &path, work).await
}

/// GETs a block from `path`: status 200, the block's length, and its last
/// bytes (which name it). With `md5`, also hashes the whole body (for the
/// untimed verification pass).
pub async fn get(ctx: &Ctx, block: &Block, path: &str, md5: bool) -> Result<Done, String> {
    let req = Request::get(format!("{}{path}", ctx.base))
        .body(ChunksBody::empty())
        .map_err(|e| e.to_string())?;
    let work = async {
        let resp = ctx
            .client
            .request(req)
            .await
            .map_err(|e| format!("GET {path}: {}", chain(&e)))?;
        let status = resp.status();
        let mut body = resp.into_body();
        if status != StatusCode::OK {
            let text = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(format!("GET {path}: {status}: {}", snippet(&text)));
        }
        let mut tail = TailTracker::default();
        let mut hasher = md5.then(Md5::new);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                format!(
                    "GET {path}: body broken after {} bytes: {}",
                    tail.total(),
                    chain(&e)
                )
            })?;
            if let Ok(data) = frame.into_data() {
                tail.push(&data);
                if let Some(h) = hasher.as_mut() {
                    h.update(&data);
                }
            }
        }
        let size = ctx.pool.size();
        if tail.total() != size {
            return Err(format!(
                "GET {path}: {} bytes, expected {size}",
                tail.total()
            ));
        }
        if tail.tail() != Some(block.tail) {
            return Err(format!(
                "GET {path}: the body ends with another block's tail"
            ));
        }
        if let Some(h) = hasher {
            let got: [u8; 16] = h.finalize().into();
            if got != block.md5 {
                return Err(format!("GET {path}: content MD5 is {}", hex::encode(got)));
            }
        }
        Ok(Done {
            bytes: size,
            path: None,
        })
    };
    with_timeout(ctx.timeout, path, work).await
}

async fn with_timeout<T>(
    limit: Duration,
    path: &str,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(format!("{path}: no complete answer within {limit:?}")))
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The start of an error body, for messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().to_owned()
}
