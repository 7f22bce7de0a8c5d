//! `keep-bench`: PUT unique blocks to a Keep node or a WebDAV server, GET
//! them back, and report MB/s, ops/s and latency as JSON.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use keep_bench::{Limit, Op, Options, Scheme};
use keep_locator::parse_byte_size;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Load generator: PUT unique blocks, then GET them back"
)]
struct Flags {
    /// Operations in order: put, get, or put,get (get reads back what put
    /// stored; get alone reads blocks an earlier put stored with the same
    /// --seed, --size and --count).
    #[arg(value_delimiter = ',', required = true)]
    ops: Vec<Op>,
    /// Base URL of the server.
    #[arg(long)]
    url: String,
    /// Path scheme: keep (PUT /md5, GET /locator) or webdav (/blocks/md5).
    #[arg(long, value_enum, default_value = "keep")]
    scheme: Scheme,
    /// Block size: 4k, 1m, 64m, or bytes.
    #[arg(long, default_value = "1m", value_parser = parse_byte_size)]
    size: u64,
    /// Requests per phase [default: 100].
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// Phase length instead of a count, e.g. 10s.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Requests in flight.
    #[arg(short = 'c', long, default_value_t = 8)]
    concurrency: usize,
    /// Untimed requests before each phase [default: the concurrency].
    #[arg(long)]
    warmup: Option<usize>,
    /// Seed of the blocks' content [default: from the clock].
    #[arg(long)]
    seed: Option<u64>,
    /// After the GET phase, read every block once more (untimed) and check
    /// its MD5.
    #[arg(long)]
    verify: bool,
    /// Longest wait for one request, body included.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Most memory for the blocks' random content.
    #[arg(long, default_value = "512m", value_parser = parse_byte_size)]
    pool_memory: u64,
    /// Copies to ask for on PUT (X-Keep-Desired-Replicas); a PUT whose
    /// answer stores fewer counts as failed.
    #[arg(long)]
    replicas: Option<u32>,
    /// After the PUT phase, flush the file system that holds this path
    /// (syncfs), timed: the PUT is reported once more with the flush
    /// counted, as the rate at which its data became durable. For a server
    /// that does not flush its writes (the baseline), that is the fair
    /// figure to set against a node that does.
    #[arg(long, value_name = "DIR")]
    flush_after_put: Option<PathBuf>,
    /// Read every block this many times in the GET phase (with --count),
    /// so that a phase of few large blocks lasts long enough to measure.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    get_passes: u32,
    /// Write the JSON report here instead of standard output.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() {
    if let Err(e) = run(Flags::parse()) {
        eprintln!("keep-bench: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(f: Flags) -> anyhow::Result<()> {
    let opts = Options {
        url: f.url,
        scheme: f.scheme,
        ops: f.ops,
        size: f.size,
        limit: match f.duration {
            Some(d) => Limit::Duration(d),
            None => Limit::Count(f.count.unwrap_or(100)),
        },
        concurrency: f.concurrency.max(1),
        warmup: f.warmup.unwrap_or(f.concurrency),
        seed: f.seed.unwrap_or_else(clock_seed),
        verify: f.verify,
        timeout: f.timeout,
        pool_memory: f.pool_memory,
        replicas: f.replicas,
        flush_after_put: f.flush_after_put,
        get_passes: f.get_passes,
    };
    let report = keep_bench::run(&opts)?;
    for r in &report.results {
        eprintln!("keep-bench: {}", keep_bench::summary_line(report.size, r));
    }
    let json = serde_json::to_string_pretty(&report)? + "\n";
    match &f.json {
        Some(path) => {
            std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{json}"),
    }
    let failed: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| {
            r.first_error
                .as_ref()
                .map(|e| format!("{}: {} failed, first: {e}", r.op, r.errors))
        })
        .collect();
    anyhow::ensure!(failed.is_empty(), "requests failed: {}", failed.join("; "));
    Ok(())
}

/// A seed that differs between runs, so a rerun against the same server
/// stores new blocks.
fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}
