//! The S3 volume: opening it, and reading, writing, touching and dating
//! blocks. Trash lives in [`trash`](crate::trash), the index in
//! [`index`](crate::index).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use keep_locator::BlockHash;
use keep_volume::{
    BlockBody, BlockReader, BodyError, CopyId, EmptyTrashStats, IndexSender, Volume, VolumeError,
    VolumeParams, VolumeStatus,
};
use tokio::sync::{Mutex, MutexGuard, Semaphore};

use crate::S3Options;
use crate::client::Client;
use crate::error::S3Error;
use crate::layout::Layout;
use crate::time::secs_to_nanos;
use crate::upload::{self, UploadLocks};

/// Striped locks that serialise check-then-act sequences (trash with its
/// mtime guard, touch, untrash) on one block within this process.
const LOCK_STRIPES: usize = 64;

/// A volume in an S3 bucket, laid out as Arvados's S3 volume.
#[derive(Debug, Clone)]
pub struct S3Volume {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) layout: Layout,
    pub(crate) params: VolumeParams,
    pub(crate) race_window: Duration,
    pub(crate) signing_ttl: Duration,
    pub(crate) index_page_size: u32,
    device_id: String,
    buffers: Semaphore,
    pub(crate) uploads: UploadLocks,
    stripes: Vec<Mutex<()>>,
    /// The last liveness probe and when it was made.
    probe: std::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
    connect_timeout: Duration,
}

impl S3Volume {
    /// Connects to the bucket the options name and checks that it exists.
    ///
    /// # Errors
    ///
    /// [`VolumeError::Unavailable`] naming the bucket and the endpoint when
    /// the bucket does not exist, access is denied, or the endpoint cannot
    /// be reached.
    pub async fn open(opts: S3Options) -> Result<S3Volume, VolumeError> {
        let spec = &opts.spec;
        let client = Client::new(&opts).map_err(VolumeError::Unavailable)?;
        let (bucket, endpoint) = (&spec.bucket, &spec.endpoint);
        client.head_bucket().await.map_err(|e| {
            VolumeError::Unavailable(match e {
                S3Error::NotFound => {
                    format!("S3 bucket {bucket:?} does not exist at {endpoint}")
                }
                S3Error::Status { status: 403, .. } => format!(
                    "S3 bucket {bucket:?} at {endpoint}: access denied (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                ),
                S3Error::Transport(msg) => {
                    format!("cannot reach S3 endpoint {endpoint} for bucket {bucket:?}: {msg}")
                }
                other => format!("S3 bucket {bucket:?} at {endpoint}: {other}"),
            })
        })?;
        let mut device_id = format!("s3://{}/{bucket}", spec.endpoint_authority());
        if !spec.prefix.is_empty() {
            device_id = format!("{device_id}/{}", spec.prefix);
        }
        Ok(S3Volume {
            inner: Arc::new(Inner {
                layout: Layout::new(&spec.prefix, spec.prefix_length),
                client,
                params: opts.params,
                race_window: opts.race_window,
                signing_ttl: opts.signing_ttl,
                index_page_size: opts.index_page_size,
                device_id,
                buffers: Semaphore::new(opts.whole_block_buffers.max(1)),
                uploads: UploadLocks::default(),
                stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
                probe: std::sync::Mutex::new(None),
                connect_timeout: opts.connect_timeout,
            }),
        })
    }
}

impl Inner {
    pub(crate) async fn lock(&self, hash: &BlockHash) -> MutexGuard<'_, ()> {
        self.stripes[usize::from(hash.as_bytes()[15]) % LOCK_STRIPES]
            .lock()
            .await
    }

    /// The block's mtime in unix seconds: the LastModified of its
    /// `recent/` marker, which is created (as Arvados does) when missing.
    pub(crate) async fn mtime_secs(&self, hash: &BlockHash) -> Result<i64, S3Error> {
        let data = self.client.head(&self.layout.data(hash)).await?;
        let recent = self.layout.recent(hash);
        match self.client.head(&recent).await {
            Ok(marker) => Ok(marker.modified),
            Err(S3Error::NotFound) if self.params.allow_write => {
                tracing::info!(block = %hash, "creating the missing mtime marker");
                self.client.put_empty(&recent).await?;
                Ok(self.client.head(&recent).await?.modified)
            }
            Err(S3Error::NotFound) => Ok(data.modified),
            Err(e) => Err(e),
        }
    }

    fn check_writable(&self) -> Result<(), VolumeError> {
        if self.params.allow_write {
            Ok(())
        } else {
            Err(VolumeError::ReadOnly)
        }
    }
}

/// Which version of an object a GET or HEAD answer is about: a digest of
/// its ETag, which S3 changes whenever the object is written with other
/// content (a repair PUT of a corrupt object, say).
pub(crate) fn copy_id(etag: &str) -> CopyId {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    etag.hash(&mut h);
    CopyId(h.finish())
}

/// A reader streaming the answer to a GET; it fails if the store sends
/// nothing for `patience` while the reader waits.
fn reader(size: u64, resp: reqwest::Response, patience: Duration) -> BlockReader {
    let copy = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(copy_id);
    let bytes = resp.bytes_stream().boxed();
    let chunks = futures::stream::unfold(Some(bytes), move |state| async move {
        let mut bytes = state?;
        match tokio::time::timeout(patience, bytes.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(bytes))),
            Ok(None) => None,
            Ok(Some(Err(e))) => Some((
                Err(VolumeError::Unavailable(S3Error::from(e).to_string())),
                None,
            )),
            Err(_) => Some((
                Err(VolumeError::Unavailable(format!(
                    "S3 sent nothing of the block for {}s",
                    patience.as_secs_f32()
                ))),
                None,
            )),
        }
    });
    BlockReader {
        size,
        chunks: chunks.boxed(),
        sums: None,
        copy,
    }
}

#[async_trait]
impl Volume for S3Volume {
    fn params(&self) -> &VolumeParams {
        &self.inner.params
    }

    fn device_id(&self) -> &str {
        &self.inner.device_id
    }

    async fn open(&self, hash: &BlockHash) -> Result<BlockReader, VolumeError> {
        let inner = &self.inner;
        let data = inner.layout.data(hash);
        match inner.client.get(&data).await {
            Ok((size, resp)) => return Ok(reader(size, resp, inner.client.patience())),
            Err(S3Error::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        // `recent/X` without `X`: the block may have been trashed in a
        // race with a write; if so, restore it and read it.
        inner.client.head(&inner.layout.recent(hash)).await?;
        if !inner.fix_race(hash).await? {
            return Err(VolumeError::NotFound);
        }
        let (size, resp) = inner.client.get(&data).await?;
        Ok(reader(size, resp, inner.client.patience()))
    }

    async fn write(&self, hash: &BlockHash, body: BlockBody) -> Result<(), VolumeError> {
        let inner = &self.inner;
        inner.check_writable()?;
        if body.expected() != hash {
            return Err(VolumeError::Body(BodyError::HashMismatch {
                expected: *hash,
                actual: *body.expected(),
            }));
        }
        let turn = inner.uploads.lock(hash).await;
        upload::upload(
            &inner.client,
            &inner.layout.data(hash),
            body,
            &inner.buffers,
        )
        .await?;
        drop(turn);
        let _guard = inner.lock(hash).await;
        inner.client.put_empty(&inner.layout.recent(hash)).await?;
        Ok(())
    }

    async fn touch(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        let inner = &self.inner;
        inner.check_writable()?;
        let _guard = inner.lock(hash).await;
        match inner.client.head(&inner.layout.data(hash)).await {
            Ok(_) => {}
            Err(S3Error::NotFound) => {
                if !inner.fix_race(hash).await? {
                    return Err(VolumeError::NotFound);
                }
            }
            Err(e) => return Err(e.into()),
        }
        inner.client.put_empty(&inner.layout.recent(hash)).await?;
        Ok(())
    }

    async fn mtime(&self, hash: &BlockHash) -> Result<i64, VolumeError> {
        Ok(secs_to_nanos(self.inner.mtime_secs(hash).await?))
    }

    async fn trash(&self, hash: &BlockHash, if_mtime: Option<i64>) -> Result<(), VolumeError> {
        self.inner.trash(hash, if_mtime).await
    }

    async fn untrash(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        self.inner.check_writable()?;
        self.inner.untrash(hash).await
    }

    async fn trashed(&self, hash: &BlockHash) -> Result<bool, VolumeError> {
        self.inner.trashed(hash).await
    }

    async fn empty_trash(&self) -> Result<EmptyTrashStats, VolumeError> {
        self.inner.empty_trash().await
    }

    async fn index(&self, prefix: &str, out: IndexSender) -> Result<(), VolumeError> {
        crate::index::index(&self.inner, prefix, out).await
    }

    /// S3 reports no capacity: the volume is never full.
    /// S3 has no capacity to report; the status says whether the bucket
    /// answers, probed at most once a second, so a store that went away is
    /// skipped for new writes instead of failing them.
    async fn status(&self) -> Result<VolumeStatus, VolumeError> {
        const FRESH: Duration = Duration::from_secs(1);
        let cached = self
            .inner
            .probe
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let result = match cached {
            Some((at, r)) if at.elapsed() < FRESH => r,
            _ => {
                let limit = self.inner.connect_timeout.max(Duration::from_millis(100)) * 2;
                let r = self
                    .inner
                    .client
                    .probe_bucket(limit)
                    .await
                    .map_err(|e| e.to_string());
                *self.inner.probe.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((std::time::Instant::now(), r.clone()));
                r
            }
        };
        result
            .map(|()| VolumeStatus::default())
            .map_err(VolumeError::Unavailable)
    }

    /// With `copy`, the object is moved aside only if its ETag is still
    /// the one read, checked while no upload of the block through this
    /// node can run: a repair PUT that replaced it stays. (A node sharing
    /// the bucket could still replace it between the check and the move.)
    async fn quarantine(&self, hash: &BlockHash, copy: Option<CopyId>) -> Result<(), VolumeError> {
        self.inner.quarantine(hash, copy).await
    }
}
