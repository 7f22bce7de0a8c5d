//! What the status page shows, gathered from the node's parts.

use std::time::SystemTime;

use keep_pullsync::pull::PeerProgress;
use keep_status::TrafficReport;
use keep_status::format::unix_seconds;
use keep_store::{VolumeLabels, VolumeLocation};
use keep_worker::WorkerInfo;
use serde::Serialize;

use crate::keepstore::Keepstore;

/// Everything the status page shows.
#[derive(Debug, Serialize)]
pub struct NodeReport {
    /// When this report was made, in unix seconds.
    pub generated_at: u64,
    /// The node itself.
    pub node: NodeFacts,
    /// Its volumes, in configured order.
    pub volumes: Vec<VolumeReport>,
    /// The peers it knows, in uuid order (empty outside a cluster).
    pub peers: Vec<PeerReport>,
    /// Its background workers.
    pub workers: Vec<WorkerInfo>,
    /// Its pull and trash lists.
    pub work_lists: WorkListReport,
    /// Block PUTs and GETs over the last ten minutes.
    pub traffic: TrafficReport,
    /// Pullsync, when it runs.
    pub pullsync: Option<PullsyncReport>,
}

/// The node's identity and state.
#[derive(Debug, Clone, Serialize)]
pub struct NodeFacts {
    /// Its uuid.
    pub uuid: String,
    /// The software version.
    pub version: String,
    /// When it started, in unix seconds.
    pub started_at: u64,
    /// Seconds since then.
    pub uptime_seconds: u64,
    /// How other nodes reach it, when it has a public URL.
    pub public_url: Option<String>,
    /// Whether it is shutting down.
    pub draining: bool,
    /// Whether it serves reads only.
    pub read_only: bool,
    /// Whether it is in a cluster.
    pub in_cluster: bool,
    /// The cluster's desired copies per block.
    pub replication: u32,
}

/// One volume.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeReport {
    /// Its uuid.
    pub uuid: String,
    /// Where it is: a path, or an `s3://` bucket.
    pub location: String,
    /// Its storage classes.
    pub storage_classes: Vec<String>,
    /// Whether it takes no new blocks.
    pub read_only: bool,
    /// Bytes in use (0 when the backend cannot tell).
    pub used_bytes: u64,
    /// Bytes free for new blocks (0 when the backend cannot tell).
    pub available_bytes: u64,
    /// Whether it is too full for new blocks.
    pub full: bool,
    /// `healthy`, or `suspect` (passed over after failures).
    pub health: &'static str,
    /// Since when it has been failing, in unix seconds.
    pub failing_since: Option<u64>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// The last failure, or why its status could not be read.
    pub last_error: Option<String>,
    /// Failed operations since the node started.
    pub errors_total: u64,
    /// Corrupt copies found and moved aside since the node started.
    pub corrupt_moved_aside: u64,
}

/// One peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerReport {
    /// Its uuid.
    pub uuid: String,
    /// Its name for people.
    pub nickname: String,
    /// Where it answers.
    pub url: String,
    /// `up`, `down`, `draining` or `read-only`.
    pub state: &'static str,
    /// Whether it announces `upload_storage`.
    pub takes_uploads: bool,
    /// Its software version, from its last heartbeat answer.
    pub version: Option<String>,
    /// When it last answered a heartbeat, in unix seconds.
    pub last_heartbeat: Option<u64>,
    /// Seconds since then.
    pub last_heartbeat_age_seconds: Option<u64>,
    /// Failed heartbeats since its last answer.
    pub consecutive_failures: u32,
    /// The last failure.
    pub last_error: Option<String>,
    /// Blocks it stored at this node's request.
    pub replicas_sent: u64,
    /// Reads of blocks this node lacked that it answered.
    pub reads_forwarded: u64,
}

/// The pull and trash lists.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WorkListReport {
    /// Pull entries waiting.
    pub pull_queued: u64,
    /// Pull entries being worked on.
    pub pull_in_progress: u64,
    /// Trash entries waiting.
    pub trash_queued: u64,
    /// Trash entries being worked on.
    pub trash_in_progress: u64,
}

/// Pullsync's totals and its progress per peer.
#[derive(Debug, Clone, Serialize)]
pub struct PullsyncReport {
    /// Blocks peers offered that this node is responsible for and lacks.
    pub owed_blocks: i64,
    /// Blocks received since the node started.
    pub received_blocks: u64,
    /// Their bytes.
    pub received_bytes: u64,
    /// Deliveries refused as unsolicited.
    pub unsolicited: u64,
    /// Deliveries refused as invalid.
    pub invalid: u64,
    /// How far each peer is synced.
    pub peers: Vec<PeerProgress>,
}

/// Gathers the report: the volumes are asked for their space (each
/// answer, or failure, as it comes), the rest is read from memory.
pub async fn collect(node: &Keepstore) -> NodeReport {
    let now = SystemTime::now();
    let redact = node.redactor();
    let config = node.config();
    let started = node.started_at();
    let mut volumes = Vec::new();
    let store = node.store();
    for (i, v) in store.volumes().iter().enumerate() {
        let p = v.params();
        let health = store.health().report(&p.uuid);
        let labels = VolumeLabels {
            volume: p.uuid.clone(),
        };
        let (status, status_error) = match v.status().await {
            Ok(s) => (s, None),
            Err(e) => (Default::default(), Some(e.to_string())),
        };
        volumes.push(VolumeReport {
            uuid: p.uuid.clone(),
            location: config
                .volumes
                .get(i)
                .map_or_else(|| v.device_id().to_owned(), |c| location(&c.location)),
            storage_classes: p
                .storage_classes
                .iter()
                .filter(|(_, on)| **on)
                .map(|(c, _)| c.clone())
                .collect(),
            read_only: !p.allow_write,
            used_bytes: status.used_bytes,
            available_bytes: status.available_bytes,
            full: status.full,
            health: if health.suspect { "suspect" } else { "healthy" },
            failing_since: health.failing_since.map(unix_seconds),
            consecutive_failures: health.failures,
            last_error: redact.clean_opt(status_error.as_deref().or(health.last_error.as_deref())),
            errors_total: store.metrics().volume_errors.get_or_create(&labels).get(),
            corrupt_moved_aside: store.metrics().corrupt_blocks.get_or_create(&labels).get(),
        });
    }
    let peers = node.cluster().map_or_else(Vec::new, |c| {
        c.pool()
            .peers()
            .into_iter()
            .map(|p| peer_report(p, now, redact))
            .collect()
    });
    let (pull, trash) = (node.work().pull.status(), node.work().trash.status());
    let pullsync = node.pullsync().map(|s| {
        let m = s.metrics();
        PullsyncReport {
            owed_blocks: m.owed_blocks.get(),
            received_blocks: m.received_blocks.get(),
            received_bytes: m.received_bytes.get(),
            unsolicited: m.unsolicited.get(),
            invalid: m.invalid.get(),
            peers: s.progress(),
        }
    });
    let mut workers = node.workers().list();
    for w in &mut workers {
        w.last_error = redact.clean_opt(w.last_error.as_deref());
        w.status.progress = redact.clean_opt(w.status.progress.as_deref());
        for d in &mut w.status.details {
            *d = redact.clean(d);
        }
    }
    NodeReport {
        generated_at: unix_seconds(now),
        node: NodeFacts {
            uuid: node.uuid().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: unix_seconds(started),
            uptime_seconds: now.duration_since(started).map_or(0, |d| d.as_secs()),
            public_url: node.public_url().map(|u| redact.clean(u)),
            draining: node.is_draining(),
            read_only: node.read_only(),
            in_cluster: node.cluster().is_some(),
            replication: config.replication,
        },
        volumes,
        peers,
        workers,
        work_lists: WorkListReport {
            pull_queued: pull.queued as u64,
            pull_in_progress: pull.in_progress as u64,
            trash_queued: trash.queued as u64,
            trash_in_progress: trash.in_progress as u64,
        },
        traffic: node.traffic().report(),
        pullsync,
    }
}

fn peer_report(
    p: keep_remote::PeerView,
    now: SystemTime,
    redact: &keep_status::Redactor,
) -> PeerReport {
    let h = &p.health;
    let state = if !h.up {
        "down"
    } else if h.draining {
        "draining"
    } else if h.read_only {
        "read-only"
    } else {
        "up"
    };
    let counts = p.remote.counts();
    PeerReport {
        uuid: redact.clean(&p.remote.uuid),
        nickname: redact.clean(&p.remote.name),
        url: redact.clean(&p.remote.url),
        state,
        takes_uploads: p.writable,
        version: h.status.as_ref().map(|s| redact.clean(&s.version)),
        last_heartbeat: h.last_seen.map(unix_seconds),
        last_heartbeat_age_seconds: h
            .last_seen
            .and_then(|t| now.duration_since(t).ok())
            .map(|d| d.as_secs()),
        consecutive_failures: h.consecutive_failures,
        last_error: redact.clean_opt(h.last_error.as_deref()),
        replicas_sent: counts.replicas_sent,
        reads_forwarded: counts.reads_forwarded,
    }
}

/// A volume's location as people read it; an S3 volume's credentials are
/// not part of it.
fn location(l: &VolumeLocation) -> String {
    match l {
        VolumeLocation::Directory(p) => p.display().to_string(),
        VolumeLocation::S3(s3) => s3.spec.to_string(),
    }
}
