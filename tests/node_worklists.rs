//! Pull and trash lists between two real nodes.

use std::io::{Read, Write};
use std::time::Duration;

use keep_tests::{
    Client, Keepstore, NodeOptions, files_in_block_dirs, md5_hex, random_bytes, wait_for,
};

const ROOT: &str = "worklists-root-token";

/// A node sharing the cluster's signing key and admin token.
fn node(dir: &std::path::Path, extra: &[&str]) -> Keepstore {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("key"), "cluster-signing-key").unwrap();
    std::fs::write(dir.join("root"), ROOT).unwrap();
    let mut args: Vec<String> = [
        "--blob-signing-key-file",
        "key",
        "--system-root-token-file",
        "root",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    Keepstore::start(
        dir,
        NodeOptions {
            args,
            ..Default::default()
        },
    )
}

fn has(admin: &Client, hex: &str) -> bool {
    admin.get(&format!("/index/{hex}")).text().contains(hex)
}

fn pull_list(entries: &[(String, Vec<String>)]) -> Vec<u8> {
    let list: Vec<serde_json::Value> = entries
        .iter()
        .map(|(loc, servers)| serde_json::json!({"locator": loc, "servers": servers, "mount_uuid": ""}))
        .collect();
    serde_json::to_vec(&list).unwrap()
}

/// A server that answers every GET with the right length of wrong bytes.
fn lying_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let size: usize = req
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.split('+').nth(1))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.write_all(&vec![b'x'; size]);
        }
    });
    format!("http://{addr}")
}

/// An address where nothing listens.
fn dead_server() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

#[test]
fn a_pull_list_fills_the_second_node_through_dead_and_lying_servers() {
    let tmp = tempfile::tempdir().unwrap();
    let a = node(&tmp.path().join("a"), &[]);
    let b = node(&tmp.path().join("b"), &[]);
    let (admin_a, admin_b) = (a.client().with_token(ROOT), b.client().with_token(ROOT));
    let blocks: Vec<Vec<u8>> = (0..6)
        .map(|i| random_bytes([10, 5000, 3 << 20][i % 3], 50 + i as u64))
        .collect();
    for blk in &blocks {
        a.client().put_block(blk);
    }
    let liar = lying_server();
    let entries: Vec<(String, Vec<String>)> = blocks
        .iter()
        .map(|blk| {
            (
                format!("{}+{}", md5_hex(blk), blk.len()),
                vec![dead_server(), liar.clone(), a.url.clone()],
            )
        })
        .collect();
    let r = admin_b.put("/pull", &pull_list(&entries));
    assert_eq!(
        (r.status, r.text()),
        (200, "Received 6 pull requests".to_owned())
    );
    for blk in &blocks {
        let hex = md5_hex(blk);
        wait_for("the pulled block", 30, || has(&admin_b, &hex).then_some(()));
        let signed = b.client().with_token("reader").put_block(blk); // dedup: only a touch
        assert!(
            b.client()
                .with_token("reader")
                .get(&format!("/{signed}"))
                .body
                == *blk
        );
    }
    let metrics = admin_b.get("/metrics").text();
    assert!(
        metrics.contains("keepstore_pulls_total{outcome=\"ok\"} 6"),
        "{metrics}"
    );
    // Nothing of the liar's bytes was stored.
    for name in files_in_block_dirs(&b.volumes[0])
        .iter()
        .map(|n| n.trim_end_matches(".b3"))
    {
        assert!(
            blocks.iter().any(|blk| md5_hex(blk) == name),
            "unexpected file {name}"
        );
    }
    drop(admin_a);
}

#[test]
fn a_pull_from_only_lying_servers_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let b = node(tmp.path(), &[]);
    let admin = b.client().with_token(ROOT);
    let blk = random_bytes(2 << 20, 60);
    let entries = vec![(
        format!("{}+{}", md5_hex(&blk), blk.len()),
        vec![lying_server(), dead_server()],
    )];
    assert_eq!(admin.put("/pull", &pull_list(&entries)).status, 200);
    wait_for("the pull to fail", 30, || {
        admin
            .get("/metrics")
            .text()
            .contains("keepstore_pulls_total{outcome=\"failed\"} 1")
            .then_some(())
    });
    assert!(
        files_in_block_dirs(&b.volumes[0]).is_empty(),
        "{:?}",
        files_in_block_dirs(&b.volumes[0])
    );
}

#[test]
fn malformed_lists_are_refused_and_leave_the_current_list() {
    let tmp = tempfile::tempdir().unwrap();
    let b = node(tmp.path(), &[]);
    let admin = b.client().with_token(ROOT);
    let hex = md5_hex(b"foo");
    for (route, body) in [
        ("/pull", "not json".to_owned()),
        (
            "/pull",
            format!(r#"[{{"locator":"{hex}","servers":["http://x"]}}]"#),
        ),
        (
            "/pull",
            format!(r#"[{{"locator":"{hex}+3","servers":"http://x"}}]"#),
        ),
        (
            "/pull",
            format!(r#"[{{"locator":"{hex}+3","servers":[]}}]"#),
        ),
        (
            "/trash",
            format!(r#"[{{"locator":"{hex}+3","block_mtime":"yesterday"}}]"#),
        ),
        (
            "/trash",
            format!(r#"[{{"locator":"{hex}","block_mtime":1}}]"#),
        ),
        ("/trash", r#"{"locator":"x"}"#.to_owned()),
    ] {
        let r = admin.put(route, body.as_bytes());
        assert_eq!(r.status, 400, "{route} {body}: {}", r.text());
    }
    assert_eq!(b.client().put("/trash", b"[]").status, 401);
    assert_eq!(
        b.client().with_token("wrong").put("/pull", b"[]").status,
        403
    );
}

#[test]
fn work_lists_over_the_limit_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("root"), ROOT).unwrap();
    let b = Keepstore::start(
        tmp.path(),
        NodeOptions {
            config: Some("max_work_list_items = 2\nsystem_root_token_file = \"root\"\n".into()),
            volumes: vec![tmp.path().join("v")],
            ..Default::default()
        },
    );
    let admin = b.client().with_token(ROOT);
    let entry =
        |i: u8| serde_json::json!({"locator": format!("{}+1", md5_hex(&[i])), "block_mtime": 1});
    let three = serde_json::to_vec(&vec![entry(1), entry(2), entry(3)]).unwrap();
    assert_eq!(admin.put("/trash", &three).status, 400);
    let two = serde_json::to_vec(&vec![entry(1), entry(2)]).unwrap();
    assert_eq!(admin.put("/trash", &two).status, 200);
}

#[test]
fn trash_honours_the_mtime_guard_untrash_and_empty_trash() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("key"), "cluster-signing-key").unwrap();
    std::fs::write(tmp.path().join("root"), ROOT).unwrap();
    // A short signing TTL and trash lifetime, and a fast empty-trash loop.
    let config = "blob_signing_key_file = \"key\"\nsystem_root_token_file = \"root\"\nblob_signing_ttl = \"1s\"\ntrash_lifetime = \"3s\"\ntrash_check_interval = \"200ms\"\n";
    let n = Keepstore::start(
        tmp.path(),
        NodeOptions {
            config: Some(config.into()),
            volumes: vec![tmp.path().join("vol0")],
            ..Default::default()
        },
    );
    let admin = n.client().with_token(ROOT);
    let keep = random_bytes(100, 70);
    let gone = random_bytes(200, 71);
    for blk in [&keep, &gone] {
        admin.put_block(blk);
    }
    let mtime_of = |blk: &[u8]| -> i64 {
        let text = admin.get(&format!("/index/{}", md5_hex(blk))).text();
        text.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let (keep_mtime, gone_mtime) = (mtime_of(&keep), mtime_of(&gone));
    // Younger than the signing TTL: skipped whatever the mtime.
    let list = |entries: &[(&[u8], i64)]| {
        let v: Vec<serde_json::Value> = entries
            .iter()
            .map(|(blk, m)| serde_json::json!({"locator": format!("{}+{}", md5_hex(blk), blk.len()), "block_mtime": m, "mount_uuid": ""}))
            .collect();
        serde_json::to_vec(&v).unwrap()
    };
    assert_eq!(
        admin.put("/trash", &list(&[(&gone, gone_mtime)])).status,
        200
    );
    wait_for("the young entry to be skipped", 10, || {
        admin
            .get("/metrics")
            .text()
            .contains("keepstore_trashes_total{outcome=\"too_young\"} 1")
            .then_some(())
    });
    assert!(has(&admin, &md5_hex(&gone)));
    std::thread::sleep(Duration::from_millis(1100));
    // A wrong mtime (the block was written again since the list was made): kept.
    assert_eq!(
        admin
            .put(
                "/trash",
                &list(&[(&keep, keep_mtime - 1), (&gone, gone_mtime)])
            )
            .status,
        200
    );
    wait_for("the trash list to be done", 10, || {
        (!has(&admin, &md5_hex(&gone))).then_some(())
    });
    wait_for("the mtime guard outcome", 10, || {
        admin
            .get("/metrics")
            .text()
            .contains("keepstore_trashes_total{outcome=\"mtime_mismatch\"} 1")
            .then_some(())
    });
    assert!(
        has(&admin, &md5_hex(&keep)),
        "the mtime guard kept the block"
    );
    // Untrash brings it back; trashed again, it is deleted after the lifetime.
    assert_eq!(
        admin
            .call(
                "PUT",
                &format!("/untrash/{}+200", md5_hex(&gone)),
                None,
                &[]
            )
            .status,
        200
    );
    assert!(has(&admin, &md5_hex(&gone)));
    let gone_mtime = mtime_of(&gone);
    assert_eq!(
        admin.put("/trash", &list(&[(&gone, gone_mtime)])).status,
        200
    );
    wait_for("trashed again", 10, || {
        (!has(&admin, &md5_hex(&gone))).then_some(())
    });
    let trashed = |vol: &std::path::Path| {
        files_in_block_dirs(vol)
            .iter()
            .any(|f| f.contains(".trash."))
    };
    assert!(trashed(&n.volumes[0]), "a trashed copy exists");
    wait_for("empty trash after the lifetime", 20, || {
        (!trashed(&tmp.path().join("vol0"))).then_some(())
    });
    assert_eq!(
        admin
            .call(
                "PUT",
                &format!("/untrash/{}+200", md5_hex(&gone)),
                None,
                &[]
            )
            .status,
        404
    );
    assert!(has(&admin, &md5_hex(&keep)), "live blocks stay");
}
