//! A storage node: its identity, volumes, signing, budget and metrics.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use keep_locator::{BlockHash, placement};
use keep_volume::directory::{DirOptions, DirVolume};
use keep_volume::{Volume, VolumeParams};
use keep_volume_s3::{S3Options, S3Volume};

use crate::budget::Budget;
use crate::cluster::Cluster;
use crate::config::{Config, VolumeConfig, VolumeLocation};
use crate::metrics::Metrics;
use crate::work::WorkLists;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A volume could not be opened.
    #[error("volume {location}: {source}")]
    Volume {
        /// Where the volume is.
        location: String,
        /// What failed.
        source: keep_volume::VolumeError,
    },
    /// The node's own state could not be read or written.
    #[error("state {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Something else in the configuration.
    #[error("{0}")]
    Config(String),
}

/// A running node's shared state; handlers hold an `Arc<Node>`.
#[derive(Debug)]
pub struct Node {
    uuid: String,
    config: Config,
    volumes: Vec<Arc<dyn Volume>>,
    metrics: Arc<Metrics>,
    budget: Budget,
    work: WorkLists,
    health: VolumeHealth,
    state_dir: PathBuf,
    cluster: OnceLock<Cluster>,
    draining: AtomicBool,
}

/// Volumes that failed recently, and until when to pass them over: new
/// blocks go elsewhere, reads and the "does a volume have it" check of a
/// write try them last or not at all, so a dead store (S3 down) does not
/// cost every request its timeouts and retries. A failure passes a volume
/// over for [`SUSPECT_FIRST`]; each further failure before it answers again
/// doubles that, up to [`SUSPECT_MAX`] (a failure more than
/// [`SUSPECT_MAX`] after the last period ended starts over). Any answer (a
/// block, or "not here") clears it.
#[derive(Debug, Default)]
pub struct VolumeHealth {
    /// Suspect volumes: until when, and the period that led there.
    until: std::sync::Mutex<std::collections::HashMap<String, (Instant, Duration)>>,
    /// How many entries `until` has: 0 makes the checks lock-free.
    suspects: std::sync::atomic::AtomicUsize,
}

/// How long a volume is passed over after its first failure.
pub const SUSPECT_FIRST: Duration = Duration::from_secs(5);
/// The longest a volume that keeps failing is passed over at a time.
pub const SUSPECT_MAX: Duration = Duration::from_secs(60);

impl VolumeHealth {
    /// Records a failure of the volume.
    pub fn suspect(&self, uuid: &str) {
        let mut map = self.until.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let period = match map.get(uuid) {
            Some((until, before)) if now < *until + SUSPECT_MAX => (*before * 2).min(SUSPECT_MAX),
            _ => SUSPECT_FIRST,
        };
        map.insert(uuid.to_owned(), (now + period, period));
        self.suspects.store(map.len(), Ordering::SeqCst);
    }

    /// Records that the volume answered.
    pub fn answered(&self, uuid: &str) {
        if self.suspects.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut map = self.until.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(uuid);
        self.suspects.store(map.len(), Ordering::SeqCst);
    }

    /// Whether the volume failed within its suspect period.
    pub fn is_suspect(&self, uuid: &str) -> bool {
        if self.suspects.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let map = self.until.lock().unwrap_or_else(|p| p.into_inner());
        map.get(uuid).is_some_and(|(t, _)| *t > Instant::now())
    }
}

impl Node {
    /// Opens every configured volume and settles the node's uuid.
    pub async fn open(config: Config) -> Result<Arc<Node>, StartError> {
        let mut volumes: Vec<Arc<dyn Volume>> = Vec::new();
        for vc in &config.volumes {
            volumes.push(open_volume(vc, &config).await?);
        }
        let state_dir = state_dir(&config);
        std::fs::create_dir_all(&state_dir).map_err(|source| StartError::State {
            path: state_dir.clone(),
            source,
        })?;
        let uuid = match &config.uuid {
            Some(u) => u.clone(),
            None => persistent_uuid(&state_dir.join(".keepstore-node-uuid"), "bi6l4")?,
        };
        Ok(Node::with_volumes(config, uuid, volumes))
    }

    /// A node over volumes the caller opened (any [`Volume`] backend).
    pub fn with_volumes(config: Config, uuid: String, volumes: Vec<Arc<dyn Volume>>) -> Arc<Node> {
        let state_dir = state_dir(&config);
        let metrics = Arc::new(Metrics::new());
        let budget = Budget::new(
            config.max_buffer_memory,
            metrics.buffer_bytes_reserved.clone(),
        );
        let work = WorkLists::new(config.max_work_list_items);
        Arc::new(Node {
            uuid,
            config,
            volumes,
            metrics,
            budget,
            work,
            health: VolumeHealth::default(),
            state_dir,
            cluster: OnceLock::new(),
            draining: AtomicBool::new(false),
        })
    }

    /// This node's uuid.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Its volumes, in configured order.
    pub fn volumes(&self) -> &[Arc<dyn Volume>] {
        &self.volumes
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Where the node keeps its own state.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Its cluster membership, once joined.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.get()
    }

    /// Records the cluster membership (once).
    pub fn set_cluster(&self, cluster: Cluster) {
        if self.cluster.set(cluster).is_err() {
            tracing::warn!("the node joined a cluster twice; keeping the first");
        }
    }

    /// Whether the node is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Marks the node as shutting down.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Which volumes failed recently.
    pub fn health(&self) -> &VolumeHealth {
        &self.health
    }

    /// The pull and trash lists.
    pub fn work(&self) -> &WorkLists {
        &self.work
    }

    /// The buffer budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The volumes in the order to look for or place `hash`: ascending
    /// `md5(hash + uuid[-15:])`, as Arvados orders its mounts.
    pub fn volumes_for(&self, hash: &BlockHash) -> Vec<&Arc<dyn Volume>> {
        let uuids: Vec<&str> = self
            .volumes
            .iter()
            .map(|v| v.params().uuid.as_str())
            .collect();
        let mut order = placement::permuted_order(hash, &uuids);
        order.reverse();
        order.into_iter().map(|i| &self.volumes[i]).collect()
    }

    /// The volume with this uuid.
    pub fn volume(&self, uuid: &str) -> Option<&Arc<dyn Volume>> {
        self.volumes.iter().find(|v| v.params().uuid == uuid)
    }
}

async fn open_volume(vc: &VolumeConfig, config: &Config) -> Result<Arc<dyn Volume>, StartError> {
    match &vc.location {
        VolumeLocation::Directory(root) => {
            let fail = |source| StartError::Volume {
                location: root.display().to_string(),
                source,
            };
            std::fs::create_dir_all(root).map_err(|e| fail(e.into()))?;
            let uuid = match &vc.uuid {
                Some(u) => u.clone(),
                None => persistent_uuid(&root.join(".keep-volume-uuid"), "nyw5e")?,
            };
            let params = params(vc, uuid, config);
            let opts = DirOptions {
                root: root.clone(),
                params,
                min_free_bytes: vc.min_free_bytes,
            };
            let vol = tokio::task::spawn_blocking(move || DirVolume::open(opts))
                .await
                .map_err(|e| StartError::Config(format!("opening a volume panicked: {e}")))?
                .map_err(fail)?;
            Ok(Arc::new(vol))
        }
        VolumeLocation::S3(s3) => {
            let device = format!(
                "s3://{}/{}/{}",
                s3.spec.endpoint, s3.spec.bucket, s3.spec.prefix
            );
            let fail = |source| StartError::Volume {
                location: device.clone(),
                source,
            };
            // No file to keep a generated uuid in: derive a stable one.
            let uuid = vc.uuid.clone().unwrap_or_else(|| {
                let hex = keep_locator::BlockHash::of(device.as_bytes()).to_hex();
                format!("zzzzz-nyw5e-{}", &hex[..15])
            });
            let mut opts = S3Options::new(
                s3.spec.clone(),
                params(vc, uuid, config),
                &s3.access_key,
                s3.secret_key.expose(),
            );
            opts.signing_ttl = config.signing_ttl;
            opts.race_window = s3.race_window;
            let vol = S3Volume::open(opts).await.map_err(fail)?;
            Ok(Arc::new(vol))
        }
    }
}

/// Where the node keeps its own state: `state_dir`, else the first
/// directory volume, else `./keepstore-state` (S3 volumes only).
fn state_dir(config: &Config) -> PathBuf {
    config
        .state_dir
        .clone()
        .or_else(|| {
            config.volumes.iter().find_map(|v| match &v.location {
                VolumeLocation::Directory(p) => Some(p.clone()),
                VolumeLocation::S3(_) => None,
            })
        })
        .unwrap_or_else(|| PathBuf::from("keepstore-state"))
}

fn params(vc: &VolumeConfig, uuid: String, config: &Config) -> VolumeParams {
    VolumeParams {
        uuid,
        allow_write: vc.allow_write,
        allow_trash: vc.allow_trash,
        replication: vc.replication,
        storage_classes: vc
            .storage_classes
            .iter()
            .map(|c| (c.clone(), true))
            .collect(),
        trash_lifetime: config.trash_lifetime,
    }
}

/// Reads a uuid kept in `path`, or makes one and keeps it there.
fn persistent_uuid(path: &Path, infix: &str) -> Result<String, StartError> {
    let fail = |source| StartError::State {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let uuid = text.trim().to_owned();
            crate::config::check_uuid(&uuid, infix)
                .map_err(|m| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, m)))?;
            Ok(uuid)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let uuid = new_uuid(infix);
            keep_volume::crashsafe::write_file(path, format!("{uuid}\n").as_bytes())
                .map_err(fail)?;
            Ok(uuid)
        }
        Err(e) => Err(fail(e)),
    }
}

/// A fresh uuid `zzzzz-<infix>-<15 random lowercase alphanumerics>`.
pub fn new_uuid(infix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let tail: String = (0..15)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("zzzzz-{infix}-{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u");
        let first = persistent_uuid(&path, "bi6l4").unwrap();
        assert!(
            crate::config::check_uuid(&first, "bi6l4").is_ok(),
            "{first}"
        );
        assert_eq!(persistent_uuid(&path, "bi6l4").unwrap(), first);
        std::fs::write(&path, "garbage").unwrap();
        assert!(persistent_uuid(&path, "bi6l4").is_err());
    }

    /// A volume that keeps failing is passed over for longer each time, up
    /// to the cap; an answer clears it at once.
    #[test]
    fn suspicion_grows_with_failures_and_an_answer_clears_it() {
        let health = VolumeHealth::default();
        let period = |h: &VolumeHealth| h.until.lock().unwrap().get("a").map(|(_, p)| *p);
        assert!(!health.is_suspect("a"));
        health.suspect("a");
        assert!(health.is_suspect("a") && !health.is_suspect("b"));
        assert_eq!(period(&health), Some(SUSPECT_FIRST));
        health.suspect("a");
        assert_eq!(period(&health), Some(SUSPECT_FIRST * 2));
        for _ in 0..10 {
            health.suspect("a");
        }
        assert_eq!(period(&health), Some(SUSPECT_MAX));
        health.answered("b");
        assert!(health.is_suspect("a"));
        health.answered("a");
        assert!(!health.is_suspect("a"));
        health.suspect("a");
        assert_eq!(period(&health), Some(SUSPECT_FIRST), "starts over");
        // A failure long after the last period ended starts over too.
        health.suspect("a");
        let long_ago = Instant::now() - SUSPECT_MAX * 3;
        health
            .until
            .lock()
            .unwrap()
            .insert("a".into(), (long_ago, SUSPECT_MAX));
        health.suspect("a");
        assert_eq!(
            period(&health),
            Some(SUSPECT_FIRST),
            "forgotten after a while"
        );
    }
}
