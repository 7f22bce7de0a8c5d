//! `Pool`: membership, placement, heartbeats against fake peers, and
//! following the introducer's watches.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use keep_introducer::client::Peer;
use keep_locator::{BlockHash, permuted_order};
use keep_remote::{HeartbeatConfig, PeerInfo, Pool, RemoteError};
use keep_worker::Workers;

use common::{FakePeer, credential, eventually, quick_config, serve, uuid};

const SELF: u32 = 0;

fn pool_with(period: Duration) -> Pool {
    Pool::new(
        uuid(SELF),
        credential(),
        quick_config(),
        HeartbeatConfig {
            period,
            failures_to_down: 2,
        },
    )
}

fn pool() -> Pool {
    pool_with(Duration::from_secs(2))
}

fn info(i: u32) -> PeerInfo {
    PeerInfo {
        uuid: uuid(i),
        url: format!("http://127.0.0.1:{}", 40000 + i),
        nickname: String::new(),
    }
}

fn uuids(remotes: &[Arc<keep_remote::Remote>]) -> Vec<String> {
    remotes.iter().map(|r| r.uuid.clone()).collect()
}

fn all(n: u32) -> (Vec<PeerInfo>, HashSet<String>) {
    ((1..=n).map(info).collect(), (1..=n).map(uuid).collect())
}

fn down(pool: &Pool, i: u32) {
    pool.report_failure(&uuid(i), &RemoteError::Connect("refused".into()));
}

fn draining(pool: &Pool, i: u32) {
    pool.report_failure(
        &uuid(i),
        &RemoteError::Status {
            status: 503,
            message: "shutting down".into(),
            draining: true,
        },
    );
}

#[test]
fn assign_skips_down_draining_read_only_and_self() {
    let pool = pool();
    let (mut readable, mut writable) = all(6);
    readable.push(info(SELF));
    writable.insert(uuid(SELF));
    writable.remove(&uuid(3)); // read-only: download_storage only
    pool.update(readable, writable);
    assert_eq!(pool.remotes().len(), 6, "self is never a member");
    assert!(pool.get(&uuid(SELF)).is_none());
    down(&pool, 1);
    draining(&pool, 2);
    // A request error that says nothing about the peer's health.
    pool.report_failure(&uuid(4), &RemoteError::NotFound);
    assert!(!pool.is_up(&uuid(1)) && pool.is_up(&uuid(2)) && pool.is_draining(&uuid(2)));

    let want: HashSet<String> = [4, 5, 6].map(uuid).into();
    let hash = BlockHash::of(b"block");
    let got = uuids(&pool.assign_remotes(10, &hash));
    assert_eq!(got.len(), 3);
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), want);
    assert!(pool.assign_remotes(0, &hash).is_empty());

    // Reads go to every up peer, draining and read-only ones included.
    let readers: HashSet<String> = uuids(&pool.read_order(&hash)).into_iter().collect();
    assert_eq!(readers, [2, 3, 4, 5, 6].map(uuid).into());
}

#[test]
fn assignment_is_stable_from_call_to_call() {
    let pool = pool();
    let (readable, writable) = all(3);
    pool.update(readable, writable);
    let hash = BlockHash::of(b"same block");
    let first = uuids(&pool.assign_remotes(2, &hash));
    assert_eq!(first.len(), 2);
    for _ in 0..4 {
        assert_eq!(uuids(&pool.assign_remotes(2, &hash)), first);
    }
}

#[test]
fn assign_and_read_order_follow_the_rendezvous_order() {
    let pool = pool();
    let (readable, writable) = all(8);
    pool.update(readable, writable);
    let everyone: Vec<String> = (1..=8).map(uuid).collect();
    for i in 0..20u32 {
        let hash = BlockHash::of(&i.to_le_bytes());
        let want: Vec<String> = permuted_order(&hash, &everyone)
            .into_iter()
            .map(|j| everyone[j].clone())
            .collect();
        assert_eq!(uuids(&pool.assign_remotes(3, &hash)), want[..3]);
        assert_eq!(uuids(&pool.read_order(&hash)), want);
    }
    // Down peers are left out of reads.
    down(&pool, 1);
    assert!(!uuids(&pool.read_order(&BlockHash::EMPTY)).contains(&uuid(1)));
}

#[test]
fn update_keeps_the_state_of_unchanged_peers() {
    let pool = pool();
    let (readable, writable) = all(3);
    pool.update(readable.clone(), writable.clone());
    let first = pool.get(&uuid(1)).unwrap();
    down(&pool, 1);
    draining(&pool, 2);

    // Same uuids and urls (and a new nickname): same remotes, same state.
    let mut renamed = readable.clone();
    renamed[0].nickname = "renamed".into();
    pool.update(renamed, writable.clone());
    assert!(Arc::ptr_eq(&first, &pool.get(&uuid(1)).unwrap()));
    assert!(!pool.is_up(&uuid(1)));
    assert!(pool.is_draining(&uuid(2)));

    // A new url is a new remote, fresh state.
    let mut moved = readable.clone();
    moved[0].url = "http://127.0.0.1:49999".into();
    pool.update(moved, writable.clone());
    let second = pool.get(&uuid(1)).unwrap();
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(second.url, "http://127.0.0.1:49999");
    assert!(pool.is_up(&uuid(1)));
    assert!(pool.is_draining(&uuid(2)));

    // Gone from the announcements: gone from the pool.
    pool.update(readable[1..].to_vec(), writable);
    assert!(pool.get(&uuid(1)).is_none());
    assert!(!pool.is_up(&uuid(1)));
    assert_eq!(pool.remotes().len(), 2);
    let shown = format!("{pool:?}");
    assert!(shown.contains(&uuid(2)), "{shown}");
}

#[tokio::test]
async fn heartbeats_mark_a_dead_peer_down_and_up_again() {
    let period = Duration::from_millis(300);
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let pool = pool_with(period);
    pool.update(
        vec![PeerInfo {
            uuid: uuid(1),
            url: node.url(),
            nickname: "one".into(),
        }],
        [uuid(1)].into(),
    );
    let workers = Workers::new();
    workers.spawn(pool.heartbeat_worker());

    assert!(
        eventually(Duration::from_secs(5), || pool
            .health(&uuid(1))
            .is_some_and(|h| h.initialized))
        .await,
        "first contact"
    );
    assert_eq!(pool.health(&uuid(1)).unwrap().status.unwrap().uuid, uuid(1));
    assert!(pool.is_up(&uuid(1)));

    let (peer, addr) = node.kill().await;
    let killed = Instant::now();
    assert!(
        eventually(2 * period + Duration::from_millis(500), || !pool
            .is_up(&uuid(1)))
        .await,
        "down within two periods"
    );
    assert!(killed.elapsed() > period / 2, "one failure is not enough");
    assert!(pool.assign_remotes(1, &BlockHash::EMPTY).is_empty());
    assert!(pool.read_order(&BlockHash::EMPTY).is_empty());

    let _node = serve(peer, Some(addr)).await;
    assert!(
        eventually(period + Duration::from_secs(1), || pool.is_up(&uuid(1))).await,
        "up again on the next answer"
    );
    assert_eq!(pool.assign_remotes(1, &BlockHash::EMPTY).len(), 1);

    assert!(
        workers.shutdown(Duration::from_secs(2)).await,
        "the loop stops on cancel"
    );
}

#[tokio::test]
async fn heartbeats_record_draining_read_only_and_identity() {
    let period = Duration::from_millis(200);
    let good = serve(FakePeer::new(&uuid(1)), None).await;
    let impostor = serve(FakePeer::new(&uuid(9)), None).await;
    let pool = pool_with(period);
    pool.update(
        vec![
            PeerInfo {
                uuid: uuid(1),
                url: good.url(),
                nickname: String::new(),
            },
            PeerInfo {
                uuid: uuid(2),
                url: impostor.url(),
                nickname: String::new(),
            },
        ],
        [uuid(1), uuid(2)].into(),
    );
    let workers = Workers::new();
    workers.spawn(pool.heartbeat_worker());

    assert!(
        eventually(Duration::from_secs(3), || !pool.is_up(&uuid(2))).await,
        "a peer answering with another uuid is down"
    );
    let health = pool.health(&uuid(2)).unwrap();
    assert!(!health.initialized);
    assert!(health.last_error.unwrap().contains("identity"));

    good.peer.draining.store(true, Ordering::SeqCst);
    assert!(eventually(Duration::from_secs(3), || pool.is_draining(&uuid(1))).await);
    assert!(pool.is_up(&uuid(1)));
    assert!(pool.assign_remotes(2, &BlockHash::EMPTY).is_empty());

    good.peer.draining.store(false, Ordering::SeqCst);
    good.peer.read_only.store(true, Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(3), || pool
            .health(&uuid(1))
            .is_some_and(|h| h.read_only && !h.draining))
        .await
    );
    assert!(pool.assign_remotes(2, &BlockHash::EMPTY).is_empty());

    good.peer.read_only.store(false, Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(3), || pool
            .assign_remotes(2, &BlockHash::EMPTY)
            .len()
            == 1)
        .await
    );

    // The impostor goes away and the right node takes its place.
    *impostor.peer.uuid.lock().unwrap() = uuid(2);
    assert!(eventually(Duration::from_secs(3), || pool.is_up(&uuid(2))).await);
    assert!(pool.health(&uuid(2)).unwrap().initialized);
    workers.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_failed_connect_marks_the_peer_down_at_once() {
    let node = serve(FakePeer::new(&uuid(1)), None).await;
    let url = node.url();
    node.kill().await;
    let pool = pool();
    pool.update(
        vec![PeerInfo {
            uuid: uuid(1),
            url,
            nickname: String::new(),
        }],
        [uuid(1)].into(),
    );
    let hash = BlockHash::of(b"x");
    let remote = pool.assign_remotes(1, &hash).pop().unwrap();
    let err = remote.has(&hash, 1).await.unwrap_err();
    pool.report_failure(&remote.uuid, &err);
    assert!(!pool.is_up(&uuid(1)));
    assert!(pool.assign_remotes(1, &hash).is_empty());
}

fn peer(i: u32, url: &str) -> Peer {
    Peer {
        uuid: uuid(i),
        url: url.to_owned(),
        nickname: format!("node {i}"),
        version: "test".into(),
        seqnum: 1,
    }
}

#[tokio::test]
async fn follows_the_introducer_watches() {
    let pool = pool();
    let (download_tx, download) = tokio::sync::watch::channel(vec![peer(1, "http://a:1")]);
    let (upload_tx, upload) = tokio::sync::watch::channel(Vec::new());
    let workers = Workers::new();
    workers.spawn(pool.follow_worker(download, upload));

    assert!(eventually(Duration::from_secs(2), || pool.get(&uuid(1)).is_some()).await);
    assert_eq!(pool.get(&uuid(1)).unwrap().name, "node 1");
    assert!(pool.assign_remotes(1, &BlockHash::EMPTY).is_empty());

    upload_tx.send_replace(vec![peer(1, "http://a:1"), peer(2, "http://b:1")]);
    download_tx.send_replace(vec![
        peer(1, "http://a:1"),
        peer(2, "http://b:1"),
        peer(SELF, "http://me:1"),
    ]);
    assert!(
        eventually(Duration::from_secs(2), || pool
            .assign_remotes(5, &BlockHash::EMPTY)
            .len()
            == 2)
        .await
    );
    assert_eq!(pool.remotes().len(), 2);

    assert!(
        workers.shutdown(Duration::from_secs(2)).await,
        "follow stops on cancel"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Distinct uuids, each with (writable, down, draining).
    fn members() -> impl Strategy<Value = Vec<(String, (bool, bool, bool))>> {
        prop::collection::btree_map(
            "[0-9a-z]{15}",
            (
                prop::bool::weighted(0.8),
                prop::bool::weighted(0.2),
                prop::bool::weighted(0.2),
            ),
            1..16,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|(tail, flags)| (format!("zzzzz-bi6l4-{tail}"), flags))
                .collect()
        })
    }

    fn build(members: &[(String, (bool, bool, bool))]) -> Pool {
        let pool = super::pool();
        let readable = members
            .iter()
            .enumerate()
            .map(|(i, (u, _))| PeerInfo {
                uuid: u.clone(),
                url: format!("http://127.0.0.1:{}", 40000 + i),
                nickname: String::new(),
            })
            .collect();
        let writable = members
            .iter()
            .filter(|(_, (w, _, _))| *w)
            .map(|(u, _)| u.clone())
            .collect();
        pool.update(readable, writable);
        for (u, (_, is_down, is_draining)) in members {
            if *is_down {
                pool.report_failure(u, &RemoteError::Timeout);
            }
            if *is_draining {
                pool.report_failure(
                    u,
                    &RemoteError::Status {
                        status: 503,
                        message: String::new(),
                        draining: true,
                    },
                );
            }
        }
        pool
    }

    fn eligible(members: &[(String, (bool, bool, bool))]) -> Vec<String> {
        members
            .iter()
            .filter(|(_, (w, d, r))| *w && !*d && !*r)
            .map(|(u, _)| u.clone())
            .collect()
    }

    proptest! {
        #[test]
        fn assignment_is_the_eligible_prefix_of_the_rendezvous_order(
            members in members(),
            hash in any::<[u8; 16]>(),
            n in 0usize..20,
        ) {
            let hash = BlockHash::from_bytes(hash);
            let pool = build(&members);
            let everyone: Vec<String> = members.iter().map(|(u, _)| u.clone()).collect();
            let eligible = eligible(&members);
            let want: Vec<String> = permuted_order(&hash, &everyone)
                .into_iter()
                .map(|i| everyone[i].clone())
                .filter(|u| eligible.contains(u))
                .take(n)
                .collect();
            prop_assert_eq!(uuids(&pool.assign_remotes(n, &hash)), want);
        }

        #[test]
        fn removing_one_eligible_node_moves_nobody_else(
            members in members(),
            hash in any::<[u8; 16]>(),
            pick in any::<prop::sample::Index>(),
            n in 1usize..8,
        ) {
            let eligible = eligible(&members);
            prop_assume!(!eligible.is_empty());
            let hash = BlockHash::from_bytes(hash);
            let gone = eligible[pick.index(eligible.len())].clone();
            let before = uuids(&build(&members).assign_remotes(usize::MAX, &hash));
            let fewer: Vec<_> = members.iter().filter(|(u, _)| *u != gone).cloned().collect();
            let after = uuids(&build(&fewer).assign_remotes(usize::MAX, &hash));
            let mut want = before.clone();
            want.retain(|u| *u != gone);
            prop_assert_eq!(&after, &want);

            // So the first n of a block lose at most the removed node, and
            // gain only the next in line.
            let first_before = &before[..n.min(before.len())];
            let first_after = &after[..n.min(after.len())];
            for u in first_before.iter().filter(|u| **u != gone) {
                prop_assert!(first_after.contains(u));
            }
        }
    }
}
