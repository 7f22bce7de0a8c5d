//! Helpers the integration tests share: real introducers on loopback,
//! fast-retrying clients, raw HTTP, and polling with a deadline.

#![allow(dead_code)] // each test binary uses its own subset

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keep_http::ServeOptions;
use keep_introducer::client::{ClientConfig, IntroducerClient, NodeInfo};
use keep_introducer::server::{self, ServerConfig, ServerError};
use keep_introducer::{Announcement, ClusterKey, SignedAnnouncement, new_nonce};
use keep_worker::Workers;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn key() -> ClusterKey {
    ClusterKey::new("integration cluster key").unwrap()
}

pub fn uuid(i: usize) -> String {
    format!("zzzzz-bi6l4-{i:015x}")
}

/// An introducer served in-process.
pub struct TestIntroducer {
    pub addr: SocketAddr,
    pub url: String,
    pub state_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl TestIntroducer {
    /// Starts one on a fresh loopback port.
    pub async fn start(state_dir: &Path) -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap(), state_dir).await
    }

    /// Starts one on `addr`, retrying the bind while the port is still held.
    pub async fn start_at(addr: SocketAddr, state_dir: &Path) -> Self {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("bind {addr}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("bind {addr}: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let mut config = ServerConfig::new(state_dir, key());
        config.serve = ServeOptions {
            shutdown_grace: Duration::from_secs(5),
            ..ServeOptions::default()
        };
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server::run(config, listener, async {
            let _ = rx.await;
        }));
        TestIntroducer {
            addr,
            url: format!("http://{addr}"),
            state_dir: state_dir.to_owned(),
            stop: Some(tx),
            task,
        }
    }

    /// Shuts it down and waits until it stopped.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

/// A loopback address nothing listens on (yet).
pub async fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A client that retries fast, with its state in `state_dir`, on a
/// registry of its own.
pub async fn client(introducers: &[&str], state_dir: &Path) -> IntroducerClient {
    IntroducerClient::start(client_config(introducers, state_dir), &Workers::new())
        .await
        .unwrap()
}

pub fn client_config(introducers: &[&str], state_dir: &Path) -> ClientConfig {
    let mut config = ClientConfig::new(
        introducers.iter().map(|s| (*s).to_owned()).collect(),
        key(),
        state_dir,
    );
    config.poll_wait = Duration::from_secs(10);
    config.request_timeout = Duration::from_secs(3);
    config.retry_min = Duration::from_millis(20);
    config.retry_max = Duration::from_millis(250);
    config
}

pub fn node(i: usize) -> NodeInfo {
    let mut node = NodeInfo::new(uuid(i), format!("http://127.0.0.1:{}", 30000 + i));
    node.nickname = format!("node{i}");
    node
}

/// An announcement signed with `key`.
pub fn signed(key: &ClusterKey, service: &str, uuid: &str, seqnum: u64) -> SignedAnnouncement {
    Announcement {
        service: service.into(),
        uuid: uuid.into(),
        url: format!("http://{uuid}.example:25107"),
        nickname: String::new(),
        version: "test".into(),
        seqnum,
        nonce: new_nonce(),
        withdrawn: false,
    }
    .sign(key)
}

/// A withdrawal signed with `key`.
pub fn withdrawal(key: &ClusterKey, service: &str, uuid: &str, seqnum: u64) -> SignedAnnouncement {
    let mut ann = signed(key, service, uuid, seqnum).announcement;
    ann.withdrawn = true;
    ann.sign(key)
}

/// One HTTP exchange: status, `x-introducer-version` header, body text.
pub async fn http(method: Method, url: &str, body: &str) -> (u16, Option<String>, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let req = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = tokio::time::timeout(DEADLINE, client.request(req))
        .await
        .expect("answer in time")
        .unwrap();
    let status = resp.status().as_u16();
    let version = resp
        .headers()
        .get("x-introducer-version")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, version, String::from_utf8(bytes.to_vec()).unwrap())
}

/// POSTs `ann` to `/v1/announce`: status and outcome.
pub async fn announce(base: &str, ann: &SignedAnnouncement) -> (u16, String) {
    let body = serde_json::to_string(ann).unwrap();
    let (status, _, text) = http(Method::POST, &format!("{base}/v1/announce"), &body).await;
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
    (status, reply["outcome"].as_str().unwrap().to_owned())
}

/// The uuids an introducer lists for `service`.
pub async fn listed(base: &str, service: &str) -> Vec<String> {
    let (status, _, text) = http(
        Method::GET,
        &format!("{base}/v1/announcements?service={service}"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let list: Vec<SignedAnnouncement> = serde_json::from_str(&text).unwrap();
    list.into_iter().map(|a| a.announcement.uuid).collect()
}

/// Polls `cond` until it holds; panics naming `what` after [`DEADLINE`].
pub async fn until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sorted uuids of `client`'s peers for `service`.
pub fn peer_uuids(client: &IntroducerClient, service: &str) -> Vec<String> {
    client
        .get_peers(service)
        .into_iter()
        .map(|p| p.uuid)
        .collect()
}
