//! Configuration in two stages: [`FileConfig`], the serde form of the TOML
//! file (every field optional, flags merged over it), validated into
//! [`Config`], the runtime form, with secrets read from their files.
//!
//! Every error names the field and the file it came from. Secrets are read
//! from files and never appear in `Debug` output or logs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use keep_locator::SigningKey;

pub mod defaults;
mod file;
#[cfg(test)]
mod tests;
mod validate;

pub use file::{
    FileConfig, HeartbeatTable, IntroducerClientTable, PullsyncTable, RemoteTable, VolumeEntry,
    VolumeTable,
};
pub use keep_store::uuid::check_uuid;
pub use keep_store::{S3Location, Secret, VolumeConfig, VolumeLocation};

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {field}: {message}")]
pub struct ConfigError {
    /// The file (or "command line") the value came from.
    pub source_name: String,
    /// The offending field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// How the node talks to its introducers, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntroducerTiming {
    /// How long one long-poll waits for a change.
    pub poll_wait: Duration,
    /// The deadline of one request, on top of the poll wait.
    pub request_timeout: Duration,
    /// The first pause after a failed request.
    pub retry_min: Duration,
    /// The longest pause between retries.
    pub retry_max: Duration,
}

/// Pullsync's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullsyncConfig {
    /// Whether a node in a cluster runs pullsync.
    pub enabled: bool,
    /// How the pullers work.
    pub pull: keep_pullsync::PullSettings,
    /// How often the pull index is made durable.
    pub index_flush_interval: Duration,
}

/// The validated runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Volumes, in configured order.
    pub volumes: Vec<VolumeConfig>,
    /// The blob signing key; `None` turns signatures off.
    pub signing_key: Option<SigningKey>,
    /// Signature lifetime.
    pub signing_ttl: Duration,
    /// The admin token; `None` refuses every admin request.
    pub system_root_token: Option<Secret>,
    /// Introducer URLs.
    pub introducers: Vec<String>,
    /// The cluster's shared secret.
    pub cluster_key: Option<keep_introducer::ClusterKey>,
    /// How other nodes reach this one.
    pub public_url: Option<String>,
    /// This node's uuid, if configured.
    pub uuid: Option<String>,
    /// Desired copies per block.
    pub replication: u32,
    /// The most copies an anonymous PUT may ask for.
    pub max_anonymous_replicas: u32,
    /// Serve reads only.
    pub read_only: bool,
    /// How long trashed blocks stay restorable.
    pub trash_lifetime: Duration,
    /// How often trash is emptied.
    pub trash_check_interval: Duration,
    /// Pull workers.
    pub pull_workers: usize,
    /// Trash workers.
    pub trash_workers: usize,
    /// Most entries a pull or trash list may have.
    pub max_work_list_items: usize,
    /// Memory for block data in flight, bytes.
    pub max_buffer_memory: u64,
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to finish in-flight requests on shutdown.
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long a PUT's body may send nothing.
    pub request_body_idle_timeout: Duration,
    /// How long an answer's write may wait for the client to read.
    pub response_write_timeout: Duration,
    /// How long background workers get to stop at shutdown.
    pub worker_shutdown_deadline: Duration,
    /// The timeouts of pulls from the servers a pull list names.
    pub pull_timeouts: keep_remote::RemoteConfig,
    /// How long a draining node waits for the introducers to hear it.
    pub drain_timeout: Duration,
    /// Node-to-node request timeouts.
    pub remote: keep_remote::RemoteConfig,
    /// How peers are watched.
    pub heartbeat: keep_remote::HeartbeatConfig,
    /// How the node talks to its introducers.
    pub introducer_client: IntroducerTiming,
    /// Pullsync between the nodes of a cluster.
    pub pullsync: PullsyncConfig,
    /// Where the node keeps its own state.
    pub state_dir: Option<PathBuf>,
    /// Whether the status page and `/_status.json` are served.
    pub status_pages: bool,
}

impl Config {
    /// The embedded default: one node on [`defaults::LISTEN`] with a
    /// directory volume at [`defaults::VOLUME`].
    pub fn embedded_default() -> Config {
        FileConfig::default()
            .validate("built-in defaults")
            .unwrap_or_else(|e| unreachable!("the defaults are valid: {e}"))
    }

    /// What the storage core is opened from.
    pub fn store(&self) -> keep_store::StoreConfig {
        keep_store::StoreConfig {
            volumes: self.volumes.clone(),
            max_buffer_memory: self.max_buffer_memory,
            trash_lifetime: self.trash_lifetime,
            signing_ttl: self.signing_ttl,
        }
    }
}
