//! `cargo xtask bench`: the node against a baseline HTTP file server on
//! the same machine.
//!
//! Builds `keepstore` and `keep-bench` in release mode, starts a fresh node
//! (directory volume under `target/bench/run-*`, removed afterwards, default
//! `max_buffer_memory` and `max_connections`) and, when it is installed, an
//! nginx serving a directory with WebDAV PUT, then runs each [`Scenario`]:
//!
//! - `compare`: per block size, `keep-bench put,get` against the node, then
//!   the same load against nginx; a table of MB/s, ops/s, p50/p99 and the
//!   ratio node/nginx, with the node's peak RSS, and each PUT again counted
//!   until durable (a timed `syncfs` after its phase).
//! - `peak-rss`: a second fresh node under 16 concurrent 64 MiB PUTs; its
//!   peak RSS against the 400 MiB target.
//! - `two-copy-put`: 2-copy PUT through a 3-node cluster, against
//!   single-copy throughput. Waits for `cargo xtask cluster`; until then it
//!   says so and measures nothing.
//!
//! Results go to `target/bench/<UTC stamp>.json` and `target/bench/latest.json`.

mod catch_up;
mod load;
mod machine;
mod servers;
mod table;
mod two_copy;

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use keep_locator::{format_byte_size, parse_byte_size};
use serde_json::{Value, json};

use crate::{root, run_cmd};
use load::{Load, OpFigures, run_load, settle_disk};
use machine::Machine;
use servers::{Nginx, Node, RssSampler};

const USAGE: &str = "usage: cargo xtask bench [--sizes 4k,1m,64m] [--concurrency N] [--quick]
                         [--scenarios compare,peak-rss,two-copy-put,catch-up]
  (always a release build)";

/// What the issue asks of the node, for the report.
const RSS_TARGET: u64 = 400 << 20;
const RSS_SIZE: u64 = 64 << 20;
const RSS_CONCURRENCY: usize = 16;

/// How many times a GET phase reads each block (once with `--quick`): one
/// pass over 32 blocks of 64 MiB took 0.6 s, short enough for one hiccup
/// of the machine to move the figure by a third.
const GET_PASSES: u32 = 4;

/// A measurement the bench can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Node against nginx, per size, PUT then GET.
    Compare,
    /// Peak RSS of a node under 16 concurrent 64 MiB PUTs.
    PeakRss,
    /// 2-copy PUT through a 3-node cluster (needs `cargo xtask cluster`).
    TwoCopyPut,
    /// Pullsync to an empty node against PUT, and its idle cost.
    CatchUp,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Compare,
        Scenario::PeakRss,
        Scenario::TwoCopyPut,
        Scenario::CatchUp,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Compare => "compare",
            Scenario::PeakRss => "peak-rss",
            Scenario::TwoCopyPut => "two-copy-put",
            Scenario::CatchUp => "catch-up",
        }
    }

    fn parse(text: &str) -> anyhow::Result<Scenario> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .with_context(|| format!("unknown scenario `{text}`\n\n{USAGE}"))
    }
}

/// The command line.
#[derive(Debug, Clone, PartialEq)]
struct Args {
    sizes: Vec<u64>,
    concurrency: usize,
    quick: bool,
    scenarios: Vec<Scenario>,
}

impl Args {
    fn parse(args: &[String]) -> anyhow::Result<Args> {
        let mut out = Args {
            sizes: vec![4 << 10, 1 << 20, 64 << 20],
            concurrency: 8,
            quick: false,
            scenarios: Scenario::ALL.to_vec(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (arg.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))
            };
            match flag {
                "--quick" => out.quick = true,
                "--release" => {}
                "--sizes" => {
                    out.sizes = value()?
                        .split(',')
                        .map(parse_size)
                        .collect::<anyhow::Result<_>>()?;
                }
                "--concurrency" | "-c" => {
                    let v = value()?;
                    out.concurrency = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .with_context(|| format!("--concurrency {v}: not a positive number"))?;
                }
                "--scenarios" => {
                    out.scenarios = value()?
                        .split(',')
                        .map(Scenario::parse)
                        .collect::<anyhow::Result<_>>()?;
                }
                other => anyhow::bail!("unknown flag `{other}`\n\n{USAGE}"),
            }
        }
        anyhow::ensure!(!out.sizes.is_empty(), "--sizes is empty");
        Ok(out)
    }
}

/// A block size for `--sizes`: `4k`, `1m`, `64MiB` or bytes
/// ([`parse_byte_size`]), at least 16 bytes.
fn parse_size(text: &str) -> anyhow::Result<u64> {
    let bytes = parse_byte_size(text).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(bytes >= 16, "`{text}`: blocks are at least 16 bytes");
    Ok(bytes)
}

/// Requests per phase and untimed warm-up requests for one size: about
/// 2 GiB per phase (128 MiB with `--quick`), at most 30000 (1000), at least
/// one per worker; warm-up up to the concurrency, at most ~128 MiB.
fn plan(size: u64, concurrency: usize, quick: bool) -> (u64, usize) {
    let (bytes, most) = if quick {
        (128u64 << 20, 1000)
    } else {
        (2u64 << 30, 30_000)
    };
    let count = (bytes / size).clamp(concurrency as u64, most.max(concurrency as u64));
    let warmup = ((128u64 << 20) / size).clamp(1, concurrency as u64) as usize;
    (count, warmup)
}

/// One line of the comparison.
#[derive(Debug, Clone)]
struct Row {
    size: u64,
    count: u64,
    node: OpFigures,
    nginx: Option<OpFigures>,
    /// Highest sampled VmRSS of the node during this size's load.
    node_rss: u64,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        table::ratio(self.node.mb_per_s, self.nginx.as_ref().map(|n| n.mb_per_s))
    }

    /// The PUT ratio with each server's flush after the phase counted.
    fn durable_ratio(&self) -> Option<f64> {
        let node = self.node.durable_mb_per_s?;
        table::ratio(node, self.nginx.as_ref().and_then(|n| n.durable_mb_per_s))
    }
}

/// The PUT rows again, counted until their data was on disk.
fn durable_text(rows: &[Row]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .filter(|r| r.node.durable_mb_per_s.is_some())
        .map(|r| {
            let nginx = r.nginx.as_ref();
            vec![
                format_byte_size(r.size),
                table::rate(r.node.durable_mb_per_s),
                format!("{:.2}", r.node.flush_seconds.unwrap_or(0.0)),
                table::rate(nginx.and_then(|n| n.durable_mb_per_s)),
                nginx
                    .and_then(|n| n.flush_seconds)
                    .map_or("-".into(), |f| format!("{f:.2}")),
                r.durable_ratio().map_or("-".into(), |x| format!("{x:.2}")),
            ]
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let headers = [
        "size",
        "node MB/s",
        "node flush s",
        "nginx MB/s",
        "nginx flush s",
        "ratio",
    ];
    format!(
        "\nPUT until durable: each PUT phase was followed by a timed syncfs of the file system,\n\
         and MB/s here counts it (the ratio the targets above use does not). The node has\n\
         flushed before it answers; nginx leaves its PUTs in the page cache, so on a machine\n\
         whose free memory holds them it copies at memory speed until the flush.\n{}",
        table::format_table(&headers, &rows, 1)
    )
}

/// How the baseline went.
#[derive(Debug, Clone)]
enum Baseline {
    /// No nginx on this machine.
    Missing,
    /// It would not start or its load failed.
    Failed(String),
    /// It ran.
    Ran { version: String },
}

#[derive(Debug)]
struct Compare {
    rows: Vec<Row>,
    /// Times each GET phase read every block.
    get_passes: u32,
    node_hwm: u64,
    baseline: Baseline,
}

#[derive(Debug)]
struct PeakRss {
    count: u64,
    hwm: u64,
    sampled: u64,
    put: Option<OpFigures>,
}

/// Where the run happens and with what.
#[derive(Debug)]
struct Bench {
    keepstore: PathBuf,
    keep_bench: PathBuf,
    nginx: Option<PathBuf>,
    run_dir: RunDir,
    seed: u64,
    args: Args,
}

/// What the scenarios measured; `None` for those not asked for.
#[derive(Debug, Default)]
struct Results {
    compare: Option<Compare>,
    peak: Option<PeakRss>,
    two_copy: Option<two_copy::TwoCopy>,
    catch_up: Option<catch_up::CatchUp>,
}

pub fn run(raw: &[String]) -> anyhow::Result<()> {
    if raw.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let args = Args::parse(raw)?;
    let command = std::iter::once("cargo xtask bench".to_owned())
        .chain(raw.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    build_release(&cargo)?;
    let target = target_dir(&cargo)?;
    let out_dir = target.join("bench");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock before 1970")?;
    let stamp = machine::utc_stamp(now.as_secs());
    let run_dir = RunDir::create(out_dir.join(format!("run-{stamp}")))?;
    let machine = Machine::probe();
    let nginx = servers::find_nginx();
    let bench = Bench {
        keepstore: target.join("release/keepstore"),
        keep_bench: target.join("release/keep-bench"),
        nginx,
        run_dir,
        seed: now.as_nanos() as u64,
        args,
    };
    eprintln!("xtask: bench on {}", machine.describe());
    let recent = recent_deletes_note(&out_dir);
    if let Some(note) = &recent {
        eprint!("xtask: {note}");
    }
    let load_start = machine::load_average();
    let results = bench.run_scenarios()?;
    let load_end = machine::load_average();

    let mut text = recent.unwrap_or_default();
    text.push_str(&results_text(&results, machine.cores));
    text.push_str(&format!(
        "\nmachine: {}; load average {} at the start, {} at the end\ncommand: {command}\n",
        machine.describe(),
        load_start.map_or("?".into(), |l| format!("{l:.2}")),
        load_end.map_or("?".into(), |l| format!("{l:.2}")),
    ));
    println!("{text}");

    let report = json!({
        "timestamp": stamp,
        "command": command,
        "revision": machine::revision(),
        "machine": machine.to_json(),
        "load_average": { "start": load_start, "end": load_end },
        "settings": bench.settings_json(),
        "compare": results.compare.as_ref().map(compare_json),
        "peak_rss": results.peak.as_ref().map(peak_rss_json),
        "two_copy_put": results.two_copy.as_ref().map(two_copy::to_json),
        "catch_up": results.catch_up.as_ref().map(catch_up::to_json),
        "table": text,
    });
    write_report(&out_dir, &stamp, &report)
}

/// Builds the two binaries the bench runs, in release mode.
fn build_release(cargo: &str) -> anyhow::Result<()> {
    run_cmd(Command::new(cargo).args(["build", "--release", "-p", "keepstore", "-p", "keep-bench"]))
}

/// The scenarios' parts of the printed report, in order.
fn results_text(results: &Results, cores: usize) -> String {
    let mut text = String::new();
    if let Some(c) = &results.compare {
        text.push_str(&compare_text(c, cores));
    }
    if let Some(p) = &results.peak {
        text.push_str(&peak_rss_text(p));
    }
    if let Some(t) = &results.two_copy {
        text.push_str(&two_copy::text(t));
    }
    if let Some(c) = &results.catch_up {
        text.push_str(&catch_up::text(c));
    }
    text
}

/// Writes the report to `<stamp>.json` and `latest.json` in `out_dir`.
fn write_report(out_dir: &std::path::Path, stamp: &str, report: &Value) -> anyhow::Result<()> {
    let body = serde_json::to_string_pretty(report)? + "\n";
    let file = out_dir.join(format!("{stamp}.json"));
    std::fs::write(&file, &body).with_context(|| format!("writing {}", file.display()))?;
    std::fs::write(out_dir.join("latest.json"), &body)?;
    eprintln!("xtask: wrote {} and latest.json", file.display());
    Ok(())
}

/// A warning when the previous run (which deleted its files when it
/// ended, as `latest.json` was written) ended under 5 minutes ago: ext4
/// without a journal skips inodes deleted in the last 60 s (300 s while
/// their inode-table block is dirty) when it creates files, so small PUTs,
/// the node's and nginx's alike, run slower for a while.
fn recent_deletes_note(out_dir: &std::path::Path) -> Option<String> {
    let ago = std::fs::metadata(out_dir.join("latest.json"))
        .and_then(|m| m.modified())
        .ok()?
        .elapsed()
        .ok()?;
    (ago.as_secs() < 300).then(|| {
        format!(
            "note: the previous run ended {} s ago and deleted its files; on ext4 without a journal, file creation avoids recently freed inodes for up to 5 minutes, which slows small PUTs\n",
            ago.as_secs()
        )
    })
}

impl Bench {
    fn get_passes(&self) -> u32 {
        if self.args.quick { 1 } else { GET_PASSES }
    }

    /// Runs the scenarios asked for, in the order asked.
    fn run_scenarios(&self) -> anyhow::Result<Results> {
        let mut results = Results::default();
        for &scenario in &self.args.scenarios {
            match scenario {
                Scenario::Compare => results.compare = Some(self.compare()?),
                Scenario::PeakRss => results.peak = Some(self.peak_rss()?),
                Scenario::TwoCopyPut => results.two_copy = Some(self.two_copy()?),
                Scenario::CatchUp => results.catch_up = Some(self.catch_up()?),
            }
        }
        Ok(results)
    }

    /// The run's settings, for the report.
    fn settings_json(&self) -> Value {
        json!({
            "sizes": self.args.sizes,
            "concurrency": self.args.concurrency,
            "quick": self.args.quick,
            "seed": self.seed,
            "get_passes": self.get_passes(),
        })
    }

    fn compare(&self) -> anyhow::Result<Compare> {
        let node = Node::start(&self.keepstore, &self.run_dir.path.join("node"))?;
        eprintln!(
            "xtask: keepstore at {} (log {})",
            node.url,
            node.log.display()
        );
        let sampler = RssSampler::start(node.pid());
        let max_size = self.args.sizes.iter().copied().max().unwrap_or(0);
        let (nginx, mut baseline) = self.start_baseline(max_size);
        let mut rows = Vec::new();
        for &size in &self.args.sizes {
            let (count, warmup) = plan(size, self.args.concurrency, self.args.quick);
            let load = self.compare_load(size, count, warmup);
            settle_disk(&self.run_dir.path);
            sampler.take();
            let json = self.run_dir.path.join(format!("node-{size}.json"));
            let node_figs = run_load(&self.keep_bench, &node.url, "keep", &load, &json)?;
            let node_rss = sampler.take();
            let nginx_figs = nginx
                .as_ref()
                .and_then(|n| self.baseline_load(n, &load, &mut baseline));
            rows.extend(pair_rows(size, count, node_figs, nginx_figs, node_rss));
        }
        let node_hwm = node.peak_rss()?;
        drop(sampler);
        Ok(Compare {
            rows,
            get_passes: self.get_passes(),
            node_hwm,
            baseline,
        })
    }

    /// Starts nginx, if installed, for bodies up to `max_size`; says how
    /// that went.
    fn start_baseline(&self, max_size: u64) -> (Option<Nginx>, Baseline) {
        let Some(bin) = &self.nginx else {
            eprintln!(
                "xtask: nginx not installed: apt-get install nginx-light (showing the node's figures alone)"
            );
            return (None, Baseline::Missing);
        };
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let dir = self.run_dir.path.join("nginx");
        match Nginx::start(bin, &dir, workers, max_size.max(64 << 20)) {
            Ok(n) => {
                eprintln!("xtask: {} at {} (baseline)", n.version, n.url);
                let baseline = Baseline::Ran {
                    version: n.version.clone(),
                };
                (Some(n), baseline)
            }
            Err(e) => {
                eprintln!("xtask: nginx would not start, node figures alone: {e:#}");
                (None, Baseline::Failed(format!("{e:#}")))
            }
        }
    }

    /// The comparison's load for one block size: PUT (flushed after), GET,
    /// verify.
    fn compare_load(&self, size: u64, count: u64, warmup: usize) -> Load {
        Load {
            ops: "put,get",
            size,
            count,
            concurrency: self.args.concurrency,
            warmup,
            seed: self.seed,
            verify: true,
            replicas: None,
            flush_after_put: Some(self.run_dir.path.clone()),
            get_passes: self.get_passes(),
        }
    }

    /// Runs `load` against nginx; a failure is recorded in `baseline` and
    /// gives no figures.
    fn baseline_load(
        &self,
        nginx: &Nginx,
        load: &Load,
        baseline: &mut Baseline,
    ) -> Option<Vec<OpFigures>> {
        settle_disk(&self.run_dir.path);
        let json = self.run_dir.path.join(format!("nginx-{}.json", load.size));
        match run_load(&self.keep_bench, &nginx.url, "webdav", load, &json) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("xtask: nginx load failed: {e:#}");
                *baseline = Baseline::Failed(format!("{e:#}"));
                None
            }
        }
    }

    fn peak_rss(&self) -> anyhow::Result<PeakRss> {
        let node = Node::start(&self.keepstore, &self.run_dir.path.join("node-rss"))?;
        eprintln!(
            "xtask: peak RSS scenario: {RSS_CONCURRENCY} concurrent {} PUTs to a fresh keepstore at {}",
            format_byte_size(RSS_SIZE),
            node.url
        );
        let sampler = RssSampler::start(node.pid());
        let count = if self.args.quick {
            RSS_CONCURRENCY as u64
        } else {
            2 * RSS_CONCURRENCY as u64
        };
        let load = Load {
            ops: "put",
            size: RSS_SIZE,
            count,
            concurrency: RSS_CONCURRENCY,
            warmup: 0,
            seed: self.seed ^ 1,
            verify: false,
            replicas: None,
            flush_after_put: None,
            get_passes: 1,
        };
        let json = self.run_dir.path.join("peak-rss.json");
        let put = run_load(&self.keep_bench, &node.url, "keep", &load, &json)?
            .into_iter()
            .next();
        let sampled = sampler.take();
        Ok(PeakRss {
            count,
            hwm: node.peak_rss()?,
            sampled,
            put,
        })
    }
}

/// One row per operation the node ran, beside nginx's figures for the
/// same operation.
fn pair_rows(
    size: u64,
    count: u64,
    node_figs: Vec<OpFigures>,
    nginx_figs: Option<Vec<OpFigures>>,
    node_rss: u64,
) -> Vec<Row> {
    node_figs
        .into_iter()
        .map(|node_op| {
            let nginx_op = nginx_figs
                .as_ref()
                .and_then(|f| f.iter().find(|o| o.op == node_op.op).cloned());
            Row {
                size,
                count,
                node: node_op,
                nginx: nginx_op,
                node_rss,
            }
        })
        .collect()
}

fn compare_text(c: &Compare, cores: usize) -> String {
    let headers = [
        "size",
        "op",
        "node MB/s",
        "nginx MB/s",
        "ratio",
        "target",
        "node ops/s",
        "node p50 ms",
        "node p99 ms",
        "nginx p50 ms",
        "nginx p99 ms",
        "node peak RSS",
    ];
    let rows: Vec<Vec<String>> = c
        .rows
        .iter()
        .map(|r| {
            let nginx = r.nginx.as_ref();
            let ratio = r.ratio();
            let mut op = r.node.op.clone();
            if r.node.errors > 0 || nginx.is_some_and(|n| n.errors > 0) {
                op.push('!');
            }
            vec![
                format_byte_size(r.size),
                op,
                table::rate(Some(r.node.mb_per_s)),
                table::rate(nginx.map(|n| n.mb_per_s)),
                ratio.map_or("-".into(), |x| {
                    table::ratio_text(x, table::target_ratio(r.size, &r.node.op))
                }),
                table::verdict(table::target_ratio(r.size, &r.node.op), ratio),
                format!("{:.0}", r.node.ops_per_s),
                table::millis(Some(r.node.p50_ms)),
                table::millis(Some(r.node.p99_ms)),
                table::millis(nginx.map(|n| n.p50_ms)),
                table::millis(nginx.map(|n| n.p99_ms)),
                table::mib(r.node_rss),
            ]
        })
        .collect();
    let mut out = table::format_table(&headers, &rows, 2);
    let baseline = match &c.baseline {
        Baseline::Missing => {
            "nginx not installed: apt-get install nginx-light (node figures alone)".to_owned()
        }
        Baseline::Failed(e) => format!("nginx failed: {e}"),
        Baseline::Ran { version } => {
            format!("baseline: {version}, WebDAV PUT, worker_processes {cores}")
        }
    };
    out.push_str(&format!(
        "\nnode peak RSS (VmHWM) over the whole comparison: {}\n\
         {baseline}\n\
         Fairness: the node makes every PUT durable before it answers (up to 64 KiB: fdatasync of\n\
         its journal; larger: fdatasync, rename, fsync of the folder) and verifies every GET (MD5,\n\
         or BLAKE3 per chunk) as it streams; nginx's WebDAV PUT writes a temp file and renames it\n\
         without fsync, and its GET is sendfile without verification.\n\
         MB/s = 10^6 bytes/s of block data; client, node and nginx share the machine's {cores} cores.\n\
         Requests per phase: {}; each GET phase read every block {} time(s).\n\
         After each GET phase every block was read again (untimed) and its MD5 checked;\n\
         before each server's phases the file system was synced (untimed), and after each\n\
         PUT phase (timed, see below), so no phase shares the disk with the one before it.\n\
         `!` after the op: some requests failed (see the JSON).\n",
        table::mib(c.node_hwm),
        counts_text(&c.rows),
        c.get_passes,
    ));
    out.push_str(&durable_text(&c.rows));
    out
}

fn counts_text(rows: &[Row]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for r in rows {
        let s = format!("{} x{}", format_byte_size(r.size), r.count);
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen.join(", ")
}

fn compare_json(c: &Compare) -> Value {
    json!({
        "node_peak_rss_bytes": c.node_hwm,
        "get_passes": c.get_passes,
        "baseline": match &c.baseline {
            Baseline::Missing => json!({"status": "missing", "hint": "apt-get install nginx-light"}),
            Baseline::Failed(e) => json!({"status": "failed", "error": e}),
            Baseline::Ran { version } => json!({"status": "ran", "version": version}),
        },
        "rows": c.rows.iter().map(|r| json!({
            "size": r.size,
            "op": r.node.op,
            "count": r.count,
            "node": r.node.to_json(),
            "nginx": r.nginx.as_ref().map(OpFigures::to_json),
            "ratio": r.ratio(),
            "durable_ratio": r.durable_ratio(),
            "target": table::target_ratio(r.size, &r.node.op),
            "node_rss_sampled_peak_bytes": r.node_rss,
        })).collect::<Vec<_>>(),
    })
}

fn peak_rss_text(p: &PeakRss) -> String {
    let verdict = if p.hwm <= RSS_TARGET { "met" } else { "MISSED" };
    let put = p.put.as_ref().map_or("no figures".to_owned(), |f| {
        let errors = if f.errors > 0 {
            format!(
                ", {} of {} failed: {}",
                f.errors,
                f.errors + f.ops,
                f.first_error.as_deref().unwrap_or("")
            )
        } else {
            String::new()
        };
        format!(
            "{:.1} MB/s, p50 {} ms, p99 {} ms{errors}",
            f.mb_per_s,
            table::millis(Some(f.p50_ms)),
            table::millis(Some(f.p99_ms))
        )
    });
    format!(
        "\npeak RSS under {RSS_CONCURRENCY} concurrent {} PUTs ({} PUTs, fresh node): VmHWM {} \
         (sampled VmRSS peak {}), target <= {}: {verdict}; {put}\n",
        format_byte_size(RSS_SIZE),
        p.count,
        table::mib(p.hwm),
        table::mib(p.sampled),
        table::mib(RSS_TARGET),
    )
}

fn peak_rss_json(p: &PeakRss) -> Value {
    json!({
        "size": RSS_SIZE,
        "concurrency": RSS_CONCURRENCY,
        "count": p.count,
        "vmhwm_bytes": p.hwm,
        "sampled_vmrss_peak_bytes": p.sampled,
        "target_bytes": RSS_TARGET,
        "met": p.hwm <= RSS_TARGET,
        "put": p.put.as_ref().map(OpFigures::to_json),
    })
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR` and config).
fn target_dir(cargo: &str) -> anyhow::Result<PathBuf> {
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root())
        .output()
        .context("running cargo metadata")?;
    anyhow::ensure!(out.status.success(), "cargo metadata failed");
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let dir = v["target_directory"]
        .as_str()
        .context("no target_directory in cargo metadata")?;
    Ok(PathBuf::from(dir))
}

/// A folder removed (with everything in it) when dropped.
#[derive(Debug)]
struct RunDir {
    path: PathBuf,
}

impl RunDir {
    fn create(path: PathBuf) -> anyhow::Result<RunDir> {
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(RunDir { path })
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("xtask: could not remove {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests;
