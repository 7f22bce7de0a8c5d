//! Trash on a store without rename, shaped (as Arvados's S3 volume) for
//! stores where a write may become visible late:
//!
//! - trash copies `X` to `trash/X`, then deletes `X`; `recent/X` stays;
//! - the race guard: trash is refused while an existing `trash/X` could
//!   expire before a new copy is surely visible, that is when
//!   `time(trash/X) + trash lifetime − (now + race window) ≤ 0`;
//! - recovery: `recent/X` without `X`, and `trash/X` made less than the
//!   signing TTL after `recent/X`, means a write or touch raced the trash
//!   (no block that young is ever sent to the trash): `X` is restored;
//! - untrash copies `trash/X` back, rewrites `recent/X`, deletes `trash/X`;
//! - empty-trash deletes `trash/X` once its lifetime passed, then
//!   `recent/X` unless `X` is back.

use keep_locator::BlockHash;
use keep_volume::{CopyId, EmptyTrashStats, VolumeError};

use crate::client::Listed;
use crate::error::S3Error;
use crate::time::{now_secs, secs_to_nanos};
use crate::volume::{Inner, copy_id};

/// What one empty-trash step did with one trashed copy.
enum Swept {
    Deleted(u64),
    Kept,
    Restored,
}

impl Inner {
    pub(crate) async fn trash(
        &self,
        hash: &BlockHash,
        if_mtime: Option<i64>,
    ) -> Result<(), VolumeError> {
        if !self.params.allow_trash {
            return Err(VolumeError::ReadOnly);
        }
        let _guard = self.lock(hash).await;
        let actual = secs_to_nanos(self.mtime_secs(hash).await?);
        if let Some(expected) = if_mtime
            && expected != actual
        {
            return Err(VolumeError::MtimeMismatch { expected, actual });
        }
        let data = self.layout.data(hash);
        if self.params.trash_lifetime.is_zero() {
            self.client.delete(&data).await?;
            self.client.delete(&self.layout.recent(hash)).await?;
            return Ok(());
        }
        self.check_race_window(hash).await?;
        self.client.copy(&data, &self.layout.trash(hash)).await?;
        self.client.delete(&data).await?;
        Ok(())
    }

    /// Refuses to trash `hash` again while its existing trashed copy might
    /// be deleted before the new one is visible everywhere.
    async fn check_race_window(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        let trashed = match self.client.head(&self.layout.trash(hash)).await {
            Ok(meta) => meta,
            Err(S3Error::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let expires = trashed
            .modified
            .saturating_add(secs(self.params.trash_lifetime));
        let safe = expires.saturating_sub(now_secs().saturating_add(secs(self.race_window)));
        if safe <= 0 {
            return Err(VolumeError::Unavailable(format!(
                "block {hash} is already in the trash, and that copy may expire within the \
                 race window ({}s); not trashing it again now",
                secs(self.race_window)
            )));
        }
        Ok(())
    }

    /// Restores `X` from `trash/X` if `recent/X` shows a write or touch that
    /// raced the trash. Whether it restored the block.
    pub(crate) async fn fix_race(&self, hash: &BlockHash) -> Result<bool, S3Error> {
        if self.signing_ttl.is_zero() || !self.params.allow_write {
            return Ok(false);
        }
        let trash = self.layout.trash(hash);
        let trashed = match self.client.head(&trash).await {
            Ok(meta) => meta,
            Err(S3Error::NotFound) => return Ok(false),
            Err(e) => return Err(e),
        };
        let touched = match self.client.head(&self.layout.recent(hash)).await {
            Ok(meta) => meta,
            Err(S3Error::NotFound) => return Ok(false),
            Err(e) => return Err(e),
        };
        let age_when_trashed = trashed.modified - touched.modified;
        if age_when_trashed >= secs(self.signing_ttl) {
            return Ok(false);
        }
        tracing::warn!(
            block = %hash,
            age_when_trashed,
            "block was trashed less than the signing TTL after its last write; restoring it"
        );
        match self.client.copy(&trash, &self.layout.data(hash)).await {
            Ok(()) => Ok(true),
            Err(S3Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn untrash(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        let _guard = self.lock(hash).await;
        let trash = self.layout.trash(hash);
        self.client.copy(&trash, &self.layout.data(hash)).await?;
        self.client.put_empty(&self.layout.recent(hash)).await?;
        self.client.delete(&trash).await?;
        Ok(())
    }

    pub(crate) async fn trashed(&self, hash: &BlockHash) -> Result<bool, VolumeError> {
        match self.client.head(&self.layout.trash(hash)).await {
            Ok(_) => Ok(true),
            Err(S3Error::NotFound) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn quarantine(
        &self,
        hash: &BlockHash,
        copy: Option<CopyId>,
    ) -> Result<(), VolumeError> {
        // No upload of the block through this node runs until the move is
        // done (uploads take this lock first, and not the other with it).
        let _turn = self.uploads.lock(hash).await;
        let _guard = self.lock(hash).await;
        let data = self.layout.data(hash);
        if let Some(copy) = copy {
            let (_, etag) = self.client.head_tagged(&data).await?;
            if etag.as_deref().map(copy_id) != Some(copy) {
                tracing::info!(block = %hash, "a block that failed its checksum was rewritten since it was read; left in place");
                return Ok(());
            }
        }
        let aside = self.layout.quarantine(hash, keep_volume::unix_nanos_now());
        self.client.copy(&data, &aside).await?;
        self.client.delete(&data).await?;
        self.client.delete(&self.layout.recent(hash)).await?;
        tracing::warn!(block = %hash, key = %aside, "quarantined a corrupt block");
        Ok(())
    }

    pub(crate) async fn empty_trash(&self) -> Result<EmptyTrashStats, VolumeError> {
        let mut stats = EmptyTrashStats::default();
        let start = now_secs();
        let listing = self.layout.trash_listing();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list(&listing, token.as_deref(), self.index_page_size)
                .await?;
            for obj in &page.objects {
                let Some(hash) = self.layout.parse_trash(&obj.key) else {
                    continue;
                };
                match self.sweep(&hash, obj, start).await {
                    Ok(Swept::Deleted(bytes)) => {
                        stats.deleted += 1;
                        stats.deleted_bytes += bytes;
                    }
                    Ok(Swept::Kept) => stats.remaining += 1,
                    Ok(Swept::Restored) => {}
                    Err(e) => {
                        tracing::warn!(block = %hash, error = %e, "empty trash: skipped");
                        stats.remaining += 1;
                    }
                }
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(stats),
            }
        }
    }

    /// Deletes one trashed copy if its lifetime has passed, or restores
    /// the block if it was trashed in a race.
    async fn sweep(&self, hash: &BlockHash, obj: &Listed, start: i64) -> Result<Swept, S3Error> {
        let _guard = self.lock(hash).await;
        let trashed_at = obj.meta.modified;
        let data = self.layout.data(hash);
        let recent = self.layout.recent(hash);
        let raced = match self.client.head(&recent).await {
            Ok(touched) => {
                !self.signing_ttl.is_zero()
                    && trashed_at - touched.modified < secs(self.signing_ttl)
            }
            Err(S3Error::NotFound) => false,
            Err(e) => return Err(e),
        };
        if raced && self.params.allow_write {
            match self.client.head(&data).await {
                Err(S3Error::NotFound) => {
                    tracing::warn!(block = %hash, "empty trash: trashed in a race with a write; restoring");
                    self.client.copy(&obj.key, &data).await?;
                    self.client.put_empty(&recent).await?;
                    return Ok(Swept::Restored);
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        // LastModified is rounded down to the second: wait one more.
        if start - trashed_at < secs(self.params.trash_lifetime).saturating_add(1) {
            return Ok(Swept::Kept);
        }
        self.client.delete(&obj.key).await?;
        if let Err(S3Error::NotFound) = self.client.head(&data).await {
            self.client.delete(&recent).await?;
        }
        Ok(Swept::Deleted(obj.meta.size))
    }
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
