//! Withdrawals: a node that stops offering a service (draining, or
//! restarted read-only) leaves it everywhere, and stays gone across
//! restarts of the introducer, of itself and of its subscribers, until it
//! announces the service again.

mod common;

use common::*;
use http::Method;
use keep_introducer::client::Peer;
use keep_introducer::{ClusterKey, DOWNLOAD_STORAGE, SignedAnnouncement, UPLOAD_STORAGE};
use tokio::sync::watch;

const BOTH: [&str; 2] = [UPLOAD_STORAGE, DOWNLOAD_STORAGE];

/// `GET /v1/announcements?service=SERVICE` with the tombstones: the entries.
async fn entries(base: &str, service: &str) -> Vec<SignedAnnouncement> {
    let url = format!("{base}/v1/announcements?service={service}&withdrawn=true");
    let (status, _, text) = http(Method::GET, &url, "").await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn metrics(base: &str) -> String {
    http(Method::GET, &format!("{base}/metrics"), "").await.2
}

/// Waits until `rx` holds exactly the peers `want` (by uuid).
async fn watch_until(what: &str, rx: &mut watch::Receiver<Vec<Peer>>, want: &[String]) {
    let got = tokio::time::timeout(DEADLINE, async {
        rx.wait_for(|peers| peers.iter().map(|p| &p.uuid).eq(want.iter()))
            .await
            .is_ok()
    })
    .await;
    assert!(
        got == Ok(true),
        "timed out waiting until {what}: {:?}",
        rx.borrow()
    );
}

/// The draining node's path: publish both, then download only. The
/// introducer lists it under download only, a subscriber's upload watch
/// drops it, the introducer keeps the withdrawal across a restart and
/// refuses the old announcement as a replay, and publishing upload again
/// brings the node back.
#[tokio::test]
async fn publishing_download_only_withdraws_upload() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("intro");
    let intro = TestIntroducer::start(&state).await;
    let url = intro.url.clone();
    let a = client(&[&url], &dir.path().join("a")).await;
    a.publish(&node(1), &BOTH).await.unwrap();
    let reader = client(&[&url], &dir.path().join("r")).await;
    let mut upload = reader.subscribe_to(UPLOAD_STORAGE);
    let mut download = reader.subscribe_to(DOWNLOAD_STORAGE);
    watch_until("the reader sees the uploader", &mut upload, &[uuid(1)]).await;
    watch_until("the reader sees the downloader", &mut download, &[uuid(1)]).await;
    let old_upload = entries(&url, UPLOAD_STORAGE).await;
    assert_eq!(old_upload.len(), 1);
    assert!(!old_upload[0].is_withdrawal());

    a.publish(&node(1), &[DOWNLOAD_STORAGE]).await.unwrap();
    assert!(
        peer_uuids(&a, UPLOAD_STORAGE).is_empty(),
        "at once, locally"
    );
    until(
        "the introducer lists the node under download only",
        || async {
            listed(&url, UPLOAD_STORAGE).await.is_empty()
                && listed(&url, DOWNLOAD_STORAGE).await == vec![uuid(1)]
        },
    )
    .await;
    watch_until("the reader's upload watch drops the node", &mut upload, &[]).await;
    assert_eq!(peer_uuids(&reader, DOWNLOAD_STORAGE), vec![uuid(1)]);
    let tombstone = entries(&url, UPLOAD_STORAGE).await;
    assert_eq!(tombstone.len(), 1);
    assert!(tombstone[0].is_withdrawal());
    assert!(tombstone[0].announcement.seqnum > old_upload[0].announcement.seqnum);
    let m = metrics(&url).await;
    for line in [
        r#"introducer_withdrawals_received_total{outcome="accepted"} 1"#,
        r#"introducer_announcements{service="upload_storage"} 0"#,
        r#"introducer_tombstones{service="upload_storage"} 1"#,
        r#"introducer_announcements{service="download_storage"} 1"#,
    ] {
        assert!(m.contains(line), "{line} in\n{m}");
    }

    // The introducer restarts on the same state: still withdrawn, and the
    // old announcement, replayed, is refused. (The node is stopped, so
    // that only this test's requests are counted.)
    a.shutdown().await;
    drop(a);
    let addr = intro.addr;
    intro.stop().await;
    let intro = TestIntroducer::start_at(addr, &state).await;
    assert!(listed(&url, UPLOAD_STORAGE).await.is_empty());
    assert_eq!(entries(&url, UPLOAD_STORAGE).await, tombstone);
    assert_eq!(announce(&url, &old_upload[0]).await, (409, "replay".into()));
    assert!(listed(&url, UPLOAD_STORAGE).await.is_empty());
    // The same withdrawal again is a duplicate.
    assert_eq!(
        announce(&url, &tombstone[0]).await,
        (200, "duplicate".into())
    );
    let m = metrics(&url).await;
    for line in [
        r#"introducer_announcements_received_total{outcome="replay"} 1"#,
        r#"introducer_withdrawals_received_total{outcome="duplicate"} 1"#,
    ] {
        assert!(m.contains(line), "{line} in\n{m}");
    }

    // Publishing upload again (restarted, same state) brings the node back.
    let a = client(&[&url], &dir.path().join("a")).await;
    a.publish(&node(1), &BOTH).await.unwrap();
    until("the introducer lists the uploader again", || async {
        listed(&url, UPLOAD_STORAGE).await == vec![uuid(1)]
    })
    .await;
    watch_until(
        "the reader sees the uploader again",
        &mut upload,
        &[uuid(1)],
    )
    .await;
    for x in [&a, &reader] {
        x.shutdown().await;
    }
    intro.stop().await;
}

/// A node restarted (same state directory) with fewer services withdraws
/// the dropped one; a subscriber that restarts from its cache while the
/// introducer is down does not bring it back.
#[tokio::test]
async fn restart_with_fewer_services_withdraws_the_dropped_one() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(&dir.path().join("intro")).await;
    let url = intro.url.clone();
    let a_dir = dir.path().join("a");
    let a = client(&[&url], &a_dir).await;
    a.publish(&node(2), &BOTH).await.unwrap();
    let r_dir = dir.path().join("r");
    let reader = client(&[&url], &r_dir).await;
    let mut upload = reader.subscribe_to(UPLOAD_STORAGE);
    reader.subscribe_to(DOWNLOAD_STORAGE);
    watch_until("the reader sees the uploader", &mut upload, &[uuid(2)]).await;
    a.shutdown().await;
    drop(a);

    // Restarted read-only.
    let a = client(&[&url], &a_dir).await;
    a.publish(&node(2), &[DOWNLOAD_STORAGE]).await.unwrap();
    until(
        "the introducer lists the node under download only",
        || async {
            listed(&url, UPLOAD_STORAGE).await.is_empty()
                && listed(&url, DOWNLOAD_STORAGE).await == vec![uuid(2)]
        },
    )
    .await;
    watch_until("the reader's upload watch drops the node", &mut upload, &[]).await;

    // The reader restarts while the introducer is down: its cache keeps
    // the withdrawal, not the old announcement.
    reader.shutdown().await;
    drop(reader);
    a.shutdown().await;
    intro.stop().await;
    let reader = client(&[&url], &r_dir).await;
    assert_eq!(reader.connected_introducers(), 0);
    assert!(peer_uuids(&reader, UPLOAD_STORAGE).is_empty());
    assert_eq!(peer_uuids(&reader, DOWNLOAD_STORAGE), vec![uuid(2)]);
    assert!(reader.subscribe_to(UPLOAD_STORAGE).borrow().is_empty());
    reader.shutdown().await;
}

/// Withdrawals are authenticated exactly like announcements.
#[tokio::test]
async fn unsigned_or_badly_signed_withdrawals_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(dir.path()).await;
    let base = intro.url.clone();
    let live = signed(&key(), UPLOAD_STORAGE, &uuid(1), 5);
    assert_eq!(announce(&base, &live).await, (200, "accepted".into()));

    let forged = withdrawal(
        &ClusterKey::new("another cluster").unwrap(),
        UPLOAD_STORAGE,
        &uuid(1),
        6,
    );
    let mut unsigned = withdrawal(&key(), UPLOAD_STORAGE, &uuid(1), 6);
    unsigned.signature.clear();
    // The flag is signed: setting it on a signed announcement breaks it.
    let mut flipped = signed(&key(), UPLOAD_STORAGE, &uuid(1), 6);
    flipped.announcement.withdrawn = true;
    for bad in [&forged, &unsigned, &flipped] {
        assert_eq!(announce(&base, bad).await, (403, "bad_signature".into()));
    }
    assert_eq!(listed(&base, UPLOAD_STORAGE).await, vec![uuid(1)]);

    // Not above the stored seqnum: a replay, like an announcement.
    let stale = withdrawal(&key(), UPLOAD_STORAGE, &uuid(1), 5);
    assert_eq!(announce(&base, &stale).await, (409, "replay".into()));
    // Unknown (service, uuid): accepted, kept as a tombstone.
    let unknown = withdrawal(&key(), UPLOAD_STORAGE, &uuid(9), 3);
    assert_eq!(announce(&base, &unknown).await, (200, "accepted".into()));
    assert_eq!(listed(&base, UPLOAD_STORAGE).await, vec![uuid(1)]);
    assert_eq!(entries(&base, UPLOAD_STORAGE).await, vec![live, unknown]);

    let m = metrics(&base).await;
    for line in [
        r#"introducer_withdrawals_received_total{outcome="bad_signature"} 3"#,
        r#"introducer_withdrawals_received_total{outcome="replay"} 1"#,
        r#"introducer_withdrawals_received_total{outcome="accepted"} 1"#,
        r#"introducer_announcements_received_total{outcome="bad_signature"} 0"#,
        r#"introducer_announcements_received_total{outcome="accepted"} 1"#,
    ] {
        assert!(m.contains(line), "{line} in\n{m}");
    }
    intro.stop().await;
}

/// A subscriber long-polling a service is answered when a node of it is
/// withdrawn.
#[tokio::test]
async fn a_withdrawal_wakes_long_polls() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(dir.path()).await;
    let base = intro.url.clone();
    let live = signed(&key(), UPLOAD_STORAGE, &uuid(1), 1);
    assert_eq!(announce(&base, &live).await.0, 200);
    let list_url = format!("{base}/v1/announcements?service={UPLOAD_STORAGE}");
    let (_, token, _) = http(Method::GET, &list_url, "").await;
    let poll_url = format!("{list_url}&since={}&wait=30", token.clone().unwrap());
    let poll = tokio::spawn(async move { http(Method::GET, &poll_url, "").await });
    until("the subscriber waits", || async {
        metrics(&base).await.contains("introducer_subscribers 1")
    })
    .await;
    let gone = withdrawal(&key(), UPLOAD_STORAGE, &uuid(1), 2);
    assert_eq!(announce(&base, &gone).await, (200, "accepted".into()));
    let (status, new_token, body) = poll.await.unwrap();
    assert_eq!(status, 200);
    assert_ne!(new_token, token);
    assert_eq!(body, "[]", "the default answer leaves tombstones out");
    intro.stop().await;
}

/// Two introducers: a withdrawal that reached only one of them is honoured
/// by a subscriber of both, although the other still lists the old
/// announcement.
#[tokio::test]
async fn a_withdrawal_seen_through_one_introducer_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let x = TestIntroducer::start(&dir.path().join("x")).await;
    let y = TestIntroducer::start(&dir.path().join("y")).await;
    let both = [x.url.as_str(), y.url.as_str()];
    let a_dir = dir.path().join("a");
    let a = client(&both, &a_dir).await;
    a.publish(&node(3), &BOTH).await.unwrap();
    until("both introducers list the uploader", || async {
        listed(&x.url, UPLOAD_STORAGE).await == vec![uuid(3)]
            && listed(&y.url, UPLOAD_STORAGE).await == vec![uuid(3)]
    })
    .await;
    let reader = client(&both, &dir.path().join("r")).await;
    let mut upload = reader.subscribe_to(UPLOAD_STORAGE);
    watch_until("the reader sees the uploader", &mut upload, &[uuid(3)]).await;
    until("the reader hears both introducers", || async {
        reader.connected_introducers() == 2
    })
    .await;
    a.shutdown().await;
    drop(a);

    // The node comes back read-only, configured with x only.
    let a = client(&[&x.url], &a_dir).await;
    a.publish(&node(3), &[DOWNLOAD_STORAGE]).await.unwrap();
    until("x has the withdrawal", || async {
        listed(&x.url, UPLOAD_STORAGE).await.is_empty()
    })
    .await;
    watch_until("the reader's upload watch drops the node", &mut upload, &[]).await;
    // y never heard of it. A change on y makes the reader read y's whole
    // table again, stale announcement included: the node stays out.
    assert_eq!(listed(&y.url, UPLOAD_STORAGE).await, vec![uuid(3)]);
    let newcomer = signed(&key(), UPLOAD_STORAGE, &uuid(4), 1);
    assert_eq!(announce(&y.url, &newcomer).await.0, 200);
    watch_until("the reader learns y's newcomer", &mut upload, &[uuid(4)]).await;
    assert_eq!(peer_uuids(&reader, UPLOAD_STORAGE), vec![uuid(4)]);
    assert_eq!(reader.connected_introducers(), 2);
    for c in [&a, &reader] {
        c.shutdown().await;
    }
    x.stop().await;
    y.stop().await;
}

#[tokio::test]
async fn flush_waits_until_every_introducer_has_the_publication() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(&dir.path().join("intro")).await;
    let url = intro.url.clone();
    let a = client(&[&url], &dir.path().join("a")).await;
    a.publish(&node(1), &BOTH).await.unwrap();
    assert!(
        a.flush(std::time::Duration::from_secs(10)).await,
        "published"
    );
    a.publish(&node(1), &[DOWNLOAD_STORAGE]).await.unwrap();
    assert!(
        a.flush(std::time::Duration::from_secs(10)).await,
        "withdrawn"
    );
    // Right after flush returns, the introducer already has the withdrawal.
    assert!(listed(&url, UPLOAD_STORAGE).await.is_empty());
    assert_eq!(listed(&url, DOWNLOAD_STORAGE).await, vec![uuid(1)]);
    // With an introducer that is down, flush gives up in time and says so.
    let dead = format!("http://{}", free_addr().await);
    let b = client(&[&url, &dead], &dir.path().join("b")).await;
    b.publish(&node(2), &BOTH).await.unwrap();
    let started = std::time::Instant::now();
    assert!(!b.flush(std::time::Duration::from_millis(500)).await);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
