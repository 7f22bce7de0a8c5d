//! Bad signatures are ignored on both sides: the introducer refuses them,
//! and a client drops any that an introducer (here a fake one) hands it.

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;
use keep_http::ServeOptions;
use keep_http::body::json;
use keep_introducer::client::IntroducerClient;
use keep_introducer::{ClusterKey, UPLOAD_STORAGE};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_publisher_with_the_wrong_key_is_never_seen() {
    let dir = tempfile::tempdir().unwrap();
    let intro = TestIntroducer::start(&dir.path().join("intro")).await;
    let mut rogue_config = client_config(&[&intro.url], &dir.path().join("rogue"));
    rogue_config.cluster_key = ClusterKey::new("not the cluster key").unwrap();
    let rogue = IntroducerClient::start(rogue_config, &keep_worker::Workers::new())
        .await
        .unwrap();
    rogue.publish(&node(6), &[UPLOAD_STORAGE]).await.unwrap();
    let honest = client(&[&intro.url], &dir.path().join("honest")).await;
    honest.subscribe_to(UPLOAD_STORAGE);
    honest.publish(&node(1), &[UPLOAD_STORAGE]).await.unwrap();

    until("the rogue's attempts are counted", || async {
        let (_, _, m) = http(http::Method::GET, &format!("{}/metrics", intro.url), "").await;
        m.lines().any(|l| {
            l.starts_with(r#"introducer_announcements_received_total{outcome="bad_signature"}"#)
                && !l.ends_with(" 0")
        })
    })
    .await;
    until("the honest node is listed", || async {
        listed(&intro.url, UPLOAD_STORAGE).await == vec![uuid(1)]
    })
    .await;
    assert_eq!(peer_uuids(&honest, UPLOAD_STORAGE), vec![uuid(1)]);
    rogue.shutdown().await;
    honest.shutdown().await;
    intro.stop().await;
}

/// A fake introducer serves one good and two forged announcements; the
/// client keeps only the good one.
#[tokio::test]
async fn a_client_drops_badly_signed_announcements() {
    let dir = tempfile::tempdir().unwrap();
    let good = signed(&key(), UPLOAD_STORAGE, &uuid(1), 1);
    let forged = signed(
        &ClusterKey::new("evil").unwrap(),
        UPLOAD_STORAGE,
        &uuid(2),
        1,
    );
    let mut tampered = signed(&key(), UPLOAD_STORAGE, &uuid(3), 1);
    tampered.announcement.url = "http://attacker:1".into();
    let body = serde_json::to_vec(&[good, forged, tampered]).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let fake = tokio::spawn(keep_http::serve(
        listener,
        move |_req| {
            let body = body.clone();
            async move { json(StatusCode::OK, body) }
        },
        stop.clone().cancelled_owned(),
        ServeOptions {
            shutdown_grace: Duration::from_secs(2),
            ..ServeOptions::default()
        },
    ));

    let c = client(&[&url], &dir.path().join("c")).await;
    let mut rx = c.subscribe_to(UPLOAD_STORAGE);
    tokio::time::timeout(DEADLINE, rx.wait_for(|peers| !peers.is_empty()))
        .await
        .unwrap()
        .unwrap();
    // Let the client read the table a few more times: still only the good one.
    until("the client polled the fake introducer", || async {
        c.connected_introducers() == 1
    })
    .await;
    assert_eq!(peer_uuids(&c, UPLOAD_STORAGE), vec![uuid(1)]);
    c.shutdown().await;
    stop.cancel();
    fake.await.unwrap();
}
