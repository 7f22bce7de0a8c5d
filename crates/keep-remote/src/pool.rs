//! The pool of peers: who they are, whether they are up, and which of them
//! get a new block or are asked for a missing one.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use keep_locator::{BlockHash, permuted_order};
use tokio::sync::Notify;

use crate::heartbeat::{HeartbeatConfig, PeerHealth};
use crate::{NodeCredential, Remote, RemoteConfig, RemoteError};

/// A peer as the pool learns it from the introducer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerInfo {
    /// The node's uuid.
    pub uuid: String,
    /// Its base url.
    pub url: String,
    /// A name for people; may be empty.
    pub nickname: String,
}

impl From<&keep_introducer::client::Peer> for PeerInfo {
    fn from(p: &keep_introducer::client::Peer) -> Self {
        PeerInfo {
            uuid: p.uuid.clone(),
            url: p.url.clone(),
            nickname: p.nickname.clone(),
        }
    }
}

/// One peer as the pool sees it now, for status pages.
#[derive(Debug, Clone)]
pub struct PeerView {
    /// The peer (its uuid, url and counters).
    pub remote: Arc<Remote>,
    /// Whether it announces `upload_storage`.
    pub writable: bool,
    /// Its health.
    pub health: PeerHealth,
}

/// One peer in the pool.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) remote: Arc<Remote>,
    pub(crate) writable: bool,
    pub(crate) health: Arc<Mutex<PeerHealth>>,
}

impl Member {
    pub(crate) fn health(&self) -> std::sync::MutexGuard<'_, PeerHealth> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Up, writable, not draining, not read-only.
    fn takes_new_blocks(&self) -> bool {
        let h = self.health();
        self.writable && h.up && !h.draining && !h.read_only
    }
}

pub(crate) struct Inner {
    pub(crate) self_uuid: String,
    credential: NodeCredential,
    pub(crate) config: RemoteConfig,
    pub(crate) heartbeat: HeartbeatConfig,
    /// By uuid, so every listing comes out in uuid order.
    members: RwLock<BTreeMap<String, Member>>,
    /// Woken when peers join, so the heartbeat loop contacts them at once.
    pub(crate) joined: Notify,
}

/// The peers of this node, with their up/down state.
///
/// Cheap to clone: clones share one pool. A new peer counts as up until a
/// heartbeat or a request says otherwise; the heartbeat worker
/// ([`Pool::heartbeat_worker`]) contacts it at once.
#[derive(Clone)]
pub struct Pool {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members = self.read();
        f.debug_struct("Pool")
            .field("self_uuid", &self.inner.self_uuid)
            .field("peers", &members.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// An empty pool for the node `self_uuid`, which it never holds.
    pub fn new(
        self_uuid: String,
        credential: NodeCredential,
        config: RemoteConfig,
        heartbeat: HeartbeatConfig,
    ) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                self_uuid,
                credential,
                config,
                heartbeat,
                members: RwLock::new(BTreeMap::new()),
                joined: Notify::new(),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Member>> {
        self.inner.members.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Every member, in uuid order.
    pub(crate) fn members(&self) -> Vec<Member> {
        self.read().values().cloned().collect()
    }

    fn member(&self, uuid: &str) -> Option<Member> {
        self.read().get(uuid).cloned()
    }

    /// Replaces the peer set: `readable` are the `download_storage` peers,
    /// `writable` the uuids of the `upload_storage` peers (a writable uuid
    /// not in `readable` is ignored: it has no url here). A peer whose uuid
    /// and url are unchanged keeps its [`Remote`] (and its connections)
    /// and its up/down state; this node's own uuid is never included; of
    /// two entries with one uuid the first wins.
    pub fn update(&self, readable: Vec<PeerInfo>, writable: HashSet<String>) {
        let mut joined = false;
        {
            let mut members = self
                .inner
                .members
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let mut old = std::mem::take(&mut *members);
            for peer in readable {
                if peer.uuid == self.inner.self_uuid || members.contains_key(&peer.uuid) {
                    continue;
                }
                let is_writable = writable.contains(&peer.uuid);
                let member = match old.remove(&peer.uuid) {
                    Some(m) if m.remote.url == peer.url => Member {
                        writable: is_writable,
                        ..m
                    },
                    _ => {
                        joined = true;
                        tracing::info!(peer = %peer.uuid, url = %peer.url, "peer joined the pool");
                        let name = if peer.nickname.is_empty() {
                            peer.uuid.clone()
                        } else {
                            peer.nickname.clone()
                        };
                        Member {
                            remote: Arc::new(Remote::new(
                                name,
                                peer.url.clone(),
                                peer.uuid.clone(),
                                self.inner.credential.clone(),
                                &self.inner.config,
                            )),
                            writable: is_writable,
                            health: Arc::new(Mutex::new(PeerHealth::new())),
                        }
                    }
                };
                members.insert(peer.uuid, member);
            }
            for uuid in old.keys() {
                tracing::info!(peer = %uuid, "peer left the pool");
            }
        }
        if joined {
            self.inner.joined.notify_one();
        }
    }

    /// Every peer with its health, in uuid order.
    pub fn peers(&self) -> Vec<PeerView> {
        self.read()
            .values()
            .map(|m| PeerView {
                remote: m.remote.clone(),
                writable: m.writable,
                health: m.health().clone(),
            })
            .collect()
    }

    /// Every peer, in uuid order.
    pub fn remotes(&self) -> Vec<Arc<Remote>> {
        self.read().values().map(|m| m.remote.clone()).collect()
    }

    /// The peer `uuid`, if it is in the pool.
    pub fn get(&self, uuid: &str) -> Option<Arc<Remote>> {
        self.member(uuid).map(|m| m.remote)
    }

    /// What the pool knows of peer `uuid`'s health.
    pub fn health(&self, uuid: &str) -> Option<PeerHealth> {
        self.member(uuid).map(|m| m.health().clone())
    }

    /// Up to `n` peers for a new block: the first `n` eligible peers (up,
    /// not draining, not read-only, offering `upload_storage`) in the
    /// block's rendezvous order (`keep_locator::permuted_order` over their
    /// uuids: the order Arvados clients probe in), so readers find the
    /// copies where they look first.
    pub fn assign_remotes(&self, n: usize, hash: &BlockHash) -> Vec<Arc<Remote>> {
        let eligible: Vec<Arc<Remote>> = self
            .read()
            .values()
            .filter(|m| m.takes_new_blocks())
            .map(|m| m.remote.clone())
            .collect();
        if eligible.is_empty() || n == 0 {
            return Vec::new();
        }
        in_rendezvous_order(hash, &eligible)
            .into_iter()
            .take(n)
            .collect()
    }

    /// The uuids of the peers that take uploads: announced as
    /// `upload_storage`, neither draining nor read-only by their own
    /// answers. Up or down alike: a peer that is down for a while is still
    /// the place its blocks belong (pullsync's responsibility).
    pub fn upload_uuids(&self) -> Vec<String> {
        self.read()
            .iter()
            .filter(|(_, m)| {
                let h = m.health();
                m.writable && !h.draining && !h.read_only
            })
            .map(|(uuid, _)| uuid.clone())
            .collect()
    }

    /// The peers to ask for a block this node does not hold: every peer
    /// that is up (draining and read-only ones included: they still serve
    /// reads), in the block's rendezvous order. Peers marked down are left
    /// out, so a missing block costs no connect timeouts.
    pub fn read_order(&self, hash: &BlockHash) -> Vec<Arc<Remote>> {
        let up: Vec<Arc<Remote>> = self
            .read()
            .values()
            .filter(|m| m.health().up)
            .map(|m| m.remote.clone())
            .collect();
        in_rendezvous_order(hash, &up)
    }

    /// Whether peer `uuid` is in the pool and up.
    pub fn is_up(&self, uuid: &str) -> bool {
        self.member(uuid).is_some_and(|m| m.health().up)
    }

    /// Whether peer `uuid` is in the pool and said it is shutting down.
    pub fn is_draining(&self, uuid: &str) -> bool {
        self.member(uuid).is_some_and(|m| m.health().draining)
    }

    /// Takes note of a failed request to peer `uuid`: a connect failure or
    /// a timeout ([`RemoteError::is_down`]) marks it down at once, so a dead
    /// peer costs at most one connect timeout; the next successful
    /// heartbeat marks it up again. A draining answer marks it draining; an
    /// identity failure marks it down until a heartbeat passes the check again.
    /// Other errors change nothing.
    pub fn report_failure(&self, uuid: &str, err: &RemoteError) {
        if let Some(m) = self.member(uuid) {
            let failures_to_down = self.inner.heartbeat.failures_to_down;
            m.health()
                .record_request_failure(err, failures_to_down, uuid);
        }
    }
}

/// `remotes` in the rendezvous order of `hash` over their uuids.
fn in_rendezvous_order(hash: &BlockHash, remotes: &[Arc<Remote>]) -> Vec<Arc<Remote>> {
    let uuids: Vec<&str> = remotes.iter().map(|r| r.uuid.as_str()).collect();
    permuted_order(hash, &uuids)
        .into_iter()
        .map(|i| remotes[i].clone())
        .collect()
}
