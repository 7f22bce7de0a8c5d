//! Trash workers and the empty-trash loop.
//!
//! Architecture invariant: a copy is trashed only if it is older than the
//! signing TTL (someone may still hold a signature for a younger one) and
//! its mtime is still exactly the one the list was made with (it was not
//! written again since); the check and the trash are one atomic step on the
//! volume.

use std::sync::Arc;

use keep_volume::VolumeError;
use tokio_util::sync::CancellationToken;

use super::{TrashItem, count};
use crate::node::Node;

/// Takes trash entries until the list is closed.
pub async fn worker(node: Arc<Node>) {
    while let Ok(ticket) = node.work().trash.next().await {
        let outcome = trash_one(&node, &ticket).await;
        count(&node.metrics().trashes, outcome);
        tracing::info!(block = %ticket.hash, outcome, "trash entry");
        ticket.done();
    }
}

async fn trash_one(node: &Node, item: &TrashItem) -> &'static str {
    let ttl_ns = i64::try_from(node.config().signing_ttl.as_nanos()).unwrap_or(i64::MAX);
    if keep_volume::unix_nanos_now().saturating_sub(item.mtime) < ttl_ns {
        return "too_young";
    }
    let volumes: Vec<_> = match &item.mount {
        Some(uuid) => match node.volume(uuid) {
            Some(v) => vec![v.clone()],
            None => return "unknown_mount",
        },
        None => node.volumes().to_vec(),
    };
    let mut outcome = "not_found";
    for vol in volumes.iter().filter(|v| v.params().allow_trash) {
        match vol.trash(&item.hash, Some(item.mtime)).await {
            Ok(()) => outcome = "trashed",
            Err(VolumeError::NotFound) => {}
            Err(VolumeError::MtimeMismatch { .. }) => {
                if outcome == "not_found" {
                    outcome = "mtime_mismatch";
                }
            }
            Err(e) => {
                node.metrics().volume_error(&vol.params().uuid);
                tracing::warn!(volume = %vol.params().uuid, block = %item.hash, error = %e, "trash failed");
                if outcome != "trashed" {
                    outcome = "failed";
                }
            }
        }
    }
    outcome
}

/// Every `trash_check_interval`, deletes trashed blocks whose lifetime has
/// passed, on every volume that allows trash.
pub async fn empty_trash_loop(node: Arc<Node>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(node.config().trash_check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        for vol in node.volumes().iter().filter(|v| v.params().allow_trash) {
            match vol.empty_trash().await {
                Ok(stats) if stats.deleted > 0 => {
                    tracing::info!(volume = %vol.params().uuid, deleted = stats.deleted, bytes = stats.deleted_bytes, remaining = stats.remaining, "emptied trash");
                }
                Ok(_) => {}
                Err(e) => {
                    node.metrics().volume_error(&vol.params().uuid);
                    tracing::warn!(volume = %vol.params().uuid, error = %e, "empty trash failed");
                }
            }
        }
    }
}
