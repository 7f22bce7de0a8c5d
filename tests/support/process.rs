//! Starting and stopping the real binaries.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::Client;

static BUILD: Once = Once::new();

/// The path of a workspace binary, built (incrementally) on first use with
/// the cargo and profile running the tests.
pub fn bin_path(name: &str) -> PathBuf {
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--workspace", "--bins"]);
        if target_dir().ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
    });
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing after cargo build",
        path.display()
    );
    path
}

/// `target/<profile>`, found from this test executable's path.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps folder");
    deps.parent().expect("profile folder").to_owned()
}

/// How to start a node.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Extra flags.
    pub args: Vec<String>,
    /// A config file's text (written beside the node and passed with `-c`).
    pub config: Option<String>,
    /// Volumes (default: one directory volume `vol0` in the node's folder,
    /// unless a config file is given, whose volumes then count).
    pub volumes: Vec<PathBuf>,
    /// Volume specs passed as given (`s3://...`), after `volumes`.
    pub volume_specs: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// A running `keepstore` on a loopback port; killed when dropped.
#[derive(Debug)]
pub struct Keepstore {
    child: Option<Child>,
    /// The base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The node's folder (volumes, config, secrets).
    pub dir: PathBuf,
    /// The volume folders.
    pub volumes: Vec<PathBuf>,
    opts: NodeOptions,
    log: PathBuf,
}

impl Keepstore {
    /// Starts a node in `dir` with `opts` and waits until it listens.
    pub fn start(dir: &Path, opts: NodeOptions) -> Keepstore {
        std::fs::create_dir_all(dir).expect("node dir");
        let volumes = match (
            opts.volumes.is_empty(),
            opts.config.is_some() || !opts.volume_specs.is_empty(),
        ) {
            (true, false) => vec![dir.join("vol0")],
            _ => opts.volumes.clone(),
        };
        let mut node = Keepstore {
            child: None,
            url: String::new(),
            dir: dir.to_owned(),
            volumes,
            opts,
            log: dir.join("keepstore.log"),
        };
        node.spawn("127.0.0.1:0");
        node
    }

    fn spawn(&mut self, listen: &str) {
        let mut cmd = Command::new(bin_path("keepstore"));
        cmd.current_dir(&self.dir).arg("--listen").arg(listen);
        if let Some(text) = &self.opts.config {
            let path = self.dir.join("keepstore.toml");
            std::fs::write(&path, text).expect("config");
            cmd.arg("-c").arg(path);
        }
        for v in &self.volumes {
            cmd.arg("--volume").arg(v);
        }
        for spec in &self.opts.volume_specs {
            cmd.arg("--volume").arg(spec);
        }
        cmd.envs(self.opts.env.iter().map(|(k, v)| (k, v)));
        cmd.args(&self.opts.args);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        cmd.stdout(Stdio::piped())
            .stderr(log)
            .env("RUST_LOG", "info");
        let mut child = cmd.spawn().expect("spawn keepstore");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        if read.unwrap_or(0) == 0 {
            let status = child.wait().ok();
            panic!(
                "keepstore exited ({status:?}) before listening:\n{}",
                self.log_text()
            );
        }
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        self.url = url.to_owned();
        self.child = Some(child);
    }

    /// A client for this node.
    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    /// The node's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and wait (at most `secs`) for the exit status.
    pub fn terminate(&mut self, secs: u64) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = rustix::process::Pid::from_raw(c.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("keepstore ignored SIGTERM for {secs}s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the node again on the same port, volumes and options.
    pub fn restart(&mut self) {
        self.kill();
        let listen = self.url.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The port may linger for a moment after the old process died.
            if std::net::TcpListener::bind(&listen).is_ok() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn(&listen);
    }
}

impl Drop for Keepstore {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `introducer` on a loopback port; killed when dropped.
#[derive(Debug)]
pub struct Introducer {
    child: Option<Child>,
    /// The base URL.
    pub url: String,
    dir: PathBuf,
    key: PathBuf,
}

impl Introducer {
    /// Starts an introducer keeping its state in `dir/state`.
    pub fn start(dir: &Path, cluster_key_file: &Path) -> Introducer {
        let mut i = Introducer {
            child: None,
            url: String::new(),
            dir: dir.to_owned(),
            key: cluster_key_file.to_owned(),
        };
        i.spawn("127.0.0.1:0");
        i
    }

    fn spawn(&mut self, listen: &str) {
        std::fs::create_dir_all(&self.dir).expect("introducer dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("introducer.log"))
            .expect("log");
        let mut child = Command::new(bin_path("introducer"))
            .arg("--listen")
            .arg(listen)
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--cluster-key-file")
            .arg(&self.key)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn introducer");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        self.url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening line")
            .to_owned();
        self.child = Some(child);
    }

    /// The uuids announced for `service`.
    pub fn announced(&self, service: &str) -> Vec<String> {
        let r = Client::new(&self.url).get(&format!("/v1/announcements?service={service}"));
        let list: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap_or_default();
        let mut uuids: Vec<String> = list
            .iter()
            .filter_map(|a| a["uuid"].as_str().map(str::to_owned))
            .collect();
        uuids.sort();
        uuids
    }
}

impl Drop for Introducer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
