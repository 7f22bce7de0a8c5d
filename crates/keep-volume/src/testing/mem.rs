//! [`MemVolume`]: a volume that keeps its blocks in memory.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use keep_locator::BlockHash;
use tokio::time::Instant;

use crate::{
    BlockBody, BlockReader, CHUNK_SIZE, CopyId, EmptyTrashStats, IndexEntry, IndexSender, Volume,
    VolumeError, VolumeParams, VolumeStatus,
};

/// How many index entries are taken per hold of the lock.
const INDEX_PAGE: usize = 256;

/// A [`Volume`] that keeps its blocks in memory: for tests of whatever
/// sits above the volumes (the node's store, its workers), with no disk and
/// no server.
///
/// It behaves as the conformance suite asks of every backend: a write
/// becomes visible whole only once its body verified; mtimes are unix
/// nanoseconds that strictly increase from one write or touch to the next
/// on the same device (even within one tick of the clock); trashed blocks
/// stay restorable for the trash lifetime (measured on tokio's clock, so a
/// test with paused time can let it pass at once); every write makes a new
/// [`CopyId`], and [`quarantine`](Volume::quarantine) moves a copy aside
/// where [`quarantined`](MemVolume::quarantined) still shows it. Its
/// capacity is unlimited unless [set](MemVolume::set_capacity): a volume
/// whose blocks (live, trashed and quarantined) fill it reports `full`
/// and refuses writes with [`VolumeError::Full`].
///
/// Beside the trait, a test can look at and tamper with what is stored:
/// [`stored`](MemVolume::stored), [`insert_raw`](MemVolume::insert_raw),
/// [`corrupt`](MemVolume::corrupt), [`set_mtime`](MemVolume::set_mtime).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use bytes::Bytes;
/// use keep_locator::BlockHash;
/// use keep_volume::testing::MemVolume;
/// use keep_volume::{BlockBody, Volume, VolumeError, VolumeParams};
///
/// let vol = MemVolume::new(VolumeParams::new("zzzzz-nyw5e-000000000000000")).with_capacity(5);
/// let hash = BlockHash::of(b"foo");
/// vol.write(&hash, BlockBody::from_bytes(hash, Bytes::from_static(b"foo")))
///     .await
///     .unwrap();
/// assert_eq!(vol.stored(&hash).unwrap(), "foo");
///
/// // Three of five bytes are used: a block of three more does not fit.
/// let bar = BlockHash::of(b"bar");
/// let err = vol
///     .write(&bar, BlockBody::from_bytes(bar, Bytes::from_static(b"bar")))
///     .await
///     .unwrap_err();
/// assert!(matches!(err, VolumeError::Full));
/// # }
/// ```
pub struct MemVolume {
    params: VolumeParams,
    device: Arc<Device>,
}

/// What volumes sharing a device share.
#[derive(Debug)]
struct Device {
    id: String,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    blocks: BTreeMap<BlockHash, Stored>,
    /// Trashed copies, oldest first.
    trash: Vec<Trashed>,
    /// Copies moved aside, oldest first.
    quarantine: Vec<(BlockHash, Stored)>,
    /// `None`: unlimited.
    capacity: Option<u64>,
    /// The last mtime handed out.
    last_mtime: i64,
    /// The last copy id handed out.
    last_copy: u64,
}

/// One stored copy of a block.
#[derive(Debug, Clone)]
struct Stored {
    data: Bytes,
    mtime: i64,
    copy: CopyId,
}

#[derive(Debug)]
struct Trashed {
    hash: BlockHash,
    stored: Stored,
    /// When it may be deleted for good.
    deadline: Instant,
}

impl State {
    /// The next mtime: now, or just after the last one if the clock has not
    /// moved past it.
    fn next_mtime(&mut self) -> i64 {
        let mtime = crate::unix_nanos_now().max(self.last_mtime.saturating_add(1));
        self.last_mtime = mtime;
        mtime
    }

    fn next_copy(&mut self) -> CopyId {
        self.last_copy += 1;
        CopyId(self.last_copy)
    }

    /// Bytes held: live, trashed and quarantined copies.
    fn used(&self) -> u64 {
        let live: usize = self.blocks.values().map(|s| s.data.len()).sum();
        let trash: usize = self.trash.iter().map(|t| t.stored.data.len()).sum();
        let aside: usize = self.quarantine.iter().map(|(_, s)| s.data.len()).sum();
        (live + trash + aside) as u64
    }

    fn status(&self) -> VolumeStatus {
        let used = self.used();
        match self.capacity {
            None => VolumeStatus {
                available_bytes: 0,
                used_bytes: used,
                full: false,
            },
            Some(cap) => VolumeStatus {
                available_bytes: cap.saturating_sub(used),
                used_bytes: used,
                full: used >= cap,
            },
        }
    }

    fn live(&self, hash: &BlockHash) -> Result<&Stored, VolumeError> {
        self.blocks.get(hash).ok_or(VolumeError::NotFound)
    }
}

impl std::fmt::Debug for MemVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("MemVolume")
            .field("uuid", &self.params.uuid)
            .field("device_id", &self.device.id)
            .field("blocks", &st.blocks.len())
            .field("trashed", &st.trash.len())
            .field("quarantined", &st.quarantine.len())
            .field("capacity", &st.capacity)
            .finish()
    }
}

impl MemVolume {
    /// An empty volume with unlimited capacity, on a device of its own
    /// (`mem:` and the uuid).
    pub fn new(params: VolumeParams) -> MemVolume {
        let id = format!("mem:{}", params.uuid);
        MemVolume {
            params,
            device: Arc::new(Device {
                id,
                state: Mutex::default(),
            }),
        }
    }

    /// This volume with a capacity of `bytes` (see
    /// [`set_capacity`](Self::set_capacity)).
    #[must_use]
    pub fn with_capacity(self, bytes: u64) -> MemVolume {
        self.set_capacity(Some(bytes));
        self
    }

    /// Sets the device's capacity in bytes (`None`: unlimited), at any
    /// time. Live, trashed and quarantined copies count against it; once
    /// they fill it, [`status`](Volume::status) says `full` and writes
    /// fail with [`VolumeError::Full`], as does a write whose block would
    /// not fit.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// Another volume on the same device (same blocks, same device id),
    /// with its own `params`: as two mounts of one directory are.
    pub fn share(&self, params: VolumeParams) -> MemVolume {
        MemVolume {
            params,
            device: self.device.clone(),
        }
    }

    /// The stored bytes of a live block, as they are (unverified).
    pub fn stored(&self, hash: &BlockHash) -> Option<Bytes> {
        self.lock().blocks.get(hash).map(|s| s.data.clone())
    }

    /// Whether a live copy of the block is stored.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.lock().blocks.contains_key(hash)
    }

    /// The live blocks, in hash order.
    pub fn hashes(&self) -> Vec<BlockHash> {
        self.lock().blocks.keys().copied().collect()
    }

    /// How many live blocks are stored.
    pub fn len(&self) -> usize {
        self.lock().blocks.len()
    }

    /// Whether no live block is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().blocks.is_empty()
    }

    /// The blocks in the trash, oldest first (a block trashed twice is
    /// listed twice).
    pub fn trashed(&self) -> Vec<BlockHash> {
        self.lock().trash.iter().map(|t| t.hash).collect()
    }

    /// The blocks moved aside by [`quarantine`](Volume::quarantine),
    /// oldest first.
    pub fn quarantined(&self) -> Vec<BlockHash> {
        self.lock().quarantine.iter().map(|(h, _)| *h).collect()
    }

    /// Loses a live block as a failed disk would: no trash, no quarantine,
    /// nobody told. Returns whether it was there.
    pub fn lose(&self, hash: &BlockHash) -> bool {
        self.lock().blocks.remove(hash).is_some()
    }

    /// Stores `data` under `hash` as it is, unchecked (no hash check, no
    /// capacity, no permission): a block some other writer left, or a copy
    /// that was corrupt from the start. It gets a new copy and mtime.
    pub fn insert_raw(&self, hash: BlockHash, data: impl Into<Bytes>) {
        let mut st = self.lock();
        let stored = Stored {
            data: data.into(),
            mtime: st.next_mtime(),
            copy: st.next_copy(),
        };
        st.blocks.insert(hash, stored);
    }

    /// Flips one byte of a live block's stored copy in place (its copy id
    /// and mtime stay, as bit rot keeps a file's): reads of it then fail
    /// their hash check. Returns whether the block was there with at least
    /// one byte.
    pub fn corrupt(&self, hash: &BlockHash) -> bool {
        let mut st = self.lock();
        let Some(stored) = st.blocks.get_mut(hash) else {
            return false;
        };
        if stored.data.is_empty() {
            return false;
        }
        let mut data = BytesMut::from(&stored.data[..]);
        let mid = data.len() / 2;
        data[mid] ^= 0x01;
        stored.data = data.freeze();
        true
    }

    /// Sets a live block's mtime (unix nanoseconds), as an old block
    /// would have. Returns whether the block was there.
    pub fn set_mtime(&self, hash: &BlockHash, mtime: i64) -> bool {
        match self.lock().blocks.get_mut(hash) {
            Some(stored) => {
                stored.mtime = mtime;
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.device
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_writable(&self) -> Result<(), VolumeError> {
        if self.params.allow_write {
            Ok(())
        } else {
            Err(VolumeError::ReadOnly)
        }
    }
}

#[async_trait]
impl Volume for MemVolume {
    fn params(&self) -> &VolumeParams {
        &self.params
    }

    fn device_id(&self) -> &str {
        &self.device.id
    }

    async fn open(&self, hash: &BlockHash) -> Result<BlockReader, VolumeError> {
        let stored = self.lock().live(hash)?.clone();
        let data = stored.data;
        let chunks: Vec<Result<Bytes, VolumeError>> = (0..data.len())
            .step_by(CHUNK_SIZE)
            .map(|at| Ok(data.slice(at..data.len().min(at + CHUNK_SIZE))))
            .collect();
        Ok(BlockReader {
            size: data.len() as u64,
            chunks: futures::stream::iter(chunks).boxed(),
            sums: None,
            copy: Some(stored.copy),
        })
    }

    async fn write(&self, hash: &BlockHash, mut body: BlockBody) -> Result<(), VolumeError> {
        self.check_writable()?;
        // A full device takes nothing; else the block must fit, counting
        // the copy it replaces as freed.
        let fits = |st: &State, len: u64| {
            st.capacity.is_none_or(|cap| {
                let used = st.used();
                let replaced = st.blocks.get(hash).map_or(0, |s| s.data.len() as u64);
                used < cap && used - replaced + len <= cap
            })
        };
        if !fits(&self.lock(), body.declared_len().unwrap_or(0)) {
            return Err(VolumeError::Full);
        }
        let mut parts = Vec::new();
        while let Some(chunk) = body.next_chunk().await? {
            parts.push(chunk);
        }
        let data: Bytes = match parts.len() {
            0 => Bytes::new(),
            1 => parts.swap_remove(0),
            _ => parts.concat().into(),
        };
        let mut st = self.lock();
        if !fits(&st, data.len() as u64) {
            return Err(VolumeError::Full);
        }
        let stored = Stored {
            data,
            mtime: st.next_mtime(),
            copy: st.next_copy(),
        };
        st.blocks.insert(*hash, stored);
        Ok(())
    }

    async fn touch(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        self.check_writable()?;
        let mut st = self.lock();
        st.live(hash)?;
        let mtime = st.next_mtime();
        if let Some(stored) = st.blocks.get_mut(hash) {
            stored.mtime = mtime;
        }
        Ok(())
    }

    async fn mtime(&self, hash: &BlockHash) -> Result<i64, VolumeError> {
        Ok(self.lock().live(hash)?.mtime)
    }

    async fn trash(&self, hash: &BlockHash, if_mtime: Option<i64>) -> Result<(), VolumeError> {
        if !self.params.allow_trash {
            return Err(VolumeError::ReadOnly);
        }
        let mut st = self.lock();
        let actual = st.live(hash)?.mtime;
        if let Some(expected) = if_mtime
            && expected != actual
        {
            return Err(VolumeError::MtimeMismatch { expected, actual });
        }
        let Some(stored) = st.blocks.remove(hash) else {
            return Err(VolumeError::NotFound);
        };
        let lifetime = self.params.trash_lifetime;
        if !lifetime.is_zero() {
            st.trash.push(Trashed {
                hash: *hash,
                stored,
                deadline: Instant::now() + lifetime,
            });
        }
        Ok(())
    }

    async fn untrash(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        self.check_writable()?;
        let mut st = self.lock();
        let at = st
            .trash
            .iter()
            .rposition(|t| t.hash == *hash)
            .ok_or(VolumeError::NotFound)?;
        let restored = st.trash.remove(at);
        st.blocks.insert(*hash, restored.stored);
        Ok(())
    }

    async fn empty_trash(&self) -> Result<EmptyTrashStats, VolumeError> {
        let now = Instant::now();
        let mut stats = EmptyTrashStats::default();
        self.lock().trash.retain(|t| {
            if t.deadline <= now {
                stats.deleted += 1;
                stats.deleted_bytes += t.stored.data.len() as u64;
                false
            } else {
                stats.remaining += 1;
                true
            }
        });
        Ok(stats)
    }

    async fn index(&self, prefix: &str, out: IndexSender) -> Result<(), VolumeError> {
        let mut after = Bound::Unbounded;
        loop {
            // A page at a time, so no lock is held while the receiver
            // is slow.
            let mut last = None;
            let page: Vec<IndexEntry> = self
                .lock()
                .blocks
                .range((after, Bound::Unbounded))
                .take(INDEX_PAGE)
                .inspect(|(hash, _)| last = Some(**hash))
                .filter(|(hash, _)| hash.prefix_matches(prefix))
                .map(|(hash, s)| IndexEntry {
                    hash: *hash,
                    size: s.data.len() as u64,
                    mtime: s.mtime,
                })
                .collect();
            let Some(last) = last else {
                return Ok(());
            };
            for entry in page {
                if out.send(entry).await.is_err() {
                    // Nobody listens any more.
                    return Ok(());
                }
            }
            after = Bound::Excluded(last);
        }
    }

    async fn status(&self) -> Result<VolumeStatus, VolumeError> {
        Ok(self.lock().status())
    }

    async fn trashed(&self, hash: &BlockHash) -> Result<bool, VolumeError> {
        Ok(self.lock().trash.iter().any(|t| t.hash == *hash))
    }

    async fn quarantine(&self, hash: &BlockHash, copy: Option<CopyId>) -> Result<(), VolumeError> {
        let mut st = self.lock();
        let now = st.live(hash)?.copy;
        if copy.is_some_and(|c| c != now) {
            // Rewritten since that copy was read: the new one stays.
            return Ok(());
        }
        if let Some(stored) = st.blocks.remove(hash) {
            st.quarantine.push((*hash, stored));
        }
        Ok(())
    }
}
