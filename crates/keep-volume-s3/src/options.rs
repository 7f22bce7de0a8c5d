//! How to open an S3 volume: the spec, credentials, policy and tuning.

use std::time::Duration;

use keep_volume::VolumeParams;

use crate::S3Spec;

/// Arvados's default race window: how long a write may take to become
/// visible to every reader of an eventually consistent store.
pub const DEFAULT_RACE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Arvados's default `BlobSigningTTL`.
pub const DEFAULT_SIGNING_TTL: Duration = Duration::from_secs(336 * 3600);

/// Arvados's default listing page size.
pub const DEFAULT_INDEX_PAGE_SIZE: u32 = 1000;

/// How often and how patiently a request that may be repeated is retried
/// after a connection failure, a 5xx answer or throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The pause before the first retry; each later pause doubles.
    pub base_delay: Duration,
    /// The longest pause between two tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 4 tries, pauses of 100 ms, 200 ms, 400 ms (plus up to 50% jitter):
    /// a dead store is reported in about a second.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The pause before try number `attempt + 1` (`attempt` counts from 1),
    /// without jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Everything [`S3Volume::open`](crate::S3Volume::open) needs.
#[derive(Clone)]
pub struct S3Options {
    /// Bucket, prefix, endpoint, region and sharding.
    pub spec: S3Spec,
    /// The access key id (empty: send unsigned requests).
    pub access_key: String,
    /// The secret access key. `Debug` never shows it.
    pub secret_key: String,
    /// Policy settings (uuid, write and trash permission, trash lifetime).
    pub params: VolumeParams,
    /// How long a write may take to become visible everywhere. A block
    /// whose trashed copy would expire within this window is not trashed
    /// again (Arvados's `RaceWindow`).
    pub race_window: Duration,
    /// The blob signing TTL of the cluster. A block found trashed less than
    /// this long after its last write or touch was trashed in a race with
    /// that write, and is restored. Zero turns the recovery off.
    pub signing_ttl: Duration,
    /// Keys per listing request (S3's `max-keys`, at most 1000 on AWS).
    pub index_page_size: u32,
    /// Retries for requests that may be repeated.
    pub retry: RetryPolicy,
    /// How long to wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// How long the store may stay silent: without answering a request
    /// (a PUT from memory gets one more second per MiB), between two pieces
    /// of a block being read, or without taking data of a block being
    /// streamed to it. Then the try fails as a connection failure.
    pub read_timeout: Duration,
    /// How many writes of unknown length may buffer a whole block (up to
    /// 64 MiB each) at once; further ones wait. Writes of known length
    /// stream and buffer at most two chunks.
    pub whole_block_buffers: usize,
}

impl S3Options {
    /// Options with Arvados's defaults and the given credentials.
    pub fn new(
        spec: S3Spec,
        params: VolumeParams,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> S3Options {
        S3Options {
            spec,
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            params,
            race_window: DEFAULT_RACE_WINDOW,
            signing_ttl: DEFAULT_SIGNING_TTL,
            index_page_size: DEFAULT_INDEX_PAGE_SIZE,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            whole_block_buffers: 4,
        }
    }

    /// The credentials in `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`,
    /// if both are set.
    pub fn env_credentials() -> Option<(String, String)> {
        let key = std::env::var("AWS_ACCESS_KEY_ID").ok()?;
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").ok()?;
        Some((key, secret))
    }
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.secret_key.is_empty() {
            ""
        } else {
            "<hidden>"
        };
        f.debug_struct("S3Options")
            .field("spec", &self.spec)
            .field("access_key", &self.access_key)
            .field("secret_key", &secret)
            .field("params", &self.params)
            .field("race_window", &self.race_window)
            .field("signing_ttl", &self.signing_ttl)
            .field("index_page_size", &self.index_page_size)
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("whole_block_buffers", &self.whole_block_buffers)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let spec = S3Spec::parse("s3://bucket").unwrap();
        let opts = S3Options::new(spec, VolumeParams::new("v"), "AKID", "very-secret");
        let shown = format!("{opts:?}");
        assert!(
            shown.contains("AKID") && shown.contains("<hidden>"),
            "{shown}"
        );
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let got: Vec<u64> = (1..=7).map(|a| p.delay(a).as_millis() as u64).collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(p.delay(u32::MAX), p.max_delay);
    }
}
