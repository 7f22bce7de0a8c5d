//! The one backoff policy: doubling delays with a ceiling and jitter.

use std::time::Duration;

use rand::Rng;

/// One backoff policy for the whole code base: `first` doubling per
/// attempt up to `max`, optional jitter in [0.5, 1.0) of the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub first: Duration,
    /// The longest delay; it also caps `first`.
    pub max: Duration,
    /// Whether each delay is scaled by a random factor in [0.5, 1.0), so
    /// many clients that failed together do not retry in step.
    pub jitter: bool,
}

impl Default for Backoff {
    /// 1 s doubling up to 60 s, with jitter.
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: true,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt`: attempt 1 waits `first`
    /// (0 is treated as 1), each further one twice the one before, never
    /// more than `max`; huge attempts do not overflow. With jitter the
    /// value is scaled by a random factor in [0.5, 1.0).
    pub fn delay(&self, attempt: u32) -> Duration {
        let shift = attempt.max(1) - 1;
        let max = self.max.as_nanos();
        let nanos = if shift >= 64 {
            max
        } else {
            self.first
                .as_nanos()
                .saturating_mul(1u128 << shift)
                .min(max)
        };
        let nanos = if self.jitter {
            let per_million: u128 = rand::rng().random_range(500_000..1_000_000);
            nanos * per_million / 1_000_000
        } else {
            nanos
        };
        from_nanos(nanos)
    }
}

/// `nanos` as a duration; `nanos` is at most a `Duration`'s worth.
fn from_nanos(nanos: u128) -> Duration {
    const PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9 and fits.
    let sub = u32::try_from(nanos % PER_SEC).unwrap_or(0);
    Duration::new(secs, sub)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn plain(first_ms: u64, max_ms: u64) -> Backoff {
        Backoff {
            first: Duration::from_millis(first_ms),
            max: Duration::from_millis(max_ms),
            jitter: false,
        }
    }

    #[test]
    fn doubles_up_to_the_ceiling() {
        let b = plain(200, 1000);
        let got: Vec<u64> = (0..6).map(|a| b.delay(a).as_millis() as u64).collect();
        assert_eq!(got, vec![200, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
        assert_eq!(b.delay(64), Duration::from_secs(1));
        let huge = Backoff {
            first: Duration::MAX,
            max: Duration::MAX,
            jitter: true,
        };
        assert!(huge.delay(u32::MAX) >= Duration::MAX / 2);
        assert_eq!(plain(5000, 1000).delay(1), Duration::from_secs(1));
    }

    #[test]
    fn default_is_one_second_to_a_minute_with_jitter() {
        let b = Backoff::default();
        assert_eq!(b.first, Duration::from_secs(1));
        assert_eq!(b.max, Duration::from_secs(60));
        assert!(b.jitter);
    }

    proptest! {
        #[test]
        fn within_bounds(
            first in 0u64..10_000_000_000,
            extra in 0u64..100_000_000_000,
            attempt in any::<u32>(),
            jitter in any::<bool>(),
        ) {
            let b = Backoff {
                first: Duration::from_nanos(first),
                max: Duration::from_nanos(first + extra),
                jitter,
            };
            let d = b.delay(attempt);
            prop_assert!(d >= b.first / 2, "{d:?} below half of {:?}", b.first);
            prop_assert!(d <= b.max, "{d:?} above {:?}", b.max);
        }

        #[test]
        fn monotone_without_jitter(
            first in 0u64..10_000_000_000,
            extra in 0u64..100_000_000_000,
            attempt in 0u32..200,
        ) {
            let b = Backoff {
                first: Duration::from_nanos(first),
                max: Duration::from_nanos(first + extra),
                jitter: false,
            };
            prop_assert!(b.delay(attempt) <= b.delay(attempt + 1));
            prop_assert!(b.delay(attempt.max(1)) >= b.first);
        }
    }
}
