//! Starts the real `introducer` binary, drives it with the client library
//! over loopback, stops it with SIGTERM and starts it again on the same
//! state.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keep_introducer::client::{ClientConfig, IntroducerClient, NodeInfo};
use keep_introducer::{ClusterKey, DOWNLOAD_STORAGE, UPLOAD_STORAGE};

const DEADLINE: Duration = Duration::from_secs(20);

/// The running binary; killed if a test fails before stopping it.
struct Introducer {
    child: Child,
    url: String,
}

impl Introducer {
    fn start(state_dir: &Path, key_file: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_introducer"))
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir)
            .arg("--cluster-key-file")
            .arg(key_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the introducer binary");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(DEADLINE).expect("the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Introducer { child, url }
    }

    /// Sends SIGTERM and returns whether it exited with status 0 in time.
    fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "introducer did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Introducer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn get(url: &str, path: &str) -> String {
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

fn client_config(url: &str, key: &ClusterKey, dir: &Path) -> ClientConfig {
    let mut config = ClientConfig::new(vec![url.to_owned()], key.clone(), dir);
    config.retry_min = Duration::from_millis(20);
    config.retry_max = Duration::from_millis(250);
    config
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn binary_serves_persists_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("cluster-key");
    std::fs::write(&key_file, "binary test key\n").unwrap();
    let key = ClusterKey::from_file(&key_file).unwrap();
    let state = dir.path().join("state");

    let intro = Introducer::start(&state, &key_file);
    let health = get(&intro.url, "/_health/ping");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with(r#"{"health":"OK"}"#), "{health}");

    let node = NodeInfo::new("zzzzz-bi6l4-000000000000001", "http://127.0.0.1:25107");
    let publisher = IntroducerClient::start(
        client_config(&intro.url, &key, &dir.path().join("p")),
        &Default::default(),
    )
    .await
    .unwrap();
    publisher
        .publish(&node, &[UPLOAD_STORAGE, DOWNLOAD_STORAGE])
        .await
        .unwrap();
    until("the binary lists the node", || {
        get(&intro.url, "/v1/announcements?service=upload_storage").contains(&node.uuid)
    })
    .await;
    publisher.shutdown().await;
    assert!(intro.terminate(), "exit status 0 after SIGTERM");

    // Started again on the same state (on a new port): the node is still there.
    let intro = Introducer::start(&state, &key_file);
    let reader = IntroducerClient::start(
        client_config(&intro.url, &key, &dir.path().join("r")),
        &Default::default(),
    )
    .await
    .unwrap();
    reader.subscribe_to(DOWNLOAD_STORAGE);
    until("a new subscriber learns the node", || {
        reader
            .get_peers(DOWNLOAD_STORAGE)
            .iter()
            .any(|p| p.uuid == node.uuid)
    })
    .await;
    let metrics = get(&intro.url, "/metrics");
    assert!(
        metrics.contains(r#"introducer_announcements{service="download_storage"} 1"#),
        "{metrics}"
    );
    reader.shutdown().await;
    assert!(intro.terminate(), "exit status 0 after SIGTERM");
}

#[test]
fn bad_config_fails_naming_the_field_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("introducer.toml");
    std::fs::write(&file, "listen = \"not an address\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_introducer"))
        .arg("-c")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`listen`"), "{stderr}");
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
}
