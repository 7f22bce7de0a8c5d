//! The introducer's routes over real HTTP: Tahoe's table rules, signatures,
//! long-polls, persistence, metrics and health.

mod common;

use std::time::{Duration, Instant};

use common::*;
use http::Method;
use keep_introducer::{ClusterKey, DOWNLOAD_STORAGE, SignedAnnouncement, UPLOAD_STORAGE};

#[tokio::test]
async fn duplicate_replay_and_newer_seqnum() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(dir.path()).await;
    let base = intro.url.clone();
    let first = signed(&key(), UPLOAD_STORAGE, &uuid(1), 5);

    assert_eq!(announce(&base, &first).await, (200, "accepted".into()));
    assert_eq!(announce(&base, &first).await, (200, "duplicate".into()));
    // The same seqnum signed again (new nonce), and an older one: replays.
    for seqnum in [5, 4] {
        let replay = signed(&key(), UPLOAD_STORAGE, &uuid(1), seqnum);
        assert_eq!(announce(&base, &replay).await, (409, "replay".into()));
    }
    let url = format!("{base}/v1/announcements?service={UPLOAD_STORAGE}");
    let (_, _, text) = http(Method::GET, &url, "").await;
    let list: Vec<SignedAnnouncement> = serde_json::from_str(&text).unwrap();
    assert_eq!(list, vec![first]);

    let newer = signed(&key(), UPLOAD_STORAGE, &uuid(1), 6);
    assert_eq!(announce(&base, &newer).await, (200, "accepted".into()));
    let (status, _, text) = http(Method::GET, &url, "").await;
    assert_eq!(status, 200);
    // The contract's shape: an array of objects with service, uuid, url, seqnum.
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entries = json.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["service"], UPLOAD_STORAGE);
    assert_eq!(entries[0]["uuid"], uuid(1));
    assert_eq!(entries[0]["url"], newer.announcement.url);
    assert_eq!(entries[0]["seqnum"], 6);

    let (_, _, metrics) = http(Method::GET, &format!("{base}/metrics"), "").await;
    for line in [
        r#"introducer_announcements_received_total{outcome="accepted"} 2"#,
        r#"introducer_announcements_received_total{outcome="duplicate"} 1"#,
        r#"introducer_announcements_received_total{outcome="replay"} 2"#,
        r#"introducer_announcements{service="upload_storage"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    intro.stop().await;
}

#[tokio::test]
async fn bad_and_missing_signatures_are_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(dir.path()).await;
    let base = intro.url.clone();

    let wrong_key = ClusterKey::new("some other cluster").unwrap();
    let forged = signed(&wrong_key, UPLOAD_STORAGE, &uuid(1), 1);
    assert_eq!(
        announce(&base, &forged).await,
        (403, "bad_signature".into())
    );
    let mut unsigned = signed(&key(), UPLOAD_STORAGE, &uuid(2), 1);
    unsigned.signature.clear();
    assert_eq!(
        announce(&base, &unsigned).await,
        (403, "bad_signature".into())
    );
    let mut tampered = signed(&key(), UPLOAD_STORAGE, &uuid(3), 1);
    tampered.announcement.url = "http://attacker:1".into();
    assert_eq!(
        announce(&base, &tampered).await,
        (403, "bad_signature".into())
    );

    let (status, _, _) = http(Method::POST, &format!("{base}/v1/announce"), "{nope").await;
    assert_eq!(status, 400);
    let huge = "x".repeat(66 * 1024);
    let (status, _, _) = http(Method::POST, &format!("{base}/v1/announce"), &huge).await;
    assert_eq!(status, 413);
    assert!(listed(&base, UPLOAD_STORAGE).await.is_empty());

    let (_, _, metrics) = http(Method::GET, &format!("{base}/metrics"), "").await;
    assert!(
        metrics.contains(r#"introducer_announcements_received_total{outcome="bad_signature"} 3"#),
        "{metrics}"
    );
    intro.stop().await;
}

#[tokio::test]
async fn health_metrics_and_unknown_routes() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(dir.path()).await;
    let base = intro.url.clone();
    let (status, _, body) = http(Method::GET, &format!("{base}/_health/ping"), "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"health":"OK"}"#));
    let (status, _, body) = http(Method::GET, &format!("{base}/metrics"), "").await;
    assert_eq!(status, 200);
    assert!(body.contains("introducer_subscribers 0"), "{body}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    assert_eq!(http(Method::GET, &format!("{base}/nope"), "").await.0, 404);
    assert_eq!(
        http(Method::DELETE, &format!("{base}/v1/announce"), "")
            .await
            .0,
        405
    );
    let bad = format!("{base}/v1/announcements?service=no%20spaces");
    assert_eq!(http(Method::GET, &bad, "").await.0, 400);
    intro.stop().await;
}

#[tokio::test]
async fn long_poll_answers_on_change_on_timeout_and_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(dir.path()).await;
    let base = intro.url.clone();
    let list_url = format!("{base}/v1/announcements?service={UPLOAD_STORAGE}");
    let (_, token, _) = http(Method::GET, &list_url, "").await;
    let token = token.unwrap();

    // A change in another service does not answer an upload subscriber...
    let poll_url = format!("{list_url}&since={token}&wait=30");
    let started = Instant::now();
    let poll = tokio::spawn(async move { http(Method::GET, &poll_url, "").await });
    until("the subscriber waits", || async {
        let (_, _, m) = http(Method::GET, &format!("{base}/metrics"), "").await;
        m.contains("introducer_subscribers 1")
    })
    .await;
    let other = signed(&key(), DOWNLOAD_STORAGE, &uuid(9), 1);
    assert_eq!(announce(&base, &other).await.0, 200);
    // ...but an upload announcement does, at once.
    let ann = signed(&key(), UPLOAD_STORAGE, &uuid(1), 1);
    assert_eq!(announce(&base, &ann).await.0, 200);
    let (status, new_token, body) = poll.await.unwrap();
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(20));
    let new_token = new_token.unwrap();
    assert_ne!(new_token, token);
    let list: Vec<SignedAnnouncement> = serde_json::from_str(&body).unwrap();
    assert_eq!(list, vec![ann]);

    // Nothing changes: the poll answers after `wait` with the same token.
    let started = Instant::now();
    let (_, same, _) = http(
        Method::GET,
        &format!("{list_url}&since={new_token}&wait=1"),
        "",
    )
    .await;
    assert_eq!(same.as_deref(), Some(new_token.as_str()));
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A waiting subscriber is answered when the server shuts down.
    let poll_url = format!("{list_url}&since={new_token}&wait=60");
    let poll = tokio::spawn(async move { http(Method::GET, &poll_url, "").await });
    let metrics_url = format!("{}/metrics", intro.url);
    until("the subscriber waits", || async {
        let (_, _, m) = http(Method::GET, &metrics_url, "").await;
        m.contains("introducer_subscribers 1")
    })
    .await;
    let started = Instant::now();
    intro.stop().await;
    assert_eq!(poll.await.unwrap().0, 200);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "shutdown did not wait for the poll"
    );
}

#[tokio::test]
async fn table_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(dir.path()).await;
    let base = intro.url.clone();
    for i in 0..3 {
        let ann = signed(&key(), UPLOAD_STORAGE, &uuid(i), 1);
        assert_eq!(announce(&base, &ann).await.0, 200);
    }
    let url = format!("{base}/v1/announcements");
    let (_, token, before) = http(Method::GET, &url, "").await;
    let addr = intro.addr;
    intro.stop().await;

    let intro = TestIntroducer::start_at(addr, dir.path()).await;
    let (_, token_after, after) = http(Method::GET, &url, "").await;
    assert_eq!(after, before);
    assert_eq!(token_after, token, "same state, same version token");
    // The stored seqnums still refuse replays after the restart.
    let replay = signed(&key(), UPLOAD_STORAGE, &uuid(0), 1);
    assert_eq!(announce(&base, &replay).await, (409, "replay".into()));
    intro.stop().await;
}

/// A new announcement of a url no node can reach yet (`https://`) is
/// refused as invalid, and nothing of it is stored.
#[tokio::test]
async fn an_https_announcement_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(dir.path()).await;
    let base = intro.url.clone();
    let mut ann = signed(&key(), UPLOAD_STORAGE, &uuid(1), 1).announcement;
    ann.url = "https://keep1.example:25107".into();
    let ann = ann.sign(&key());
    assert_eq!(announce(&base, &ann).await, (400, "invalid".into()));
    let url = format!("{base}/v1/announcements?service={UPLOAD_STORAGE}");
    let (_, _, text) = http(Method::GET, &url, "").await;
    assert_eq!(text.trim(), "[]");
    intro.stop().await;
}
