//! What the client knows and what it publishes, shared by the public
//! handle and the per-introducer workers.
//!
//! Architecture invariant: the known table only grows or moves to higher
//! seqnums. Whatever any introducer, the cache or this node itself says is
//! merged by (service, uuid), the highest seqnum winning, so introducers
//! that disagree or lag can never take a peer away or roll one back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::peers::Peer;
use super::persist;
use super::{ClientError, NodeInfo};
use crate::{Announcement, ClusterKey, SignedAnnouncement, new_nonce};

/// What this node publishes: the same set goes to every introducer.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    node: Option<NodeInfo>,
    services: Vec<String>,
    /// One signed announcement per service, all with one seqnum.
    pub(crate) signed: Vec<SignedAnnouncement>,
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
    /// The last seqnum published with; held while signing so two
    /// publications never share a seqnum.
    seqnum: tokio::sync::Mutex<u64>,
}

impl Shared {
    /// Loads the seqnum and the cache from `state_dir`.
    pub(crate) async fn load(key: ClusterKey, state_dir: PathBuf) -> Result<Self, ClientError> {
        let (dir, k) = (state_dir.clone(), key.clone());
        let (seqnum, cached) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            Ok::<_, std::io::Error>((persist::load_seqnum(&dir)?, persist::load_cache(&dir, &k)?))
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
            seqnum: tokio::sync::Mutex::new(seqnum),
        })
    }

    /// Merges announcements from an introducer; ones that do not verify are
    /// dropped. Returns how many changed the table.
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
                let newer = known
                    .get(&ann.key())
                    .is_none_or(|old| ann.announcement.seqnum > old.announcement.seqnum);
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

    /// The peers offering `service`, by uuid.
    pub(crate) fn peers(&self, service: &str) -> Vec<Peer> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .range((service.to_owned(), String::new())..)
            .take_while(|((s, _), _)| s == service)
            .map(|(_, ann)| Peer::from(ann))
            .collect()
    }

    /// Everything known, for the cache.
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
    /// before (and above `floor`), records the seqnum durably, then hands
    /// the announcements to the workers. With `node` `None`, re-signs the
    /// current publication.
    pub(crate) async fn publish(
        &self,
        node: Option<(NodeInfo, Vec<String>)>,
        floor: u64,
    ) -> Result<(), ClientError> {
        let mut last = self.seqnum.lock().await;
        let (node, services) = match node {
            Some(pair) => pair,
            None => {
                let current = self.outbox.borrow().clone();
                match &current.node {
                    Some(node) => (node.clone(), current.services.clone()),
                    None => return Ok(()),
                }
            }
        };
        let seqnum = persist::next_seqnum(*last, floor);
        let dir = self.state_dir.clone();
        tokio::task::spawn_blocking(move || persist::store_seqnum(&dir, seqnum))
            .await
            .map_err(|e| ClientError::State(std::io::Error::other(e)))?
            .map_err(ClientError::State)?;
        *last = seqnum;
        let signed: Vec<SignedAnnouncement> = services
            .iter()
            .map(|service| {
                Announcement {
                    service: service.clone(),
                    uuid: node.uuid.clone(),
                    url: node.url.clone(),
                    nickname: node.nickname.clone(),
                    version: node.version.clone(),
                    seqnum,
                    nonce: new_nonce(),
                    withdrawn: false,
                }
                .sign(&self.key)
            })
            .collect();
        tracing::info!(uuid = %node.uuid, ?services, seqnum, "publishing");
        // This node knows itself even before any introducer answers.
        self.merge(signed.clone());
        self.outbox.send_replace(Arc::new(Outbox {
            node: Some(node),
            services,
            signed,
        }));
        Ok(())
    }

    /// The services a worker asks its introducer about: the subscribed
    /// ones and the published ones (to see that they arrived).
    pub(crate) fn polled_services(&self) -> Vec<String> {
        let mut set = self.interest.borrow().clone();
        set.extend(self.outbox.borrow().services.iter().cloned());
        set.into_iter().collect()
    }
}

/// Whether `list`, an introducer's answer about `services`, lacks one of
/// this node's current announcements exactly as signed: then it must be
/// sent again (a replay refusal then tells the seqnum to go above).
pub(crate) fn lacks_own(outbox: &Outbox, services: &[String], list: &[SignedAnnouncement]) -> bool {
    outbox
        .signed
        .iter()
        .filter(|own| services.contains(&own.announcement.service))
        .any(|own| !list.contains(own))
}
