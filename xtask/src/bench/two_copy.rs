//! The 2-copy scenario: PUTs through one node of a 3-node cluster (as
//! `cargo xtask cluster` starts it), asking for one copy and then for two,
//! on the same node and machine. The ratio is the cost of replication.

use std::sync::atomic::AtomicBool;

use serde_json::{Value, json};

use super::{Bench, Load, OpFigures, run_load, table};
use crate::cluster;

/// The block size of the scenario.
const SIZE: u64 = 64 << 20;
/// The target: 2-copy PUT throughput over single-copy.
pub const TARGET: f64 = 0.45;

/// What the scenario measured.
#[derive(Debug)]
pub struct TwoCopy {
    count: u64,
    concurrency: usize,
    one: Option<OpFigures>,
    two: Option<OpFigures>,
}

impl TwoCopy {
    fn ratio(&self) -> Option<f64> {
        table::ratio(
            self.two.as_ref()?.mb_per_s,
            self.one.as_ref().map(|f| f.mb_per_s),
        )
    }
}

impl Bench {
    /// Runs the scenario on a fresh cluster in the run folder.
    pub(super) fn two_copy(&self) -> anyhow::Result<TwoCopy> {
        cluster::build("release")?;
        let bin_dir = self
            .keepstore
            .parent()
            .map(|p| p.to_owned())
            .unwrap_or_default();
        let opts = cluster::Options {
            nodes: 3,
            dir: self.run_dir.path.join("cluster"),
            base_port: free_base_port(4)?,
            replication: 1,
            profile: "release".into(),
        };
        let running = cluster::start(&opts, &bin_dir, &AtomicBool::new(false))?;
        let url = running.urls[0].clone();
        eprintln!("xtask: 2-copy scenario on a 3-node cluster; PUTs through {url}");
        let count = if self.args.quick { 8 } else { 32 };
        let concurrency = self.args.concurrency.min(8);
        let mut figures = Vec::new();
        for (copies, seed) in [(1, 11), (2, 12)] {
            let load = Load {
                ops: "put",
                size: SIZE,
                count,
                concurrency,
                warmup: 2,
                seed: self.seed ^ seed,
                verify: false,
                replicas: Some(copies),
                flush_after_put: None,
                get_passes: 1,
            };
            let json = self.run_dir.path.join(format!("two-copy-{copies}.json"));
            figures.push(
                run_load(&self.keep_bench, &url, "keep", &load, &json)?
                    .into_iter()
                    .next(),
            );
        }
        drop(running);
        let two = figures.pop().flatten();
        let one = figures.pop().flatten();
        Ok(TwoCopy {
            count,
            concurrency,
            one,
            two,
        })
    }
}

/// The scenario's lines in the printed report.
pub fn text(t: &TwoCopy) -> String {
    let mbs = |f: &Option<OpFigures>| {
        f.as_ref()
            .map_or("no figures".into(), |f| format!("{:.1} MB/s", f.mb_per_s))
    };
    let verdict = match t.ratio() {
        Some(r) if r >= TARGET => format!("{r:.2}, met"),
        Some(r) => format!("{r:.2}, MISSED"),
        None => "no ratio".into(),
    };
    format!(
        "\n2-copy PUT through a 3-node cluster ({} x {}, concurrency {}): 1 copy {}, 2 copies {}; ratio {verdict} (target >= {TARGET})\n",
        super::format_byte_size(SIZE),
        t.count,
        t.concurrency,
        mbs(&t.one),
        mbs(&t.two),
    )
}

/// The scenario in the JSON report.
pub fn to_json(t: &TwoCopy) -> Value {
    let fig = |f: &Option<OpFigures>| {
        f.as_ref().map(|f| json!({ "mb_per_s": f.mb_per_s, "p50_ms": f.p50_ms, "p99_ms": f.p99_ms, "errors": f.errors }))
    };
    json!({
        "size": SIZE,
        "count": t.count,
        "concurrency": t.concurrency,
        "one_copy": fig(&t.one),
        "two_copies": fig(&t.two),
        "ratio": t.ratio(),
        "target_ratio": TARGET,
    })
}

/// A base port with `n` free ports after it.
fn free_base_port(n: u16) -> anyhow::Result<u16> {
    for _ in 0..200 {
        let base = super::servers::free_port()?;
        if base < u16::MAX - n
            && (1..=n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return Ok(base);
        }
    }
    anyhow::bail!("no run of {n} free ports")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(mb: f64) -> OpFigures {
        OpFigures {
            op: "put".into(),
            ops: 8,
            errors: 0,
            first_error: None,
            bytes: 8 * SIZE,
            seconds: 1.0,
            mb_per_s: mb,
            ops_per_s: 8.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            verified: None,
            flush_seconds: None,
            durable_mb_per_s: None,
        }
    }

    #[test]
    fn reports_the_ratio_against_the_target() {
        let t = TwoCopy {
            count: 8,
            concurrency: 4,
            one: Some(fig(400.0)),
            two: Some(fig(200.0)),
        };
        assert!(text(&t).contains("ratio 0.50, met"), "{}", text(&t));
        assert_eq!(to_json(&t)["ratio"], 0.5);
        let slow = TwoCopy {
            two: Some(fig(100.0)),
            ..t
        };
        assert!(text(&slow).contains("MISSED"));
        let none = TwoCopy {
            count: 8,
            concurrency: 4,
            one: None,
            two: None,
        };
        assert!(text(&none).contains("no ratio"));
    }
}
