//! Latency percentiles and rates.

use std::time::Duration;

/// The `p`-th percentile (0 < p <= 100) of sorted samples, by nearest
/// rank: the smallest sample with at least `p`% of the samples at or below
/// it. Zero for no samples.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// Summarises per-operation latencies in nanoseconds (sorted here).
    pub fn of(mut nanos: Vec<u64>) -> Latency {
        if nanos.is_empty() {
            return Latency::default();
        }
        nanos.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        let sum: u128 = nanos.iter().map(|&n| u128::from(n)).sum();
        Latency {
            p50_ms: ms(percentile(&nanos, 50.0)),
            p99_ms: ms(percentile(&nanos, 99.0)),
            mean_ms: sum as f64 / nanos.len() as f64 / 1e6,
            max_ms: ms(*nanos.last().expect("not empty")),
        }
    }
}

/// Decimal megabytes (10^6 bytes) per second.
pub fn mb_per_s(bytes: u64, wall: Duration) -> f64 {
    per_s(bytes as f64 / 1e6, wall)
}

/// Operations per second.
pub fn ops_per_s(ops: u64, wall: Duration) -> f64 {
    per_s(ops as f64, wall)
}

fn per_s(amount: f64, wall: Duration) -> f64 {
    let s = wall.as_secs_f64();
    if s > 0.0 { amount / s } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.1), 1);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[1, 2], 50.0), 1);
        assert_eq!(percentile(&[1, 2], 99.0), 2);
        assert_eq!(percentile(&[], 50.0), 0);
        // Ten samples: p99 is the largest.
        let ten: Vec<u64> = (10..20).collect();
        assert_eq!(percentile(&ten, 99.0), 19);
        assert_eq!(percentile(&ten, 50.0), 14);
    }

    #[test]
    fn latency_summary_sorts_and_converts() {
        let l = Latency::of(vec![3_000_000, 1_000_000, 2_000_000]);
        assert_eq!(l.p50_ms, 2.0);
        assert_eq!(l.p99_ms, 3.0);
        assert_eq!(l.max_ms, 3.0);
        assert_eq!(l.mean_ms, 2.0);
        assert_eq!(Latency::of(Vec::new()), Latency::default());
    }

    #[test]
    fn rates() {
        assert_eq!(mb_per_s(50_000_000, Duration::from_millis(500)), 100.0);
        assert_eq!(ops_per_s(30, Duration::from_secs(3)), 10.0);
        assert_eq!(ops_per_s(30, Duration::ZERO), 0.0);
    }
}
