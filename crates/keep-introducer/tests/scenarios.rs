//! Tahoe-LAFS's introducer scenarios, with real introducers and clients
//! in-process on loopback.

mod common;

use common::*;
use keep_introducer::client::IntroducerClient;
use keep_introducer::{DOWNLOAD_STORAGE, UPLOAD_STORAGE};
use keep_locator::BlockHash;

const BOTH: [&str; 2] = [UPLOAD_STORAGE, DOWNLOAD_STORAGE];

fn uuids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(uuid).collect()
}

#[tokio::test]
async fn twenty_clients_converge() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(&dir.path().join("intro")).await;
    let mut clients = Vec::new();
    for i in 0..20 {
        let c = client(&[&intro.url], &dir.path().join(format!("c{i}"))).await;
        c.subscribe_to(UPLOAD_STORAGE);
        c.subscribe_to(DOWNLOAD_STORAGE);
        c.publish(&node(i), &BOTH).await.unwrap();
        clients.push(c);
    }
    let want = uuids(0..20);
    until("every client knows all twenty peers", || async {
        clients.iter().all(|c| {
            peer_uuids(c, UPLOAD_STORAGE) == want && peer_uuids(c, DOWNLOAD_STORAGE) == want
        })
    })
    .await;
    // Everyone probes the same order for a block.
    let block = BlockHash::of(b"converged");
    let order = clients[0].get_permuted_peers(UPLOAD_STORAGE, &block);
    assert_eq!(order.len(), 20);
    for c in &clients {
        assert_eq!(c.get_permuted_peers(UPLOAD_STORAGE, &block), order);
        assert_eq!(c.connected_introducers(), 1);
    }
    for c in &clients {
        c.shutdown().await;
    }
    intro.stop().await;
}

#[tokio::test]
async fn subscription_watch_sees_new_peers() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(&dir.path().join("intro")).await;
    let watcher = client(&[&intro.url], &dir.path().join("w")).await;
    let mut rx = watcher.subscribe_to(DOWNLOAD_STORAGE);
    assert!(rx.borrow_and_update().is_empty());
    let publisher = client(&[&intro.url], &dir.path().join("p")).await;
    publisher
        .publish(&node(7), &[DOWNLOAD_STORAGE])
        .await
        .unwrap();
    tokio::time::timeout(DEADLINE, rx.changed())
        .await
        .unwrap()
        .unwrap();
    let peers = rx.borrow().clone();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].uuid, uuid(7));
    assert_eq!(peers[0].url, node(7).url);
    assert_eq!(peers[0].nickname, "node7");
    watcher.shutdown().await;
    publisher.shutdown().await;
    intro.stop().await;
}

/// Two nodes publish, the introducer restarts (same state, same address),
/// a third node appears: everyone ends up knowing everyone.
#[tokio::test]
async fn introducer_restart_reconverges() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("intro");
    let intro = TestIntroducer::start(&state).await;
    let url = intro.url.clone();
    let a = client(&[&url], &dir.path().join("a")).await;
    let b = client(&[&url], &dir.path().join("b")).await;
    for (i, c) in [&a, &b].into_iter().enumerate() {
        c.subscribe_to(UPLOAD_STORAGE);
        c.publish(&node(i), &BOTH).await.unwrap();
    }
    until("a and b know each other", || async {
        peer_uuids(&a, UPLOAD_STORAGE) == uuids(0..2)
            && peer_uuids(&b, UPLOAD_STORAGE) == uuids(0..2)
    })
    .await;

    let addr = intro.addr;
    intro.stop().await;
    until("the clients notice", || async {
        a.connected_introducers() == 0
    })
    .await;
    let intro = TestIntroducer::start_at(addr, &state).await;
    assert_eq!(
        listed(&url, UPLOAD_STORAGE).await,
        uuids(0..2),
        "state kept"
    );

    let c = client(&[&url], &dir.path().join("c")).await;
    c.subscribe_to(UPLOAD_STORAGE);
    c.publish(&node(2), &BOTH).await.unwrap();
    until("all three converge", || async {
        [&a, &b, &c]
            .iter()
            .all(|x| peer_uuids(x, UPLOAD_STORAGE) == uuids(0..3))
    })
    .await;
    for x in [&a, &b, &c] {
        x.shutdown().await;
    }
    intro.stop().await;
}

/// The introducer is replaced by one with an empty table at the same
/// address: the nodes publish again on their own, and reconverge.
#[tokio::test]
async fn replacement_introducer_reconverges() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(&dir.path().join("old")).await;
    let url = intro.url.clone();
    let a = client(&[&url], &dir.path().join("a")).await;
    let b = client(&[&url], &dir.path().join("b")).await;
    for (i, c) in [&a, &b].into_iter().enumerate() {
        c.subscribe_to(DOWNLOAD_STORAGE);
        c.publish(&node(i), &BOTH).await.unwrap();
    }
    until("a and b know each other", || async {
        peer_uuids(&a, DOWNLOAD_STORAGE) == uuids(0..2)
            && peer_uuids(&b, DOWNLOAD_STORAGE) == uuids(0..2)
    })
    .await;

    let addr = intro.addr;
    intro.stop().await;
    let intro = TestIntroducer::start_at(addr, &dir.path().join("new")).await;
    until("the replacement learns both nodes again", || async {
        listed(&url, UPLOAD_STORAGE).await == uuids(0..2)
            && listed(&url, DOWNLOAD_STORAGE).await == uuids(0..2)
    })
    .await;
    let c = client(&[&url], &dir.path().join("c")).await;
    c.subscribe_to(DOWNLOAD_STORAGE);
    c.publish(&node(2), &[DOWNLOAD_STORAGE]).await.unwrap();
    until("all three converge", || async {
        [&a, &b, &c]
            .iter()
            .all(|x| peer_uuids(x, DOWNLOAD_STORAGE) == uuids(0..3))
    })
    .await;
    for x in [&a, &b, &c] {
        x.shutdown().await;
    }
    intro.stop().await;
}

#[tokio::test]
async fn publishing_while_the_introducer_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr().await;
    let url = format!("http://{addr}");
    let a = client(&[&url], &dir.path().join("a")).await;
    a.publish(&node(1), &BOTH).await.unwrap();
    // Queued, and known locally at once.
    assert_eq!(peer_uuids(&a, UPLOAD_STORAGE), vec![uuid(1)]);
    assert_eq!(a.connected_introducers(), 0);

    let intro = TestIntroducer::start_at(addr, &dir.path().join("intro")).await;
    until("the queued publication arrives", || async {
        listed(&url, UPLOAD_STORAGE).await == vec![uuid(1)]
            && listed(&url, DOWNLOAD_STORAGE).await == vec![uuid(1)]
    })
    .await;
    a.shutdown().await;
    intro.stop().await;
}

/// Clients talk to two introducers; while one is down they converge
/// through the other, and the late one catches up when it starts.
#[tokio::test]
async fn two_introducers_with_one_down() {
    let dir = tempfile::tempdir().unwrap();
    let up = TestIntroducer::start(&dir.path().join("up")).await;
    let down_addr = free_addr().await;
    let down_url = format!("http://{down_addr}");
    let up_url = up.url.clone();
    let both = [up_url.as_str(), down_url.as_str()];
    let a = client(&both, &dir.path().join("a")).await;
    let b = client(&both, &dir.path().join("b")).await;
    for (i, c) in [&a, &b].into_iter().enumerate() {
        c.subscribe_to(UPLOAD_STORAGE);
        c.publish(&node(i), &BOTH).await.unwrap();
    }
    until("a and b converge through the live introducer", || async {
        peer_uuids(&a, UPLOAD_STORAGE) == uuids(0..2)
            && peer_uuids(&b, UPLOAD_STORAGE) == uuids(0..2)
    })
    .await;
    assert_eq!(a.connected_introducers(), 1);

    let late = TestIntroducer::start_at(down_addr, &dir.path().join("late")).await;
    until(
        "the late introducer gets the queued publications",
        || async { listed(&down_url, UPLOAD_STORAGE).await == uuids(0..2) },
    )
    .await;
    // Now the first one goes away; a newcomer still reaches everyone.
    up.stop().await;
    let c = client(&both, &dir.path().join("c")).await;
    c.subscribe_to(UPLOAD_STORAGE);
    c.publish(&node(2), &BOTH).await.unwrap();
    until("all converge through the second introducer", || async {
        [&a, &b, &c]
            .iter()
            .all(|x| peer_uuids(x, UPLOAD_STORAGE) == uuids(0..3))
    })
    .await;
    for x in [&a, &b, &c] {
        x.shutdown().await;
    }
    late.stop().await;
}

#[tokio::test]
async fn read_only_node_is_absent_from_upload() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(&dir.path().join("intro")).await;
    let writer = client(&[&intro.url], &dir.path().join("w")).await;
    writer.publish(&node(1), &BOTH).await.unwrap();
    let read_only = client(&[&intro.url], &dir.path().join("r")).await;
    read_only
        .publish(&node(2), &[DOWNLOAD_STORAGE])
        .await
        .unwrap();
    // A client-only process publishes nothing and only subscribes.
    let reader = client(&[&intro.url], &dir.path().join("c")).await;
    reader.subscribe_to(UPLOAD_STORAGE);
    reader.subscribe_to(DOWNLOAD_STORAGE);
    until("the reader sees both downloaders", || async {
        peer_uuids(&reader, DOWNLOAD_STORAGE) == uuids(1..3)
    })
    .await;
    assert_eq!(peer_uuids(&reader, UPLOAD_STORAGE), vec![uuid(1)]);
    let block = BlockHash::of(b"x");
    assert_eq!(reader.get_permuted_peers(UPLOAD_STORAGE, &block).len(), 1);
    assert_eq!(reader.get_permuted_peers(DOWNLOAD_STORAGE, &block).len(), 2);
    assert_eq!(listed(&intro.url, UPLOAD_STORAGE).await, vec![uuid(1)]);
    for x in [&writer, &read_only, &reader] {
        x.shutdown().await;
    }
    intro.stop().await;
}

/// A node restarting while every introducer is down still knows its peers
/// from its cache, and its seqnum keeps growing across the restart.
#[tokio::test]
async fn cache_and_seqnum_survive_a_restart_with_introducers_down() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(&dir.path().join("intro")).await;
    let url = intro.url.clone();
    let a_dir = dir.path().join("a");
    let a = client(&[&url], &a_dir).await;
    a.subscribe_to(UPLOAD_STORAGE);
    a.publish(&node(0), &BOTH).await.unwrap();
    let b = client(&[&url], &dir.path().join("b")).await;
    b.publish(&node(1), &BOTH).await.unwrap();
    until("a learns b", || async {
        peer_uuids(&a, UPLOAD_STORAGE) == uuids(0..2)
    })
    .await;
    let first_seqnum = a.get_peers(UPLOAD_STORAGE)[0].seqnum;
    a.shutdown().await;
    drop(a);
    b.shutdown().await;
    intro.stop().await;

    let a = client(&[&url], &a_dir).await;
    assert_eq!(a.connected_introducers(), 0);
    assert_eq!(
        peer_uuids(&a, UPLOAD_STORAGE),
        uuids(0..2),
        "known from the cache"
    );
    let rx = a.subscribe_to(UPLOAD_STORAGE);
    assert_eq!(rx.borrow().len(), 2);
    a.publish(&node(0), &BOTH).await.unwrap();
    let second_seqnum = a.get_peers(UPLOAD_STORAGE)[0].seqnum;
    assert!(
        second_seqnum > first_seqnum,
        "{second_seqnum} > {first_seqnum}"
    );
    a.shutdown().await;
}

/// An introducer holding a higher seqnum for this node (its seqnum file
/// was lost, say) refuses the publication as a replay; the client signs
/// again above it and gets through.
#[tokio::test]
async fn replay_refusal_makes_the_client_sign_above_it() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(&dir.path().join("intro")).await;
    let far = u64::MAX / 4;
    let stale = signed(&key(), UPLOAD_STORAGE, &uuid(5), far);
    assert_eq!(announce(&intro.url, &stale).await.0, 200);
    let a = client(&[&intro.url], &dir.path().join("a")).await;
    a.publish(&node(5), &[UPLOAD_STORAGE]).await.unwrap();
    until("the client's own announcement wins", || async {
        let (_, _, text) = http(
            http::Method::GET,
            &format!("{}/v1/announcements?service={UPLOAD_STORAGE}", intro.url),
            "",
        )
        .await;
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json[0]["url"] == node(5).url && json[0]["seqnum"].as_u64().unwrap() > far
    })
    .await;
    a.shutdown().await;
    intro.stop().await;
}

/// The node's worker registry runs the client's workers; shutting it down
/// stops them, and the cache holds what was known.
#[tokio::test]
async fn the_nodes_registry_stops_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(&dir.path().join("intro")).await;
    let workers = keep_worker::Workers::new();
    let state = dir.path().join("a");
    let a = IntroducerClient::start(client_config(&[&intro.url], &state), &workers)
        .await
        .unwrap();
    let names: Vec<String> = workers.list().into_iter().map(|w| w.name).collect();
    assert_eq!(
        names,
        vec![
            format!("introducer {}", intro.url),
            "introducer cache".into()
        ]
    );
    a.subscribe_to(UPLOAD_STORAGE);
    a.publish(&node(3), &BOTH).await.unwrap();
    until("published", || async {
        listed(&intro.url, UPLOAD_STORAGE).await == vec![uuid(3)]
    })
    .await;
    // Nothing changes: the workers wait (long-poll) instead of spinning.
    let steps = || workers.list().iter().map(|w| w.iterations).sum::<u64>();
    let before = steps();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(steps() <= before + 2, "{:?}", workers.list());
    assert!(
        workers.shutdown(std::time::Duration::from_secs(5)).await,
        "the workers stop in time"
    );
    assert!(workers.list().iter().all(|w| w.state == "done"));
    tokio::time::timeout(std::time::Duration::from_secs(5), a.shutdown())
        .await
        .expect("tasks already stopping");
    let cache = std::fs::read_to_string(state.join(keep_introducer::client::CACHE_FILE)).unwrap();
    assert!(cache.contains(&uuid(3)), "{cache}");
    intro.stop().await;
}

/// A client that only subscribes sends nothing and, between changes,
/// only waits on its long-poll.
#[tokio::test]
async fn a_subscriber_that_publishes_nothing_waits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(&dir.path().join("intro")).await;
    let workers = keep_worker::Workers::new();
    let w = IntroducerClient::start(
        client_config(&[&intro.url], &dir.path().join("w")),
        &workers,
    )
    .await
    .unwrap();
    w.subscribe_to(DOWNLOAD_STORAGE);
    until("connected", || async { w.connected_introducers() == 1 }).await;
    let steps = || workers.list().iter().map(|w| w.iterations).sum::<u64>();
    let before = steps();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(steps() <= before + 2, "{:?}", workers.list());
    let listed = workers.list();
    assert_eq!(listed[0].state, "idle", "{listed:?}");
    assert_eq!(listed[0].status.queue_length, Some(0));
    assert!(
        listed[0]
            .status
            .progress
            .as_deref()
            .is_some_and(|p| p.starts_with("connected"))
    );
    w.shutdown().await;
    assert!(workers.list().iter().all(|w| w.state == "done"));
    intro.stop().await;
}

#[tokio::test]
async fn bad_urls_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let workers = keep_worker::Workers::new();
    let err = IntroducerClient::start(client_config(&["https://x:1"], dir.path()), &workers)
        .await
        .unwrap_err();
    assert!(workers.list().is_empty(), "nothing spawned");
    assert!(err.to_string().contains("https://x:1"), "{err}");
}
