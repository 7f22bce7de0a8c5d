//! The introducer's table of announcements, keyed by (service, uuid), kept
//! in `STATE_DIR/announcements.json` so it survives a restart.
//!
//! Rules for an offered announcement or withdrawal whose signature already
//! verified, as Tahoe-LAFS's introducer applies them to announcements:
//! - no entry for its (service, uuid): accepted;
//! - exactly equal to the stored one: a duplicate, ignored;
//! - seqnum above the stored one: accepted, replaces it;
//! - otherwise (seqnum not above, content differs): a replay, refused.
//!
//! An accepted withdrawal stays in the table as a *tombstone*: it is no
//! longer listed by [`Snapshot::announcements`], but its seqnum still
//! refuses replays of what it withdrew, and a later announcement with a
//! higher seqnum replaces it. A withdrawal of an unknown (service, uuid) is
//! kept as a tombstone too. Tombstones are never dropped.
//!
//! The table also counts changes per service. A subscriber's position is a
//! version token `EPOCH-N`: `EPOCH` is random per state directory, so a
//! replacement introducer never hands out a token an old one did; `N` is
//! the sum of the change counts of the services asked about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::crashsafe;
use crate::{ClusterKey, SignedAnnouncement};

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "announcements.json";

/// What the table did with an offered announcement or withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// New, or newer than the stored entry: now in the table.
    Accepted,
    /// Exactly the stored one: nothing changed.
    Duplicate,
    /// Not newer than the stored one: refused.
    Replay {
        /// The seqnum of the announcement kept.
        stored_seqnum: u64,
    },
}

/// The table could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
#[error("introducer state {}: {error}", path.display())]
pub struct StoreError {
    path: PathBuf,
    error: std::io::Error,
}

/// The file's layout.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    epoch: String,
    versions: BTreeMap<String, u64>,
    announcements: Vec<SignedAnnouncement>,
    /// When each entry was accepted (absent in files from before).
    #[serde(default)]
    accepted_at: Vec<AcceptedAt>,
}

/// When the entry of (service, uuid) was accepted, in unix seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AcceptedAt {
    service: String,
    uuid: String,
    at: u64,
}

/// The table of announcements and its change counts, on disk.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    snap: Snapshot,
}

/// The table as it stands at one moment: cheap to clone and share with
/// readers while the store writes.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    epoch: String,
    versions: BTreeMap<String, u64>,
    table: BTreeMap<(String, String), SignedAnnouncement>,
    /// When each entry was accepted, in unix seconds (for status pages).
    accepted_at: BTreeMap<(String, String), u64>,
}

impl Store {
    /// Opens the table in `state_dir`, creating the directory if needed.
    /// Announcements that do not verify under `key` are dropped; a state
    /// file that cannot be parsed is moved aside and the table starts empty
    /// (publishers send theirs again). Blocking.
    pub fn open(state_dir: &Path, key: &ClusterKey) -> Result<Self, StoreError> {
        let path = state_dir.join(STATE_FILE);
        let err = |error| StoreError {
            path: state_dir.join(STATE_FILE),
            error,
        };
        std::fs::create_dir_all(state_dir).map_err(err)?;
        let file = match crashsafe::read_optional(&path).map_err(err)? {
            None => StateFile::default(),
            Some(bytes) => match serde_json::from_slice::<StateFile>(&bytes) {
                Ok(file) => file,
                Err(e) => {
                    let aside = crashsafe::move_aside(&path).map_err(err)?;
                    tracing::error!(error = %e, aside = %aside.display(),
                        "introducer state unreadable; moved aside, starting empty");
                    StateFile::default()
                }
            },
        };
        let mut table = BTreeMap::new();
        for ann in file.announcements {
            match ann.verify(key) {
                Ok(()) => {
                    table.insert(ann.key(), ann);
                }
                Err(e) => tracing::warn!(error = %e, uuid = %ann.announcement.uuid,
                    "dropping stored announcement"),
            }
        }
        let accepted_at = file
            .accepted_at
            .into_iter()
            .map(|a| ((a.service, a.uuid), a.at))
            .filter(|(k, _)| table.contains_key(k))
            .collect();
        let fresh = file.epoch.is_empty();
        let epoch = if fresh {
            hex::encode(rand::rng().random::<[u8; 8]>())
        } else {
            file.epoch
        };
        let store = Store {
            path,
            snap: Snapshot {
                epoch,
                versions: file.versions,
                table,
                accepted_at,
            },
        };
        if fresh {
            store.save().map_err(err)?;
        }
        Ok(store)
    }

    /// Offers a verified announcement or withdrawal; an accepted one is on
    /// disk before this returns. Blocking.
    pub fn offer(&mut self, ann: SignedAnnouncement) -> Result<Outcome, StoreError> {
        let key = ann.key();
        let previous = match self.snap.table.get(&key) {
            Some(stored) if *stored == ann => return Ok(Outcome::Duplicate),
            Some(stored) if ann.announcement.seqnum <= stored.announcement.seqnum => {
                return Ok(Outcome::Replay {
                    stored_seqnum: stored.announcement.seqnum,
                });
            }
            _ => self.snap.table.insert(key.clone(), ann),
        };
        *self.snap.versions.entry(key.0.clone()).or_default() += 1;
        let accepted_before = self.snap.accepted_at.insert(key.clone(), unix_now());
        if let Err(error) = self.save() {
            *self.snap.versions.entry(key.0.clone()).or_default() -= 1;
            match accepted_before {
                Some(at) => self.snap.accepted_at.insert(key.clone(), at),
                None => self.snap.accepted_at.remove(&key),
            };
            match previous {
                Some(prev) => self.snap.table.insert(key, prev),
                None => self.snap.table.remove(&key),
            };
            return Err(StoreError {
                path: self.path.clone(),
                error,
            });
        }
        Ok(Outcome::Accepted)
    }

    /// The table as it stands now.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }

    fn save(&self) -> std::io::Result<()> {
        let file = StateFile {
            epoch: self.snap.epoch.clone(),
            versions: self.snap.versions.clone(),
            announcements: self.snap.table.values().cloned().collect(),
            accepted_at: self
                .snap
                .accepted_at
                .iter()
                .map(|((service, uuid), at)| AcceptedAt {
                    service: service.clone(),
                    uuid: uuid.clone(),
                    at: *at,
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        crashsafe::write_file(&self.path, &bytes)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Snapshot {
    /// When the entry of `service` and `uuid` was accepted, in unix
    /// seconds (unknown for entries stored before this was kept).
    pub fn accepted_at(&self, service: &str, uuid: &str) -> Option<u64> {
        self.accepted_at
            .get(&(service.to_owned(), uuid.to_owned()))
            .copied()
    }

    /// The table's epoch.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The live announcements of `services` (all when empty), by service,
    /// then uuid: withdrawn ones are left out.
    pub fn announcements(&self, services: &[String]) -> Vec<SignedAnnouncement> {
        self.entries(services)
            .into_iter()
            .filter(|ann| !ann.is_withdrawal())
            .collect()
    }

    /// The live announcements and the tombstones (withdrawals) of
    /// `services` (all when empty), by service, then uuid.
    pub fn entries(&self, services: &[String]) -> Vec<SignedAnnouncement> {
        self.table
            .iter()
            .filter(|((service, _), _)| services.is_empty() || services.contains(service))
            .map(|(_, ann)| ann.clone())
            .collect()
    }

    /// The version token of `services` (all when empty): it changes exactly
    /// when one of their announcements does.
    pub fn version(&self, services: &[String]) -> String {
        let n: u64 = self
            .versions
            .iter()
            .filter(|(service, _)| services.is_empty() || services.contains(service))
            .map(|(_, n)| n)
            .sum();
        format!("{}-{n}", self.epoch)
    }

    /// How many live announcements and how many tombstones each service
    /// in the table has (a service whose every entry was withdrawn shows
    /// `(0, n)`).
    pub fn counts(&self) -> BTreeMap<String, (usize, usize)> {
        let mut counts = BTreeMap::new();
        for ((service, _), ann) in &self.table {
            let (live, withdrawn): &mut (usize, usize) = counts.entry(service.clone()).or_default();
            if ann.is_withdrawal() {
                *withdrawn += 1;
            } else {
                *live += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Announcement, UPLOAD_STORAGE, new_nonce};

    fn key() -> ClusterKey {
        ClusterKey::new("k").unwrap()
    }

    fn ann(uuid: &str, seqnum: u64) -> SignedAnnouncement {
        Announcement {
            service: UPLOAD_STORAGE.into(),
            uuid: uuid.into(),
            url: format!("http://{uuid}:1"),
            nickname: String::new(),
            version: "1".into(),
            seqnum,
            nonce: new_nonce(),
            withdrawn: false,
        }
        .sign(&key())
    }

    fn withdrawal(uuid: &str, seqnum: u64) -> SignedAnnouncement {
        let mut a = ann(uuid, seqnum).announcement;
        a.withdrawn = true;
        a.sign(&key())
    }

    #[test]
    fn when_an_entry_was_accepted_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let before = unix_now();
        let mut store = Store::open(dir.path(), &key()).unwrap();
        store.offer(ann("a", 1)).unwrap();
        let at = store.snapshot().accepted_at(UPLOAD_STORAGE, "a").unwrap();
        assert!(at >= before && at <= unix_now());
        assert_eq!(store.snapshot().accepted_at(UPLOAD_STORAGE, "b"), None);
        drop(store);
        let store = Store::open(dir.path(), &key()).unwrap();
        assert_eq!(store.snapshot().accepted_at(UPLOAD_STORAGE, "a"), Some(at));
    }

    #[test]
    fn duplicate_replay_and_newer() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), &key()).unwrap();
        let v0 = store.snapshot().version(&[]);
        let first = ann("a", 5);
        assert_eq!(store.offer(first.clone()).unwrap(), Outcome::Accepted);
        let v1 = store.snapshot().version(&[]);
        assert_ne!(v0, v1);
        assert_eq!(store.offer(first.clone()).unwrap(), Outcome::Duplicate);
        assert_eq!(
            store.snapshot().version(&[]),
            v1,
            "a duplicate changes nothing"
        );
        // Same seqnum, other nonce: a replay. Lower seqnum: a replay.
        for seqnum in [5, 4] {
            assert_eq!(
                store.offer(ann("a", seqnum)).unwrap(),
                Outcome::Replay { stored_seqnum: 5 }
            );
        }
        assert_eq!(store.snapshot().announcements(&[]), vec![first]);
        let newer = ann("a", 6);
        assert_eq!(store.offer(newer.clone()).unwrap(), Outcome::Accepted);
        assert_eq!(store.snapshot().announcements(&[]), vec![newer]);
        assert_ne!(store.snapshot().version(&[]), v1);
        assert_eq!(
            store.snapshot().version(&["other".into()]),
            format!("{}-0", store.snapshot().epoch)
        );
    }

    #[test]
    fn survives_reopen_and_drops_badly_signed_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), &key()).unwrap();
        store.offer(ann("a", 1)).unwrap();
        store.offer(ann("b", 1)).unwrap();
        let version = store.snapshot().version(&[]);
        let table = store.snapshot().announcements(&[]);
        drop(store);

        let store = Store::open(dir.path(), &key()).unwrap();
        assert_eq!(store.snapshot().announcements(&[]), table);
        assert_eq!(store.snapshot().version(&[]), version);
        assert_eq!(store.snapshot().counts()[UPLOAD_STORAGE], (2, 0));

        let other = ClusterKey::new("another cluster").unwrap();
        let store = Store::open(dir.path(), &other).unwrap();
        assert!(store.snapshot().announcements(&[]).is_empty());
    }

    #[test]
    fn withdrawals_leave_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), &key()).unwrap();
        let live = ann("a", 5);
        assert_eq!(store.offer(live.clone()).unwrap(), Outcome::Accepted);
        let v1 = store.snapshot().version(&[]);

        // Not above the announcement: a replay.
        assert_eq!(
            store.offer(withdrawal("a", 5)).unwrap(),
            Outcome::Replay { stored_seqnum: 5 }
        );
        let gone = withdrawal("a", 6);
        assert_eq!(store.offer(gone.clone()).unwrap(), Outcome::Accepted);
        let v2 = store.snapshot().version(&[]);
        assert_ne!(v1, v2, "a withdrawal wakes subscribers");
        assert!(store.snapshot().announcements(&[]).is_empty());
        assert_eq!(store.snapshot().entries(&[]), vec![gone.clone()]);
        assert_eq!(store.snapshot().counts()[UPLOAD_STORAGE], (0, 1));
        assert_eq!(store.offer(gone.clone()).unwrap(), Outcome::Duplicate);
        assert_eq!(store.snapshot().version(&[]), v2);
        // The withdrawn announcement, replayed: refused by the tombstone.
        assert_eq!(
            store.offer(live).unwrap(),
            Outcome::Replay { stored_seqnum: 6 }
        );
        // A withdrawal of something never announced is kept as well.
        assert_eq!(store.offer(withdrawal("b", 3)).unwrap(), Outcome::Accepted);
        assert_eq!(store.snapshot().counts()[UPLOAD_STORAGE], (0, 2));
        drop(store);

        // Tombstones survive a restart, and a newer announcement replaces one.
        let mut store = Store::open(dir.path(), &key()).unwrap();
        assert!(store.snapshot().announcements(&[]).is_empty());
        assert_eq!(store.snapshot().entries(&[]).len(), 2);
        assert_eq!(
            store.offer(ann("a", 6)).unwrap(),
            Outcome::Replay { stored_seqnum: 6 }
        );
        let back = ann("a", 7);
        assert_eq!(store.offer(back.clone()).unwrap(), Outcome::Accepted);
        assert_eq!(store.snapshot().announcements(&[]), vec![back]);
        assert_eq!(store.snapshot().counts()[UPLOAD_STORAGE], (1, 1));
    }

    #[test]
    fn corrupt_state_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), b"{not json").unwrap();
        let store = Store::open(dir.path(), &key()).unwrap();
        assert!(store.snapshot().announcements(&[]).is_empty());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n.contains(".corrupt-")), "{names:?}");
    }
}
