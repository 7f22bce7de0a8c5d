//! Faults: the S3 server dies mid-use and comes back (real moto), and a
//! store that throttles (a small fake, since moto never throttles; it
//! also records what a PUT carries on the wire).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use keep_locator::BlockHash;
use keep_volume::conformance::{self, get, put, test_data};
use keep_volume::{Volume, VolumeError, VolumeParams};
use keep_volume_s3::S3Volume;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::{Moto, create_bucket, options};

/// How long any operation on a dead store may take to fail.
const PROMPT: Duration = Duration::from_secs(10);

fn params() -> VolumeParams {
    VolumeParams::new("zzzzz-nyw5e-000000000000100")
}

/// Runs `op` and insists it fails as Unavailable, promptly.
async fn unavailable<T: std::fmt::Debug>(
    what: &str,
    op: impl std::future::Future<Output = Result<T, VolumeError>>,
) {
    let started = Instant::now();
    let res = tokio::time::timeout(PROMPT, op)
        .await
        .unwrap_or_else(|_| panic!("{what}: hung on a dead store"));
    match res {
        Err(VolumeError::Unavailable(_)) => {}
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < PROMPT, "{what}: too slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dies_and_comes_back() {
    let mut moto = Moto::start();
    let ep = moto.endpoint();
    create_bucket(&ep, "outage").await;
    let vol = S3Volume::open(options(&ep, "outage", "", params()))
        .await
        .unwrap();
    let data = test_data(3 * keep_volume::CHUNK_SIZE, 1);
    let hash = put(&vol, &data, 65536).await.unwrap();
    // A read in progress when the server dies.
    let mut reading = vol.open(&hash).await.unwrap();
    let first = reading.chunks.next().await.unwrap().unwrap();
    assert!(!first.is_empty());

    moto.kill();
    // Whether the rest was already on its way or the read fails, it ends.
    tokio::time::timeout(PROMPT, async {
        while reading.chunks.next().await.is_some() {}
    })
    .await
    .expect("a read in progress ends");
    unavailable("open", vol.open(&hash)).await;
    unavailable("write", put(&vol, &test_data(1000, 2), 100)).await;
    unavailable("mtime", vol.mtime(&hash)).await;
    unavailable("touch", vol.touch(&hash)).await;
    unavailable("trash", vol.trash(&hash, None)).await;
    unavailable("empty trash", vol.empty_trash()).await;
    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    unavailable("index", vol.index("", tx)).await;

    // Back, empty (moto keeps its state in memory): without the bucket the
    // volume is still unavailable, never "not found".
    moto.restart();
    let err = vol.open(&hash).await.unwrap_err();
    assert!(matches!(err, VolumeError::Unavailable(_)), "{err}");
    create_bucket(&ep, "outage").await;
    assert!(vol.open(&hash).await.unwrap_err().is_not_found());
    let again = put(&vol, &data, 65536).await.expect("write after restart");
    assert_eq!(get(&vol, &again).await.unwrap(), data);
    assert_eq!(conformance::index(&vol, "").await.len(), 1);
}

/// What the fake store saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// A store on loopback that answers `503 SlowDown` to the first
/// `throttled` requests and `200` after, one request per connection.
async fn fake_store(throttled: usize) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let Some(req) = read_request(&mut conn).await else {
                continue;
            };
            let n = {
                let mut log = log.lock().unwrap();
                log.push(req);
                log.len()
            };
            let answer = if n <= throttled {
                let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
            };
            let _ = conn.write_all(answer.as_bytes()).await;
            let _ = conn.shutdown().await;
        }
    });
    (url, seen)
}

/// Reads one request: its head, then as many body bytes as its
/// Content-Length says (so a chunked body would show as missing).
async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen { head, body })
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let (url, seen) = fake_store(2).await;
    let started = Instant::now();
    S3Volume::open(options(&url, "bucket", "", params()))
        .await
        .expect("open after two SlowDown answers");
    assert_eq!(seen.lock().unwrap().len(), 3, "two retries");
    // Pauses of about 20 ms and 40 ms (test policy), plus jitter.
    assert!(started.elapsed() >= Duration::from_millis(60));
}

#[tokio::test]
async fn endless_throttling_is_unavailable() {
    let (url, seen) = fake_store(usize::MAX).await;
    let err = S3Volume::open(options(&url, "bucket", "", params()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VolumeError::Unavailable(m) if m.contains("503 : Service Unavailable")),
        "{err}"
    );
    assert_eq!(seen.lock().unwrap().len(), 4, "max_attempts tries");
}

#[tokio::test]
async fn a_put_carries_length_and_md5_and_streams() {
    let (url, seen) = fake_store(0).await;
    let vol = S3Volume::open(options(&url, "bucket", "", params()))
        .await
        .unwrap();
    let data = test_data(2 * keep_volume::CHUNK_SIZE + 5, 3);
    // In frames of 10,000 bytes: the body streams, it is not one buffer.
    let hash = put(&vol, &data, 10_000).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let data_put = seen
        .iter()
        .find(|s| s.head.starts_with(&format!("put /bucket/{hash}?")))
        .expect("the data PUT");
    assert!(
        data_put
            .head
            .contains(&format!("content-length: {}\r\n", data.len()))
    );
    // The block hash IS the MD5: base64 of its 16 bytes.
    let md5 = "content-md5: ".to_owned() + &common_md5(&hash).to_lowercase();
    assert!(data_put.head.contains(&md5), "{}", data_put.head);
    assert!(!data_put.head.contains("transfer-encoding"));
    assert!(data_put.body == data[..], "body arrives whole");
    assert!(
        seen.iter()
            .any(|s| s.head.starts_with(&format!("put /bucket/recent/{hash}?"))),
        "then the marker"
    );
}

/// A store that answers HEAD bucket, then goes quiet: object HEADs and
/// PUTs get no answer, a GET sends its head and 10 of 100 bytes.
async fn silent_store() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 8192];
                let Ok(n) = conn.read(&mut head).await else {
                    return;
                };
                let head = String::from_utf8_lossy(&head[..n]).to_lowercase();
                let answer = if head.starts_with("head /bucket/?") {
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                } else if head.starts_with("get ") {
                    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789"
                } else {
                    ""
                };
                let _ = conn.write_all(answer.as_bytes()).await;
                // Hold the connection, silent, reading nothing more.
                tokio::time::sleep(Duration::from_secs(120)).await;
                drop(conn);
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_store_times_out() {
    let url = silent_store().await;
    let mut opts = options(&url, "bucket", "", params());
    opts.read_timeout = Duration::from_secs(1);
    let vol = S3Volume::open(opts).await.expect("HEAD bucket answers");
    let hash = BlockHash::of(b"x");
    unavailable("streamed write", put(&vol, &test_data(3 << 20, 4), 65536)).await;
    unavailable("mtime", vol.mtime(&hash)).await;
    let mut reader = vol.open(&hash).await.expect("the GET head arrives");
    let first = reader.chunks.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"0123456789");
    let started = Instant::now();
    let stuck = reader.chunks.next().await.unwrap().unwrap_err();
    assert!(
        matches!(&stuck, VolumeError::Unavailable(m) if m.contains("sent nothing")),
        "{stuck}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn common_md5(hash: &BlockHash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(hash.as_bytes())
}
