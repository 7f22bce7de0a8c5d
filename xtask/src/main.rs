//! Project automation, the matklad way: `cargo xtask <task>`.
//!
//! - `cluster`: a local cluster on loopback (introducer + storage nodes).
//! - `test`: installs what the tests need (a Python virtualenv with the
//!   Arvados SDK and the S3 test server), checks formatting, lints and docs,
//!   then runs every test of the workspace.
//! - `bench`: the node against nginx (WebDAV) on the same machine: MB/s,
//!   ops/s, latency, ratios and the node's peak RSS, as a table and JSON
//!   under `target/bench/`.

mod bench;
mod cluster;
mod test;

fn main() {
    if let Err(e) = dispatch() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "test" => test::run(&rest),
        "cluster" => cluster::run(&rest),
        "bench" => bench::run(&rest),
        "" | "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => anyhow::bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  cluster [--nodes N] [--dir DIR] [--base-port P] [--replication R] [--profile release|debug]
        one introducer (port P) and N storage nodes (ports P+1..P+N) on loopback;
        writes DIR/cluster.json once all answer; Ctrl-C or SIGTERM stops them all
        (defaults: 3 nodes, target/cluster, 25100, 2 copies, release build)
  test [--no-lint] [-- <cargo test args>]
        install the test dependencies (Python virtualenv under target/test-venv),
        check fmt, clippy and docs, and run the whole test suite
  bench [--sizes 4k,1m,64m] [--concurrency N] [--quick]
        [--scenarios compare,peak-rss,two-copy-put]
        build keepstore and keep-bench (release), PUT then GET unique blocks
        against a fresh node and against nginx with WebDAV PUT (when installed),
        print MB/s, ops/s, p50/p99, node/nginx ratios and the node's peak RSS,
        and write target/bench/<stamp>.json and target/bench/latest.json";

/// The workspace root (the parent of this crate's folder).
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// Runs a command in the workspace root, failing with its name if it fails.
pub fn run_cmd(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: {shown}");
    let status = cmd.current_dir(root()).status()?;
    anyhow::ensure!(status.success(), "{shown} failed: {status}");
    Ok(())
}
