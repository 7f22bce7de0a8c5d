//! What the storage core is opened from: the validated volume settings
//! (the node's config file is parsed into these by the server).

use std::path::PathBuf;
use std::time::Duration;

/// Where a volume lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeLocation {
    /// A local folder.
    Directory(PathBuf),
    /// An S3 bucket.
    S3(Box<S3Location>),
}

/// An S3 volume's bucket and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// Bucket, prefix, endpoint, region.
    pub spec: keep_volume_s3::S3Spec,
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: Secret,
    /// Arvados's RaceWindow.
    pub race_window: Duration,
}

/// A validated volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeConfig {
    /// Where the blocks are.
    pub location: VolumeLocation,
    /// The uuid, if configured.
    pub uuid: Option<String>,
    /// Writes allowed.
    pub allow_write: bool,
    /// Trash allowed.
    pub allow_trash: bool,
    /// Copies the storage keeps.
    pub replication: u32,
    /// Storage classes.
    pub storage_classes: Vec<String>,
    /// Full below this many free bytes.
    pub min_free_bytes: u64,
}

/// What the storage core needs beyond its volumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Volumes, in configured order.
    pub volumes: Vec<VolumeConfig>,
    /// Memory for block data in flight, bytes.
    pub max_buffer_memory: u64,
    /// How long trashed blocks stay restorable.
    pub trash_lifetime: Duration,
    /// The lifetime of permission signatures (an S3 volume keeps recently
    /// written blocks' markers at least this long).
    pub signing_ttl: Duration,
}

/// A secret read from a file. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret from its text.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl VolumeConfig {
    /// A writable directory volume with the defaults: class `default`,
    /// replication 1, no free-space reserve.
    pub fn directory(root: impl Into<PathBuf>) -> VolumeConfig {
        VolumeConfig {
            location: VolumeLocation::Directory(root.into()),
            uuid: None,
            allow_write: true,
            allow_trash: true,
            replication: 1,
            storage_classes: vec!["default".into()],
            min_free_bytes: 0,
        }
    }
}

impl Default for StoreConfig {
    /// No volumes, 256 MiB of buffers, two weeks of trash and signatures.
    fn default() -> Self {
        StoreConfig {
            volumes: Vec::new(),
            max_buffer_memory: DEFAULT_MAX_BUFFER_MEMORY,
            trash_lifetime: DEFAULT_TTL,
            signing_ttl: DEFAULT_TTL,
        }
    }
}

/// Memory for block data in flight unless configured: 256 MiB.
pub const DEFAULT_MAX_BUFFER_MEMORY: u64 = 256 << 20;

/// Trash lifetime and signature lifetime unless configured: 336 h, as Arvados.
pub const DEFAULT_TTL: Duration = Duration::from_secs(336 * 3600);
