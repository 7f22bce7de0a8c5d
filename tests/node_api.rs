//! The node's HTTP API, end to end: the real binary on a loopback port.

use std::os::unix::fs::MetadataExt;

use keep_locator::{BlockHash, Locator, SigningKey};
use keep_tests::{Keepstore, NodeOptions, blocks_on_disk, md5_hex, random_bytes, wait_for};

const KEY: &str = "a-very-secret-signing-key";
const ROOT: &str = "the-admin-token";

/// A node with signing on and an admin token.
fn signed_node(dir: &std::path::Path, extra: &[&str]) -> Keepstore {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("key"), format!("{KEY}\n")).unwrap();
    std::fs::write(dir.join("root"), ROOT).unwrap();
    let mut args = vec![
        "--blob-signing-key-file".to_owned(),
        "key".to_owned(),
        "--system-root-token-file".to_owned(),
        "root".to_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Keepstore::start(
        dir,
        NodeOptions {
            args,
            ..Default::default()
        },
    )
}

#[test]
fn put_then_get_round_trips_with_signatures() {
    let tmp = tempfile::tempdir().unwrap();
    let node = signed_node(tmp.path(), &[]);
    let client = node.client().with_token("user-token");
    for (i, size) in [
        0usize,
        1,
        4096,
        (1 << 20) - 1,
        1 << 20,
        (1 << 20) + 1,
        5 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let data = random_bytes(size, i as u64);
        let r = client.put(&format!("/{}", md5_hex(&data)), &data);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-keep-replicas-stored"), Some("1"));
        assert_eq!(
            r.header("x-keep-storage-classes-confirmed"),
            Some("default=1")
        );
        assert!(r.body.ends_with(b"\n"), "locator ends with a newline");
        let loc: Locator = r.text().parse().unwrap();
        assert_eq!(loc.hash.to_hex(), md5_hex(&data));
        assert_eq!(loc.size, Some(size as u64));
        // The signature is the one Arvados would compute with this key.
        let key = SigningKey::new(KEY);
        key.verify(
            &loc,
            "user-token",
            std::time::Duration::from_secs(336 * 3600),
            now(),
        )
        .unwrap();
        let back = client.get(&format!("/{loc}"));
        assert_eq!(back.status, 200);
        assert_eq!(
            back.header("content-length"),
            Some(size.to_string().as_str())
        );
        assert!(back.body == data, "{size} bytes differ");
        let head = client.call("HEAD", &format!("/{loc}"), None, &[]);
        assert_eq!(
            (head.status, head.header("content-length")),
            (200, Some(size.to_string().as_str()))
        );
    }
    // Bytes on disk: Arvados's layout, content matching the names. (A
    // small block's file is placed moments after its answer.)
    let on_disk = wait_for("7 block files", 10, || {
        Some(blocks_on_disk(&node.volumes[0])).filter(|b| b.len() == 7)
    });
    assert!(on_disk.iter().all(|(name, md5)| name == md5));
}

#[test]
fn unsigned_put_answers_bare_locator_and_signing_off_needs_no_token() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Keepstore::start(tmp.path(), NodeOptions::default());
    let anon = node.client();
    let loc = anon.put_block(b"foo");
    assert_eq!(loc, "acbd18db4cc2f85cedef654fccc4a4d8+3");
    assert_eq!(anon.get("/acbd18db4cc2f85cedef654fccc4a4d8+3").body, b"foo");
    assert_eq!(
        anon.get("/acbd18db4cc2f85cedef654fccc4a4d8+3+Zhint").body,
        b"foo"
    );
}

#[test]
fn signatures_from_an_arvados_cluster_verify() {
    // The first vector of shared/vectors (Arvados's own test constants).
    let vectors: serde_json::Value = serde_json::from_str(include_str!(
        "../crates/keep-locator/tests/data/signatures.json"
    ))
    .unwrap();
    let v = &vectors["vectors"][0];
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("key"),
        v["blob_signing_key"].as_str().unwrap(),
    )
    .unwrap();
    let node = Keepstore::start(
        tmp.path(),
        NodeOptions {
            args: vec![
                "--blob-signing-key-file".into(),
                "key".into(),
                "--blob-signing-ttl".into(),
                "1209600s".into(),
            ],
            ..Default::default()
        },
    );
    let token = v["api_token"].as_str().unwrap();
    node.client().with_token(token).put_block(b"foo");
    let signed = v["signed_locator"].as_str().unwrap();
    let r = node.client().with_token(token).get(&format!("/{signed}"));
    assert_eq!((r.status, r.body.as_slice()), (200, &b"foo"[..]));
    // The same token as Arvados's web clients send it: in a cookie, or in
    // the query string.
    use base64::Engine as _;
    let cookie = format!(
        "arvados_api_token={}",
        base64::engine::general_purpose::URL_SAFE.encode(token)
    );
    let anon = node.client();
    let r = anon.call("GET", &format!("/{signed}"), None, &[("Cookie", &cookie)]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"foo"[..]));
    let r = anon.get(&format!("/{signed}?api_token={token}"));
    assert_eq!((r.status, r.body.as_slice()), (200, &b"foo"[..]));
    assert_eq!(anon.get(&format!("/{signed}")).status, 401, "no token");
    let r = node
        .client()
        .with_token("another-token")
        .get(&format!("/{signed}"));
    assert_eq!(r.status, 400, "a signature for another token is invalid");
}

#[test]
fn rewriting_a_stored_block_only_refreshes_its_mtime() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Keepstore::start(tmp.path(), NodeOptions::default());
    // A small block (through the volume's journal) and a large one.
    for (size, seed) in [(4096, 8), (3 << 20, 9)] {
        let data = random_bytes(size, seed);
        let hex = md5_hex(&data);
        node.client().put_block(&data);
        let path = node.volumes[0].join(&hex[..3]).join(&hex);
        let before = wait_for("the block's file", 10, || std::fs::metadata(&path).ok());
        std::thread::sleep(std::time::Duration::from_millis(20));
        node.client().put_block(&data);
        // A small block's touch comes with its placing, moments after the
        // answer (a trash waits for it).
        let after = wait_for("a refreshed mtime", 10, || {
            std::fs::metadata(&path)
                .ok()
                .filter(|m| m.modified().unwrap() > before.modified().unwrap())
        });
        assert_eq!(
            before.ino(),
            after.ino(),
            "{size}: the file was not rewritten"
        );
    }
}

#[test]
fn a_corrupt_stored_copy_is_replaced_by_a_verified_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Keepstore::start(tmp.path(), NodeOptions::default());
    for (size, seed) in [(4096, 11), (2 << 20, 10)] {
        let data = random_bytes(size, seed);
        let hex = md5_hex(&data);
        node.client().put_block(&data);
        let path = node.volumes[0].join(&hex[..3]).join(&hex);
        wait_for("the block's file", 10, || {
            std::fs::read(&path).ok().filter(|d| *d == data)
        });
        let mut bad = data.clone();
        bad[size / 2 + 5] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        node.client().put_block(&data);
        wait_for("the bad copy rewritten", 10, || {
            std::fs::read(&path).ok().filter(|d| *d == data)
        });
    }
}

#[test]
fn corrupt_blocks_are_never_served_and_are_moved_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let vols = vec![tmp.path().join("v0"), tmp.path().join("v1")];
    let node = Keepstore::start(
        tmp.path(),
        NodeOptions {
            volumes: vols.clone(),
            ..Default::default()
        },
    );
    let client = node.client();
    // A small block: detected before answering; the good copy on the
    // other volume is served.
    let small = random_bytes(1000, 11);
    let loc = client.put_block(&small);
    let hex = md5_hex(&small);
    let holder = wait_for("the block's file", 10, || {
        vols.iter()
            .find(|v| v.join(&hex[..3]).join(&hex).exists())
            .cloned()
    });
    let other = vols.iter().find(|v| **v != holder).unwrap().clone();
    std::fs::create_dir_all(other.join(&hex[..3])).unwrap();
    std::fs::copy(
        holder.join(&hex[..3]).join(&hex),
        other.join(&hex[..3]).join(&hex),
    )
    .unwrap();
    let mut bad = small.clone();
    bad[0] ^= 1;
    std::fs::write(holder.join(&hex[..3]).join(&hex), &bad).unwrap();
    let mut served = Vec::new();
    for _ in 0..2 {
        let r = client.get(&format!("/{loc}"));
        assert_eq!(r.status, 200);
        served.push(r.body == small);
    }
    assert!(served.iter().all(|ok| *ok), "only the good copy is served");
    assert!(
        !holder.join(&hex[..3]).join(&hex).exists(),
        "the corrupt copy was moved aside"
    );
    // A large block with no good copy: the answer is cut short.
    let big = random_bytes(3 << 20, 12);
    let loc = client.put_block(&big);
    let hex = md5_hex(&big);
    let path = vols
        .iter()
        .map(|v| v.join(&hex[..3]).join(&hex))
        .find(|p| p.exists())
        .unwrap();
    let mut bad = big.clone();
    bad[(2 << 20) + 7] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let raw = keep_tests::http::raw_bytes(
        &node.url,
        format!("GET /{loc} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        false,
    );
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "headers went out before the end was read"
    );
    assert!(
        raw.len() < big.len(),
        "the body was aborted: {} bytes",
        raw.len()
    );
    wait_for("corrupt copy moved aside", 10, || {
        (!path.exists()).then_some(())
    });
    let r = client.get(&format!("/{loc}"));
    assert_eq!(r.status, 404);
    let metrics = client.get("/metrics").text();
    let corrupt: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("keepstore_corrupt_blocks_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(corrupt, 2, "{metrics}");
}

#[test]
fn admin_routes_index_mounts_delete_touch_untrash() {
    let tmp = tempfile::tempdir().unwrap();
    let node = signed_node(tmp.path(), &["--blob-signing-ttl", "1s"]);
    let admin = node.client().with_token(ROOT);
    let blocks: Vec<Vec<u8>> = (0..5)
        .map(|i| random_bytes(100 + i, 20 + i as u64))
        .collect();
    for b in &blocks {
        admin.put_block(b);
    }
    let index = admin.get("/index");
    assert_eq!(index.status, 200);
    let text = String::from_utf8(index.body.clone()).unwrap();
    assert!(text.ends_with("\n\n"), "index ends with an empty line");
    let lines: Vec<&str> = text.trim_end().lines().collect();
    assert_eq!(lines.len(), 5);
    for b in &blocks {
        let want = format!("{}+{} ", md5_hex(b), b.len());
        let line = lines
            .iter()
            .find(|l| l.starts_with(&want))
            .expect("block listed");
        let mtime: i64 = line.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(mtime > 1_600_000_000_000_000_000, "mtime in ns: {mtime}");
    }
    let hex = md5_hex(&blocks[0]);
    let prefixed = admin.get(&format!("/index/{}", &hex[..2])).text();
    assert!(prefixed.lines().all(|l| l.starts_with(&hex[..2])) && prefixed.contains(&hex));

    let mounts: serde_json::Value = serde_json::from_slice(&admin.get("/mounts").body).unwrap();
    let uuid = mounts[0]["uuid"].as_str().unwrap().to_owned();
    assert!(uuid.starts_with("zzzzz-nyw5e-"));
    assert_eq!(mounts[0]["allow_write"], true);
    assert_eq!(mounts[0]["replication"], 1);
    assert_eq!(mounts[0]["storage_classes"]["default"], true);
    assert!(mounts[0]["device_id"].as_str().unwrap().contains("vol0"));
    let mb = admin.get(&format!("/mounts/{uuid}/blocks?prefix={}", &hex[..3]));
    assert!(mb.text().contains(&hex));
    assert_eq!(
        admin
            .get("/mounts/zzzzz-nyw5e-000000000000000/blocks")
            .status,
        404
    );

    // DELETE trashes copies older than the signing TTL (1s here).
    let path = format!("/{hex}+{}", blocks[0].len());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let del = admin.call("DELETE", &path, None, &[]);
    assert_eq!(del.status, 200, "{}", del.text());
    let counts: serde_json::Value = serde_json::from_slice(&del.body).unwrap();
    assert_eq!(counts["copies_deleted"], 1);
    assert_eq!(
        admin
            .call("HEAD", &format!("/{hex}+{}", blocks[0].len()), None, &[])
            .status,
        401,
        "signed GET needs a signature"
    );
    assert!(
        !admin.get("/index").text().contains(&hex),
        "trashed blocks leave the index"
    );
    assert_eq!(
        admin
            .call(
                "PUT",
                &format!("/untrash/{hex}+{}", blocks[0].len()),
                None,
                &[]
            )
            .status,
        200
    );
    assert!(admin.get("/index").text().contains(&hex), "untrashed");
    assert_eq!(
        admin
            .call(
                "PUT",
                &format!("/untrash/{}+1", md5_hex(b"never")),
                None,
                &[]
            )
            .status,
        404
    );
    let touch = |path: &str| {
        let req = format!(
            "TOUCH {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ROOT}\r\nConnection: close\r\n\r\n"
        );
        keep_tests::http::raw(&node.url, req.as_bytes(), false)
    };
    assert!(touch(&path).starts_with("HTTP/1.1 200"));
    assert!(touch(&format!("/{}+1", md5_hex(b"never"))).starts_with("HTTP/1.1 404"));
}

#[test]
fn health_metrics_and_request_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Keepstore::start(tmp.path(), NodeOptions::default());
    let c = node.client();
    let h = c.get("/_health/ping");
    assert_eq!((h.status, h.text().as_str()), (200, r#"{"health":"OK"}"#));
    let r = c.call(
        "GET",
        "/_health/ping",
        None,
        &[("X-Request-Id", "req-mine123")],
    );
    assert_eq!(r.header("x-request-id"), Some("req-mine123"));
    assert!(
        c.get("/_health/ping")
            .header("x-request-id")
            .unwrap()
            .starts_with("req-")
    );
    c.put_block(&random_bytes(5000, 30));
    let m = c.get("/metrics").text();
    assert!(
        m.contains("keepstore_requests_total{method=\"PUT\",route=\"put_block\",status=\"200\"} 1"),
        "{m}"
    );
    assert!(m.contains("keepstore_request_body_bytes_total 5000"), "{m}");
    assert!(m.contains("keepstore_requests_in_flight"), "{m}");
}

#[test]
fn writes_spread_over_volumes_in_rendezvous_order() {
    let tmp = tempfile::tempdir().unwrap();
    let vols: Vec<_> = (0..3).map(|i| tmp.path().join(format!("v{i}"))).collect();
    let node = Keepstore::start(
        tmp.path(),
        NodeOptions {
            volumes: vols.clone(),
            ..Default::default()
        },
    );
    let mounts: serde_json::Value =
        serde_json::from_slice(&node.client().get("/mounts").body).unwrap();
    let uuids: Vec<String> = (0..3)
        .map(|i| mounts[i]["uuid"].as_str().unwrap().to_owned())
        .collect();
    for i in 0..30 {
        let data = random_bytes(64, 100 + i);
        node.client().put_block(&data);
        let hash = BlockHash::of(&data);
        // The first volume in ascending md5(hash + uuid[-15:]) order holds it.
        let mut order = keep_locator::placement::permuted_order(&hash, &uuids);
        order.reverse();
        let hex = hash.to_hex();
        wait_for(
            &format!("block {i} on the first volume in order"),
            10,
            || {
                vols[order[0]]
                    .join(&hex[..3])
                    .join(&hex)
                    .exists()
                    .then_some(())
            },
        );
    }
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let mut node = Keepstore::start(tmp.path(), NodeOptions::default());
    let data = random_bytes(8 << 20, 40);
    let hex = md5_hex(&data);
    // A slow upload is in flight when SIGTERM arrives: it completes.
    let addr = node.url.trim_start_matches("http://").to_owned();
    let uploader = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "PUT /{hex} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            data.len()
        )
        .unwrap();
        for chunk in data.chunks(1 << 20) {
            s.write_all(chunk).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    wait_for("upload in flight", 10, || {
        let m = node.client().get("/metrics").text();
        m.lines()
            .any(|l| l.starts_with("keepstore_request_body_bytes_total") && !l.ends_with(" 0"))
            .then_some(())
    });
    let status = node.terminate(30);
    assert!(status.success(), "exit status {status:?}");
    let answer = uploader.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn large_blocks_verify_by_chunk_sums_and_fall_back_to_md5() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Keepstore::start(tmp.path(), NodeOptions::default());
    let c = node.client();
    let data = random_bytes((3 << 20) + 5, 77);
    let loc = c.put_block(&data);
    let hex = md5_hex(&data);
    let dir = node.volumes[0].join(&hex[..3]);
    let sidecar = dir.join(format!("{hex}.b3"));
    assert!(
        sidecar.exists(),
        "a checksum sidecar is kept beside a large block"
    );
    assert!(c.get(&format!("/{loc}")).body == data);
    // Without the sidecar (a block Arvados wrote), the MD5 check serves it,
    // and the sidecar is written again.
    let good_sidecar = std::fs::read(&sidecar).unwrap();
    std::fs::remove_file(&sidecar).unwrap();
    assert!(c.get(&format!("/{loc}")).body == data);
    wait_for("the sidecar written again", 10, || {
        (std::fs::read(&sidecar).ok()? == good_sidecar).then_some(())
    });
    // A sidecar that does not match the block: the copy is not served whole
    // and goes aside, sidecar and all.
    let mut bad = keep_volume::ChunkSummer::new(keep_volume::CHUNK_SIZE);
    bad.update(&random_bytes(data.len(), 78));
    let hash = keep_locator::BlockHash::from_hex(&hex).unwrap();
    std::fs::write(&sidecar, bad.finish().encode(&hash)).unwrap();
    let raw = keep_tests::http::raw_bytes(
        &node.url,
        format!("GET /{loc} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        false,
    );
    assert!(raw.len() < data.len(), "the answer was cut short");
    wait_for("the copy moved aside", 10, || {
        (!dir.join(&hex).exists() && !sidecar.exists()).then_some(())
    });
}

/// A small block's file keeps its BLAKE3 sum in an extended attribute,
/// which a GET checks instead of the MD5; a sum that does not match a sound
/// block (the MD5 holds) still serves it and keeps the copy.
#[test]
fn a_small_block_verifies_by_the_sum_on_its_file() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Keepstore::start(tmp.path(), NodeOptions::default());
    let c = node.client();
    let data = random_bytes(4096, 84);
    let loc = c.put_block(&data);
    let hex = md5_hex(&data);
    let path = node.volumes[0].join(&hex[..3]).join(&hex);
    let attr = |p: &std::path::Path| {
        let mut value = [0u8; 64];
        let n = rustix::fs::getxattr(p, "user.keep.b3", &mut value).ok()?;
        Some(value[..n].to_vec())
    };
    let kept = wait_for("the placed file's sum", 10, || attr(&path));
    assert_eq!(kept.len(), 36);
    assert_eq!(&kept[..4], b"KX3\x01");
    assert!(c.get(&format!("/{loc}")).body == data);
    let mut wrong = kept.clone();
    wrong[10] ^= 1;
    rustix::fs::setxattr(
        &path,
        "user.keep.b3",
        &wrong,
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let r = c.get(&format!("/{loc}"));
    assert_eq!(r.status, 200);
    assert!(r.body == data, "the MD5 vouches for the block");
    assert!(path.exists(), "a sound copy stays");
}

/// A block without a sidecar (written by Arvados, or one whose sidecar
/// was lost) gets one when a GET has verified it by MD5, whether it is read
/// whole (one chunk) or streamed; a small block gets none.
#[test]
fn blocks_without_sums_get_them_when_read() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Keepstore::start(tmp.path(), NodeOptions::default());
    let c = node.client();
    for (size, seed) in [(200_000, 81), ((2 << 20) + 3, 82), (100_000, 83)] {
        let data = random_bytes(size, seed);
        let hex = md5_hex(&data);
        let dir = node.volumes[0].join(&hex[..3]);
        // Placed on disk the way Arvados lays blocks out.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&hex), &data).unwrap();
        let sidecar = dir.join(format!("{hex}.b3"));
        assert!(!sidecar.exists());
        let r = c.get(&format!("/{hex}+{size}"));
        assert_eq!(r.status, 200);
        assert!(r.body == data);
        let hash = keep_locator::BlockHash::from_hex(&hex).unwrap();
        if size < 128 << 10 {
            // Past the wait below for the larger blocks: it would be there.
            assert!(!sidecar.exists(), "no sidecar under 128 KiB");
            continue;
        }
        let mut summer = keep_volume::ChunkSummer::new(keep_volume::CHUNK_SIZE);
        summer.update(&data);
        let expected = summer.finish().encode(&hash);
        wait_for("a sidecar for the block read", 10, || {
            (std::fs::read(&sidecar).ok()? == expected).then_some(())
        });
        assert!(c.get(&format!("/{hex}+{size}")).body == data);
    }
}

/// A block of at least 128 KiB and at most one chunk is read whole and
/// checked with its one BLAKE3 sum. A sum that does not match while the
/// MD5 does (a bad sidecar) still serves the block; content that fails
/// both fails the GET and moves the copy aside, sidecar and all.
#[test]
fn a_one_chunk_block_verifies_by_its_sum() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Keepstore::start(tmp.path(), NodeOptions::default());
    let c = node.client();
    let data = random_bytes(300_000, 79);
    let loc = c.put_block(&data);
    let hex = md5_hex(&data);
    let dir = node.volumes[0].join(&hex[..3]);
    let sidecar = dir.join(format!("{hex}.b3"));
    assert!(sidecar.exists(), "a sidecar from 128 KiB up");
    assert!(c.get(&format!("/{loc}")).body == data);
    let good_sidecar = std::fs::read(&sidecar).unwrap();
    // A sealed sidecar for this block with the wrong sums.
    let mut bad = keep_volume::ChunkSummer::new(keep_volume::CHUNK_SIZE);
    bad.update(&random_bytes(data.len(), 80));
    let hash = keep_locator::BlockHash::from_hex(&hex).unwrap();
    std::fs::write(&sidecar, bad.finish().encode(&hash)).unwrap();
    assert!(
        c.get(&format!("/{loc}")).body == data,
        "the MD5 vouches for the block"
    );
    assert!(dir.join(&hex).exists(), "a sound copy stays");
    wait_for("the bad sidecar rewritten", 10, || {
        (std::fs::read(&sidecar).ok()? == good_sidecar).then_some(())
    });
    // A damaged block with its own sidecar: refused and moved aside.
    std::fs::write(&sidecar, &good_sidecar).unwrap();
    let mut damaged = data.clone();
    damaged[1000] ^= 1;
    std::fs::write(dir.join(&hex), &damaged).unwrap();
    let r = c.get(&format!("/{loc}"));
    assert_ne!(r.status, 200, "a copy that fails its sum is not served");
    wait_for("the copy moved aside", 10, || {
        (!dir.join(&hex).exists() && !sidecar.exists()).then_some(())
    });
}

/// `X-Keep-Storage-Classes` chooses among the node's volumes, as Arvados's
/// keepstore does, and the answer confirms the class the block landed in.
#[test]
fn a_put_asking_for_a_storage_class_lands_on_a_volume_of_that_class() {
    let tmp = tempfile::tempdir().unwrap();
    let (hot, cold) = (tmp.path().join("hot"), tmp.path().join("cold"));
    let node = Keepstore::start(
        tmp.path(),
        NodeOptions {
            config: Some(format!(
                "volumes = [{{ path = {:?} }}, {{ path = {:?}, storage_classes = [\"archive\"] }}]\n",
                hot.display().to_string(),
                cold.display().to_string()
            )),
            ..Default::default()
        },
    );
    let c = node.client();
    let put = |data: &[u8], classes: &str| {
        let r = c.call(
            "PUT",
            &format!("/{}", md5_hex(data)),
            Some(data),
            &[("X-Keep-Storage-Classes", classes)],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.header("x-keep-storage-classes-confirmed")
            .unwrap_or_default()
            .to_owned()
    };
    let on = |vol: &std::path::Path, data: &[u8]| {
        let hex = md5_hex(data);
        vol.join(&hex[..3]).join(&hex).exists()
    };
    // Enough blocks that the volumes' order would put some on each.
    for i in 0..8 {
        let data = random_bytes(1000 + i, 300 + i as u64);
        let classes = if i % 2 == 0 { "archive" } else { " , archive," };
        assert_eq!(put(&data, classes), "archive=1");
        wait_for("the block's file", 10, || on(&cold, &data).then_some(()));
        assert!(!on(&hot, &data));
        let data = random_bytes(2000 + i, 400 + i as u64);
        assert_eq!(put(&data, "default"), "default=1");
        wait_for("the block's file", 10, || on(&hot, &data).then_some(()));
        assert!(!on(&cold, &data));
    }
    // A class no volume has: the block is stored where it would be without
    // one, and the answer says where.
    let data = random_bytes(3000, 500);
    let confirmed = put(&data, "nosuch");
    assert!(
        ["default=1", "archive=1"].contains(&confirmed.as_str()),
        "{confirmed}"
    );
}
