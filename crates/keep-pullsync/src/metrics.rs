//! What pullsync counts, under the names operators query
//! (`keep_pullsync_*`, registered by [`PullsyncMetrics::register`] in a
//! registry of their own so that the node's `keepstore_` prefix does not
//! apply).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Pullsync's metrics. Cheap to clone: clones share the values.
#[derive(Debug, Clone, Default)]
pub struct PullsyncMetrics {
    /// Entries peers offered to this node's pullers.
    pub offered: Counter,
    /// Offered blocks this node wanted (responsible for, lacking, not in
    /// its trash, not on their way from another peer).
    pub wanted: Counter,
    /// Blocks received and stored.
    pub received_blocks: Counter,
    /// Bytes of the blocks received and stored.
    pub received_bytes: Counter,
    /// Delivery frames this node did not ask for (or not in the order it
    /// asked), refused.
    pub unsolicited: Counter,
    /// Delivered blocks whose bytes did not match their hash, and other
    /// malformed deliveries: refused, nothing stored.
    pub invalid: Counter,
    /// Blocks offered that this node wants and has not received yet.
    pub owed_blocks: Gauge,
}

impl PullsyncMetrics {
    /// A registry holding every metric, named `keep_pullsync_*`.
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix("keep_pullsync");
        self.register(&mut registry);
        registry
    }

    /// Registers every metric in `registry` (names without a prefix of
    /// their own: `offered`, `wanted`, ...).
    pub fn register(&self, registry: &mut Registry) {
        let counters = [
            ("offered", "Entries offered by peers", &self.offered),
            ("wanted", "Offered blocks wanted", &self.wanted),
            (
                "received_blocks",
                "Blocks received and stored",
                &self.received_blocks,
            ),
            (
                "received_bytes",
                "Bytes of blocks received and stored",
                &self.received_bytes,
            ),
            (
                "unsolicited",
                "Delivered blocks not asked for, refused",
                &self.unsolicited,
            ),
            (
                "invalid",
                "Delivered blocks that failed verification, refused",
                &self.invalid,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "owed_blocks",
            "Offered blocks this node wants and has not received yet",
            self.owed_blocks.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_documented_ones() {
        let m = PullsyncMetrics::default();
        m.received_blocks.inc();
        m.owed_blocks.set(3);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry()).unwrap();
        for name in [
            "keep_pullsync_offered_total 0",
            "keep_pullsync_wanted_total 0",
            "keep_pullsync_received_blocks_total 1",
            "keep_pullsync_received_bytes_total 0",
            "keep_pullsync_unsolicited_total 0",
            "keep_pullsync_invalid_total 0",
            "keep_pullsync_owed_blocks 3",
        ] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
    }
}
