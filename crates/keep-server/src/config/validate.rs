//! From the file's form to the runtime form: every field checked, secrets
//! read, defaults filled in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use keep_locator::{SigningKey, parse_byte_size};

use super::{
    Config, ConfigError, FileConfig, IntroducerTiming, PullsyncConfig, S3Location, Secret,
    VolumeConfig, VolumeEntry, VolumeLocation, VolumeTable, check_uuid, defaults,
};

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
        let max_anonymous_replicas = self.max_anonymous_replicas.unwrap_or(replication);
        if max_anonymous_replicas == 0 {
            return Err(c.err("max_anonymous_replicas", "must be at least 1"));
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
            max_anonymous_replicas,
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
            request_body_idle_timeout: c.positive(
                "request_body_idle_timeout",
                &self.request_body_idle_timeout,
                defaults::REQUEST_BODY_IDLE_TIMEOUT,
            )?,
            response_write_timeout: c.positive(
                "response_write_timeout",
                &self.response_write_timeout,
                defaults::RESPONSE_WRITE_TIMEOUT,
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
            pullsync: self.pullsync_config(&c)?,
            state_dir: self.state_dir.clone(),
            status_pages: self.status_pages.unwrap_or(true),
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

    /// The `[pullsync]` table over keep-pullsync's defaults.
    fn pullsync_config(&self, c: &Check<'_>) -> Result<PullsyncConfig, ConfigError> {
        let table = self.pullsync.clone().unwrap_or_default();
        let d = keep_pullsync::PullSettings::default();
        let max_delivery_bytes = match &table.max_delivery_bytes {
            Some(text) => parse_byte_size(text)
                .map_err(|m| c.err("pullsync.max_delivery_bytes", m))?
                .max(1),
            None => d.max_delivery_bytes,
        };
        let offer_limit = table.offer_limit.unwrap_or(d.offer_limit);
        if offer_limit == 0 {
            return Err(c.err("pullsync.offer_limit", "must be at least 1"));
        }
        let pull = keep_pullsync::PullSettings {
            offer_limit,
            live_wait: c.positive("pullsync.live_wait", &table.live_wait, d.live_wait)?,
            max_delivery_bytes,
            max_deliveries: table.max_deliveries.unwrap_or(d.max_deliveries).max(1),
            request_timeout: c.positive(
                "pullsync.request_timeout",
                &table.request_timeout,
                d.request_timeout,
            )?,
            tranquility: table.tranquility.unwrap_or(d.tranquility),
            ..d
        };
        Ok(PullsyncConfig {
            enabled: table.enabled.unwrap_or(true),
            pull,
            index_flush_interval: c.positive(
                "pullsync.index_flush_interval",
                &table.index_flush_interval,
                defaults::PULLSYNC_INDEX_FLUSH,
            )?,
        })
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
