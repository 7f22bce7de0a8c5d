//! `cargo xtask cluster`: one introducer and N storage nodes on loopback,
//! `DIR/cluster.json` once every node answers, a clean stop of every
//! process on SIGINT or SIGTERM (see `shared/CONTRACT.md`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{root, run_cmd};

pub(crate) struct Options {
    pub(crate) nodes: usize,
    pub(crate) dir: PathBuf,
    pub(crate) base_port: u16,
    pub(crate) replication: usize,
    pub(crate) profile: String,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        nodes: 3,
        dir: root().join("target/cluster"),
        base_port: 25100,
        replication: 2,
        profile: "release".into(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--nodes" => o.nodes = value()?.parse().context("--nodes")?,
            "--dir" => o.dir = PathBuf::from(value()?),
            "--base-port" => o.base_port = value()?.parse().context("--base-port")?,
            "--replication" => o.replication = value()?.parse().context("--replication")?,
            "--profile" => o.profile = value()?.clone(),
            other => bail!("unknown flag {other}; see `cargo xtask help`"),
        }
    }
    if o.nodes == 0 || o.replication == 0 {
        bail!("--nodes and --replication must be at least 1");
    }
    if o.profile != "release" && o.profile != "debug" {
        bail!("--profile is release or debug");
    }
    Ok(o)
}

/// A child process that is terminated (then killed) when dropped.
struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    fn terminate(&mut self, grace: Duration) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return; // already gone (and reaped: its pid may be reused)
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                eprintln!("xtask: {} stopped ({status})", self.name);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("xtask: {} ignored SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate(Duration::from_secs(10));
        }
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    build(&o.profile)?;
    let mut cluster = start(&o, &root().join("target").join(&o.profile), &stop)?;
    println!(
        "cluster ready: {}",
        cluster.dir.join("cluster.json").display()
    );
    println!(
        "  export ARVADOS_KEEP_SERVICES=\"{}\"",
        cluster.urls.join(" ")
    );
    println!(
        "  admin token: {}   (Ctrl-C stops every process)",
        cluster.dir.join("system-root-token").display()
    );
    // Run until told to stop. A process that dies is reported, not
    // replaced: the rest of the cluster keeps running (that is the point of
    // a cluster, and what failure tests exercise).
    let mut reported = vec![false; cluster.procs.len()];
    while !stop.load(Ordering::Relaxed) {
        for (p, seen) in cluster.procs.iter_mut().zip(reported.iter_mut()) {
            if !*seen && let Ok(Some(status)) = p.child.try_wait() {
                eprintln!(
                    "xtask: {} exited ({status}); the others keep running",
                    p.name
                );
                *seen = true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.stop();
    Ok(())
}

/// Builds the two binaries a cluster runs.
pub(crate) fn build(profile: &str) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    build.args(["build", "--quiet", "-p", "keepstore", "-p", "introducer"]);
    if profile == "release" {
        build.arg("--release");
    }
    run_cmd(&mut build)
}

/// A running cluster; every process is stopped when it is dropped.
pub(crate) struct Running {
    procs: Vec<Proc>,
    /// The storage nodes' URLs.
    pub(crate) urls: Vec<String>,
    /// Its folder.
    pub(crate) dir: PathBuf,
}

impl Running {
    /// Stops the nodes, then the introducer.
    pub(crate) fn stop(&mut self) {
        if self.procs.is_empty() {
            return;
        }
        eprintln!("xtask: stopping the cluster");
        for mut p in self.procs.drain(..).rev() {
            p.terminate(Duration::from_secs(30));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts an introducer and the nodes from the binaries in `bin_dir`, and
/// returns once every node answers and is announced (`cluster.json` written).
pub(crate) fn start(o: &Options, bin_dir: &Path, stop: &AtomicBool) -> anyhow::Result<Running> {
    let files = Files::prepare(&o.dir)?;
    let introducer_url = format!("http://127.0.0.1:{}", o.base_port);
    let mut procs = vec![spawn_introducer(o, bin_dir, &files)?];
    let mut nodes = Vec::new();
    for i in 1..=o.nodes {
        let (p, node) = spawn_node(o, bin_dir, &files, &introducer_url, i)?;
        nodes.push(node);
        procs.push(p);
    }
    wait_ready(o, stop, &mut procs, &introducer_url, &nodes)?;
    write_cluster_json(o, &files, &introducer_url, &nodes)?;
    let urls = nodes
        .iter()
        .filter_map(|n| n["url"].as_str().map(str::to_owned))
        .collect();
    Ok(Running {
        procs,
        urls,
        dir: files.dir,
    })
}

/// The cluster's folder and the secret files in it.
struct Files {
    dir: PathBuf,
    cluster_key: PathBuf,
    root_token: PathBuf,
    signing_key: PathBuf,
}

impl Files {
    /// Creates the folder and any missing secret, and removes the
    /// `cluster.json` of an earlier run.
    fn prepare(dir: &Path) -> anyhow::Result<Files> {
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let files = Files {
            cluster_key: secret(&dir.join("cluster-key"))?,
            root_token: secret(&dir.join("system-root-token"))?,
            signing_key: secret(&dir.join("blob-signing-key"))?,
            dir,
        };
        let _ = std::fs::remove_file(files.dir.join("cluster.json"));
        Ok(files)
    }
}

/// Starts the introducer on the base port.
fn spawn_introducer(o: &Options, bin_dir: &Path, files: &Files) -> anyhow::Result<Proc> {
    spawn(
        "introducer",
        Command::new(bin_dir.join("introducer"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", o.base_port))
            .arg("--state-dir")
            .arg(files.dir.join("introducer"))
            .arg("--cluster-key-file")
            .arg(&files.cluster_key),
        &files.dir.join("introducer.log"),
    )
}

/// Starts node `i` (1-based) on the base port + `i`; returns it with its
/// entry for `cluster.json`.
fn spawn_node(
    o: &Options,
    bin_dir: &Path,
    files: &Files,
    introducer_url: &str,
    i: usize,
) -> anyhow::Result<(Proc, serde_json::Value)> {
    let port = o.base_port + i as u16;
    let url = format!("http://127.0.0.1:{port}");
    let uuid = format!("zzzzz-bi6l4-{i:015}");
    let volume = files.dir.join(format!("keep{i}"));
    let p = spawn(
        &format!("keepstore {i}"),
        Command::new(bin_dir.join("keepstore"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &url,
                "--uuid",
                &uuid,
            ])
            .arg("--volume")
            .arg(&volume)
            .args(["--introducer", introducer_url])
            .arg("--cluster-key-file")
            .arg(&files.cluster_key)
            .arg("--system-root-token-file")
            .arg(&files.root_token)
            .arg("--blob-signing-key-file")
            .arg(&files.signing_key)
            .args(["--replication", &o.replication.to_string()]),
        &files.dir.join(format!("keep{i}.log")),
    )?;
    let node = serde_json::json!({
        "uuid": uuid, "url": url, "pid": p.child.id(),
        "volumes": [volume.display().to_string()],
    });
    Ok((p, node))
}

/// Waits, up to 60 s, until every node answers and the introducer knows
/// them all.
fn wait_ready(
    o: &Options,
    stop: &AtomicBool,
    procs: &mut [Proc],
    introducer_url: &str,
    nodes: &[serde_json::Value],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in nodes {
        let url = n["url"].as_str().unwrap_or_default();
        wait_until(deadline, stop, procs, || {
            http_get(url, "/_health/ping").is_some_and(|b| b.contains("OK"))
        })?;
    }
    wait_until(deadline, stop, procs, || {
        http_get(introducer_url, "/v1/announcements?service=upload_storage")
            .and_then(|b| serde_json::from_str::<Vec<serde_json::Value>>(&b).ok())
            .is_some_and(|list| list.len() >= o.nodes)
    })
}

/// Writes `cluster.json` (through a temporary file and a rename).
fn write_cluster_json(
    o: &Options,
    files: &Files,
    introducer_url: &str,
    nodes: &[serde_json::Value],
) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(&files.root_token)?;
    let info = serde_json::json!({
        "introducer": introducer_url,
        "system_root_token": token.trim(),
        "replication": o.replication,
        "keepstores": nodes,
    });
    let tmp = files.dir.join("cluster.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&info)?)?;
    std::fs::rename(&tmp, files.dir.join("cluster.json"))?;
    Ok(())
}

/// The first process that has exited, if any.
fn first_exited(procs: &mut [Proc]) -> Option<&Proc> {
    let i = procs
        .iter_mut()
        .position(|p| matches!(p.child.try_wait(), Ok(Some(_))))?;
    Some(&procs[i])
}

fn spawn(name: &str, cmd: &mut Command, log: &Path) -> anyhow::Result<Proc> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    eprintln!(
        "xtask: started {name} (pid {}), log {}",
        child.id(),
        log.display()
    );
    Ok(Proc {
        name: name.to_owned(),
        child,
    })
}

/// Polls `ready` until it holds; fails at the deadline, on a signal, or when
/// a process dies.
fn wait_until(
    deadline: Instant,
    stop: &AtomicBool,
    procs: &mut [Proc],
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    while !ready() {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted while starting");
        }
        if let Some(dead) = first_exited(procs) {
            bail!("{} exited while starting; see its log", dead.name);
        }
        if Instant::now() > deadline {
            bail!("the cluster did not come up within 60 s; see the logs");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The path of a secret file, created with random content if missing.
fn secret(path: &Path) -> anyhow::Result<PathBuf> {
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        let mut bytes = [0u8; 24];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        writeln!(f, "{text}")?;
    }
    Ok(path.to_owned())
}

/// A plain HTTP GET on loopback; the body when the answer is 200.
pub(crate) fn http_get(base: &str, path: &str) -> Option<String> {
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}
