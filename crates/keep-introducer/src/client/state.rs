//! What the client knows and what it publishes, shared by the public
//! handle and the per-introducer workers.
//!
//! Architecture invariant: the known table only grows or moves to higher
//! seqnums. Whatever any introducer, the cache or this node itself says is
//! merged by (service, uuid), the highest seqnum winning (a withdrawal
//! beating an announcement of the same seqnum), so introducers that
//! disagree or lag can never take a peer away or roll one back. Only a
//! signed withdrawal takes a peer away: it stays in the table as a
//! tombstone (and in the cache), so an older announcement of that peer,
//! from a lagging introducer or an old cache, cannot bring it back; a newer
//! announcement does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::peers::Peer;
use super::persist::{self, Key, Published};
use super::{ClientError, NodeInfo};
use crate::{Announcement, ClusterKey, SignedAnnouncement, new_nonce};

/// What this node publishes: the same set goes to every introducer.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    node: Option<NodeInfo>,
    services: Vec<String>,
    /// The (service, uuid) pairs published before and not now.
    withdrawn: Vec<Key>,
    /// One signed withdrawal per withdrawn pair, then one signed
    /// announcement per service, all with one seqnum.
    pub(crate) signed: Vec<SignedAnnouncement>,
}

impl Outbox {
    /// The seqnum of this publication (0 when nothing is published).
    pub(crate) fn max_seqnum(&self) -> u64 {
        self.signed
            .iter()
            .map(|a| a.announcement.seqnum)
            .max()
            .unwrap_or(0)
    }
}

/// One publication, before it is signed: the node, the services it
/// announces, and the (service, uuid) pairs it withdraws.
#[derive(Debug)]
struct Publication {
    node: NodeInfo,
    services: Vec<String>,
    withdrawn: Vec<Key>,
}

impl Publication {
    /// `node` offering `services` (duplicates dropped), withdrawing every
    /// pair `before` announced or withdrew that it does not announce.
    fn new(node: NodeInfo, services: Vec<String>, before: &Published) -> Self {
        let mut seen = BTreeSet::new();
        let services: Vec<String> = services
            .into_iter()
            .filter(|s| seen.insert(s.clone()))
            .collect();
        let withdrawn = before
            .announced
            .iter()
            .chain(&before.withdrawn)
            .filter(|(service, uuid)| *uuid != node.uuid || !services.contains(service))
            .cloned()
            .collect::<BTreeSet<Key>>()
            .into_iter()
            .collect();
        Publication {
            node,
            services,
            withdrawn,
        }
    }

    /// What the state directory keeps of it.
    fn record(&self) -> Published {
        Published {
            announced: self
                .services
                .iter()
                .map(|s| (s.clone(), self.node.uuid.clone()))
                .collect(),
            withdrawn: self.withdrawn.iter().cloned().collect(),
        }
    }

    /// One signed withdrawal per withdrawn pair, then one signed
    /// announcement per service, all with `seqnum`.
    fn sign(&self, key: &ClusterKey, seqnum: u64) -> Vec<SignedAnnouncement> {
        let node = &self.node;
        let sign = |service: &str, uuid: &str, withdrawn: bool| {
            Announcement {
                service: service.to_owned(),
                uuid: uuid.to_owned(),
                url: node.url.clone(),
                nickname: node.nickname.clone(),
                version: node.version.clone(),
                seqnum,
                nonce: new_nonce(),
                withdrawn,
            }
            .sign(key)
        };
        // Withdrawals first: taking a node out of a service is what must
        // not wait (a draining node must stop receiving uploads).
        self.withdrawn
            .iter()
            .map(|(service, uuid)| sign(service, uuid, true))
            .chain(
                self.services
                    .iter()
                    .map(|service| sign(service, &node.uuid, false)),
            )
            .collect()
    }
}

/// What was last signed: the seqnum, and what was announced and withdrawn.
#[derive(Debug)]
struct Last {
    seqnum: u64,
    published: Published,
}

type Table = BTreeMap<(String, String), SignedAnnouncement>;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) key: ClusterKey,
    pub(crate) state_dir: PathBuf,
    known: Mutex<Table>,
    views: Mutex<HashMap<String, watch::Sender<Vec<Peer>>>>,
    /// Services this node subscribed to.
    pub(crate) interest: watch::Sender<BTreeSet<String>>,
    /// What this node publishes.
    pub(crate) outbox: watch::Sender<Arc<Outbox>>,
    /// Bumped whenever `known` changes, for the cache writer.
    pub(crate) known_changed: watch::Sender<u64>,
    /// Per introducer, the highest seqnum it acknowledged all of.
    pub(crate) acks: watch::Sender<HashMap<String, u64>>,
    /// The last seqnum published with and what it published; held while
    /// signing so two publications never share a seqnum.
    last: tokio::sync::Mutex<Last>,
}

impl Shared {
    /// Loads the seqnum, the record of what was published, and the cache
    /// from `state_dir`.
    pub(crate) async fn load(key: ClusterKey, state_dir: PathBuf) -> Result<Self, ClientError> {
        let (dir, k) = (state_dir.clone(), key.clone());
        let (seqnum, published, cached) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            Ok::<_, std::io::Error>((
                persist::load_seqnum(&dir)?,
                persist::load_published(&dir)?,
                persist::load_cache(&dir, &k)?,
            ))
        })
        .await
        .map_err(|e| ClientError::State(std::io::Error::other(e)))?
        .map_err(ClientError::State)?;
        let mut known = Table::new();
        for ann in cached {
            known.insert(ann.key(), ann);
        }
        tracing::debug!(
            cached = known.len(),
            seqnum,
            "introducer client state loaded"
        );
        Ok(Shared {
            key,
            state_dir,
            known: Mutex::new(known),
            views: Mutex::new(HashMap::new()),
            interest: watch::Sender::new(BTreeSet::new()),
            outbox: watch::Sender::new(Arc::new(Outbox::default())),
            known_changed: watch::Sender::new(0),
            acks: watch::Sender::new(HashMap::new()),
            last: tokio::sync::Mutex::new(Last { seqnum, published }),
        })
    }

    /// Merges announcements and withdrawals from an introducer; ones that
    /// do not verify are dropped. Returns how many services changed.
    pub(crate) fn merge(&self, list: Vec<SignedAnnouncement>) -> usize {
        let mut changed_services = BTreeSet::new();
        {
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            for ann in list {
                if let Err(e) = ann.verify(&self.key) {
                    tracing::warn!(uuid = %ann.announcement.uuid, error = %e,
                        "ignoring announcement that does not verify");
                    continue;
                }
                let newer = known.get(&ann.key()).is_none_or(|old| ann.supersedes(old));
                if newer {
                    changed_services.insert(ann.announcement.service.clone());
                    known.insert(ann.key(), ann);
                }
            }
        }
        for service in &changed_services {
            self.refresh_view(service);
        }
        if !changed_services.is_empty() {
            self.known_changed.send_modify(|n| *n += 1);
        }
        changed_services.len()
    }

    /// The peers offering `service`, by uuid: withdrawn ones left out.
    pub(crate) fn peers(&self, service: &str) -> Vec<Peer> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .range((service.to_owned(), String::new())..)
            .take_while(|((s, _), _)| s == service)
            .filter(|(_, ann)| !ann.is_withdrawal())
            .map(|(_, ann)| Peer::from(ann))
            .collect()
    }

    /// Everything known, tombstones included, for the cache.
    pub(crate) fn known(&self) -> Vec<SignedAnnouncement> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.values().cloned().collect()
    }

    /// A watch of `service`'s peers; registers the interest.
    pub(crate) fn subscribe(&self, service: &str) -> watch::Receiver<Vec<Peer>> {
        let rx = {
            let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
            views
                .entry(service.to_owned())
                .or_insert_with(|| watch::Sender::new(self.peers(service)))
                .subscribe()
        };
        self.interest
            .send_if_modified(|set| set.insert(service.to_owned()));
        rx
    }

    fn refresh_view(&self, service: &str) {
        let views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = views.get(service) {
            let peers = self.peers(service);
            tx.send_if_modified(|old| {
                let changed = *old != peers;
                *old = peers;
                changed
            });
        }
    }

    /// Signs `services` for `node` with a seqnum above every one used
    /// before (and above `floor`), and with it a withdrawal of every
    /// (service, uuid) published before (by this process or, per the
    /// record in the state directory, an earlier one) and not now; records
    /// the seqnum and what is published durably, then hands the
    /// announcements to the workers. With `node` `None`, re-signs the
    /// current publication.
    pub(crate) async fn publish(
        &self,
        node: Option<(NodeInfo, Vec<String>)>,
        floor: u64,
    ) -> Result<(), ClientError> {
        let mut last = self.last.lock().await;
        let publication = match node {
            Some((node, services)) => Publication::new(node, services, &last.published),
            None => match self.current_publication() {
                Some(current) => current,
                None => return Ok(()),
            },
        };
        let seqnum = persist::next_seqnum(last.seqnum, floor);
        let published = publication.record();
        self.store_record(seqnum, published.clone()).await?;
        *last = Last { seqnum, published };
        let signed = publication.sign(&self.key, seqnum);
        let Publication {
            node,
            services,
            withdrawn,
        } = publication;
        tracing::info!(uuid = %node.uuid, ?services, ?withdrawn, seqnum, "publishing");
        // This node knows itself even before any introducer answers.
        self.merge(signed.clone());
        self.outbox.send_replace(Arc::new(Outbox {
            node: Some(node),
            services,
            withdrawn,
            signed,
        }));
        Ok(())
    }

    /// What is published now, to sign again; `None` before the first
    /// publication.
    fn current_publication(&self) -> Option<Publication> {
        let current = self.outbox.borrow().clone();
        let node = current.node.clone()?;
        Some(Publication {
            node,
            services: current.services.clone(),
            withdrawn: current.withdrawn.clone(),
        })
    }

    /// Records `seqnum` and what it publishes in the state directory,
    /// durably, before anything is signed with it.
    async fn store_record(&self, seqnum: u64, record: Published) -> Result<(), ClientError> {
        let dir = self.state_dir.clone();
        tokio::task::spawn_blocking(move || {
            persist::store_seqnum(&dir, seqnum)?;
            persist::store_published(&dir, &record)
        })
        .await
        .map_err(|e| ClientError::State(std::io::Error::other(e)))?
        .map_err(ClientError::State)
    }

    /// The services a worker asks its introducer about: the subscribed
    /// ones, and the published and withdrawn ones (to see that they arrived).
    pub(crate) fn polled_services(&self) -> Vec<String> {
        let mut set = self.interest.borrow().clone();
        let outbox = self.outbox.borrow();
        set.extend(outbox.services.iter().cloned());
        set.extend(outbox.withdrawn.iter().map(|(service, _)| service.clone()));
        set.into_iter().collect()
    }
}

/// Whether `list`, an introducer's answer about `services` (tombstones
/// included), lacks one of this node's current announcements or
/// withdrawals exactly as signed: then it must be sent again (a replay
/// refusal then tells the seqnum to go above).
pub(crate) fn lacks_own(outbox: &Outbox, services: &[String], list: &[SignedAnnouncement]) -> bool {
    outbox
        .signed
        .iter()
        .filter(|own| services.contains(&own.announcement.service))
        .any(|own| !list.contains(own))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UPLOAD_STORAGE;

    fn key() -> ClusterKey {
        ClusterKey::new("k").unwrap()
    }

    fn entry(uuid: &str, seqnum: u64, withdrawn: bool) -> SignedAnnouncement {
        Announcement {
            service: UPLOAD_STORAGE.into(),
            uuid: uuid.into(),
            url: format!("http://{uuid}:1"),
            nickname: String::new(),
            version: String::new(),
            seqnum,
            nonce: new_nonce(),
            withdrawn,
        }
        .sign(&key())
    }

    fn uuids(shared: &Shared) -> Vec<String> {
        shared
            .peers(UPLOAD_STORAGE)
            .into_iter()
            .map(|p| p.uuid)
            .collect()
    }

    /// Whatever order introducers answer in, a withdrawal hides the peer
    /// until a newer announcement comes.
    #[tokio::test]
    async fn merge_honours_tombstones_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::load(key(), dir.path().to_owned()).await.unwrap();
        let rx = shared.subscribe(UPLOAD_STORAGE);
        let (old, gone, tie) = (
            entry("a", 5, false),
            entry("a", 6, true),
            entry("a", 6, false),
        );
        shared.merge(vec![entry("b", 1, false), old.clone()]);
        assert_eq!(rx.borrow().len(), 2);
        shared.merge(vec![gone.clone()]);
        assert_eq!(uuids(&shared), vec!["b".to_string()]);
        assert_eq!(rx.borrow().len(), 1, "the watch drops it");
        // An older announcement, or one of the same seqnum, does not bring it back.
        assert_eq!(shared.merge(vec![old.clone(), tie.clone()]), 0);
        assert_eq!(uuids(&shared), vec!["b".to_string()]);

        // The other order: the same result.
        let dir2 = tempfile::tempdir().unwrap();
        let other = Shared::load(key(), dir2.path().to_owned()).await.unwrap();
        other.merge(vec![tie, gone.clone(), old]);
        assert!(uuids(&other).is_empty());
        assert_eq!(other.known(), vec![gone]);

        // A newer announcement does.
        shared.merge(vec![entry("a", 7, false)]);
        assert_eq!(uuids(&shared), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(rx.borrow().len(), 2);
    }
}
