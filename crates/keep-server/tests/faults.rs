//! Each volume fault, injected under a node served in-process, and the
//! status a client gets for it: the storage core's errors become statuses
//! in the handlers and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use keep_locator::BlockHash;
use keep_server::config::Secret;
use keep_server::{Config, Keepstore, Server};
use keep_store::Store;
use keep_volume::testing::{Fault, FaultyVolume, MemVolume, Op, Schedule};
use keep_volume::{Volume, VolumeParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROOT: &str = "the-root-token";

/// A node over one in-memory volume behind a fault injector, serving on
/// a loopback port until the test ends.
struct Node {
    addr: std::net::SocketAddr,
    faulty: Arc<FaultyVolume>,
    mem: MemVolume,
}

async fn node() -> Node {
    let mem = MemVolume::new(VolumeParams::new("zzzzz-nyw5e-000000000000001"));
    let faulty = Arc::new(FaultyVolume::new(Arc::new(mem.share(mem.params().clone()))));
    let store = Store::with_volumes(vec![faulty.clone() as Arc<dyn Volume>], 64 << 20);
    let mut config = Config::embedded_default();
    config.system_root_token = Some(Secret::new(ROOT));
    let node = Keepstore::with_store(config, "zzzzz-bi6l4-000000000000001".into(), store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::from_listener(node, listener);
    tokio::spawn(server.run(std::future::pending()));
    Node { addr, faulty, mem }
}

/// The status, and the body as far as it came, of one request.
async fn call(node: &Node, method: &str, path: &str, body: &[u8], admin: bool) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let auth = if admin {
        format!("Authorization: Bearer {ROOT}\r\n")
    } else {
        String::new()
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    // A cut connection ends the read early; that is what some tests look for.
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = match out.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => out[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

fn path(data: &[u8]) -> String {
    format!("/{}+{}", BlockHash::of(data), data.len())
}

const SMALL: &[u8] = b"a block to fail over";

#[tokio::test]
async fn write_faults() {
    let n = node().await;
    let put = format!("/{}", BlockHash::of(SMALL));
    for (fault, status) in [
        (Fault::Io, 500),
        (Fault::Unavailable, 503),
        (Fault::Full, 507),
    ] {
        n.faulty.clear();
        n.faulty.inject(Op::Write, fault, Schedule::Times(1));
        assert_eq!(
            call(&n, "PUT", &put, SMALL, false).await.0,
            status,
            "{fault:?}"
        );
        assert!(
            !n.mem.contains(&BlockHash::of(SMALL)),
            "{fault:?} stored nothing"
        );
    }
    // A volume that cannot say whether it has room: 503.
    n.faulty.clear();
    n.faulty
        .inject(Op::Status, Fault::Unavailable, Schedule::Always);
    assert_eq!(call(&n, "PUT", &put, SMALL, false).await.0, 503);
    n.faulty.clear();
    let (status, body) = call(&n, "PUT", &put, SMALL, false).await;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).trim()),
        (200, &path(SMALL)[1..])
    );
}

#[tokio::test]
async fn read_faults() {
    let n = node().await;
    let hash = BlockHash::of(SMALL);
    n.mem.insert_raw(hash, Bytes::from_static(SMALL));
    for (op, fault, status) in [
        (Op::Open, Fault::Io, 500),
        (Op::Open, Fault::Unavailable, 503),
        (Op::Open, Fault::NotFound, 404),
        (Op::Read, Fault::Io, 500),
    ] {
        n.faulty.clear();
        n.faulty.inject(op, fault, Schedule::Times(1));
        assert_eq!(
            call(&n, "GET", &path(SMALL), b"", false).await.0,
            status,
            "{op:?} {fault:?}"
        );
    }
    n.faulty.clear();
    n.faulty.inject(
        Op::Open,
        Fault::Latency(Duration::from_millis(100)),
        Schedule::Times(1),
    );
    let (status, body) = call(&n, "GET", &path(SMALL), b"", false).await;
    assert_eq!(
        (status, body.as_slice()),
        (200, SMALL),
        "latency is only waited for"
    );
    // A corrupt copy: 502, and it is moved aside.
    n.faulty.clear();
    n.faulty
        .inject(Op::Read, Fault::Corrupt, Schedule::Times(1));
    assert_eq!(call(&n, "GET", &path(SMALL), b"", false).await.0, 502);
    assert_eq!(n.mem.quarantined(), vec![hash]);
    assert_eq!(call(&n, "GET", &path(SMALL), b"", false).await.0, 404);
}

#[tokio::test]
async fn a_large_block_that_fails_while_it_streams_is_cut_short() {
    let n = node().await;
    let data: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    let hash = BlockHash::of(&data);
    for fault in [Fault::Corrupt, Fault::Io] {
        n.mem.insert_raw(hash, Bytes::from(data.clone()));
        n.faulty.clear();
        n.faulty
            .inject(Op::Read, fault, Schedule::Window { skip: 1, times: 1 });
        let (status, body) = call(&n, "GET", &path(&data), b"", false).await;
        // The answer had started (or was about to): the connection is cut,
        // before or after the head went out, never completed.
        assert!(matches!(status, 0 | 200), "{fault:?}: {status}");
        assert!(
            body.len() < data.len(),
            "{fault:?}: the client sees a short read"
        );
    }
    n.faulty.clear();
    n.mem.insert_raw(hash, Bytes::from(data.clone()));
    let (status, body) = call(&n, "GET", &path(&data), b"", false).await;
    assert_eq!((status, body.len()), (200, data.len()));
}

#[tokio::test]
async fn admin_faults() {
    let n = node().await;
    let hash = BlockHash::of(SMALL);
    n.mem.insert_raw(hash, Bytes::from_static(SMALL));
    n.faulty.inject(Op::Touch, Fault::Io, Schedule::Times(1));
    assert_eq!(call(&n, "TOUCH", &path(SMALL), b"", true).await.0, 500);
    assert_eq!(call(&n, "TOUCH", &path(SMALL), b"", true).await.0, 200);
    // DELETE answers the counts; a failed trash is counted, not hidden.
    n.mem.set_mtime(&hash, 0);
    n.faulty.inject(Op::Trash, Fault::Io, Schedule::Times(1));
    let (status, body) = call(&n, "DELETE", &path(SMALL), b"", true).await;
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains(r#""copies_failed":1"#),
        "{body:?}"
    );
    assert_eq!(call(&n, "DELETE", &path(SMALL), b"", true).await.0, 200);
    n.faulty
        .inject(Op::Untrash, Fault::Unavailable, Schedule::Times(1));
    assert_eq!(
        call(&n, "PUT", &format!("/untrash{}", path(SMALL)), b"", true)
            .await
            .0,
        503
    );
    assert_eq!(
        call(&n, "PUT", &format!("/untrash{}", path(SMALL)), b"", true)
            .await
            .0,
        200
    );
    // An index that fails part way never sends its final empty line.
    n.faulty.inject(Op::Index, Fault::Io, Schedule::Times(1));
    let (status, body) = call(&n, "GET", "/index", b"", true).await;
    assert_eq!(status, 200);
    assert!(!body.ends_with(b"\n\n") && !body.ends_with(b"\r\n0\r\n\r\n\n"));
    let (_, body) = call(&n, "GET", "/index", b"", true).await;
    assert!(String::from_utf8_lossy(&body).contains(&hash.to_string()));
}

#[tokio::test]
async fn workers_are_listed_for_admins_only() {
    let n = node().await;
    assert_eq!(call(&n, "GET", "/_keep/workers", b"", false).await.0, 401);
    // Workers start with the server; poll until they are all listed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = call(&n, "GET", "/_keep/workers", b"", true).await;
        assert_eq!(status, 200);
        let list: serde_json::Value = serde_json::from_slice(dechunk(&body).as_slice()).unwrap();
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap())
            .collect();
        if ["pull 1", "trash 1", "empty trash", "volume recovery"]
            .iter()
            .all(|n| names.contains(n))
        {
            for w in list.as_array().unwrap() {
                for field in ["state", "errors", "last_error"] {
                    assert!(w.get(field).is_some(), "{field} in {w}");
                }
            }
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{names:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The body of a response, whether it came with a length or chunked.
fn dechunk(body: &[u8]) -> Vec<u8> {
    if body.first() == Some(&b'[') {
        return body.to_vec();
    }
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let len =
            usize::from_str_radix(std::str::from_utf8(&rest[..i]).unwrap().trim(), 16).unwrap();
        if len == 0 {
            break;
        }
        out.extend_from_slice(&rest[i + 2..i + 2 + len]);
        rest = &rest[i + 4 + len..];
    }
    out
}
