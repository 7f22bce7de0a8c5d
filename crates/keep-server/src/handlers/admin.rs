//! Block administration: `DELETE`, `TOUCH`, `PUT /untrash/{locator}`, and
//! `GET /mounts`.

use http::{Response, StatusCode};
use keep_http::Body;
use keep_store::{Store, StoreError};
use keep_volume::VolumeError;
use serde::Serialize;

use crate::error::ApiError;
use crate::handlers::parse_locator;

/// One entry of `GET /mounts`, as Arvados reports it.
#[derive(Debug, Serialize)]
struct Mount<'a> {
    uuid: &'a str,
    device_id: &'a str,
    allow_write: bool,
    allow_trash: bool,
    read_only: bool,
    replication: u32,
    storage_classes: &'a std::collections::BTreeMap<String, bool>,
}

/// `GET /mounts`.
pub fn mounts(store: &Store) -> Response<Body> {
    let list: Vec<Mount<'_>> = store
        .volumes()
        .iter()
        .map(|v| {
            let p = v.params();
            Mount {
                uuid: &p.uuid,
                device_id: v.device_id(),
                allow_write: p.allow_write,
                allow_trash: p.allow_trash,
                read_only: !p.allow_write,
                replication: p.replication,
                storage_classes: &p.storage_classes,
            }
        })
        .collect();
    let json = serde_json::to_vec(&list).unwrap_or_default();
    keep_http::body::json(StatusCode::OK, json)
}

/// `DELETE /{locator}`: trashes every copy older than the signing TTL on
/// volumes that allow trash. Younger copies are kept: someone may hold a
/// signature for them. Answers the counts, as Arvados.
pub async fn delete(
    store: &Store,
    signing_ttl: std::time::Duration,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    let hash = parse_locator(path)?.hash;
    let ttl_ns = i64::try_from(signing_ttl.as_nanos()).unwrap_or(i64::MAX);
    let (mut found, mut deleted, mut failed) = (0, 0, 0);
    for vol in store.volumes() {
        let mtime = match vol.mtime(&hash).await {
            Ok(m) => m,
            Err(VolumeError::NotFound) => continue,
            Err(_) => {
                // Counted and logged by the volume's health wrapper.
                failed += 1;
                continue;
            }
        };
        found += 1;
        if !vol.params().allow_trash || keep_volume::unix_nanos_now().saturating_sub(mtime) < ttl_ns
        {
            continue;
        }
        match vol.trash(&hash, Some(mtime)).await {
            Ok(()) => deleted += 1,
            Err(e) => {
                tracing::warn!(volume = %vol.params().uuid, error = %e, "trash failed");
                failed += 1;
            }
        }
    }
    if found == 0 && failed == 0 {
        return Err(ApiError::not_found());
    }
    let body = serde_json::json!({ "copies_deleted": deleted, "copies_failed": failed });
    Ok(keep_http::body::json(StatusCode::OK, body.to_string()))
}

/// `TOUCH /{locator}`: refreshes the mtime of every writable copy.
pub async fn touch(store: &Store, path: &str) -> Result<Response<Body>, ApiError> {
    let hash = parse_locator(path)?.hash;
    let mut touched = 0;
    for vol in store.volumes().iter().filter(|v| v.params().allow_write) {
        match vol.touch(&hash).await {
            Ok(()) => touched += 1,
            Err(VolumeError::NotFound) => {}
            Err(e) => return Err(StoreError::from(e).into()),
        }
    }
    if touched == 0 {
        return Err(ApiError::not_found());
    }
    Ok(keep_http::body::text(StatusCode::OK, "OK"))
}

/// `PUT /untrash/{locator}`: restores trashed copies on writable volumes.
pub async fn untrash(store: &Store, locator: &str) -> Result<Response<Body>, ApiError> {
    let hash = parse_locator(locator)?.hash;
    let mut restored = Vec::new();
    let mut fault = None;
    for vol in store.volumes().iter().filter(|v| v.params().allow_write) {
        match vol.untrash(&hash).await {
            Ok(()) => restored.push(vol.params().uuid.clone()),
            Err(VolumeError::NotFound) => {}
            Err(e) => fault = Some(e),
        }
    }
    match (restored.is_empty(), fault) {
        (false, _) => Ok(keep_http::body::text(
            StatusCode::OK,
            format!("Successfully untrashed on: {}", restored.join(", ")),
        )),
        (true, Some(e)) => Err(StoreError::from(e).into()),
        (true, None) => Err(ApiError::not_found()),
    }
}
