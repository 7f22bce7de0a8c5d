//! `Remote::call`: a node-to-node request of the caller's own making,
//! against the fake peer.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use keep_locator::BlockHash;
use keep_remote::protocol::{DRAINING_HEADER, LOCAL_ONLY_HEADER, NODE_ROUTE, flag};
use keep_remote::{NodeStatus, Remote, RemoteError, RequestOptions};

use common::{CLUSTER_KEY, FakePeer, credential, quick_config, serve, uuid};

fn remote_for(url: &str) -> Remote {
    Remote::new("peer", url, uuid(1), credential(), &quick_config())
}

async fn text(resp: http::Response<hyper::body::Incoming>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn a_get_carries_the_node_credential_and_returns_the_answer() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url());
    let resp = remote
        .call(
            Method::GET,
            NODE_ROUTE,
            Bytes::new(),
            &RequestOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let status: NodeStatus = serde_json::from_str(&text(resp).await).unwrap();
    assert_eq!(status.uuid, uuid(1));

    let seen = node.peer.seen().pop().unwrap();
    assert_eq!(seen.method, Method::GET);
    assert_eq!(seen.path, NODE_ROUTE);
    assert_eq!(
        seen.headers.get(header::AUTHORIZATION).unwrap(),
        &format!("Bearer {}", keep_remote::node_credential(CLUSTER_KEY))
    );
    assert!(seen.headers.get(LOCAL_ONLY_HEADER).is_none());
}

#[tokio::test]
async fn a_put_sends_its_body_with_its_length_and_local_only() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url());
    let block = Bytes::from_static(b"a block sent by call");
    let hash = BlockHash::of(&block);
    let options = RequestOptions {
        local_only: true,
        ..RequestOptions::default()
    };
    let resp = remote
        .call(Method::PUT, &format!("/{hash}"), block.clone(), &options)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        text(resp).await.trim_end(),
        format!("{hash}+{}", block.len())
    );
    assert_eq!(
        node.peer.blocks.lock().unwrap().get(&hash.to_hex()),
        Some(&block)
    );
    let seen = node.peer.seen().pop().unwrap();
    assert_eq!(seen.headers.get(LOCAL_ONLY_HEADER).unwrap(), "true");
    assert_eq!(
        seen.headers.get(header::CONTENT_LENGTH).unwrap(),
        &block.len().to_string()
    );
}

#[tokio::test]
async fn any_status_is_returned_as_the_answer() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url());
    node.peer.draining.store(true, Ordering::SeqCst);
    // A block route without local-only: the fake peer refuses it.
    let block = Bytes::from_static(b"x");
    let resp = remote
        .call(
            Method::PUT,
            &format!("/{}", BlockHash::of(&block)),
            block,
            &RequestOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(flag(resp.headers(), DRAINING_HEADER));
    assert!(text(resp).await.contains("local-only"));

    // A query goes through as given.
    let resp = remote
        .call(
            Method::GET,
            "/nowhere?since=12&limit=3",
            Bytes::new(),
            &RequestOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(node.peer.seen().pop().unwrap().path, "/nowhere");
}

#[tokio::test]
async fn extra_headers_are_sent_but_cannot_replace_the_credential() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-keep-sync-cursor", HeaderValue::from_static("42"));
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer someone-else"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
    headers.insert(LOCAL_ONLY_HEADER, HeaderValue::from_static("true"));
    let options = RequestOptions {
        headers,
        ..RequestOptions::default()
    };
    let resp = remote
        .call(Method::GET, NODE_ROUTE, Bytes::new(), &options)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = node.peer.seen().pop().unwrap();
    assert_eq!(
        seen.headers.get(header::CONTENT_TYPE).unwrap(),
        "application/json"
    );
    assert_eq!(seen.headers.get("x-keep-sync-cursor").unwrap(), "42");
    let auth: Vec<_> = seen.headers.get_all(header::AUTHORIZATION).iter().collect();
    assert_eq!(
        auth,
        [&format!(
            "Bearer {}",
            keep_remote::node_credential(CLUSTER_KEY)
        )]
    );
    assert!(seen.headers.get(header::CONTENT_LENGTH).is_none());
    assert!(seen.headers.get(LOCAL_ONLY_HEADER).is_none());
}

#[tokio::test]
async fn a_bad_path_is_refused_before_anything_is_sent() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url());
    for path in ["", "_keep/node", "/a b", "/\n"] {
        let err = remote
            .call(Method::GET, path, Bytes::new(), &RequestOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, RemoteError::Request(_)), "{path:?}: {err}");
        assert!(!err.is_down());
    }
    assert!(node.peer.seen().is_empty());
}

#[tokio::test]
async fn the_first_byte_timeout_bounds_the_wait_for_the_answer() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let remote = remote_for(&node.url());
    node.peer.stall.store(true, Ordering::SeqCst);
    let options = RequestOptions {
        first_byte_timeout: Some(Duration::from_millis(300)),
        ..RequestOptions::default()
    };
    let start = Instant::now();
    let err = remote
        .call(Method::GET, NODE_ROUTE, Bytes::new(), &options)
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
async fn a_dead_peer_is_a_connect_error() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let url = node.url();
    node.kill().await;
    let err = remote_for(&url)
        .call(
            Method::GET,
            NODE_ROUTE,
            Bytes::new(),
            &RequestOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Connect(_)), "{err}");
    assert!(err.is_down());
}
