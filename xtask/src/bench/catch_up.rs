//! The catch-up scenario: how fast pullsync brings a node the blocks it
//! missed, against how fast `keep-bench` PUTs the same blocks into a node
//! of the same cluster, on the same machine in the same run.
//!
//! An introducer and node A start; `keep-bench` PUTs the blocks into A
//! with one copy (the baseline: its MB/s, each PUT acknowledged once
//! durable). Then node B starts empty; with two copies over two nodes it
//! is responsible for every block, and the catch-up time runs from B's
//! start until its `keep_pullsync_received_blocks_total` counts them all
//! (each block stored durably before it is counted). Two rounds: 64 MiB
//! blocks, then 4 KiB blocks at concurrency 32. Last, two more nodes join
//! and, once every node has settled, B's CPU time is sampled while the
//! cluster is idle: the cost of live sync with three idle peers.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use super::{Bench, Load, OpFigures, run_load, table};
use crate::cluster;

/// The targets: catch-up rate over PUT rate, per block size.
pub const TARGET_LARGE: f64 = 0.8;
/// 4 KiB blocks: batching many per delivery is the point.
pub const TARGET_SMALL: f64 = 1.5;
/// Live sync with three idle peers, in percent of one core.
pub const TARGET_IDLE_CPU: f64 = 1.0;

const KEY: &str = "catch-up-bench-cluster-key";
/// How long the idle CPU is sampled.
const IDLE_SAMPLE: Duration = Duration::from_secs(20);

/// One block size's round.
#[derive(Debug)]
pub struct Round {
    size: u64,
    blocks: u64,
    concurrency: usize,
    put: Option<OpFigures>,
    /// From node B's start until it counted every block.
    catch_up_seconds: Option<f64>,
    /// From the first entry offered to B until it counted every block:
    /// the sync itself, without B's start and its discovery of A.
    sync_seconds: Option<f64>,
    /// CPU seconds of A and B during the sync.
    cpu_seconds: Option<(f64, f64)>,
    target: f64,
}

impl Round {
    fn mb_per_s(&self, seconds: Option<f64>) -> Option<f64> {
        Some((self.size * self.blocks) as f64 / 1e6 / seconds?)
    }

    fn catch_up_mb_per_s(&self) -> Option<f64> {
        self.mb_per_s(self.catch_up_seconds)
    }

    fn sync_mb_per_s(&self) -> Option<f64> {
        self.mb_per_s(self.sync_seconds)
    }

    /// The sync's rate over the PUT's: the target's ratio.
    fn ratio(&self) -> Option<f64> {
        table::ratio(self.sync_mb_per_s()?, self.put.as_ref().map(|p| p.mb_per_s))
    }

    /// The same with B's start and discovery counted.
    fn ratio_from_start(&self) -> Option<f64> {
        table::ratio(
            self.catch_up_mb_per_s()?,
            self.put.as_ref().map(|p| p.mb_per_s),
        )
    }
}

/// What the scenario measured.
#[derive(Debug)]
pub struct CatchUp {
    rounds: Vec<Round>,
    /// B's CPU over [`IDLE_SAMPLE`] with three idle peers, percent of a core.
    idle_cpu_percent: Option<f64>,
}

/// A process listening on a loopback port; killed when dropped.
struct Proc {
    child: Child,
    /// Kept open: a closed stdout would fail the process's prints.
    _stdout: BufReader<ChildStdout>,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bench {
    /// Runs the scenario in the run folder.
    pub(super) fn catch_up(&self) -> anyhow::Result<CatchUp> {
        cluster::build("release")?;
        let dir = self.run_dir.path.join("catch-up");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("cluster-key"), KEY)?;
        let (large, small) = if self.args.quick {
            (4, 2_000)
        } else {
            (16, 20_000)
        };
        let mut rounds = Vec::new();
        for (size, blocks, concurrency, target) in [
            (64u64 << 20, large, 8usize, TARGET_LARGE),
            (4u64 << 10, small, 32, TARGET_SMALL),
        ] {
            rounds.push(self.catch_up_round(&dir, size, blocks, concurrency, target)?);
        }
        let idle_cpu_percent = self.idle_cost(&dir)?;
        Ok(CatchUp {
            rounds,
            idle_cpu_percent,
        })
    }

    fn catch_up_round(
        &self,
        dir: &Path,
        size: u64,
        blocks: u64,
        concurrency: usize,
        target: f64,
    ) -> anyhow::Result<Round> {
        let round = dir.join(format!("round-{size}"));
        warm_memory(dir, 2 * size * blocks + (256 << 20))?;
        let intro = self.start_introducer(&round)?;
        let a = self.start_member(&round.join("a"), &intro.url)?;
        eprintln!(
            "xtask: catch-up: PUT {blocks} x {} into {}",
            super::format_byte_size(size),
            a.url
        );
        let load = Load {
            ops: "put",
            size,
            count: blocks,
            concurrency,
            warmup: 0,
            seed: self.seed ^ size,
            verify: false,
            replicas: Some(1),
            flush_after_put: None,
            get_passes: 1,
        };
        let json = round.join("put.json");
        let put = run_load(&self.keep_bench, &a.url, "keep", &load, &json)?
            .into_iter()
            .next();
        // As between the compare scenario's phases: the sync does not share
        // the disk with the writeback of what the PUTs left in the cache.
        super::settle_disk(&round);
        let started = Instant::now();
        let b = self.start_member(&round.join("b"), &intro.url)?;
        eprintln!("xtask: catch-up: {} pulls them", b.url);
        let limit = Duration::from_secs(600);
        let offered = wait_metric(&b.url, "keep_pullsync_offered_total", 1, limit);
        let first_offer = Instant::now();
        let cpu_before = (cpu_ticks(a.child.id())?, cpu_ticks(b.child.id())?);
        let caught =
            offered && wait_metric(&b.url, "keep_pullsync_received_blocks_total", blocks, limit);
        let done = Instant::now();
        let cpu_after = (cpu_ticks(a.child.id())?, cpu_ticks(b.child.id())?);
        if !caught {
            eprintln!("xtask: catch-up: node B did not get every block within {limit:?}");
        }
        let hz = clock_ticks_per_second();
        Ok(Round {
            size,
            blocks,
            concurrency,
            put,
            catch_up_seconds: caught.then(|| (done - started).as_secs_f64()),
            sync_seconds: caught.then(|| (done - first_offer).as_secs_f64()),
            cpu_seconds: caught.then(|| {
                (
                    (cpu_after.0 - cpu_before.0) as f64 / hz,
                    (cpu_after.1 - cpu_before.1) as f64 / hz,
                )
            }),
            target,
        })
    }

    /// B's CPU with three idle peers, once everyone has caught up.
    fn idle_cost(&self, dir: &Path) -> anyhow::Result<Option<f64>> {
        let idle = dir.join("idle");
        let intro = self.start_introducer(&idle)?;
        let mut nodes = Vec::new();
        for name in ["a", "b", "c", "d"] {
            nodes.push(self.start_member(&idle.join(name), &intro.url)?);
        }
        let load = Load {
            ops: "put",
            size: 64 << 10,
            count: 200,
            concurrency: 8,
            warmup: 0,
            seed: self.seed ^ 0x1d1e,
            verify: false,
            replicas: Some(2),
            flush_after_put: None,
            get_passes: 1,
        };
        run_load(
            &self.keep_bench,
            &nodes[0].url,
            "keep",
            &load,
            &idle.join("put.json"),
        )?;
        // Settled: no node received anything for two seconds.
        let mut last = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            std::thread::sleep(Duration::from_secs(2));
            let now: Vec<u64> = nodes
                .iter()
                .map(|n| metric(&n.url, "keep_pullsync_received_blocks_total").unwrap_or(0))
                .collect();
            if now == last || Instant::now() > deadline {
                break;
            }
            last = now;
        }
        let pid = nodes[1].child.id();
        let before = cpu_ticks(pid)?;
        let started = Instant::now();
        std::thread::sleep(IDLE_SAMPLE);
        let ticks = cpu_ticks(pid)? - before;
        let seconds = ticks as f64 / clock_ticks_per_second();
        eprintln!(
            "xtask: catch-up: an idle node with 3 peers used {seconds:.3} s of CPU in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        Ok(Some(100.0 * seconds / started.elapsed().as_secs_f64()))
    }

    fn start_introducer(&self, dir: &Path) -> anyhow::Result<Proc> {
        std::fs::create_dir_all(dir)?;
        let bin = self.bin("introducer");
        let mut cmd = Command::new(&bin);
        cmd.args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(dir.join("introducer-state"))
            .arg("--cluster-key-file")
            .arg(dir.parent().unwrap_or(dir).join("cluster-key"));
        spawn_listening(cmd, &dir.join("introducer.log"))
    }

    fn start_member(&self, dir: &Path, introducer: &str) -> anyhow::Result<Proc> {
        std::fs::create_dir_all(dir.join("vol"))?;
        std::fs::write(dir.join("cluster-key"), KEY)?;
        let config = format!(
            "introducer = [\"{introducer}\"]\ncluster_key_file = \"cluster-key\"\nreplication = 2\n"
        );
        std::fs::write(dir.join("keepstore.toml"), config)?;
        let mut cmd = Command::new(&self.keepstore);
        cmd.current_dir(dir)
            .args([
                "--listen",
                "127.0.0.1:0",
                "-c",
                "keepstore.toml",
                "--volume",
            ])
            .arg(dir.join("vol"));
        spawn_listening(cmd, &dir.join("keepstore.log"))
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.keepstore.with_file_name(name)
    }
}

/// Starts `cmd` and waits for its `listening on URL` line.
fn spawn_listening(mut cmd: Command, log: &Path) -> anyhow::Result<Proc> {
    cmd.env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?);
    let mut child = cmd.spawn().context("starting a cluster process")?;
    let stdout = child.stdout.take().context("piped stdout")?;
    let (line, reader) = super::servers::first_line(stdout, Duration::from_secs(30))?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("first line {line:?}"))?
        .to_owned();
    Ok(Proc {
        child,
        _stdout: reader,
        url,
    })
}

/// Writes and deletes a scratch file of `bytes` in `dir`, so that the
/// round's two phases both write into memory the machine has used before.
/// On this kind of VM the first touch of a page of guest memory costs
/// about 3 s per GiB (the host backs it lazily); without this, whichever
/// phase first needs fresh page-cache pages pays for them, and the ratio
/// measures the hypervisor.
fn warm_memory(dir: &Path, bytes: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let path = dir.join("warm-up.scratch");
    let chunk = vec![0x5au8; 1 << 20];
    let mut f = std::fs::File::create(&path)?;
    for _ in 0..bytes.div_ceil(1 << 20) {
        f.write_all(&chunk)?;
    }
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(())
}

/// Waits until the node's `name` reaches `want`; false after `limit`.
fn wait_metric(url: &str, name: &str, want: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if metric(url, name).is_some_and(|v| v >= want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// One value of the node's `/metrics`.
fn metric(url: &str, name: &str) -> Option<u64> {
    let text = cluster::http_get(url, "/metrics")?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// User plus system CPU ticks of a process (`/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3; utime and stime are 14 and 15.
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    100.0 // USER_HZ on Linux
}

/// The scenario's lines in the printed report.
pub fn text(c: &CatchUp) -> String {
    let mut out = String::from(
        "\ncatch-up (pullsync to an empty node, vs keep-bench PUT into a node of the same cluster):\n",
    );
    for r in &c.rounds {
        let verdict = match r.ratio() {
            Some(x) if x >= r.target => format!("{x:.2}, met"),
            Some(x) => format!("{x:.2}, MISSED"),
            None => "no ratio".into(),
        };
        let cpu = r.cpu_seconds.map_or("?".into(), |(a, b)| {
            format!("CPU s during the sync: A {a:.2}, B {b:.2}")
        });
        out.push_str(&format!(
            "  {} x {} (PUT concurrency {}): PUT {}, sync {} (from B's start {}, ratio {}); ratio {verdict} (target >= {}); {cpu}\n",
            r.blocks,
            super::format_byte_size(r.size),
            r.concurrency,
            table::rate(r.put.as_ref().map(|p| p.mb_per_s)),
            table::rate(r.sync_mb_per_s()),
            table::rate(r.catch_up_mb_per_s()),
            r.ratio_from_start().map_or("?".into(), |x| format!("{x:.2}")),
            r.target,
        ));
    }
    let idle = match c.idle_cpu_percent {
        Some(p) if p < TARGET_IDLE_CPU => format!("{p:.2}% of a core, met"),
        Some(p) => format!("{p:.2}% of a core, MISSED"),
        None => "not measured".into(),
    };
    out.push_str(&format!(
        "  live sync, 3 idle peers: {idle} (target < {TARGET_IDLE_CPU}%)\n"
    ));
    out
}

/// The scenario in the JSON report.
pub fn to_json(c: &CatchUp) -> Value {
    let rounds: Vec<Value> = c
        .rounds
        .iter()
        .map(|r| {
            json!({
                "size": r.size,
                "blocks": r.blocks,
                "concurrency": r.concurrency,
                "put_mb_per_s": r.put.as_ref().map(|p| p.mb_per_s),
                "catch_up_seconds": r.catch_up_seconds,
                "catch_up_mb_per_s": r.catch_up_mb_per_s(),
                "sync_seconds": r.sync_seconds,
                "sync_mb_per_s": r.sync_mb_per_s(),
                "cpu_seconds_a_b": r.cpu_seconds,
                "ratio": r.ratio(),
                "ratio_from_start": r.ratio_from_start(),
                "target_ratio": r.target,
            })
        })
        .collect();
    json!({
        "rounds": rounds,
        "idle_cpu_percent": c.idle_cpu_percent,
        "target_idle_cpu_percent": TARGET_IDLE_CPU,
    })
}
