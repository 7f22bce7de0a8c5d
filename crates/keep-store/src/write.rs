//! The one way a block enters the node: client PUTs, replicas from peers
//! and pulls alike go through [`Store::store`].

use std::sync::Arc;

use keep_locator::BlockHash;
use keep_volume::{BlockBody, Volume, VolumeError};

use crate::{Store, StoreError, dedup};

/// Where a block may go.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement<'a> {
    /// Only this volume (a pull list's `mount_uuid`).
    pub mount: Option<&'a str>,
    /// The storage classes a client asked for (`X-Keep-Storage-Classes`).
    pub classes: &'a [String],
}

/// Blocks up to this size skip the "does a volume have it" question when
/// only one volume can take them.
const DIRECT_WRITE_MAX: u64 = 64 << 10;

impl Store {
    /// Stores a block received as `body` and returns the volume holding it.
    ///
    /// With `place.mount`, only that volume is used. With `place.classes`,
    /// only the writable volumes in one of them are used, as Arvados's
    /// keepstore does, unless none is: then the block is placed as if none
    /// were asked for, and the volume returned tells the caller which
    /// classes it got (Arvados would refuse it). Among the volumes used,
    /// one that already has the block takes the body for comparison (only
    /// its mtime is refreshed when the content is equal); else the first
    /// writable, non-full volume in rendezvous order writes it. A suspect
    /// volume (see [`crate::health`]) is not asked whether it has the
    /// block (a second copy elsewhere beats waiting for its timeouts) and
    /// takes new blocks only if no other volume can.
    pub async fn store(
        &self,
        hash: BlockHash,
        body: BlockBody,
        place: Placement<'_>,
    ) -> Result<Arc<dyn Volume>, StoreError> {
        let writable = self.targets(&hash, place)?;
        // A small block for the only writable volume goes straight to it: a
        // volume's write of a block it holds keeps (or repairs) that copy and
        // refreshes its mtime, so asking first would only cost a trip to disk.
        if let [v] = writable[..]
            && body.declared_len().is_some_and(|n| n <= DIRECT_WRITE_MAX)
            && matches!(v.status().await, Ok(st) if !st.full)
        {
            v.write(&hash, body).await?;
            return Ok(v.clone());
        }
        for v in &writable {
            if self.health().is_suspect(&v.params().uuid) {
                continue;
            }
            match v.mtime(&hash).await {
                Ok(_) => {
                    dedup::write_or_touch(v, hash, body).await?;
                    return Ok((*v).clone());
                }
                // Not there; or failed, and the wrapper marked it suspect.
                Err(_) => continue,
            }
        }
        let target = self.pick_target(&writable).await?;
        target.write(&hash, body).await?;
        Ok(target.clone())
    }

    /// Stores several blocks, each as [`Store::store`] would, and answers
    /// for each, in order (one refused body fails only its own block).
    ///
    /// When every block is small (at most 64 KiB) and one writable volume
    /// can take them all (it is the only one, as on most nodes), they go to
    /// it in one [`Volume::write_many`]: a directory volume journals them
    /// together. Otherwise each block is stored on its own, concurrently.
    pub async fn store_many(
        &self,
        blocks: Vec<(BlockHash, BlockBody)>,
        place: Placement<'_>,
    ) -> Vec<Result<(), StoreError>> {
        let small = blocks
            .iter()
            .all(|(_, b)| b.declared_len().is_some_and(|n| n <= DIRECT_WRITE_MAX));
        let first = blocks.first().map(|(hash, _)| *hash);
        let sole = match first {
            Some(first) if small => self.sole_target(&first, place).await,
            _ => None,
        };
        if let Some(v) = sole {
            return v
                .write_many(blocks)
                .await
                .into_iter()
                .map(|r| r.map_err(StoreError::from))
                .collect();
        }
        let stores = blocks
            .into_iter()
            .map(|(hash, body)| async move { self.store(hash, body, place).await.map(|_| ()) });
        futures::future::join_all(stores).await
    }

    /// The volume that takes small blocks directly, as [`Store::store`]
    /// would each of them: the one writable volume (after `place`), if it
    /// is not full. The writable volumes are the same for every block
    /// (only their order depends on the hash), so `hash` stands for all.
    async fn sole_target(
        &self,
        hash: &BlockHash,
        place: Placement<'_>,
    ) -> Option<&Arc<dyn Volume>> {
        let writable = self.targets(hash, place).ok()?;
        match writable[..] {
            [v] if matches!(v.status().await, Ok(st) if !st.full) => Some(v),
            _ => None,
        }
    }

    /// The volumes that may take `hash` under `place`, in placement order:
    /// writable, and in one of the classes asked for if any volume is.
    fn targets(
        &self,
        hash: &BlockHash,
        place: Placement<'_>,
    ) -> Result<Vec<&Arc<dyn Volume>>, StoreError> {
        let mut writable: Vec<&Arc<dyn Volume>> = match place.mount {
            Some(uuid) => vec![
                self.volume(uuid)
                    .ok_or_else(|| StoreError::NoSuchMount(uuid.to_owned()))?,
            ],
            None => self.volumes_for(hash),
        }
        .into_iter()
        .filter(|v| v.params().allow_write)
        .collect();
        if writable.is_empty() {
            return Err(StoreError::ReadOnly);
        }
        let in_class = |v: &&Arc<dyn Volume>| {
            place
                .classes
                .iter()
                .any(|c| v.params().storage_classes.get(c) == Some(&true))
        };
        if writable.iter().any(in_class) {
            writable.retain(in_class);
        }
        Ok(writable)
    }

    /// The first writable volume, in placement order, that is not full and
    /// did not just fail (unless every volume did).
    async fn pick_target<'a>(
        &self,
        writable: &[&'a Arc<dyn Volume>],
    ) -> Result<&'a Arc<dyn Volume>, StoreError> {
        let mut unavailable = None;
        let (healthy, suspect): (Vec<&&Arc<dyn Volume>>, Vec<_>) = writable
            .iter()
            .partition(|v| !self.health().is_suspect(&v.params().uuid));
        for v in healthy.into_iter().chain(suspect) {
            match v.status().await {
                Ok(st) if !st.full => return Ok(v),
                Ok(_) => {}
                Err(e) => unavailable = Some(e),
            }
        }
        Err(match unavailable {
            Some(e) => StoreError::NoTarget(e.to_string()),
            None => VolumeError::Full.into(),
        })
    }
}
