//! A real S3-compatible server for tests, this crate's and others':
//! moto's `moto_server`, started on a free loopback port and killed when
//! its guard drops. Behind the `testing` feature: a crate's tests enable it
//! with `keep-volume-s3 = { workspace = true, features = ["testing"] }` in
//! their `[dev-dependencies]`.
//!
//! The server is `$KEEP_TEST_MOTO` if set, else `moto_server` on `PATH`;
//! without either, [`Moto::start`] panics saying how to install it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

/// The credentials every test uses (moto accepts any signed request).
pub const ACCESS_KEY: &str = "keeptest";
/// The secret that goes with [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "keeptest-secret";

/// How to install the server the tests need.
const INSTALL_HINT: &str = "install it with `python3 -m pip install -r \
     crates/keep-volume-s3/tests/requirements.txt` (moto[server]==5.2.1), \
     or point KEEP_TEST_MOTO at a moto_server executable";

/// A running moto server; killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    exe: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Moto {
    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start() -> Moto {
        Moto::start_on(free_port())
    }

    /// Starts a server on `port` and waits until it answers.
    pub fn start_on(port: u16) -> Moto {
        let exe = moto_exe();
        // Its request log, for when a test fails.
        let log_path = std::env::temp_dir().join(format!("keep-moto-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("moto log file");
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL_HINT}", exe.display()));
        let mut moto = Moto { child, exe, port };
        moto.wait_until_up();
        moto
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server now (as a crash would) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh server (empty, as moto keeps state in memory) on the
    /// same port.
    pub fn restart(&mut self) {
        self.kill();
        let fresh = Moto::start_on(self.port);
        let old = std::mem::replace(self, fresh);
        drop(old);
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited at start with {status}", self.exe.display());
            }
            if answers_http(self.port) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {} within 30 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether an HTTP server answers on `port`. A bare TCP connect is not
/// enough: to a port in the ephemeral range on which nothing listens yet,
/// a connect can meet itself (same source and destination port), or some
/// other process that briefly holds the port.
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    if s.local_addr().ok() == s.peer_addr().ok() {
        return false;
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = [0u8; 5];
    s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_ok()
        && s.read_exact(&mut head).is_ok()
        && &head == b"HTTP/"
}

/// `$KEEP_TEST_MOTO`, else `moto_server` on `PATH`; panics with an install
/// hint when neither exists.
fn moto_exe() -> PathBuf {
    if let Some(path) = std::env::var_os("KEEP_TEST_MOTO") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "KEEP_TEST_MOTO={} is not a file; {INSTALL_HINT}",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("moto_server is not on PATH and KEEP_TEST_MOTO is unset; {INSTALL_HINT}")
        })
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A raw rusty-s3 handle on a bucket of `endpoint`, with the test
/// credentials, for setting up or checking the store behind a volume.
pub fn raw_bucket(endpoint: &str, name: &str) -> (Bucket, Credentials) {
    let bucket = Bucket::new(
        endpoint.parse().expect("endpoint url"),
        UrlStyle::Path,
        name.to_owned(),
        "us-east-1",
    )
    .expect("bucket");
    (bucket, Credentials::new(ACCESS_KEY, SECRET_KEY))
}

/// Creates a bucket.
pub async fn create_bucket(endpoint: &str, name: &str) {
    let (bucket, creds) = raw_bucket(endpoint, name);
    let action = bucket.create_bucket(&creds);
    let url = action.sign(Duration::from_secs(600));
    let body = action.body();
    let resp = reqwest::Client::new()
        .put(url)
        .header("content-length", body.len())
        .body(body)
        .send()
        .await
        .expect("create bucket");
    assert!(
        resp.status().is_success(),
        "create bucket: {}",
        resp.status()
    );
}
