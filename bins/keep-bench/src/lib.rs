//! `keep-bench`: a load generator for Keep nodes and, for comparison, a
//! plain WebDAV file server (nginx).
//!
//! A run makes its blocks first ([`blocks`]: unique, random, hashed before
//! the clock starts), then runs each operation as a timed phase
//! ([`load`]): `put` stores every block once, `get` reads the stored blocks
//! back (cycling over them), checking status, length and the bytes that
//! name the block; `--verify` then reads each block once more, untimed, and
//! checks its MD5. The result is a [`Report`] in JSON.

pub mod blocks;
pub mod body;
pub mod load;
pub mod report;
pub mod scheme;
pub mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::blocks::{Block, Pool, WARMUP_BASE};
use crate::load::{Ctx, Phase, Until};
pub use crate::report::{Op, OpResult, Report};
pub use crate::scheme::Scheme;
use crate::stats::Latency;

/// Most distinct bases a pool holds (tiny blocks would otherwise get
/// millions); the tails keep every block unique anyway.
const MAX_BASES: u64 = 1 << 16;

/// How long or how much each phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// This many requests per phase.
    Count(u64),
    /// Requests started during this long, per phase.
    Duration(Duration),
}

/// One run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL of the server (`http://127.0.0.1:PORT`).
    pub url: String,
    /// Path scheme.
    pub scheme: Scheme,
    /// Operations, in order.
    pub ops: Vec<Op>,
    /// Block size in bytes (at least 16).
    pub size: u64,
    /// Phase length.
    pub limit: Limit,
    /// Requests in flight.
    pub concurrency: usize,
    /// Untimed requests before each phase.
    pub warmup: usize,
    /// Where the blocks come from.
    pub seed: u64,
    /// Check every block's MD5 after the GET phase (untimed).
    pub verify: bool,
    /// Longest wait for one request.
    pub timeout: Duration,
    /// Most memory for block bases.
    pub pool_memory: u64,
    /// Copies to ask for on PUT (`X-Keep-Desired-Replicas`).
    pub replicas: Option<u32>,
    /// After the PUT phase, flush the file system that holds this path
    /// (`syncfs`), timed, and report it.
    pub flush_after_put: Option<PathBuf>,
    /// With a count: the GET phase reads every stored block this many
    /// times (at least once), so that it lasts long enough to measure.
    pub get_passes: u32,
}

/// Runs the operations and reports them. Failed requests are counted in
/// the report, not returned as an error; warm-up failures are errors.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(
        opts.size >= blocks::TAIL_LEN as u64,
        "blocks are at least {} bytes",
        blocks::TAIL_LEN
    );
    anyhow::ensure!(
        !opts.ops.is_empty(),
        "nothing to do: give put, get or put,get"
    );
    let get_alone = opts.ops.first() == Some(&Op::Get);
    anyhow::ensure!(
        !(get_alone && matches!(opts.limit, Limit::Duration(_))),
        "get without a put first needs --count: the number of blocks an earlier put (same --seed and --size) stored"
    );
    let by_memory = (opts.pool_memory / opts.size).max(1);
    let planned = match opts.limit {
        Limit::Count(n) => n.saturating_add(opts.warmup as u64),
        Limit::Duration(_) => by_memory,
    };
    let bases = usize::try_from(by_memory.min(planned).clamp(1, MAX_BASES)).unwrap_or(1);
    let pool = Pool::new(opts.size, opts.seed, bases);
    // In count mode every block's MD5 is ready before the clock starts; in
    // duration mode a block's MD5 is one 16-byte update of a copied state.
    let precomputed: Arc<Vec<Block>> = Arc::new(match opts.limit {
        Limit::Count(n) => (0..n).map(|i| pool.block(i)).collect(),
        Limit::Duration(_) => Vec::new(),
    });
    let ctx = Arc::new(Ctx {
        client: load::client(opts.concurrency),
        base: opts.url.trim_end_matches('/').to_owned(),
        scheme: opts.scheme,
        pool,
        timeout: opts.timeout,
        replicas: opts.replicas,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let results = runtime.block_on(run_ops(opts, ctx.clone(), precomputed))?;
    Ok(Report {
        tool: "keep-bench",
        url: opts.url.clone(),
        scheme: opts.scheme,
        size: opts.size,
        concurrency: opts.concurrency,
        seed: opts.seed,
        warmup: opts.warmup,
        bases: ctx.pool.bases(),
        results,
    })
}

async fn run_ops(
    opts: &Options,
    ctx: Arc<Ctx>,
    precomputed: Arc<Vec<Block>>,
) -> anyhow::Result<Vec<OpResult>> {
    let until = match opts.limit {
        Limit::Count(n) => Until::Count(n),
        Limit::Duration(d) => Until::Elapsed(d),
    };
    let block_at = block_source(&ctx, precomputed);
    // The blocks stored so far and where to read them.
    let mut stored: Vec<(Block, String)> = Vec::new();
    let mut results = Vec::new();
    for &op in &opts.ops {
        let result = match op {
            Op::Put => {
                let (put, blocks) = put_op(opts, &ctx, until, &block_at).await?;
                stored = blocks;
                put
            }
            Op::Get => {
                if stored.is_empty() {
                    stored = stored_earlier(opts, &ctx, &block_at)?;
                }
                get_op(opts, &ctx, until, &stored).await?
            }
        };
        results.push(result);
    }
    Ok(results)
}

/// Block `i` of the run: precomputed in count mode, made on demand in
/// duration mode.
fn block_source(
    ctx: &Arc<Ctx>,
    precomputed: Arc<Vec<Block>>,
) -> impl Fn(u64) -> Block + Clone + Send + Sync + 'static {
    let ctx = ctx.clone();
    move |i: u64| match precomputed.get(i as usize) {
        Some(b) => b.clone(),
        None => ctx.pool.block(i),
    }
}

/// The PUT phase (after its warm-up): its result, and the blocks it
/// stored with where to read them, in block order.
async fn put_op(
    opts: &Options,
    ctx: &Arc<Ctx>,
    until: Until,
    block_at: &(impl Fn(u64) -> Block + Clone + Send + Sync + 'static),
) -> anyhow::Result<(OpResult, Vec<(Block, String)>)> {
    let warm_ctx = ctx.clone();
    let warm_n = Until::Count(opts.warmup as u64);
    let warm = phase_put(ctx, opts.concurrency, warm_n, move |i| {
        warm_ctx.pool.block(WARMUP_BASE + i)
    })
    .await;
    ensure_clean("PUT warm-up", &warm)?;
    let mut timed = phase_put(ctx, opts.concurrency, until, block_at.clone()).await;
    timed.paths.sort_unstable_by_key(|(i, _)| *i);
    let stored = std::mem::take(&mut timed.paths)
        .into_iter()
        .map(|(i, path)| (block_at(i), path))
        .collect();
    let mut put = result(Op::Put, timed, None);
    if let Some(dir) = &opts.flush_after_put {
        let flush = flush(dir.clone()).await?;
        put.flushed(flush);
    }
    Ok((put, stored))
}

/// For a GET without a PUT before it: the `--count` blocks an earlier
/// PUT with the same seed and size stored.
fn stored_earlier(
    opts: &Options,
    ctx: &Ctx,
    block_at: impl Fn(u64) -> Block,
) -> anyhow::Result<Vec<(Block, String)>> {
    let Limit::Count(n) = opts.limit else {
        anyhow::bail!("no blocks to GET: the PUT phase stored none");
    };
    Ok((0..n)
        .map(|i| {
            let b = block_at(i);
            let path = ctx.scheme.get_path(&b.md5_hex(), opts.size);
            (b, path)
        })
        .collect())
}

/// The GET phase over `stored` (after its warm-up), then with `--verify`
/// the untimed pass checking every block's MD5.
async fn get_op(
    opts: &Options,
    ctx: &Arc<Ctx>,
    until: Until,
    stored: &[(Block, String)],
) -> anyhow::Result<OpResult> {
    anyhow::ensure!(!stored.is_empty(), "no blocks to GET");
    let stored = Arc::new(stored.to_vec());
    let warm_n = (opts.warmup as u64).min(stored.len() as u64);
    let warm = phase_get(ctx, opts.concurrency, Until::Count(warm_n), &stored, false).await;
    ensure_clean("GET warm-up", &warm)?;
    let get_until = match until {
        Until::Count(_) => {
            Until::Count((stored.len() as u64).saturating_mul(u64::from(opts.get_passes.max(1))))
        }
        elapsed => elapsed,
    };
    let mut timed = phase_get(ctx, opts.concurrency, get_until, &stored, false).await;
    let verified = if opts.verify {
        Some(verify_pass(ctx, opts.concurrency, &stored, &mut timed).await)
    } else {
        None
    };
    Ok(result(Op::Get, timed, verified))
}

/// Reads every stored block once more, untimed, checking its MD5; its
/// failures count as `timed`'s. Returns how many checked out.
async fn verify_pass(
    ctx: &Arc<Ctx>,
    concurrency: usize,
    stored: &Arc<Vec<(Block, String)>>,
    timed: &mut Phase,
) -> u64 {
    let check = Until::Count(stored.len() as u64);
    let pass = phase_get(ctx, concurrency, check, stored, true).await;
    timed.errors += pass.errors;
    if timed.first_error.is_none() {
        timed.first_error = pass.first_error;
    }
    pass.ops
}

async fn phase_put(
    ctx: &Arc<Ctx>,
    concurrency: usize,
    until: Until,
    block_at: impl Fn(u64) -> Block + Send + Sync + 'static,
) -> Phase {
    let ctx = ctx.clone();
    load::phase(concurrency, until, move |i| {
        let ctx = ctx.clone();
        let block = block_at(i);
        async move { load::put(&ctx, &block).await }
    })
    .await
}

async fn phase_get(
    ctx: &Arc<Ctx>,
    concurrency: usize,
    until: Until,
    stored: &Arc<Vec<(Block, String)>>,
    md5: bool,
) -> Phase {
    let ctx = ctx.clone();
    let stored = stored.clone();
    load::phase(concurrency, until, move |i| {
        let ctx = ctx.clone();
        let stored = stored.clone();
        async move {
            let (block, path) = &stored[(i % stored.len() as u64) as usize];
            load::get(&ctx, block, path, md5).await
        }
    })
    .await
}

/// Flushes the file system that holds `dir` and says how long it took.
async fn flush(dir: PathBuf) -> anyhow::Result<Duration> {
    tokio::task::spawn_blocking(move || {
        let start = std::time::Instant::now();
        let f = std::fs::File::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
        rustix::fs::syncfs(&f).with_context(|| format!("flushing {}", dir.display()))?;
        Ok(start.elapsed())
    })
    .await
    .context("the flush panicked")?
}

fn ensure_clean(what: &str, phase: &Phase) -> anyhow::Result<()> {
    match &phase.first_error {
        None => Ok(()),
        Some(e) => anyhow::bail!(
            "{what}: {} of {} requests failed; first: {e}",
            phase.errors,
            phase.errors + phase.ops
        ),
    }
}

fn result(op: Op, phase: Phase, verified: Option<u64>) -> OpResult {
    OpResult {
        op,
        ops: phase.ops,
        errors: phase.errors,
        first_error: phase.first_error,
        bytes: phase.bytes,
        seconds: phase.wall.as_secs_f64(),
        mb_per_s: stats::mb_per_s(phase.bytes, phase.wall),
        ops_per_s: stats::ops_per_s(phase.ops, phase.wall),
        latency: Latency::of(phase.latencies),
        verified,
        flush_seconds: None,
        durable_mb_per_s: None,
    }
}

/// One line for people: `put 4 KiB: 123.4 MB/s, 30123 ops/s, p50 0.21 ms, p99 1.10 ms`.
pub fn summary_line(size: u64, r: &OpResult) -> String {
    let mut line = format!(
        "{} {}: {:.1} MB/s, {:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms ({} ops in {:.2} s)",
        r.op,
        keep_locator::format_byte_size(size),
        r.mb_per_s,
        r.ops_per_s,
        r.latency.p50_ms,
        r.latency.p99_ms,
        r.ops,
        r.seconds
    );
    if let (Some(f), Some(d)) = (r.flush_seconds, r.durable_mb_per_s) {
        line.push_str(&format!(", then flush {f:.2} s: {d:.1} MB/s durable"));
    }
    if let Some(v) = r.verified {
        line.push_str(&format!(", {v} verified"));
    }
    if r.errors > 0 {
        line.push_str(&format!(", {} ERRORS", r.errors));
    }
    line
}
