//! The client's files in its state directory: the seqnum it last published
//! with, what it last published (so a restart with fewer services withdraws
//! the others), and the cache of the announcements and withdrawals it last
//! knew.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::crashsafe;
use crate::{ClusterKey, SignedAnnouncement};

/// The seqnum file's name.
pub const SEQNUM_FILE: &str = "introducer-seqnum";
/// The announcement cache's name.
pub const CACHE_FILE: &str = "introducer-cache.json";
/// The name of the file recording what this node last published.
pub const PUBLISHED_FILE: &str = "introducer-published.json";

/// A (service, uuid) pair, the key of announcements and withdrawals.
pub(crate) type Key = (String, String);

/// What this node last published, as kept in [`PUBLISHED_FILE`]:
/// `{"announced": [[SERVICE, UUID], ...], "withdrawn": [[SERVICE, UUID], ...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Published {
    /// The pairs the last publication announced.
    #[serde(default)]
    pub(crate) announced: BTreeSet<Key>,
    /// The pairs an earlier publication announced and a later one dropped:
    /// each publication withdraws them again until they are announced anew,
    /// so an introducer that was away when they were dropped learns it too.
    #[serde(default)]
    pub(crate) withdrawn: BTreeSet<Key>,
}

/// Reads what was last published: nothing when there is no record; an
/// unreadable file is moved aside (then nothing is withdrawn on the next
/// publication that the record would have withdrawn).
pub(crate) fn load_published(dir: &Path) -> io::Result<Published> {
    let path = dir.join(PUBLISHED_FILE);
    let Some(bytes) = crashsafe::read_optional(&path)? else {
        return Ok(Published::default());
    };
    match serde_json::from_slice(&bytes) {
        Ok(published) => Ok(published),
        Err(e) => {
            let aside = crashsafe::move_aside(&path)?;
            tracing::error!(error = %e, aside = %aside.display(),
                "record of published services unreadable; moved aside");
            Ok(Published::default())
        }
    }
}

/// Durably records what is published now.
pub(crate) fn store_published(dir: &Path, published: &Published) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(published).map_err(io::Error::other)?;
    crashsafe::write_file(&dir.join(PUBLISHED_FILE), &bytes)
}

/// Reads the last seqnum: 0 when there is none; an unreadable file is moved
/// aside (the next seqnum is then still above it, see `next_seqnum`).
pub(crate) fn load_seqnum(dir: &Path) -> io::Result<u64> {
    let path = dir.join(SEQNUM_FILE);
    let Some(bytes) = crashsafe::read_optional(&path)? else {
        return Ok(0);
    };
    match std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        Some(n) => Ok(n),
        None => {
            let aside = crashsafe::move_aside(&path)?;
            tracing::error!(aside = %aside.display(), "seqnum file unreadable; moved aside");
            Ok(0)
        }
    }
}

/// Durably records `seqnum` as the last one used.
pub(crate) fn store_seqnum(dir: &Path, seqnum: u64) -> io::Result<()> {
    crashsafe::write_file(&dir.join(SEQNUM_FILE), format!("{seqnum}\n").as_bytes())
}

/// The seqnum to publish with after `last`: above `last` and above
/// `floor`, and at least the current unix time in seconds, so a node whose
/// seqnum file was lost still publishes above what it sent before.
pub(crate) fn next_seqnum(last: u64, floor: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    last.max(floor).saturating_add(1).max(now)
}

/// Reads the cached announcements and withdrawals that still verify under
/// `key`. A cache that cannot be parsed is moved aside.
pub(crate) fn load_cache(dir: &Path, key: &ClusterKey) -> io::Result<Vec<SignedAnnouncement>> {
    let path = dir.join(CACHE_FILE);
    let Some(bytes) = crashsafe::read_optional(&path)? else {
        return Ok(Vec::new());
    };
    let list: Vec<SignedAnnouncement> = match serde_json::from_slice(&bytes) {
        Ok(list) => list,
        Err(e) => {
            let aside = crashsafe::move_aside(&path)?;
            tracing::error!(error = %e, aside = %aside.display(), "announcement cache unreadable; moved aside");
            return Ok(Vec::new());
        }
    };
    let total = list.len();
    let good: Vec<_> = list.into_iter().filter(|a| a.verify(key).is_ok()).collect();
    if good.len() < total {
        tracing::warn!(
            dropped = total - good.len(),
            "cached announcements that do not verify were dropped"
        );
    }
    Ok(good)
}

/// Durably replaces the cache with `list`.
pub(crate) fn store_cache(dir: &Path, list: &[SignedAnnouncement]) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(list).map_err(io::Error::other)?;
    crashsafe::write_file(&dir.join(CACHE_FILE), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Announcement, new_nonce};

    #[test]
    fn seqnum_round_trip_and_growth() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_seqnum(dir.path()).unwrap(), 0);
        let first = next_seqnum(0, 0);
        assert!(first > 1_600_000_000, "starts at the clock: {first}");
        store_seqnum(dir.path(), first).unwrap();
        assert_eq!(load_seqnum(dir.path()).unwrap(), first);
        assert_eq!(next_seqnum(first, 0), first + 1);
        assert_eq!(next_seqnum(first, first + 10), first + 11);
        std::fs::write(dir.path().join(SEQNUM_FILE), b"garbage").unwrap();
        assert_eq!(load_seqnum(dir.path()).unwrap(), 0);
    }

    #[test]
    fn cache_keeps_only_verified_announcements() {
        let dir = tempfile::tempdir().unwrap();
        let key = ClusterKey::new("k").unwrap();
        let good = Announcement {
            service: "upload_storage".into(),
            uuid: "u1".into(),
            url: "http://u1:1".into(),
            nickname: String::new(),
            version: String::new(),
            seqnum: 3,
            nonce: new_nonce(),
            withdrawn: false,
        }
        .sign(&key);
        let mut bad = good.clone();
        bad.announcement.uuid = "u2".into();
        let mut gone = good.announcement.clone();
        gone.service = "download_storage".into();
        gone.withdrawn = true;
        let gone = gone.sign(&key);
        store_cache(dir.path(), &[good.clone(), bad, gone.clone()]).unwrap();
        assert_eq!(load_cache(dir.path(), &key).unwrap(), vec![good, gone]);
        std::fs::write(dir.path().join(CACHE_FILE), b"[").unwrap();
        assert!(load_cache(dir.path(), &key).unwrap().is_empty());
    }

    #[test]
    fn published_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_published(dir.path()).unwrap(), Published::default());
        let published = Published {
            announced: [("download_storage".to_owned(), "u1".to_owned())].into(),
            withdrawn: [("upload_storage".to_owned(), "u1".to_owned())].into(),
        };
        store_published(dir.path(), &published).unwrap();
        assert_eq!(load_published(dir.path()).unwrap(), published);
        let text = std::fs::read_to_string(dir.path().join(PUBLISHED_FILE)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["withdrawn"][0][0], "upload_storage");
        std::fs::write(dir.path().join(PUBLISHED_FILE), b"{").unwrap();
        assert_eq!(load_published(dir.path()).unwrap(), Published::default());
    }
}
