//! Opening volumes from their settings: the directory backend here, S3
//! through its own crate.

use std::sync::Arc;

use keep_volume::directory::{DirOptions, DirVolume};
use keep_volume::{Volume, VolumeParams};
use keep_volume_s3::{S3Options, S3Volume};

use crate::config::{StoreConfig, VolumeConfig, VolumeLocation};
use crate::uuid::persistent_uuid;

/// Why a volume could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("volume {location}: {source}")]
pub struct OpenError {
    /// Where the volume is.
    pub location: String,
    /// What failed.
    pub source: keep_volume::VolumeError,
}

/// Opens the volume `vc` describes.
pub async fn open_volume(
    vc: &VolumeConfig,
    config: &StoreConfig,
) -> Result<Arc<dyn Volume>, OpenError> {
    match &vc.location {
        VolumeLocation::Directory(root) => {
            let fail = |source| OpenError {
                location: root.display().to_string(),
                source,
            };
            std::fs::create_dir_all(root).map_err(|e| fail(e.into()))?;
            let uuid = match &vc.uuid {
                Some(u) => u.clone(),
                None => {
                    let path = root.join(".keep-volume-uuid");
                    persistent_uuid(&path, "nyw5e").map_err(|e| {
                        let e = std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
                        fail(e.into())
                    })?
                }
            };
            let opts = DirOptions {
                root: root.clone(),
                params: params(vc, uuid, config),
                min_free_bytes: vc.min_free_bytes,
            };
            let vol = tokio::task::spawn_blocking(move || DirVolume::open(opts))
                .await
                .map_err(|e| fail(std::io::Error::other(format!("opening panicked: {e}")).into()))?
                .map_err(fail)?;
            Ok(Arc::new(vol))
        }
        VolumeLocation::S3(s3) => {
            let device = format!(
                "s3://{}/{}/{}",
                s3.spec.endpoint, s3.spec.bucket, s3.spec.prefix
            );
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
            let vol = S3Volume::open(opts).await.map_err(|source| OpenError {
                location: device.clone(),
                source,
            })?;
            Ok(Arc::new(vol))
        }
    }
}

fn params(vc: &VolumeConfig, uuid: String, config: &StoreConfig) -> VolumeParams {
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
