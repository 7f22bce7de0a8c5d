//! What the storage core counts, registered into the node's registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels naming a volume.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VolumeLabels {
    /// The volume's uuid.
    pub volume: String,
}

/// The storage core's metrics. Cheap to clone: clones share the values.
#[derive(Debug, Clone, Default)]
pub struct StoreMetrics {
    /// Volume operations that failed for a reason other than a missing
    /// block, a refused body or a policy refusal.
    pub volume_errors: Family<VolumeLabels, Counter>,
    /// Stored blocks found corrupt and moved aside.
    pub corrupt_blocks: Family<VolumeLabels, Counter>,
    /// Bytes of block buffers reserved.
    pub buffer_bytes_reserved: Gauge,
}

impl StoreMetrics {
    /// Registers every metric in `registry` (names as keepstore has
    /// always had them, under the registry's prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "volume_errors",
            "Failed volume operations",
            self.volume_errors.clone(),
        );
        registry.register(
            "corrupt_blocks",
            "Stored blocks found corrupt and moved aside",
            self.corrupt_blocks.clone(),
        );
        registry.register(
            "buffer_bytes_reserved",
            "Bytes of block buffers reserved",
            self.buffer_bytes_reserved.clone(),
        );
    }

    /// Counts a failed operation on a volume.
    pub fn volume_error(&self, uuid: &str) {
        self.volume_errors
            .get_or_create(&VolumeLabels {
                volume: uuid.to_owned(),
            })
            .inc();
    }

    /// Counts a corrupt copy moved aside.
    pub fn corrupt_block(&self, uuid: &str) {
        self.corrupt_blocks
            .get_or_create(&VolumeLabels {
                volume: uuid.to_owned(),
            })
            .inc();
    }
}
