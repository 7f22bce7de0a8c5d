//! The JSON a run writes: one object per run, one result per operation.
//!
//! `cargo xtask bench` reads these fields (`results[].op`, `ops`, `errors`,
//! `bytes`, `seconds`, `mb_per_s`, `ops_per_s`, `p50_ms`, `p99_ms`,
//! `flush_seconds`, `durable_mb_per_s`); keep
//! them stable.

use serde::Serialize;

use crate::Scheme;
use crate::stats::Latency;

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `keep-bench`.
    pub tool: &'static str,
    /// The server's base URL.
    pub url: String,
    /// The path scheme.
    pub scheme: Scheme,
    /// Block size in bytes.
    pub size: u64,
    /// Requests in flight.
    pub concurrency: usize,
    /// The seed blocks came from (`--seed` repeats them).
    pub seed: u64,
    /// Untimed operations before each timed phase.
    pub warmup: usize,
    /// Distinct random bases the blocks were made from.
    pub bases: usize,
    /// One entry per operation, in the order run.
    pub results: Vec<OpResult>,
}

/// An operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Store unique blocks.
    Put,
    /// Read them back.
    Get,
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::Put => "put",
            Op::Get => "get",
        })
    }
}

/// One timed phase.
#[derive(Debug, Clone, Serialize)]
pub struct OpResult {
    /// What was done.
    pub op: Op,
    /// Requests that succeeded.
    pub ops: u64,
    /// Requests that failed (wrong status, wrong length, wrong content,
    /// transport error, timeout).
    pub errors: u64,
    /// The first failure, for the log.
    pub first_error: Option<String>,
    /// Block bytes moved by successful requests.
    pub bytes: u64,
    /// Wall time of the phase.
    pub seconds: f64,
    /// `bytes` / `seconds`, in 10^6 bytes per second.
    pub mb_per_s: f64,
    /// `ops` / `seconds`.
    pub ops_per_s: f64,
    /// Per-request latencies of successful requests.
    #[serde(flatten)]
    pub latency: Latency,
    /// GET only, with `--verify`: blocks read again after the timed phase
    /// and found to have the right MD5.
    pub verified: Option<u64>,
    /// PUT only, with `--flush-after-put`: how long flushing the file
    /// system took after the phase (what the server left for the disk).
    pub flush_seconds: Option<f64>,
    /// `bytes` / (`seconds` + `flush_seconds`): the rate at which the
    /// phase's data became durable.
    pub durable_mb_per_s: Option<f64>,
}

impl OpResult {
    /// Records the flush that followed the phase.
    pub fn flushed(&mut self, flush: std::time::Duration) {
        let total = std::time::Duration::from_secs_f64(self.seconds) + flush;
        self.flush_seconds = Some(flush.as_secs_f64());
        self.durable_mb_per_s = Some(crate::stats::mb_per_s(self.bytes, total));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_what_xtask_reads() {
        let report = Report {
            tool: "keep-bench",
            url: "http://127.0.0.1:1".into(),
            scheme: Scheme::Keep,
            size: 4096,
            concurrency: 2,
            seed: 9,
            warmup: 1,
            bases: 3,
            results: vec![OpResult {
                op: Op::Get,
                ops: 10,
                errors: 0,
                first_error: None,
                bytes: 40960,
                seconds: 0.5,
                mb_per_s: 0.08192,
                ops_per_s: 20.0,
                latency: Latency {
                    p50_ms: 1.0,
                    p99_ms: 2.0,
                    mean_ms: 1.2,
                    max_ms: 2.5,
                },
                verified: Some(10),
                flush_seconds: None,
                durable_mb_per_s: None,
            }],
        };
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["tool"], "keep-bench");
        assert_eq!(v["scheme"], "keep");
        assert_eq!(v["size"], 4096);
        let r = &v["results"][0];
        assert_eq!(r["op"], "get");
        for key in [
            "ops",
            "errors",
            "bytes",
            "seconds",
            "mb_per_s",
            "ops_per_s",
            "p50_ms",
            "p99_ms",
            "mean_ms",
            "max_ms",
            "verified",
        ] {
            assert!(r[key].is_number(), "{key} missing in {r}");
        }
        assert!(r["first_error"].is_null());
        assert!(r["flush_seconds"].is_null());
    }

    #[test]
    fn a_flush_counts_in_the_durable_rate() {
        let mut r = OpResult {
            op: Op::Put,
            ops: 2,
            errors: 0,
            first_error: None,
            bytes: 4_000_000,
            seconds: 1.0,
            mb_per_s: 4.0,
            ops_per_s: 2.0,
            latency: Latency {
                p50_ms: 1.0,
                p99_ms: 2.0,
                mean_ms: 1.2,
                max_ms: 2.5,
            },
            verified: None,
            flush_seconds: None,
            durable_mb_per_s: None,
        };
        r.flushed(std::time::Duration::from_secs(1));
        assert_eq!(r.flush_seconds, Some(1.0));
        let durable = r.durable_mb_per_s.unwrap();
        assert!((durable - 2.0).abs() < 1e-9, "{durable}");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["durable_mb_per_s"].as_f64(), Some(durable));
    }
}
