//! The servers under load: a fresh `keepstore` and an nginx with WebDAV
//! PUT, each on a free loopback port, each stopped when dropped; and the
//! sampler of the node's memory.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `keepstore` with one directory volume; killed when dropped.
#[derive(Debug)]
pub struct Node {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its log.
    pub log: PathBuf,
}

impl Node {
    /// Starts `bin` in `dir` (volume `dir/vol`) with the default
    /// `max_buffer_memory` and `max_connections`, and waits until it
    /// listens.
    pub fn start(bin: &Path, dir: &Path) -> anyhow::Result<Node> {
        let vol = dir.join("vol");
        std::fs::create_dir_all(&vol).with_context(|| format!("creating {}", vol.display()))?;
        let log = dir.join("keepstore.log");
        let mut child = Command::new(bin)
            .current_dir(dir)
            .args(["--listen", "127.0.0.1:0", "--volume"])
            .arg(&vol)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (line, stdout) = match first_line(stdout, START_TIMEOUT) {
            Ok(got) => got,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                anyhow::bail!("keepstore did not start: {e}\n{text}");
            }
        };
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("keepstore's first line is {line:?}"))?
            .to_owned();
        Ok(Node {
            child,
            _stdout: stdout,
            url,
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The peak resident set so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .context("reading the node's /proc status")?;
        status_bytes(&status, "VmHWM").context("no VmHWM in /proc status")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the first line of a child's output, or fails after `limit`.
pub(super) fn first_line(
    stdout: ChildStdout,
    limit: Duration,
) -> anyhow::Result<(String, BufReader<ChildStdout>)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let got = reader.read_line(&mut line).map(|_| (line, reader));
        let _ = tx.send(got);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok((line, reader))) if !line.is_empty() => Ok((line, reader)),
        Ok(Ok(_)) => anyhow::bail!("it exited before listening"),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => anyhow::bail!("not listening after {limit:?}"),
    }
}

/// A `/proc/PID/status` field given in kB (`VmRSS:   1234 kB`), in bytes.
pub fn status_bytes(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Polls a process's `VmRSS` every 20 ms and keeps the highest value since
/// the last [`RssSampler::take`].
#[derive(Debug)]
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                let path = format!("/proc/{pid}/status");
                while !stop.load(Ordering::Relaxed) {
                    let rss = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| status_bytes(&s, "VmRSS"));
                    match rss {
                        Some(b) => {
                            peak.fetch_max(b, Ordering::Relaxed);
                        }
                        None => break,
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        RssSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// The highest `VmRSS` seen since the last call, in bytes; starts over.
    pub fn take(&self) -> u64 {
        self.peak.swap(0, Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where nginx is, if it is installed.
pub fn find_nginx() -> Option<PathBuf> {
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.is_file() {
        return Some(sbin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

/// What the config needs to know about the nginx binary and the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxSetup {
    /// The folder holding the config, pid file, logs, temp files and data.
    pub dir: PathBuf,
    /// The loopback port.
    pub port: u16,
    /// Worker processes (the machine's cores).
    pub workers: usize,
    /// Largest body to accept, in bytes.
    pub max_body: u64,
    /// Running as root: workers run as root too, so they can write `dir`.
    pub as_root: bool,
    /// `*_temp_path` directives of the modules this nginx was built with
    /// (besides `client_body_temp_path`), e.g. `proxy_temp_path`.
    pub temp_paths: Vec<&'static str>,
}

/// The config file: WebDAV PUT into `dir/data/blocks/`, temp files on the
/// same file system (so a PUT ends in a rename), no access log, sendfile.
pub fn nginx_config(s: &NginxSetup) -> String {
    let d = s.dir.display();
    let user = if s.as_root { "user root;\n" } else { "" };
    let mut temps = format!("    client_body_temp_path {d}/tmp/body;\n");
    for directive in &s.temp_paths {
        let name = directive.trim_end_matches("_temp_path");
        temps.push_str(&format!("    {directive} {d}/tmp/{name};\n"));
    }
    format!(
        "# Written by `cargo xtask bench`: the WebDAV baseline.
daemon off;
master_process on;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{user}
events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    default_type application/octet-stream;
{temps}
    server {{
        listen 127.0.0.1:{port};
        location /blocks/ {{
            root {d}/data;
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size {max_body};
            client_body_buffer_size 1m;
        }}
    }}
}}
",
        workers = s.workers,
        port = s.port,
        max_body = s.max_body,
    )
}

/// The `*_temp_path` directives an nginx build has, from `nginx -V`.
pub fn temp_path_directives(configure_args: &str) -> Vec<&'static str> {
    [
        ("proxy", "proxy_temp_path"),
        ("fastcgi", "fastcgi_temp_path"),
        ("uwsgi", "uwsgi_temp_path"),
        ("scgi", "scgi_temp_path"),
    ]
    .into_iter()
    .filter(|(module, _)| !configure_args.contains(&format!("--without-http_{module}_module")))
    .map(|(_, directive)| directive)
    .collect()
}

/// A running nginx; stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Option<Child>,
    bin: PathBuf,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `nginx/1.22.1`.
    pub version: String,
}

impl Nginx {
    /// Writes the config into `dir` and starts `bin` on a free loopback
    /// port, waiting until it accepts connections.
    pub fn start(bin: &Path, dir: &Path, workers: usize, max_body: u64) -> anyhow::Result<Nginx> {
        let info = Command::new(bin)
            .arg("-V")
            .output()
            .with_context(|| format!("running {} -V", bin.display()))?;
        let text = String::from_utf8_lossy(&info.stderr).into_owned();
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("nginx version: "))
            .unwrap_or("nginx (unknown version)")
            .trim()
            .to_owned();
        let setup = NginxSetup {
            dir: dir.to_owned(),
            port: free_port()?,
            workers,
            max_body,
            as_root: effective_uid_is_root(),
            temp_paths: temp_path_directives(&text),
        };
        std::fs::create_dir_all(dir.join("data/blocks"))?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        std::fs::write(dir.join("nginx.conf"), nginx_config(&setup))?;
        let child = Command::new(bin)
            .args(Self::base_args(dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log"))?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut nginx = Nginx {
            child: Some(child),
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            url: format!("http://127.0.0.1:{}", setup.port),
            version,
        };
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", setup.port)).is_ok() {
                return Ok(nginx);
            }
            let exited = nginx
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || started.elapsed() > START_TIMEOUT {
                let log = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                anyhow::bail!(
                    "nginx did not start ({exited:?}):\n{}{}",
                    log("stderr.log"),
                    log("error.log")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn base_args(dir: &Path) -> Vec<std::ffi::OsString> {
        vec![
            "-p".into(),
            dir.into(),
            "-c".into(),
            dir.join("nginx.conf").into(),
            "-e".into(),
            dir.join("error.log").into(),
        ]
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // `-s stop` reaches the workers through the master; killing the
        // master alone would leave them running.
        let _ = Command::new(&self.bin)
            .args(Self::base_args(&self.dir))
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A loopback port nobody listens on (right now).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether this process runs as root (from `/proc/self/status`).
fn effective_uid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_fields() {
        let status = "Name:\tkeepstore\nVmHWM:\t  204800 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_bytes(status, "VmHWM"), Some(200 << 20));
        assert_eq!(status_bytes(status, "VmRSS"), Some(10 << 20));
        assert_eq!(status_bytes(status, "VmSwap"), None);
        assert_eq!(status_bytes("VmRSSx: 1 kB", "VmRSS"), None);
    }

    #[test]
    fn nginx_config_has_the_baseline_settings() {
        let setup = NginxSetup {
            dir: PathBuf::from("/tmp/b"),
            port: 4321,
            workers: 2,
            max_body: 64 << 20,
            as_root: true,
            temp_paths: vec!["proxy_temp_path"],
        };
        let conf = nginx_config(&setup);
        for line in [
            "daemon off;",
            "worker_processes 2;",
            "pid /tmp/b/nginx.pid;",
            "user root;",
            "access_log off;",
            "sendfile on;",
            "client_body_temp_path /tmp/b/tmp/body;",
            "proxy_temp_path /tmp/b/tmp/proxy;",
            "listen 127.0.0.1:4321;",
            "location /blocks/ {",
            "root /tmp/b/data;",
            "dav_methods PUT;",
            "create_full_put_path on;",
            "client_max_body_size 67108864;",
            "client_body_buffer_size 1m;",
        ] {
            assert!(
                conf.lines().any(|l| l.trim() == line),
                "missing {line:?} in\n{conf}"
            );
        }
        let as_user = nginx_config(&NginxSetup {
            as_root: false,
            ..setup
        });
        assert!(!as_user.contains("user root"));
        assert_eq!(as_user.matches('{').count(), as_user.matches('}').count());
    }

    #[test]
    fn temp_paths_follow_the_build() {
        assert_eq!(
            temp_path_directives("configure arguments: --with-http_dav_module"),
            [
                "proxy_temp_path",
                "fastcgi_temp_path",
                "uwsgi_temp_path",
                "scgi_temp_path"
            ]
        );
        assert_eq!(
            temp_path_directives("--without-http_uwsgi_module --without-http_scgi_module"),
            ["proxy_temp_path", "fastcgi_temp_path"]
        );
    }
}
