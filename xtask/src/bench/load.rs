//! One `keep-bench` run: its settings, how it is started, and the figures
//! read back from its JSON report.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::{Value, json};

/// One operation's figures, as `keep-bench` reports them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OpFigures {
    pub(super) op: String,
    pub(super) ops: u64,
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
    pub(super) bytes: u64,
    pub(super) seconds: f64,
    pub(super) mb_per_s: f64,
    pub(super) ops_per_s: f64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) verified: Option<u64>,
    /// PUT with a flush after it: the flush's seconds.
    pub(super) flush_seconds: Option<f64>,
    /// PUT with a flush after it: MB/s with the flush counted.
    pub(super) durable_mb_per_s: Option<f64>,
}

impl OpFigures {
    pub(super) fn to_json(&self) -> Value {
        json!({
            "op": self.op, "ops": self.ops, "errors": self.errors,
            "first_error": self.first_error, "bytes": self.bytes,
            "seconds": self.seconds, "mb_per_s": self.mb_per_s,
            "ops_per_s": self.ops_per_s, "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms, "verified": self.verified,
            "flush_seconds": self.flush_seconds,
            "durable_mb_per_s": self.durable_mb_per_s,
        })
    }
}

/// The `results` of a `keep-bench` JSON report.
pub(super) fn parse_report(text: &str) -> anyhow::Result<Vec<OpFigures>> {
    let v: Value = serde_json::from_str(text).context("keep-bench's JSON")?;
    anyhow::ensure!(v["tool"] == "keep-bench", "not a keep-bench report");
    let results = v["results"].as_array().context("no results")?;
    results
        .iter()
        .map(|r| {
            let num = |k: &str| r[k].as_f64().with_context(|| format!("result without {k}"));
            let int = |k: &str| r[k].as_u64().with_context(|| format!("result without {k}"));
            Ok(OpFigures {
                op: r["op"].as_str().context("result without op")?.to_owned(),
                ops: int("ops")?,
                errors: int("errors")?,
                first_error: r["first_error"].as_str().map(str::to_owned),
                bytes: int("bytes")?,
                seconds: num("seconds")?,
                mb_per_s: num("mb_per_s")?,
                ops_per_s: num("ops_per_s")?,
                p50_ms: num("p50_ms")?,
                p99_ms: num("p99_ms")?,
                verified: r["verified"].as_u64(),
                flush_seconds: r["flush_seconds"].as_f64(),
                durable_mb_per_s: r["durable_mb_per_s"].as_f64(),
            })
        })
        .collect()
}

/// One `keep-bench` run's settings.
#[derive(Debug, Clone)]
pub(super) struct Load {
    pub(super) ops: &'static str,
    pub(super) size: u64,
    pub(super) count: u64,
    pub(super) concurrency: usize,
    pub(super) warmup: usize,
    pub(super) seed: u64,
    pub(super) verify: bool,
    /// Copies asked for on PUT.
    pub(super) replicas: Option<u32>,
    /// Flush the file system holding this path after the PUT phase, timed.
    pub(super) flush_after_put: Option<std::path::PathBuf>,
    /// How many times the GET phase reads each block.
    pub(super) get_passes: u32,
}

/// Writes out whatever the previous phase left unwritten in the page cache
/// (`sync -f`, untimed), so that no phase pays for the one before it: nginx
/// does not flush its PUTs, and without this the node's next PUT phase
/// shared the disk with the writeback of nginx's last one.
pub(super) fn settle_disk(dir: &Path) {
    let synced = Command::new("sync")
        .arg("-f")
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !synced {
        eprintln!("xtask: could not sync {} between phases", dir.display());
    }
}

/// Runs `keep-bench` against `url`; its JSON goes to `json`. A run whose
/// requests failed still gives figures (the errors are counted in them).
pub(super) fn run_load(
    bin: &Path,
    url: &str,
    scheme: &str,
    load: &Load,
    json: &Path,
) -> anyhow::Result<Vec<OpFigures>> {
    let mut cmd = Command::new(bin);
    cmd.arg(load.ops)
        .args(["--url", url, "--scheme", scheme])
        .arg(format!("--size={}", load.size))
        .arg(format!("--count={}", load.count))
        .arg(format!("--concurrency={}", load.concurrency))
        .arg(format!("--warmup={}", load.warmup))
        .arg(format!("--seed={}", load.seed))
        .arg("--json")
        .arg(json);
    if load.verify {
        cmd.arg("--verify");
    }
    if let Some(n) = load.replicas {
        cmd.arg(format!("--replicas={n}"));
    }
    if load.get_passes > 1 {
        cmd.arg(format!("--get-passes={}", load.get_passes));
    }
    if let Some(dir) = &load.flush_after_put {
        cmd.arg("--flush-after-put").arg(dir);
    }
    let _ = std::fs::remove_file(json);
    let status = cmd
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    let text = std::fs::read_to_string(json)
        .with_context(|| format!("keep-bench against {url} wrote no report ({status})"))?;
    let figures = parse_report(&text)?;
    if !status.success() {
        eprintln!("xtask: keep-bench against {url} reported failed requests ({status})");
    }
    Ok(figures)
}
