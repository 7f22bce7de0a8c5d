//! The storage trait.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use keep_locator::BlockHash;

use crate::{BlockBody, VolumeError};

/// An open block: its size and a stream of its bytes in chunks.
///
/// The stream yields the stored bytes as they are; verifying them against
/// the hash is the caller's job (the node does it while sending).
pub struct BlockReader {
    /// The stored size in bytes.
    pub size: u64,
    /// The bytes, in order. When `sums` is given, every chunk but the last
    /// is exactly `sums.chunk_size` bytes.
    pub chunks: BoxStream<'static, Result<Bytes, VolumeError>>,
    /// Per-chunk checksums kept with the block, if the backend has them.
    pub sums: Option<crate::ChunkSums>,
    /// Which stored copy this reads, if the backend can tell copies apart:
    /// hand it to [`Volume::quarantine`] if the bytes fail verification.
    pub copy: Option<CopyId>,
}

/// One stored copy of a block, as its backend tells copies apart (the
/// directory backend: a digest of the file's inode number and birth
/// time; S3: a digest of the object's ETag), opaque and only meaningful within one process. A block rewritten
/// in place keeps its hash but gets a new copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CopyId(pub u64);

impl std::fmt::Debug for BlockReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockReader")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// One line of an index: a stored block, its size and its mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// The block's hash.
    pub hash: BlockHash,
    /// Its size in bytes.
    pub size: u64,
    /// Its mtime, unix nanoseconds.
    pub mtime: i64,
}

/// Where [`Volume::index`] sends its entries: a bounded channel, so an index
/// of millions of blocks streams in bounded memory.
pub type IndexSender = tokio::sync::mpsc::Sender<IndexEntry>;

/// What [`Volume::presence`] answers for one block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presence {
    /// A live copy is stored.
    pub held: bool,
    /// A trashed copy is stored (asked only when no live copy is: `false`
    /// when `held`).
    pub trashed: bool,
}

/// How much space a volume has, and whether it takes new blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VolumeStatus {
    /// Bytes available for new blocks (0 when unknown).
    pub available_bytes: u64,
    /// Bytes in use (0 when unknown).
    pub used_bytes: u64,
    /// Whether the volume is too full to take a block.
    pub full: bool,
}

/// What an empty-trash pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmptyTrashStats {
    /// Trashed blocks deleted for good.
    pub deleted: u64,
    /// Their bytes.
    pub deleted_bytes: u64,
    /// Trashed blocks still inside their trash lifetime.
    pub remaining: u64,
}

/// The policy settings of a volume, as the node's configuration gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeParams {
    /// The volume's uuid (`zzzzz-nyw5e-` and 15 characters).
    pub uuid: String,
    /// Whether new blocks may be written (and existing ones touched).
    pub allow_write: bool,
    /// Whether blocks may be trashed.
    pub allow_trash: bool,
    /// How many copies the underlying storage keeps of each block.
    pub replication: u32,
    /// The storage classes this volume satisfies: a class maps to `true`
    /// when the volume offers it (Arvados's `StorageClasses`, a
    /// `map[string]bool`; a class set to `false` is as if absent). There
    /// is no priority among them: a PUT asking for a class uses any
    /// writable volume that offers it, in the block's placement order.
    pub storage_classes: BTreeMap<String, bool>,
    /// How long a trashed block stays restorable. Zero deletes at once.
    pub trash_lifetime: Duration,
}

impl VolumeParams {
    /// Writable, trashable, replication 1, class `default`, 2-week trash.
    pub fn new(uuid: impl Into<String>) -> Self {
        VolumeParams {
            uuid: uuid.into(),
            allow_write: true,
            allow_trash: true,
            replication: 1,
            storage_classes: BTreeMap::from([("default".to_owned(), true)]),
            trash_lifetime: Duration::from_secs(336 * 3600),
        }
    }
}

/// A place that stores blocks.
///
/// Every method is safe to call concurrently. Errors for a block that is not
/// there are [`VolumeError::NotFound`].
#[async_trait]
pub trait Volume: Send + Sync + std::fmt::Debug + 'static {
    /// The policy settings (uuid, write and trash permission, classes).
    fn params(&self) -> &VolumeParams;

    /// An id of the underlying storage device: two volumes with the same id
    /// share their blocks.
    fn device_id(&self) -> &str;

    /// Opens a block for reading.
    async fn open(&self, hash: &BlockHash) -> Result<BlockReader, VolumeError>;

    /// Stores a block. The block becomes visible, whole, only if `body`
    /// ends without error; otherwise nothing of it remains. Writing a block
    /// that exists replaces it with identical content and refreshes its mtime.
    async fn write(&self, hash: &BlockHash, body: BlockBody) -> Result<(), VolumeError>;

    /// Stores several blocks, each exactly as [`Volume::write`] would, and
    /// answers for each, in order: one refused body fails only its own
    /// block. Pullsync stores the small blocks of a delivery this way. The
    /// default writes them concurrently, each on its own; the directory
    /// backend hands its small blocks to its journal together, so that a
    /// batch costs one queue trip, one flush and one answer.
    async fn write_many(
        &self,
        blocks: Vec<(BlockHash, BlockBody)>,
    ) -> Vec<Result<(), VolumeError>> {
        let writes = blocks
            .into_iter()
            .map(|(hash, body)| async move { self.write(&hash, body).await });
        futures::future::join_all(writes).await
    }

    /// Sets a stored block's mtime to now.
    async fn touch(&self, hash: &BlockHash) -> Result<(), VolumeError>;

    /// The block's mtime in unix nanoseconds.
    async fn mtime(&self, hash: &BlockHash) -> Result<i64, VolumeError>;

    /// Moves a block to the trash, where it stays restorable for the trash
    /// lifetime. With `if_mtime`, trashes only if the block's mtime is
    /// exactly that (else [`VolumeError::MtimeMismatch`]), atomically with
    /// respect to writes and touches of the same block on this volume.
    async fn trash(&self, hash: &BlockHash, if_mtime: Option<i64>) -> Result<(), VolumeError>;

    /// Restores the most recently trashed copy of a block.
    async fn untrash(&self, hash: &BlockHash) -> Result<(), VolumeError>;

    /// Whether a trashed copy of the block is on this volume (restorable
    /// with [`Volume::untrash`] until the trash is emptied). Pullsync asks
    /// this so that it never brings back a block the cluster deleted.
    async fn trashed(&self, hash: &BlockHash) -> Result<bool, VolumeError>;

    /// For each of `hashes`, whether this volume holds the block and
    /// whether it holds a trashed copy, in one call: pullsync asks this of
    /// a page of offered blocks at once. The default asks block by block
    /// ([`Volume::mtime`], [`Volume::trashed`]; the trash only for blocks
    /// not held); backends override it to answer a page in one trip.
    async fn presence(&self, hashes: &[BlockHash]) -> Result<Vec<Presence>, VolumeError> {
        let mut out = Vec::with_capacity(hashes.len());
        for hash in hashes {
            let held = match self.mtime(hash).await {
                Ok(_) => true,
                Err(VolumeError::NotFound) => false,
                Err(e) => return Err(e),
            };
            let trashed = !held && self.trashed(hash).await?;
            out.push(Presence { held, trashed });
        }
        Ok(out)
    }

    /// Deletes trashed blocks whose trash lifetime has passed.
    async fn empty_trash(&self) -> Result<EmptyTrashStats, VolumeError>;

    /// Sends every stored block whose hex hash starts with `prefix`.
    async fn index(&self, prefix: &str, out: IndexSender) -> Result<(), VolumeError>;

    /// Capacity and fullness.
    async fn status(&self) -> Result<VolumeStatus, VolumeError>;

    /// Moves a block whose content failed verification out of the way, so
    /// it is neither served nor counted again. It stays on the volume for
    /// inspection under a name no index lists. With `copy` (from the
    /// [`BlockReader`] whose bytes failed), only that copy is moved: if the
    /// block was rewritten since (a repair PUT, say), the new copy stays
    /// and the answer is `Ok`. Backends that cannot tell copies apart
    /// ignore it.
    async fn quarantine(&self, hash: &BlockHash, copy: Option<CopyId>) -> Result<(), VolumeError>;

    /// Whether this volume would keep chunk sums (see
    /// [`Volume::keep_sums`]) for a block of `size` bytes that it served
    /// without any. Cheap: asked on reads. The default: never.
    fn wants_sums(&self, size: u64) -> bool {
        let _ = size;
        false
    }

    /// Keeps the chunk sums of a block of `size` bytes that the caller
    /// read from this volume without sums and verified by its MD5, so that
    /// later reads check them instead (at BLAKE3 speed): this is how blocks
    /// written by Arvados or by earlier versions, or whose sums were lost,
    /// get them. Best effort: a volume may skip it (busy, full, read-only,
    /// the block gone), and a lost or damaged result must read as no sums.
    /// The default keeps nothing.
    async fn keep_sums(
        &self,
        hash: &BlockHash,
        size: u64,
        sums: crate::ChunkSums,
    ) -> Result<(), VolumeError> {
        let _ = (hash, size, sums);
        Ok(())
    }
}

/// Now, in unix nanoseconds.
pub fn unix_nanos_now() -> i64 {
    to_unix_nanos(SystemTime::now())
}

/// A time in unix nanoseconds (negative before 1970).
pub(crate) fn to_unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}
