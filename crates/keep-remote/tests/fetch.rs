//! `Fetcher` against a small block server that behaves like an Arvados
//! keepstore: `GET /{signed locator}` with `Authorization: Bearer <token>`,
//! the signature checked against that token.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use keep_http::{Body, ServeOptions, body};
use keep_locator::{BlockHash, Locator, SigningKey};
use keep_remote::protocol::{DRAINING_HEADER, LOCAL_ONLY_HEADER};
use keep_remote::{CREDENTIAL_PREFIX, Fetcher, RemoteConfig, RemoteError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use common::{CHUNK, data, quick_config};

const KEY: &str = "blob signing key";
const TTL: Duration = Duration::from_secs(14 * 24 * 3600);
const TOKEN: &str = "pull-token-0123456789";

/// How the block server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answers as a keepstore does.
    Normal,
    /// Never answers.
    StallHead,
    /// Sends the first chunk, then nothing more.
    StallAfterFirstChunk,
    /// Answers with this status, draining.
    Status(u16),
    /// Sends the block without a `Content-Length` (chunked).
    Chunked,
}

struct BlockServer {
    mode: Mode,
    blocks: Mutex<HashMap<BlockHash, Bytes>>,
    seen: Mutex<Vec<(String, HeaderMap)>>,
}

impl BlockServer {
    fn store(&self, data: &[u8]) -> BlockHash {
        let hash = BlockHash::of(data);
        self.blocks
            .lock()
            .unwrap()
            .insert(hash, Bytes::copy_from_slice(data));
        hash
    }

    fn seen(&self) -> Vec<(String, HeaderMap)> {
        self.seen.lock().unwrap().clone()
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        self.seen
            .lock()
            .unwrap()
            .push((path.clone(), req.headers().clone()));
        match self.mode {
            Mode::StallHead => futures::future::pending::<()>().await,
            Mode::Status(status) => {
                let mut resp = body::text(StatusCode::from_u16(status).unwrap(), "go away");
                resp.headers_mut()
                    .insert(DRAINING_HEADER, HeaderValue::from_static("true"));
                return resp;
            }
            _ => {}
        }
        let Ok(locator) = path.trim_start_matches('/').parse::<Locator>() else {
            return body::text(StatusCode::BAD_REQUEST, "not a locator");
        };
        if locator.hints.iter().any(|h| h.starts_with('A')) {
            let token = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if SigningKey::new(KEY)
                .verify(&locator, token, TTL, unix_now())
                .is_err()
            {
                return body::text(StatusCode::FORBIDDEN, "bad signature");
            }
        }
        let Some(data) = self.blocks.lock().unwrap().get(&locator.hash).cloned() else {
            return body::text(StatusCode::NOT_FOUND, "not found");
        };
        let chunks: Vec<Bytes> = (0..data.len())
            .step_by(CHUNK)
            .map(|at| data.slice(at..(at + CHUNK).min(data.len())))
            .collect();
        let stall = self.mode == Mode::StallAfterFirstChunk;
        let stream = futures::stream::unfold((chunks, 0), move |(chunks, i)| async move {
            if stall && i == 1 {
                futures::future::pending::<()>().await;
            }
            let chunk = chunks.get(i)?.clone();
            Some((
                Ok::<_, keep_http::BoxError>(hyper::body::Frame::data(chunk)),
                (chunks, i + 1),
            ))
        });
        let mut resp = Response::new(http_body_util::StreamBody::new(stream).boxed_unsync());
        if self.mode != Mode::Chunked {
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(data.len()));
        }
        resp
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A block server in `mode` on an ephemeral loopback port, and its base url.
struct Running {
    server: Arc<BlockServer>,
    url: String,
    _stop: tokio_util::sync::DropGuard,
}

async fn start(mode: Mode) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = Arc::new(BlockServer {
        mode,
        blocks: Mutex::default(),
        seen: Mutex::default(),
    });
    let stop = CancellationToken::new();
    let handler = server.clone();
    let shutdown = stop.clone();
    tokio::spawn(keep_http::serve(
        listener,
        move |req| handler.clone().handle(req),
        async move { shutdown.cancelled().await },
        ServeOptions {
            shutdown_grace: Duration::from_millis(100),
            ..ServeOptions::default()
        },
    ));
    Running {
        server,
        url,
        _stop: stop.drop_guard(),
    }
}

fn signed(hash: BlockHash, size: u64) -> Locator {
    SigningKey::new(KEY).sign(&Locator::new(hash, size), TOKEN, unix_now() + 60, TTL)
}

async fn collect(
    mut chunks: futures::stream::BoxStream<'static, Result<Bytes, RemoteError>>,
) -> Result<Vec<u8>, RemoteError> {
    let mut all = Vec::new();
    while let Some(chunk) = chunks.next().await {
        all.extend_from_slice(&chunk?);
    }
    Ok(all)
}

#[tokio::test]
async fn fetches_a_signed_block_with_the_token_and_no_node_credential() {
    let running = start(Mode::Normal).await;
    let block = data(3 << 20, 7);
    let hash = running.server.store(&block);
    let size = block.len() as u64;
    let locator = signed(hash, size);
    let fetcher = Fetcher::new(&quick_config());

    // A trailing slash on the base url is fine.
    let got = fetcher
        .fetch(&format!("{}/", running.url), &locator, TOKEN, size)
        .await
        .unwrap();
    assert_eq!(got.size, size);
    assert!(!got.draining);
    assert_eq!(collect(got.chunks).await.unwrap(), block);

    let (path, headers) = running.server.seen().pop().unwrap();
    assert_eq!(path, format!("/{locator}"));
    assert_eq!(
        headers.get(header::AUTHORIZATION).unwrap(),
        &format!("Bearer {TOKEN}")
    );
    assert!(headers.get(LOCAL_ONLY_HEADER).is_none());
    for (name, value) in &headers {
        assert!(
            !value
                .as_bytes()
                .windows(4)
                .any(|w| w == CREDENTIAL_PREFIX.as_bytes()),
            "{name} carries a node credential"
        );
    }

    // Again, on the same fetcher: still fine (the connection is reused).
    let got = fetcher
        .fetch(&running.url, &locator, TOKEN, size)
        .await
        .unwrap();
    assert_eq!(collect(got.chunks).await.unwrap(), block);
}

#[tokio::test]
async fn an_unsigned_locator_and_no_token_send_no_authorization() {
    let running = start(Mode::Normal).await;
    let hash = running.server.store(b"open block");
    let got = Fetcher::new(&quick_config())
        .fetch(&running.url, &Locator::new(hash, 10), "", 10)
        .await
        .unwrap();
    assert_eq!(collect(got.chunks).await.unwrap(), b"open block");
    let (path, headers) = running.server.seen().pop().unwrap();
    assert_eq!(path, format!("/{hash}+10"));
    assert!(headers.get(header::AUTHORIZATION).is_none());
}

#[tokio::test]
async fn the_empty_block() {
    let running = start(Mode::Normal).await;
    let hash = running.server.store(b"");
    let got = Fetcher::new(&quick_config())
        .fetch(&running.url, &signed(hash, 0), TOKEN, 0)
        .await
        .unwrap();
    assert!(collect(got.chunks).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_missing_block_is_not_found() {
    let running = start(Mode::Normal).await;
    let hash = BlockHash::of(b"missing");
    let err = Fetcher::new(&quick_config())
        .fetch(&running.url, &signed(hash, 7), TOKEN, 7)
        .await
        .unwrap_err();
    assert_eq!(err, RemoteError::NotFound);
}

#[tokio::test]
async fn other_statuses_are_status_errors() {
    // A signature made for another token: the server refuses it.
    let running = start(Mode::Normal).await;
    let hash = running.server.store(b"guarded");
    let err = Fetcher::new(&quick_config())
        .fetch(&running.url, &signed(hash, 7), "another token", 7)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RemoteError::Status { status: 403, message, draining: false } if message.contains("signature")),
        "{err}"
    );

    let running = start(Mode::Status(503)).await;
    let err = Fetcher::new(&quick_config())
        .fetch(&running.url, &signed(hash, 7), TOKEN, 7)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RemoteError::Status { status: 503, message, draining: true } if message == "go away"),
        "{err}"
    );
}

#[tokio::test]
async fn a_wrong_content_length_is_a_protocol_error() {
    let running = start(Mode::Normal).await;
    let block = b"five!";
    let hash = running.server.store(block);
    // The server holds 5 bytes under this hash; the pull asks for 4.
    let err = Fetcher::new(&quick_config())
        .fetch(&running.url, &signed(hash, 4), TOKEN, 4)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Protocol(_)), "{err}");
    assert!(!err.is_down());
}

#[tokio::test]
async fn a_body_of_another_length_without_content_length_fails_the_stream() {
    let running = start(Mode::Chunked).await;
    let block = data(200_000, 9);
    let hash = running.server.store(&block);
    let fetcher = Fetcher::new(&quick_config());
    for size in [100_000, 300_000] {
        let got = fetcher
            .fetch(&running.url, &signed(hash, size), TOKEN, size)
            .await
            .unwrap();
        let err = collect(got.chunks).await.unwrap_err();
        assert!(matches!(err, RemoteError::Body(_)), "{size}: {err}");
    }
    // The right size streams fine without a Content-Length.
    let got = fetcher
        .fetch(&running.url, &signed(hash, 200_000), TOKEN, 200_000)
        .await
        .unwrap();
    assert_eq!(collect(got.chunks).await.unwrap(), block);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_at_the_first_byte_deadline() {
    let running = start(Mode::StallHead).await;
    let config = RemoteConfig {
        read_first_byte_timeout: Duration::from_millis(300),
        ..quick_config()
    };
    let start = Instant::now();
    let err = Fetcher::new(&config)
        .fetch(&running.url, &signed(BlockHash::of(b"x"), 1), TOKEN, 1)
        .await
        .unwrap_err();
    assert_eq!(err, RemoteError::Timeout);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_server_that_stalls_mid_block_fails_the_stream_within_the_gap_limit() {
    let running = start(Mode::StallAfterFirstChunk).await;
    let block = data(4 * CHUNK, 3);
    let hash = running.server.store(&block);
    let config = RemoteConfig {
        request_timeout: Duration::from_millis(300),
        ..quick_config()
    };
    let size = block.len() as u64;
    let mut got = Fetcher::new(&config)
        .fetch(&running.url, &signed(hash, size), TOKEN, size)
        .await
        .unwrap();
    let first = got.chunks.next().await.unwrap().unwrap();
    assert_eq!(&first[..], &block[..first.len()]);
    let start = Instant::now();
    let mut last = None;
    while let Some(item) = got.chunks.next().await {
        if let Err(e) = item {
            last = Some(e);
        }
    }
    assert_eq!(last, Some(RemoteError::Timeout));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn urls_the_node_cannot_reach_are_refused_before_sending() {
    let fetcher = Fetcher::new(&quick_config());
    let locator = signed(BlockHash::of(b"x"), 1);
    let err = fetcher
        .fetch("https://127.0.0.1:1", &locator, TOKEN, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RemoteError::Connect(m) if m.contains("https is not supported until TLS lands; use http://")),
        "{err}"
    );
    for url in ["127.0.0.1:1", "http://127.0.0.1", "ftp://127.0.0.1:21", ""] {
        let err = fetcher.fetch(url, &locator, TOKEN, 1).await.unwrap_err();
        assert!(matches!(err, RemoteError::Connect(_)), "{url:?}: {err}");
    }
}

#[tokio::test]
async fn a_dead_server_is_a_connect_error() {
    let running = start(Mode::Normal).await;
    let url = running.url.clone();
    drop(running);
    // Wait until the port is closed.
    let mut err = None;
    for _ in 0..50 {
        match Fetcher::new(&quick_config())
            .fetch(&url, &signed(BlockHash::of(b"x"), 1), TOKEN, 1)
            .await
        {
            Err(e @ RemoteError::Connect(_)) => {
                err = Some(e);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let err = err.expect("a closed port refuses connections");
    assert!(err.is_down());
}

#[tokio::test]
async fn a_locator_of_another_size_is_the_callers_mistake() {
    let running = start(Mode::Normal).await;
    let hash = running.server.store(b"abc");
    let err = Fetcher::new(&quick_config())
        .fetch(&running.url, &signed(hash, 3), TOKEN, 4)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Request(_)), "{err}");
    assert!(running.server.seen().is_empty());
    // A locator without a size takes the size given.
    let got = Fetcher::new(&quick_config())
        .fetch(
            &running.url,
            &Locator {
                size: None,
                ..Locator::new(hash, 3)
            },
            "",
            3,
        )
        .await
        .unwrap();
    assert_eq!(collect(got.chunks).await.unwrap(), b"abc");
}
