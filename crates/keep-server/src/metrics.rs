//! Prometheus metrics of a node, served at `/metrics`: the server's own,
//! the storage core's ([`keep_store::StoreMetrics`]) and the background
//! workers' (copied from their registry at each scrape).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a finished request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Route name (`get_block`, `put_block`, `index`, ...).
    pub route: String,
    /// Status code.
    pub status: u16,
}

/// Labels naming a background worker.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabels {
    /// The worker's name.
    pub worker: String,
}

/// Labels naming an outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ok`, `failed`, `skipped`, ...
    pub outcome: String,
}

/// Every metric a node keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Finished requests.
    pub requests: Family<RequestLabels, Counter>,
    /// Request body bytes received.
    pub bytes_in: Counter,
    /// Response body bytes sent.
    pub bytes_out: Counter,
    /// Requests being handled.
    pub in_flight: Gauge,
    /// Pull list entries by outcome.
    pub pulls: Family<OutcomeLabels, Counter>,
    /// Trash list entries by outcome.
    pub trashes: Family<OutcomeLabels, Counter>,
    /// Pull list entries queued.
    pub pull_queue: Gauge,
    /// Pull list entries being worked on.
    pub pull_in_progress: Gauge,
    /// Trash list entries queued.
    pub trash_queue: Gauge,
    /// Trash list entries being worked on.
    pub trash_in_progress: Gauge,
    /// Failed steps of each background worker.
    pub worker_errors: Family<WorkerLabels, Gauge>,
    /// Steps each background worker has taken.
    pub worker_iterations: Family<WorkerLabels, Gauge>,
    /// 1 while a background worker is busy, 0 otherwise.
    pub worker_busy: Family<WorkerLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(&keep_store::StoreMetrics::default())
    }
}

impl Metrics {
    /// A fresh registry with every metric registered, the storage core's
    /// `store` among them.
    pub fn new(store: &keep_store::StoreMetrics) -> Self {
        let mut registry = Registry::with_prefix("keepstore");
        store.register(&mut registry);
        let m = Metrics {
            requests: Family::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            in_flight: Gauge::default(),
            pulls: Family::default(),
            trashes: Family::default(),
            pull_queue: Gauge::default(),
            pull_in_progress: Gauge::default(),
            trash_queue: Gauge::default(),
            trash_in_progress: Gauge::default(),
            worker_errors: Family::default(),
            worker_iterations: Family::default(),
            worker_busy: Family::default(),
            registry: Registry::default(),
        };
        registry.register("requests", "Finished requests", m.requests.clone());
        registry.register(
            "request_body_bytes",
            "Request body bytes received",
            m.bytes_in.clone(),
        );
        registry.register(
            "response_body_bytes",
            "Response body bytes sent",
            m.bytes_out.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests being handled",
            m.in_flight.clone(),
        );
        registry.register("pulls", "Pull list entries by outcome", m.pulls.clone());
        registry.register(
            "trashes",
            "Trash list entries by outcome",
            m.trashes.clone(),
        );
        registry.register(
            "pull_queue_length",
            "Pull list entries queued",
            m.pull_queue.clone(),
        );
        registry.register(
            "pull_in_progress",
            "Pull list entries being worked on",
            m.pull_in_progress.clone(),
        );
        registry.register(
            "trash_queue_length",
            "Trash list entries queued",
            m.trash_queue.clone(),
        );
        registry.register(
            "trash_in_progress",
            "Trash list entries being worked on",
            m.trash_in_progress.clone(),
        );
        registry.register(
            "worker_errors",
            "Failed steps of a background worker",
            m.worker_errors.clone(),
        );
        registry.register(
            "worker_iterations",
            "Steps a background worker has taken",
            m.worker_iterations.clone(),
        );
        registry.register(
            "worker_busy",
            "1 while a background worker is busy",
            m.worker_busy.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Copies the workers' counters into their gauges.
    pub fn record_workers(&self, workers: &[keep_worker::WorkerInfo]) {
        for w in workers {
            let labels = WorkerLabels {
                worker: w.name.clone(),
            };
            self.worker_errors
                .get_or_create(&labels)
                .set(w.errors as i64);
            self.worker_iterations
                .get_or_create(&labels)
                .set(w.iterations as i64);
            self.worker_busy
                .get_or_create(&labels)
                .set(i64::from(w.state == "busy"));
        }
    }

    /// The Prometheus text exposition.
    /// The Prometheus text exposition, with the metrics of `extra` (a
    /// part's registry under its own prefix, pullsync's) after the node's.
    pub fn encode(&self, extra: Option<&Registry>) -> String {
        use prometheus_client::encoding::text;
        let mut out = String::new();
        let result = text::encode_registry(&mut out, &self.registry)
            .and_then(|()| extra.map_or(Ok(()), |r| text::encode_registry(&mut out, r)))
            .and_then(|()| text::encode_eof(&mut out));
        if let Err(e) = result {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_with_labels() {
        let store = keep_store::StoreMetrics::default();
        let m = Metrics::new(&store);
        m.requests
            .get_or_create(&RequestLabels {
                method: "GET".into(),
                route: "get_block".into(),
                status: 200,
            })
            .inc();
        store.volume_error("zzzzz-nyw5e-000000000000000");
        let text = m.encode(None);
        assert!(
            text.contains(
                "keepstore_requests_total{method=\"GET\",route=\"get_block\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "keepstore_volume_errors_total{volume=\"zzzzz-nyw5e-000000000000000\"} 1"
            ),
            "{text}"
        );
    }
}
