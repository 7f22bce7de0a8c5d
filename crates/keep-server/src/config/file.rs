//! The config file as parsed: every field optional, flags laid over it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
#[cfg(doc)]
use super::defaults;

/// One `volumes` entry: a spec string, or a table with options.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum VolumeEntry {
    /// A directory path or an `s3://` URL.
    Spec(String),
    /// A volume with options.
    Table(VolumeTable),
}

/// A volume with options, as written in the config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VolumeTable {
    /// A directory path or an `s3://` URL.
    pub path: String,
    /// The volume's uuid; default: generated once and kept in the volume.
    pub uuid: Option<String>,
    /// Serve reads only.
    pub read_only: Option<bool>,
    /// Whether blocks may be trashed here (default: when writable).
    pub allow_trash: Option<bool>,
    /// Copies the underlying storage keeps (default
    /// [`defaults::VOLUME_REPLICATION`]).
    pub replication: Option<u32>,
    /// Storage classes (default one, [`defaults::STORAGE_CLASS`]).
    pub storage_classes: Option<Vec<String>>,
    /// Free space below which the volume is full, e.g. `"64MiB"` (default
    /// `keep_volume::directory::DEFAULT_MIN_FREE`).
    pub min_free: Option<String>,
    /// S3: the access key id (default: `AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// S3: a file holding the secret access key (default: `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key_file: Option<PathBuf>,
    /// S3: how long after a trash a re-written block is still recovered
    /// (Arvados's RaceWindow), e.g. `"24h"` (default [`defaults::RACE_WINDOW`]).
    pub race_window: Option<String>,
}

/// The config file, as parsed. Every field is optional; flags override.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on (default [`defaults::LISTEN`]).
    pub listen: Option<String>,
    /// Volumes (default one directory, [`defaults::VOLUME`]).
    pub volumes: Option<Vec<VolumeEntry>>,
    /// File holding the blob signing key; turns signatures on.
    pub blob_signing_key_file: Option<PathBuf>,
    /// Signature lifetime, e.g. `"336h"` (default [`defaults::BLOB_SIGNING_TTL`]).
    pub blob_signing_ttl: Option<String>,
    /// File holding the token that admin requests carry.
    pub system_root_token_file: Option<PathBuf>,
    /// Introducers to publish to and learn peers from.
    pub introducer: Option<Vec<String>>,
    /// File holding the secret shared by the cluster's nodes.
    pub cluster_key_file: Option<PathBuf>,
    /// How other nodes reach this one.
    pub public_url: Option<String>,
    /// This node's uuid.
    pub uuid: Option<String>,
    /// Desired copies per block (default [`defaults::REPLICATION`]).
    pub replication: Option<u32>,
    /// The most copies a PUT without the admin token or a node credential
    /// may ask for with `X-Keep-Desired-Replicas` (default: `replication`).
    pub max_anonymous_replicas: Option<u32>,
    /// Serve reads only.
    pub read_only: Option<bool>,
    /// How long trashed blocks stay restorable, e.g. `"336h"` (default
    /// [`defaults::TRASH_LIFETIME`]).
    pub trash_lifetime: Option<String>,
    /// How often trash is emptied, e.g. `"24h"` (default
    /// [`defaults::TRASH_CHECK_INTERVAL`]).
    pub trash_check_interval: Option<String>,
    /// Allow `trash_lifetime = "0s"` (delete at once, no undo).
    pub unsafe_delete: Option<bool>,
    /// Pull workers (default [`defaults::PULL_WORKERS`]).
    pub pull_workers: Option<usize>,
    /// Trash workers (default [`defaults::TRASH_WORKERS`]).
    pub trash_workers: Option<usize>,
    /// Most entries a pull or trash list may have (default
    /// [`defaults::MAX_WORK_LIST_ITEMS`]).
    pub max_work_list_items: Option<usize>,
    /// Memory for block data in flight, e.g. `"256MiB"` (default
    /// [`defaults::MAX_BUFFER_MEMORY`], at least
    /// [`defaults::MIN_BUFFER_MEMORY`]).
    pub max_buffer_memory: Option<String>,
    /// Open connections at most (default [`defaults::MAX_CONNECTIONS`]).
    pub max_connections: Option<usize>,
    /// Time to finish in-flight requests on shutdown, e.g. `"30s"`
    /// (default [`defaults::SHUTDOWN_GRACE`]).
    pub shutdown_grace: Option<String>,
    /// How long a client may take to send a request's headers (default
    /// [`defaults::HEADER_READ_TIMEOUT`]).
    pub header_read_timeout: Option<String>,
    /// How long a PUT's body may send nothing before the request is cut
    /// off with 408 and its buffer given back (default
    /// [`defaults::REQUEST_BODY_IDLE_TIMEOUT`]).
    pub request_body_idle_timeout: Option<String>,
    /// How long the node waits for a client to read any of an answer
    /// before it ends the connection (default
    /// [`defaults::RESPONSE_WRITE_TIMEOUT`]).
    pub response_write_timeout: Option<String>,
    /// How long background workers get to stop at shutdown before they
    /// are aborted (default [`defaults::WORKER_SHUTDOWN_DEADLINE`]).
    pub worker_shutdown_deadline: Option<String>,
    /// How long a pull may take to connect to a server (default
    /// [`defaults::PULL_CONNECT_TIMEOUT`]).
    pub pull_connect_timeout: Option<String>,
    /// How long a pull may wait for a server's answer, and for each next
    /// part of the block (default [`defaults::PULL_IDLE_TIMEOUT`]).
    pub pull_idle_timeout: Option<String>,
    /// How long a draining node waits for the introducers to hear that it
    /// takes no more uploads (default [`defaults::DRAIN_TIMEOUT`]).
    pub drain_timeout: Option<String>,
    /// Node-to-node request timeouts.
    pub remote: Option<RemoteTable>,
    /// How peers are watched.
    pub heartbeat: Option<HeartbeatTable>,
    /// How the node talks to its introducers.
    pub introducer_client: Option<IntroducerClientTable>,
    /// Pullsync between the nodes of a cluster.
    pub pullsync: Option<PullsyncTable>,
    /// Where the node keeps its own state (uuid); default: the first
    /// directory volume, or `./keepstore-state` with S3 volumes only.
    pub state_dir: Option<PathBuf>,
    /// Whether `GET /` (to a browser) and `GET /_status.json` answer the
    /// status page (default true).
    pub status_pages: Option<bool>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: source_name.clone(),
            field: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        toml::from_str(&text).map_err(|e| {
            let field = e
                .span()
                .and_then(|s| text.get(..s.start))
                .map(|before| {
                    let line = before.matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "(syntax)".into());
            ConfigError {
                source_name,
                field,
                message: e.message().to_owned(),
            }
        })
    }
}

/// The `[remote]` table: timeouts of node-to-node requests (defaults:
/// `keep_remote::RemoteConfig::default()`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteTable {
    /// How long making a connection to a peer may take, e.g. `"1s"`.
    pub connect_timeout: Option<String>,
    /// The deadline of a whole small request, and of each wait within a
    /// streamed one, e.g. `"30s"`.
    pub request_timeout: Option<String>,
    /// How long a forwarded read may wait for its first byte, e.g. `"5s"`.
    pub read_first_byte_timeout: Option<String>,
}

/// The `[heartbeat]` table (defaults: `keep_remote::HeartbeatConfig::default()`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatTable {
    /// Time between heartbeats, e.g. `"2s"`.
    pub period: Option<String>,
    /// Failed heartbeats in a row that mark a peer down.
    pub failures_to_down: Option<u32>,
}

/// The `[pullsync]` table (defaults: `keep_pullsync::PullSettings::default()`
/// and [`defaults::PULLSYNC_INDEX_FLUSH`]).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PullsyncTable {
    /// Whether a node in a cluster runs pullsync (default true).
    pub enabled: Option<bool>,
    /// The most entries asked for per offer.
    pub offer_limit: Option<u32>,
    /// How long a live offer request waits at the peer, e.g. `"20s"`.
    pub live_wait: Option<String>,
    /// The most bytes wanted per delivery, e.g. `"64MiB"`.
    pub max_delivery_bytes: Option<String>,
    /// The most deliveries received at once.
    pub max_deliveries: Option<usize>,
    /// How long a sync request may wait for the peer, e.g. `"30s"`.
    pub request_timeout: Option<String>,
    /// The pullers' tranquility: after a busy step of `t`, a pause of
    /// `t × tranquility` (0: none).
    pub tranquility: Option<u32>,
    /// How often the pull index is made durable, e.g. `"5s"`.
    pub index_flush_interval: Option<String>,
}

/// The `[introducer_client]` table (defaults: `keep_introducer::client`'s
/// `DEFAULT_*` constants).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IntroducerClientTable {
    /// How long one long-poll of an introducer waits for a change, e.g. `"30s"`.
    pub poll_wait: Option<String>,
    /// The deadline of one request to an introducer, on top of the poll wait.
    pub request_timeout: Option<String>,
    /// The first pause after a failed request; doubles up to `retry_max`.
    pub retry_min: Option<String>,
    /// The longest pause between retries.
    pub retry_max: Option<String>,
}
