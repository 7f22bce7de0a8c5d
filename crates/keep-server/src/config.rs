//! Configuration in two stages: [`FileConfig`], the serde form of the TOML
//! file (every field optional, flags merged over it), validated into
//! [`Config`], the runtime form, with secrets read from their files.
//!
//! Every error names the field and the file it came from. Secrets are read
//! from files and never appear in `Debug` output or logs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keep_locator::{SigningKey, parse_byte_size};
use serde::Deserialize;

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
    /// Where the node keeps its own state (uuid); default: the first
    /// directory volume, or `./keepstore-state` with S3 volumes only.
    pub state_dir: Option<PathBuf>,
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

pub use keep_store::{S3Location, Secret, VolumeConfig, VolumeLocation};

/// Every default, defined once: validation falls back on these, and the
/// field docs name them.
pub mod defaults {
    use std::time::Duration;

    /// `listen`.
    pub const LISTEN: &str = "127.0.0.1:25107";
    /// `volumes`: one directory volume.
    pub const VOLUME: &str = "./keep-data";
    /// `blob_signing_ttl`, as Arvados.
    pub const BLOB_SIGNING_TTL: Duration = keep_store::config::DEFAULT_TTL;
    /// `trash_lifetime`, as Arvados.
    pub const TRASH_LIFETIME: Duration = keep_store::config::DEFAULT_TTL;
    /// `trash_check_interval`.
    pub const TRASH_CHECK_INTERVAL: Duration = Duration::from_secs(24 * 3600);
    /// `shutdown_grace`.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
    /// `max_buffer_memory`.
    pub const MAX_BUFFER_MEMORY: u64 = keep_store::config::DEFAULT_MAX_BUFFER_MEMORY;
    /// The least `max_buffer_memory` may be.
    pub const MIN_BUFFER_MEMORY: u64 = 4 << 20;
    /// `replication`.
    pub const REPLICATION: u32 = 1;
    /// `pull_workers`.
    pub const PULL_WORKERS: usize = 4;
    /// `trash_workers`.
    pub const TRASH_WORKERS: usize = 1;
    /// `max_work_list_items`.
    pub const MAX_WORK_LIST_ITEMS: usize = 100_000;
    /// `max_connections`.
    pub const MAX_CONNECTIONS: usize = 1024;
    /// `header_read_timeout`.
    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
    /// `pull_connect_timeout`.
    pub const PULL_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// `pull_idle_timeout`.
    pub const PULL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    /// `drain_timeout`.
    pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
    /// `worker_shutdown_deadline`.
    pub const WORKER_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
    /// A volume's `replication`.
    pub const VOLUME_REPLICATION: u32 = 1;
    /// A volume's `storage_classes`.
    pub const STORAGE_CLASS: &str = "default";
    /// An S3 volume's `race_window`, as Arvados.
    pub const RACE_WINDOW: Duration = Duration::from_secs(24 * 3600);
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
    /// Where the node keeps its own state.
    pub state_dir: Option<PathBuf>,
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

impl FileConfig {
    /// Checks every field and reads the secret files. `source_name` names
    /// the file (or "command line") in errors.
    pub fn validate(&self, source_name: &str) -> Result<Config, ConfigError> {
        let c = Check { source_name };
        let listen = self.listen.as_deref().unwrap_or(defaults::LISTEN);
        let listen: SocketAddr = listen
            .parse()
            .map_err(|e| c.err("listen", format!("{listen:?} is not an address:port ({e})")))?;
        let signing_ttl = c.positive(
            "blob_signing_ttl",
            &self.blob_signing_ttl,
            defaults::BLOB_SIGNING_TTL,
        )?;
        let trash_lifetime = c.duration(
            "trash_lifetime",
            &self.trash_lifetime,
            defaults::TRASH_LIFETIME,
        )?;
        if trash_lifetime.is_zero() && self.unsafe_delete != Some(true) {
            return Err(c.err(
                "trash_lifetime",
                "0 deletes blocks with no undo; set unsafe_delete = true to allow it",
            ));
        }
        let max_buffer_memory = match &self.max_buffer_memory {
            Some(text) => parse_byte_size(text).map_err(|m| c.err("max_buffer_memory", m))?,
            None => defaults::MAX_BUFFER_MEMORY,
        };
        if max_buffer_memory < defaults::MIN_BUFFER_MEMORY {
            return Err(c.err("max_buffer_memory", "must be at least 4MiB"));
        }
        let cluster_key = match &self.cluster_key_file {
            Some(path) => Some(
                keep_introducer::ClusterKey::from_file(path)
                    .map_err(|e| c.err("cluster_key_file", e.to_string()))?,
            ),
            None => None,
        };
        if !self.introducer.as_deref().unwrap_or_default().is_empty() && cluster_key.is_none() {
            return Err(c.err(
                "cluster_key_file",
                "a node that uses an introducer needs the cluster key",
            ));
        }
        let read_only = self.read_only.unwrap_or(false);
        let replication = self.replication.unwrap_or(defaults::REPLICATION);
        if replication == 0 {
            return Err(c.err("replication", "must be at least 1"));
        }
        if let Some(uuid) = &self.uuid {
            check_uuid(uuid, "bi6l4").map_err(|m| c.err("uuid", m))?;
        }
        Ok(Config {
            listen,
            volumes: self.volume_configs(&c, read_only)?,
            signing_key: c
                .secret("blob_signing_key_file", &self.blob_signing_key_file)?
                .map(|s| SigningKey::new(s.expose().as_bytes().to_vec())),
            signing_ttl,
            system_root_token: c.secret("system_root_token_file", &self.system_root_token_file)?,
            introducers: self.introducer.clone().unwrap_or_default(),
            cluster_key,
            public_url: self.public_url.clone(),
            uuid: self.uuid.clone(),
            replication,
            read_only,
            trash_lifetime,
            trash_check_interval: c.duration(
                "trash_check_interval",
                &self.trash_check_interval,
                defaults::TRASH_CHECK_INTERVAL,
            )?,
            pull_workers: self.pull_workers.unwrap_or(defaults::PULL_WORKERS).max(1),
            trash_workers: self.trash_workers.unwrap_or(defaults::TRASH_WORKERS).max(1),
            max_work_list_items: self
                .max_work_list_items
                .unwrap_or(defaults::MAX_WORK_LIST_ITEMS)
                .max(1),
            max_buffer_memory,
            max_connections: self
                .max_connections
                .unwrap_or(defaults::MAX_CONNECTIONS)
                .max(1),
            shutdown_grace: c.duration(
                "shutdown_grace",
                &self.shutdown_grace,
                defaults::SHUTDOWN_GRACE,
            )?,
            header_read_timeout: c.positive(
                "header_read_timeout",
                &self.header_read_timeout,
                defaults::HEADER_READ_TIMEOUT,
            )?,
            worker_shutdown_deadline: c.duration(
                "worker_shutdown_deadline",
                &self.worker_shutdown_deadline,
                defaults::WORKER_SHUTDOWN_DEADLINE,
            )?,
            pull_timeouts: self.pull_timeouts(&c)?,
            drain_timeout: c.duration(
                "drain_timeout",
                &self.drain_timeout,
                defaults::DRAIN_TIMEOUT,
            )?,
            remote: self.remote_config(&c)?,
            heartbeat: self.heartbeat_config(&c)?,
            introducer_client: self.introducer_timing(&c)?,
            state_dir: self.state_dir.clone(),
        })
    }

    /// The volumes, each checked.
    fn volume_configs(
        &self,
        c: &Check<'_>,
        read_only: bool,
    ) -> Result<Vec<VolumeConfig>, ConfigError> {
        let default_volumes = [VolumeEntry::Spec(defaults::VOLUME.into())];
        let entries = self.volumes.as_deref().unwrap_or(&default_volumes);
        if entries.is_empty() {
            return Err(c.err("volumes", "at least one volume is needed"));
        }
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                volume(entry, read_only).map_err(|m| c.err(&format!("volumes[{i}]"), m))
            })
            .collect()
    }

    /// Pulls' timeouts: `pull_connect_timeout`, and `pull_idle_timeout`
    /// for the answer and each gap after it.
    fn pull_timeouts(&self, c: &Check<'_>) -> Result<keep_remote::RemoteConfig, ConfigError> {
        let idle = c.positive(
            "pull_idle_timeout",
            &self.pull_idle_timeout,
            defaults::PULL_IDLE_TIMEOUT,
        )?;
        Ok(keep_remote::RemoteConfig {
            connect_timeout: c.positive(
                "pull_connect_timeout",
                &self.pull_connect_timeout,
                defaults::PULL_CONNECT_TIMEOUT,
            )?,
            request_timeout: idle,
            read_first_byte_timeout: idle,
        })
    }

    /// The `[remote]` table over keep-remote's defaults.
    fn remote_config(&self, c: &Check<'_>) -> Result<keep_remote::RemoteConfig, ConfigError> {
        let table = self.remote.clone().unwrap_or_default();
        let default = keep_remote::RemoteConfig::default();
        Ok(keep_remote::RemoteConfig {
            connect_timeout: c.positive(
                "remote.connect_timeout",
                &table.connect_timeout,
                default.connect_timeout,
            )?,
            request_timeout: c.positive(
                "remote.request_timeout",
                &table.request_timeout,
                default.request_timeout,
            )?,
            read_first_byte_timeout: c.positive(
                "remote.read_first_byte_timeout",
                &table.read_first_byte_timeout,
                default.read_first_byte_timeout,
            )?,
        })
    }

    /// The `[introducer_client]` table over keep-introducer's defaults.
    fn introducer_timing(&self, c: &Check<'_>) -> Result<IntroducerTiming, ConfigError> {
        use keep_introducer::client as d;
        let table = self.introducer_client.clone().unwrap_or_default();
        let timing = IntroducerTiming {
            poll_wait: c.positive(
                "introducer_client.poll_wait",
                &table.poll_wait,
                d::DEFAULT_POLL_WAIT,
            )?,
            request_timeout: c.positive(
                "introducer_client.request_timeout",
                &table.request_timeout,
                d::DEFAULT_REQUEST_TIMEOUT,
            )?,
            retry_min: c.positive(
                "introducer_client.retry_min",
                &table.retry_min,
                d::DEFAULT_RETRY_MIN,
            )?,
            retry_max: c.positive(
                "introducer_client.retry_max",
                &table.retry_max,
                d::DEFAULT_RETRY_MAX,
            )?,
        };
        if timing.retry_max < timing.retry_min {
            return Err(c.err(
                "introducer_client.retry_max",
                "must not be shorter than retry_min",
            ));
        }
        Ok(timing)
    }

    /// The `[heartbeat]` table over keep-remote's defaults.
    fn heartbeat_config(&self, c: &Check<'_>) -> Result<keep_remote::HeartbeatConfig, ConfigError> {
        let table = self.heartbeat.clone().unwrap_or_default();
        let default = keep_remote::HeartbeatConfig::default();
        let failures_to_down = table.failures_to_down.unwrap_or(default.failures_to_down);
        if failures_to_down == 0 {
            return Err(c.err("heartbeat.failures_to_down", "must be at least 1"));
        }
        Ok(keep_remote::HeartbeatConfig {
            period: c.positive("heartbeat.period", &table.period, default.period)?,
            failures_to_down,
        })
    }
}

/// Checks values of one source, naming it and the field in every error.
struct Check<'a> {
    source_name: &'a str,
}

impl Check<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            source_name: self.source_name.to_owned(),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// A duration like `"30s"`, or `default` when absent.
    fn duration(
        &self,
        field: &str,
        value: &Option<String>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            Some(text) => humantime::parse_duration(text)
                .map_err(|e| self.err(field, format!("{text:?}: {e}"))),
            None => Ok(default),
        }
    }

    /// A duration that must not be zero.
    fn positive(
        &self,
        field: &str,
        value: &Option<String>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let d = self.duration(field, value, default)?;
        if d.is_zero() {
            return Err(self.err(field, "must be positive"));
        }
        Ok(d)
    }

    /// A secret read from the file at `path`, if one is named.
    fn secret(&self, field: &str, path: &Option<PathBuf>) -> Result<Option<Secret>, ConfigError> {
        let Some(path) = path else { return Ok(None) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| self.err(field, format!("cannot read {}: {e}", path.display())))?;
        let text = text.trim_end_matches(['\n', '\r']).to_owned();
        if text.is_empty() {
            return Err(self.err(field, format!("{} is empty", path.display())));
        }
        Ok(Some(Secret::new(text)))
    }
}

fn volume(entry: &VolumeEntry, node_read_only: bool) -> Result<VolumeConfig, String> {
    let table = match entry {
        VolumeEntry::Spec(spec) => VolumeTable {
            path: spec.clone(),
            ..Default::default()
        },
        VolumeEntry::Table(t) => t.clone(),
    };
    if table.path.is_empty() {
        return Err("path is empty".into());
    }
    let location = if table.path.starts_with("s3://") {
        VolumeLocation::S3(Box::new(s3_location(&table)?))
    } else if table.path.contains("://") {
        return Err(format!(
            "{:?}: only directory paths and s3:// URLs are volumes",
            table.path
        ));
    } else {
        VolumeLocation::Directory(PathBuf::from(&table.path))
    };
    if let Some(uuid) = &table.uuid {
        check_uuid(uuid, "nyw5e")?;
    }
    let allow_write = !(node_read_only || table.read_only.unwrap_or(false));
    let min_free_bytes = match &table.min_free {
        Some(text) => parse_byte_size(text).map_err(|m| format!("min_free: {m}"))?,
        None => keep_volume::directory::DEFAULT_MIN_FREE,
    };
    let storage_classes = table
        .storage_classes
        .unwrap_or_else(|| vec![defaults::STORAGE_CLASS.into()]);
    if storage_classes.is_empty()
        || storage_classes
            .iter()
            .any(|c| c.is_empty() || c.contains([',', '=', ' ']))
    {
        return Err("storage_classes must be non-empty names without ',', '=' or spaces".into());
    }
    Ok(VolumeConfig {
        location,
        uuid: table.uuid,
        allow_write,
        allow_trash: table.allow_trash.unwrap_or(allow_write),
        replication: table
            .replication
            .unwrap_or(defaults::VOLUME_REPLICATION)
            .max(1),
        storage_classes,
        min_free_bytes,
    })
}

fn s3_location(table: &VolumeTable) -> Result<S3Location, String> {
    let spec = keep_volume_s3::S3Spec::parse(&table.path).map_err(|e| e.to_string())?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let access_key = table
        .access_key_id
        .clone()
        .or_else(|| env("AWS_ACCESS_KEY_ID"));
    let secret_key = match &table.secret_access_key_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    format!(
                        "secret_access_key_file: cannot read {}: {e}",
                        path.display()
                    )
                })?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        ),
        None => env("AWS_SECRET_ACCESS_KEY"),
    };
    let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
        return Err(
            "S3 credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or access_key_id and secret_access_key_file".into(),
        );
    };
    let race_window = match &table.race_window {
        Some(text) => {
            humantime::parse_duration(text).map_err(|e| format!("race_window: {text:?}: {e}"))?
        }
        None => defaults::RACE_WINDOW,
    };
    Ok(S3Location {
        spec,
        access_key,
        secret_key: Secret::new(secret_key),
        race_window,
    })
}

pub use keep_store::uuid::check_uuid;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_node() {
        let c = Config::embedded_default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:25107");
        assert_eq!(c.volumes.len(), 1);
        assert_eq!(
            c.volumes[0].location,
            VolumeLocation::Directory("./keep-data".into())
        );
        assert_eq!(c.signing_ttl, Duration::from_secs(336 * 3600));
        assert!(c.signing_key.is_none() && c.system_root_token.is_none());
    }

    #[test]
    fn errors_name_field_and_file() {
        let cfg = FileConfig {
            blob_signing_ttl: Some("soon".into()),
            ..Default::default()
        };
        let e = cfg.validate("/etc/keep.toml").unwrap_err().to_string();
        assert!(e.starts_with("/etc/keep.toml: blob_signing_ttl:"), "{e}");
        let cfg = FileConfig {
            trash_lifetime: Some("0s".into()),
            ..Default::default()
        };
        assert!(
            cfg.validate("f")
                .unwrap_err()
                .to_string()
                .contains("unsafe_delete")
        );
        let cfg = FileConfig {
            uuid: Some("nope".into()),
            ..Default::default()
        };
        assert!(
            cfg.validate("f")
                .unwrap_err()
                .to_string()
                .starts_with("f: uuid:")
        );
        let cfg = FileConfig {
            blob_signing_key_file: Some("/nonexistent/key".into()),
            ..Default::default()
        };
        let e = cfg.validate("f").unwrap_err().to_string();
        assert!(
            e.contains("blob_signing_key_file") && e.contains("/nonexistent/key"),
            "{e}"
        );
    }

    #[test]
    fn toml_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nbogus = 3\n").unwrap();
        let e = FileConfig::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("k.toml") && e.contains("line 2") && e.contains("bogus"),
            "{e}"
        );
    }

    #[test]
    fn volume_tables_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "s3cret\n").unwrap();
        let text = format!(
            "blob_signing_key_file = {key:?}\nvolumes = [\"/a\", {{ path = \"/b\", read_only = true, min_free = \"1GiB\", storage_classes = [\"archive\"] }}]\n"
        );
        let path = dir.path().join("k.toml");
        std::fs::write(&path, text).unwrap();
        let c = FileConfig::load(&path).unwrap().validate("k.toml").unwrap();
        assert!(c.signing_key.is_some());
        assert!(c.volumes[0].allow_write && !c.volumes[1].allow_write && !c.volumes[1].allow_trash);
        assert_eq!(c.volumes[1].min_free_bytes, 1 << 30);
        assert_eq!(c.volumes[1].storage_classes, vec!["archive".to_owned()]);
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn remote_heartbeat_and_pull_settings_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            "pull_idle_timeout = \"7s\"\nworker_shutdown_deadline = \"9s\"\n\
             [remote]\nconnect_timeout = \"250ms\"\n\
             [heartbeat]\nperiod = \"500ms\"\nfailures_to_down = 3\n\
             [introducer_client]\nretry_max = \"3s\"\n",
        )
        .unwrap();
        let c = FileConfig::load(&path).unwrap().validate("k.toml").unwrap();
        assert_eq!(c.remote.connect_timeout, Duration::from_millis(250));
        let defaults = keep_remote::RemoteConfig::default();
        assert_eq!(c.remote.request_timeout, defaults.request_timeout);
        assert_eq!(c.heartbeat.period, Duration::from_millis(500));
        assert_eq!(c.heartbeat.failures_to_down, 3);
        assert_eq!(
            c.pull_timeouts.read_first_byte_timeout,
            Duration::from_secs(7)
        );
        assert_eq!(
            c.pull_timeouts.connect_timeout,
            defaults::PULL_CONNECT_TIMEOUT
        );
        assert_eq!(c.worker_shutdown_deadline, Duration::from_secs(9));
        assert_eq!(c.introducer_client.retry_max, Duration::from_secs(3));
        assert_eq!(
            c.introducer_client.poll_wait,
            keep_introducer::client::DEFAULT_POLL_WAIT
        );
        assert_eq!(c.drain_timeout, defaults::DRAIN_TIMEOUT);
        std::fs::write(&path, "[heartbeat]\nfailures_to_down = 0\n").unwrap();
        let e = FileConfig::load(&path)
            .unwrap()
            .validate("k.toml")
            .unwrap_err();
        assert!(e.to_string().contains("heartbeat.failures_to_down"), "{e}");
        std::fs::write(&path, "[remote]\nbogus = 1\n").unwrap();
        assert!(FileConfig::load(&path).is_err(), "unknown keys are refused");
    }
}
