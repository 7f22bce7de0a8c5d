//! The traffic of the last ten minutes: requests, bytes and latencies of
//! block PUTs and GETs, in ten-second slots, for the status page's charts.
//!
//! Bounded: a ring of [`SLOTS`] slots per operation, each a count, a byte
//! sum and a latency histogram of [`BUCKETS`] buckets, whatever the load.
//! A slot is reused once it is older than the window. Latency quantiles
//! come from the histogram: each bucket spans a factor of 2^(1/4), so a
//! quantile is known to within 19% (reported as its bucket's upper bound).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// Seconds per slot.
pub const SLOT_SECONDS: u64 = 10;
/// Slots in the window (ten minutes).
pub const SLOTS: usize = 60;
/// Latency buckets: from 16 µs up, four per doubling; the last takes
/// everything above 16.7 s.
pub const BUCKETS: usize = 81;
const FIRST_BUCKET_MICROS: f64 = 16.0;

/// What is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A block stored (`PUT /{md5}`).
    Put,
    /// A block read (`GET /{locator}`).
    Get,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Which slot of time (unix seconds / [`SLOT_SECONDS`]) this holds.
    stamp: u64,
    requests: u64,
    bytes: u64,
    latency: [u32; BUCKETS],
}

impl Slot {
    const EMPTY: Slot = Slot {
        stamp: 0,
        requests: 0,
        bytes: 0,
        latency: [0; BUCKETS],
    };
}

/// The recorder: cheap to call on every request (one uncontended lock,
/// no allocation).
#[derive(Debug)]
pub struct Traffic {
    slots: Mutex<[[Slot; SLOTS]; 2]>,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            slots: Mutex::new([[Slot::EMPTY; SLOTS]; 2]),
        }
    }
}

/// One operation's traffic over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpTraffic {
    /// Requests per second in each slot, oldest first; the last slot is
    /// the one under way (its rate counts the seconds it has had).
    pub requests_per_second: Vec<f64>,
    /// Bytes per second in each slot, the same way.
    pub bytes_per_second: Vec<f64>,
    /// Requests in the window.
    pub requests: u64,
    /// Bytes in the window.
    pub bytes: u64,
    /// Requests per second over the last minute.
    pub recent_requests_per_second: f64,
    /// Bytes per second over the last minute.
    pub recent_bytes_per_second: f64,
    /// Median latency in the window, in milliseconds (none without requests).
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency in the window, in milliseconds.
    pub p99_ms: Option<f64>,
}

/// The traffic of the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficReport {
    /// Seconds per slot.
    pub slot_seconds: u64,
    /// Seconds the window spans.
    pub window_seconds: u64,
    /// Block PUTs.
    pub put: OpTraffic,
    /// Block GETs.
    pub get: OpTraffic,
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// The bucket of a latency.
fn bucket(latency: Duration) -> usize {
    let micros = latency.as_secs_f64() * 1e6;
    if micros <= FIRST_BUCKET_MICROS {
        return 0;
    }
    let b = ((micros / FIRST_BUCKET_MICROS).log2() * 4.0).ceil();
    (b as usize).min(BUCKETS - 1)
}

/// The upper bound of a bucket, in milliseconds.
fn bucket_upper_ms(b: usize) -> f64 {
    FIRST_BUCKET_MICROS * 2f64.powf(b as f64 / 4.0) / 1000.0
}

impl Traffic {
    /// Records one finished request.
    pub fn record(&self, op: Op, bytes: u64, latency: Duration) {
        self.record_at(unix_now(), op, bytes, latency);
    }

    /// [`Traffic::record`] at a given time since the epoch.
    pub fn record_at(&self, now: Duration, op: Op, bytes: u64, latency: Duration) {
        let stamp = now.as_secs() / SLOT_SECONDS;
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut slots[op as usize][(stamp % SLOTS as u64) as usize];
        if slot.stamp != stamp {
            *slot = Slot {
                stamp,
                ..Slot::EMPTY
            };
        }
        slot.requests += 1;
        slot.bytes = slot.bytes.saturating_add(bytes);
        let b = &mut slot.latency[bucket(latency)];
        *b = b.saturating_add(1);
    }

    /// The window as of now.
    pub fn report(&self) -> TrafficReport {
        self.report_at(unix_now())
    }

    /// The window ending at `now` (since the epoch).
    pub fn report_at(&self, now: Duration) -> TrafficReport {
        let slots = *self.slots.lock().unwrap_or_else(|e| e.into_inner());
        TrafficReport {
            slot_seconds: SLOT_SECONDS,
            window_seconds: SLOT_SECONDS * SLOTS as u64,
            put: summarize(&slots[Op::Put as usize], now),
            get: summarize(&slots[Op::Get as usize], now),
        }
    }
}

fn summarize(ring: &[Slot; SLOTS], now: Duration) -> OpTraffic {
    let current = now.as_secs() / SLOT_SECONDS;
    // Seconds the current slot has had so far (at least one).
    let partial = (now.as_secs() % SLOT_SECONDS + 1) as f64;
    let mut out = OpTraffic {
        requests_per_second: Vec::with_capacity(SLOTS),
        bytes_per_second: Vec::with_capacity(SLOTS),
        requests: 0,
        bytes: 0,
        recent_requests_per_second: 0.0,
        recent_bytes_per_second: 0.0,
        p50_ms: None,
        p99_ms: None,
    };
    let mut latency = [0u64; BUCKETS];
    let (mut recent_requests, mut recent_bytes) = (0u64, 0u64);
    for age in (0..SLOTS as u64).rev() {
        let Some(stamp) = current.checked_sub(age) else {
            out.requests_per_second.push(0.0);
            out.bytes_per_second.push(0.0);
            continue;
        };
        let slot = &ring[(stamp % SLOTS as u64) as usize];
        let (requests, bytes) = if slot.stamp == stamp {
            (slot.requests, slot.bytes)
        } else {
            (0, 0)
        };
        if slot.stamp == stamp {
            for (sum, n) in latency.iter_mut().zip(slot.latency) {
                *sum += u64::from(n);
            }
        }
        let seconds = if age == 0 {
            partial
        } else {
            SLOT_SECONDS as f64
        };
        out.requests_per_second.push(requests as f64 / seconds);
        out.bytes_per_second.push(bytes as f64 / seconds);
        out.requests += requests;
        out.bytes = out.bytes.saturating_add(bytes);
        // The last minute: the six slots before the current one.
        if (1..=6).contains(&age) {
            recent_requests += requests;
            recent_bytes = recent_bytes.saturating_add(bytes);
        }
    }
    out.recent_requests_per_second = recent_requests as f64 / 60.0;
    out.recent_bytes_per_second = recent_bytes as f64 / 60.0;
    out.p50_ms = quantile(&latency, 0.50);
    out.p99_ms = quantile(&latency, 0.99);
    out
}

/// The upper bound of the bucket holding quantile `q`.
fn quantile(histogram: &[u64; BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64 * q).ceil() as u64).max(1);
    let mut seen = 0;
    for (b, n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(bucket_upper_ms(b));
        }
    }
    Some(bucket_upper_ms(BUCKETS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: u64 = 1_800_000_000;

    fn at(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn counts_land_in_their_slot_and_age_out_of_the_window() {
        let t = Traffic::default();
        t.record_at(at(T0), Op::Put, 4096, Duration::from_millis(2));
        t.record_at(at(T0 + 1), Op::Put, 4096, Duration::from_millis(2));
        t.record_at(at(T0 + 1), Op::Get, 100, Duration::from_millis(1));
        let r = t.report_at(at(T0 + 15));
        assert_eq!(r.put.requests, 2);
        assert_eq!(r.put.bytes, 8192);
        assert_eq!(r.get.requests, 1);
        assert_eq!(r.put.requests_per_second.len(), SLOTS);
        assert_eq!(
            r.put.requests_per_second[SLOTS - 2],
            0.2,
            "two in the slot before"
        );
        assert_eq!(r.put.recent_requests_per_second, 2.0 / 60.0);
        // Ten minutes on, the slot has left the window.
        let later = t.report_at(at(T0 + 600));
        assert_eq!(later.put.requests, 0);
        assert_eq!(later.put.p50_ms, None);
        // And a new request in its ring position starts it afresh.
        t.record_at(at(T0 + 600), Op::Put, 1, Duration::from_millis(2));
        assert_eq!(t.report_at(at(T0 + 601)).put.requests, 1);
    }

    #[test]
    fn quantiles_come_within_a_bucket() {
        let t = Traffic::default();
        for i in 0..100 {
            let ms = if i < 99 { 1 } else { 500 };
            t.record_at(at(T0), Op::Get, 0, Duration::from_millis(ms));
        }
        let r = t.report_at(at(T0));
        let p50 = r.get.p50_ms.unwrap();
        assert!((1.0..1.19).contains(&p50), "p50 {p50}");
        let p99 = r.get.p99_ms.unwrap();
        assert!((1.0..1.19).contains(&p99), "99 of 100 took 1 ms: {p99}");
        t.record_at(at(T0), Op::Get, 0, Duration::from_millis(500));
        let p99 = t.report_at(at(T0)).get.p99_ms.unwrap();
        assert!((500.0..595.0).contains(&p99), "p99 {p99}");
    }

    proptest! {
        #[test]
        fn a_latency_is_at_most_its_bucket_bound_and_above_the_one_before(micros in 17u64..10_000_000) {
            let d = Duration::from_micros(micros);
            let b = bucket(d);
            let ms = micros as f64 / 1000.0;
            prop_assert!(ms <= bucket_upper_ms(b) * 1.000_001);
            prop_assert!(b == 0 || ms > bucket_upper_ms(b - 1) * 0.999_999);
        }
    }
}
