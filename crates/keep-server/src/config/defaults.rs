//! Every default, defined once: validation falls back on these, and the
//! field docs name them.

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
/// `request_body_idle_timeout`: long enough for any client that is
/// sending, short enough that stalled PUTs give their buffers back before
/// other requests waiting for buffer memory give up.
pub const REQUEST_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// `response_write_timeout`: a client that reads nothing of an answer
/// for this long loses its connection.
pub const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// `pull_connect_timeout`.
pub const PULL_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `pull_idle_timeout`.
pub const PULL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// `drain_timeout`.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// `worker_shutdown_deadline`.
pub const WORKER_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
/// `pullsync.index_flush_interval`.
pub const PULLSYNC_INDEX_FLUSH: Duration = Duration::from_secs(5);
/// A volume's `replication`.
pub const VOLUME_REPLICATION: u32 = 1;
/// A volume's `storage_classes`.
pub const STORAGE_CLASS: &str = "default";
/// An S3 volume's `race_window`, as Arvados.
pub const RACE_WINDOW: Duration = Duration::from_secs(24 * 3600);
