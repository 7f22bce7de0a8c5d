//! Walks over a directory volume: index, empty trash, untrash lookup,
//! cleaning up after interrupted writes. All blocking; callers run them on
//! a blocking thread.

use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use keep_locator::BlockHash;

use super::layout;
use crate::volume::to_unix_nanos;
use crate::{EmptyTrashStats, IndexEntry, IndexSender};

/// The block folders under `root` that can hold hashes starting with
/// `prefix`, in order.
pub(crate) fn block_dirs(root: &Path, prefix: &str) -> io::Result<Vec<PathBuf>> {
    let want = &prefix[..prefix.len().min(3)];
    let mut dirs = Vec::new();
    if prefix.len() >= 3 {
        let dir = root.join(want);
        if dir.is_dir() {
            dirs.push(dir);
        }
        return Ok(dirs);
    }
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if layout::is_block_dir_name(name) && name.starts_with(want) && entry.file_type()?.is_dir()
        {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// File names in `dir` (names that are not UTF-8 are skipped: none of ours are).
pub(crate) fn names(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            for entry in rd {
                if let Ok(name) = entry?.file_name().into_string() {
                    out.push(name);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(out)
}

/// Sends every block under `root` whose hex starts with `prefix`. Stops
/// early, without error, when the receiver is gone.
pub(crate) fn index(root: &Path, prefix: &str, out: &IndexSender) -> io::Result<()> {
    for dir in block_dirs(root, prefix)? {
        let mut found: Vec<(String, BlockHash)> = names(&dir)?
            .into_iter()
            .filter_map(|n| layout::parse_block_name(&n).map(|h| (n, h)))
            .filter(|(n, _)| n.starts_with(prefix))
            .collect();
        found.sort_unstable();
        for (name, hash) in found {
            let meta = match std::fs::metadata(dir.join(&name)) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // trashed meanwhile
                Err(e) => return Err(e),
            };
            let entry = IndexEntry {
                hash,
                size: meta.len(),
                mtime: to_unix_nanos(meta.modified()?),
            };
            if out.blocking_send(entry).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Deletes trashed copies whose deadline is not after `now_unix`.
pub(crate) fn empty_trash(root: &Path, now_unix: u64) -> io::Result<EmptyTrashStats> {
    let mut stats = EmptyTrashStats::default();
    for dir in block_dirs(root, "")? {
        let mut sidecars = Vec::new();
        let mut kept = std::collections::HashSet::new();
        for name in names(&dir)? {
            if let Some(hash) = layout::parse_sidecar_name(&name) {
                sidecars.push((hash, name));
                continue;
            }
            if let Some(hash) = layout::parse_block_name(&name) {
                kept.insert(hash);
                continue;
            }
            let Some((hash, deadline)) = layout::parse_trash_name(&name) else {
                continue;
            };
            if deadline > now_unix {
                stats.remaining += 1;
                kept.insert(hash);
                continue;
            }
            let path = dir.join(&name);
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    stats.deleted += 1;
                    stats.deleted_bytes += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        // A sidecar whose block is gone for good goes too.
        for (hash, name) in sidecars {
            if !kept.contains(&hash) {
                let _ = std::fs::remove_file(dir.join(name));
            }
        }
    }
    Ok(stats)
}

/// The trashed copy of `hash` with the latest deadline, if any.
pub(crate) fn newest_trash(dir: &Path, hash: &BlockHash) -> io::Result<Option<PathBuf>> {
    let newest = names(dir)?
        .into_iter()
        .filter_map(|n| {
            layout::parse_trash_name(&n)
                .filter(|(h, _)| h == hash)
                .map(|(_, d)| (d, n))
        })
        .max();
    Ok(newest.map(|(_, name)| dir.join(name)))
}

/// Removes temporary files that interrupted writes left behind. Only files
/// older than `before` are touched, so a write that started since is safe.
pub(crate) fn remove_leftovers(root: &Path, before: std::time::SystemTime) -> io::Result<u64> {
    let mut removed = 0;
    for dir in block_dirs(root, "")? {
        for name in names(&dir)? {
            if !layout::is_temp_name(&name) {
                continue;
            }
            let path = dir.join(&name);
            let old = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map(|t| t < before)
                .unwrap_or(false);
            if old && std::fs::remove_file(&path).is_ok() {
                tracing::info!(path = %path.display(), "removed leftover of an interrupted write");
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Whole seconds since the epoch.
pub(crate) fn unix_secs_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
