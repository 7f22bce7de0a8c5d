//! `Remote` against a fake peer: every request, its headers, streaming,
//! identity checks, the draining flag, and what a dead peer costs.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::header;
use keep_locator::BlockHash;
use keep_remote::protocol::LOCAL_ONLY_HEADER;
use keep_remote::{NodeCredential, Remote, RemoteConfig, RemoteError};
use tokio::sync::Notify;

use common::{CHUNK, FakePeer, credential, data, eventually, quick_config, serve, uuid};

fn remote_for(url: &str, uuid: &str) -> Remote {
    Remote::new("peer", url, uuid, credential(), &quick_config())
}

type Chunks = futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>;

fn chunks_of(data: &[u8]) -> Chunks {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(CHUNK)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

#[tokio::test]
async fn replicate_streams_a_large_block_with_the_node_headers() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url(), &uuid(1));
    let block = data(9 << 20, 1);
    let hash = BlockHash::of(&block);
    let half = block.len() / 2;

    // The second half is only produced once the peer has received the
    // first: a client that buffered the body would never finish.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let peer = node.peer.clone();
    let source = block.clone();
    let producer = tokio::spawn(async move {
        for c in source[..half].chunks(CHUNK) {
            tx.send(Ok(Bytes::copy_from_slice(c))).await.unwrap();
        }
        let got_half = eventually(Duration::from_secs(20), || {
            peer.received.load(Ordering::SeqCst) >= half as u64
        })
        .await;
        assert!(
            got_half,
            "the peer should see the first half before the rest exists"
        );
        for c in source[half..].chunks(CHUNK) {
            tx.send(Ok(Bytes::copy_from_slice(c))).await.unwrap();
        }
    });
    let body = Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let replicated = remote
        .replicate(&hash, block.len() as u64, body)
        .await
        .unwrap();
    producer.await.unwrap();
    assert!(!replicated.draining);
    assert_eq!(replicated.locator, format!("{hash}+{}", block.len()));
    assert_eq!(
        node.peer
            .blocks
            .lock()
            .unwrap()
            .get(&hash.to_hex())
            .unwrap()[..],
        block[..]
    );

    let put = node.peer.seen().pop().unwrap();
    assert_eq!(put.method, http::Method::PUT);
    assert_eq!(put.path, format!("/{hash}"));
    assert_eq!(
        put.headers.get(header::AUTHORIZATION).unwrap(),
        &format!(
            "Bearer {}",
            keep_remote::node_credential(common::CLUSTER_KEY)
        )
    );
    assert_eq!(put.headers.get(LOCAL_ONLY_HEADER).unwrap(), "true");
    assert_eq!(
        put.headers.get(header::CONTENT_LENGTH).unwrap(),
        &block.len().to_string()
    );
}

#[tokio::test]
async fn replicate_blames_a_bad_body_on_the_caller() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url(), &uuid(1));
    let block = data(300_000, 2);
    let hash = BlockHash::of(&block);

    let short = chunks_of(&block[..1000]);
    let err = remote
        .replicate(&hash, block.len() as u64, short)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Body(_)), "{err}");

    let long = chunks_of(&block);
    let err = remote.replicate(&hash, 10, long).await.unwrap_err();
    assert!(matches!(err, RemoteError::Body(_)), "{err}");

    let failing: Chunks = Box::pin(futures::stream::iter([
        Ok(Bytes::from_static(b"abc")),
        Err(std::io::Error::other("disk on fire")),
    ]));
    let err = remote.replicate(&hash, 300_000, failing).await.unwrap_err();
    assert!(
        matches!(&err, RemoteError::Body(m) if m.contains("disk on fire")),
        "{err}"
    );
    assert!(!err.is_down());
    assert!(node.peer.blocks.lock().unwrap().is_empty());
}

#[tokio::test]
async fn replicate_refusals_are_status_errors() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let block = b"some block".to_vec();
    let hash = BlockHash::of(&block);

    // Wrong cluster key: the peer refuses.
    let stranger = Remote::new(
        "peer",
        node.url(),
        uuid(1),
        NodeCredential::from_cluster_key(b"another cluster"),
        &quick_config(),
    );
    let err = stranger
        .replicate(&hash, block.len() as u64, chunks_of(&block))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RemoteError::Status { status: 401, message, draining: false } if message.contains("credential")),
        "{err}"
    );

    // Content that does not match the hash.
    let remote = remote_for(&node.url(), &uuid(1));
    let err = remote
        .replicate(
            &BlockHash::of(b"other"),
            block.len() as u64,
            chunks_of(&block),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RemoteError::Status { status: 422, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn draining_shows_on_replicate_heartbeat_and_errors() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url(), &uuid(1));
    let block = b"drain me".to_vec();
    let hash = BlockHash::of(&block);

    let status = remote.heartbeat().await.unwrap();
    assert!(!status.draining);

    node.peer.draining.store(true, Ordering::SeqCst);
    let replicated = remote
        .replicate(&hash, block.len() as u64, chunks_of(&block))
        .await
        .unwrap();
    assert!(replicated.draining);
    assert!(remote.heartbeat().await.unwrap().draining);

    let err = remote
        .replicate(&BlockHash::of(b"x"), block.len() as u64, chunks_of(&block))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RemoteError::Status { draining: true, .. }),
        "{err}"
    );
    assert!(err.is_draining());
}

#[tokio::test]
async fn read_streams_the_block_as_it_arrives() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url(), &uuid(1));
    let block = data(3 << 20, 3);
    let hash = node.peer.store(&block);
    let gate = Arc::new(Notify::new());
    *node.peer.gate.lock().unwrap() = Some(gate.clone());

    let mut got = remote.read(&hash, block.len() as u64).await.unwrap();
    assert_eq!(got.size, block.len() as u64);
    assert!(!got.draining);
    // The first chunk arrives while the peer still holds back the rest.
    let first = tokio::time::timeout(Duration::from_secs(5), got.chunks.next())
        .await
        .expect("the first chunk should arrive before the rest is sent")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], &block[..first.len()]);
    gate.notify_one();
    let mut all = first.to_vec();
    while let Some(chunk) = got.chunks.next().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(all, block);

    let get = node.peer.seen().pop().unwrap();
    assert_eq!(get.method, http::Method::GET);
    assert_eq!(get.path, format!("/{hash}+{}", block.len()));
    assert_eq!(get.headers.get(LOCAL_ONLY_HEADER).unwrap(), "true");
    assert!(get.headers.get(header::AUTHORIZATION).is_some());
}

#[tokio::test]
async fn read_and_has_of_missing_and_present_blocks() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url(), &uuid(1));
    let missing = BlockHash::of(b"missing");
    assert!(matches!(
        remote.read(&missing, 7).await,
        Err(RemoteError::NotFound)
    ));
    assert_eq!(remote.has(&missing, 7).await.unwrap(), None);

    let hash = node.peer.store(b"present");
    assert_eq!(remote.has(&hash, 7).await.unwrap(), Some(7));
    let head = node.peer.seen().pop().unwrap();
    assert_eq!(head.method, http::Method::HEAD);
    assert_eq!(head.path, format!("/{hash}+7"));
    assert_eq!(head.headers.get(LOCAL_ONLY_HEADER).unwrap(), "true");
    // A wrong size hint: the peer's length is the block's.
    assert_eq!(remote.has(&hash, 99).await.unwrap(), Some(7));
    let got = remote.read(&hash, 99).await.unwrap();
    assert_eq!(got.size, 7);
}

#[tokio::test]
async fn read_of_the_empty_block() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url(), &uuid(1));
    let hash = node.peer.store(b"");
    let mut got = remote.read(&hash, 0).await.unwrap();
    assert_eq!(got.size, 0);
    assert!(got.chunks.next().await.is_none());
}

#[tokio::test]
async fn first_heartbeat_checks_identity_and_protocol() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let status = remote_for(&node.url(), &uuid(1)).heartbeat().await.unwrap();
    assert_eq!(status.uuid, uuid(1));
    assert_eq!(status.protocol, 1);

    // Another node answers at the announced url.
    let err = remote_for(&node.url(), &uuid(2))
        .heartbeat()
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Identity(_)), "{err}");
    assert!(!err.is_down());

    node.peer.protocol.store(2, Ordering::SeqCst);
    let err = remote_for(&node.url(), &uuid(1))
        .heartbeat()
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Identity(_)), "{err}");
}

#[tokio::test]
async fn a_stalled_peer_times_out_a_read_within_the_first_byte_timeout() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let config = RemoteConfig {
        read_first_byte_timeout: Duration::from_millis(300),
        ..quick_config()
    };
    let remote = Remote::new("peer", node.url(), uuid(1), credential(), &config);
    node.peer.stall.store(true, Ordering::SeqCst);
    let start = Instant::now();
    let err = remote.read(&BlockHash::of(b"x"), 1).await.unwrap_err();
    assert_eq!(err, RemoteError::Timeout);
    assert!(err.is_down());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let start = Instant::now();
    assert_eq!(
        remote.has(&BlockHash::of(b"x"), 1).await,
        Err(RemoteError::Timeout)
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_dead_peer_costs_at_most_about_one_connect_timeout() {
    // A closed port on loopback: refused at once.
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let url = node.url();
    node.kill().await;
    let remote = remote_for(&url, &uuid(1));
    let start = Instant::now();
    let err = remote.heartbeat().await.unwrap_err();
    assert!(matches!(err, RemoteError::Connect(_)), "{err}");
    assert!(err.is_down());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );

    // An address whose connects hang: at most the connect timeout, and
    // again for the next request (nothing is cached that makes it longer).
    let config = RemoteConfig {
        connect_timeout: Duration::from_millis(300),
        ..quick_config()
    };
    let (addr, _hole) = common::black_hole()
        .await
        .expect("a listener with a full accept queue should swallow connects");
    let remote = Remote::new(
        "peer",
        format!("http://{addr}"),
        uuid(1),
        credential(),
        &config,
    );
    let block = b"abc".to_vec();
    for attempt in 0..2 {
        let start = Instant::now();
        let err = remote
            .replicate(&BlockHash::of(&block), 3, chunks_of(&block))
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, RemoteError::Connect(_)), "{err}");
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_millis(300 + 500),
            "attempt {attempt}: {took:?} ({err})"
        );
    }
}

#[tokio::test]
async fn replicate_times_out_a_stalled_peer_but_waits_for_a_slow_source() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let config = RemoteConfig {
        request_timeout: Duration::from_millis(300),
        ..quick_config()
    };
    let remote = Remote::new("peer", node.url(), uuid(1), credential(), &config);
    let block = data(4 * CHUNK, 4);
    let hash = BlockHash::of(&block);

    // The caller's stream pauses longer than the request timeout between
    // chunks: that is not the peer's fault.
    let slow: Chunks = Box::pin(
        futures::stream::iter(
            block
                .chunks(CHUNK)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        )
        .then(|chunk| async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            chunk
        }),
    );
    remote
        .replicate(&hash, block.len() as u64, slow)
        .await
        .unwrap();

    // The peer takes the request and never answers.
    node.peer.stall.store(true, Ordering::SeqCst);
    let start = Instant::now();
    let err = remote
        .replicate(&hash, block.len() as u64, chunks_of(&block))
        .await
        .unwrap_err();
    assert_eq!(err, RemoteError::Timeout);
    assert!(
        start.elapsed() < Duration::from_millis(300 + 700),
        "{:?}",
        start.elapsed()
    );
}
