//! The introducer's Prometheus metrics.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label of the announce counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    pub(crate) outcome: &'static str,
}

/// Label of the table-size gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ServiceLabel {
    pub(crate) service: String,
}

/// Every metric the introducer exports, and their registry.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Announce requests carrying an announcement, by outcome.
    pub(crate) announcements: Family<OutcomeLabel, Counter>,
    /// Announce requests carrying a withdrawal, by outcome.
    pub(crate) withdrawals: Family<OutcomeLabel, Counter>,
    /// Live announcements in the table, by service.
    pub(crate) table: Family<ServiceLabel, Gauge<i64, std::sync::atomic::AtomicI64>>,
    /// Tombstones (accepted withdrawals) in the table, by service.
    pub(crate) tombstones: Family<ServiceLabel, Gauge<i64, std::sync::atomic::AtomicI64>>,
    /// Subscribers holding a long-poll open right now.
    pub(crate) subscribers: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Reads of the announcements route.
    pub(crate) subscribe_requests: Counter<u64, AtomicU64>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("introducer");
        let announcements = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "announcements_received",
            "Announce requests, by outcome",
            announcements.clone(),
        );
        let withdrawals = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "withdrawals_received",
            "Announce requests carrying a withdrawal, by outcome",
            withdrawals.clone(),
        );
        // Pre-create the outcomes so they show as 0 before the first request.
        for outcome in ["accepted", "duplicate", "replay", "bad_signature"] {
            let _ = announcements.get_or_create(&OutcomeLabel { outcome });
            let _ = withdrawals.get_or_create(&OutcomeLabel { outcome });
        }
        let table = Family::<ServiceLabel, Gauge>::default();
        registry.register(
            "announcements",
            "Announcements held, by service",
            table.clone(),
        );
        let tombstones = Family::<ServiceLabel, Gauge>::default();
        registry.register(
            "tombstones",
            "Withdrawals held (each hides its service's announcement of that node), by service",
            tombstones.clone(),
        );
        let subscribers = Gauge::default();
        registry.register(
            "subscribers",
            "Subscribers waiting for a change right now",
            subscribers.clone(),
        );
        let subscribe_requests = Counter::default();
        registry.register(
            "subscribe_requests",
            "Requests for the announcement table",
            subscribe_requests.clone(),
        );
        Metrics {
            registry,
            announcements,
            withdrawals,
            table,
            tombstones,
            subscribers,
            subscribe_requests,
        }
    }

    /// Counts one announce request: as a withdrawal when `withdrawal`
    /// (the body said `"withdrawn": true`), otherwise as an announcement.
    pub(crate) fn count(&self, withdrawal: bool, outcome: &'static str) {
        let family = if withdrawal {
            &self.withdrawals
        } else {
            &self.announcements
        };
        family.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
