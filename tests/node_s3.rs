//! A node on an S3 volume (a real S3-compatible server, moto, on loopback):
//! the Arvados SDK round-trips blocks, and the node rides out the store
//! dying and coming back, in a cluster too.

use keep_tests::{Introducer, Keepstore, NodeOptions, md5_hex, random_bytes, sdk, wait_for};
use keep_volume_s3::testing::{ACCESS_KEY, Moto, SECRET_KEY, create_bucket};

fn bucket(moto: &Moto, name: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(create_bucket(&moto.endpoint(), name));
}

fn s3_node(dir: &std::path::Path, moto: &Moto, with_dir_volume: bool) -> Keepstore {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("key"), "s3-signing-key").unwrap();
    Keepstore::start(
        dir,
        NodeOptions {
            args: ["--blob-signing-key-file", "key"]
                .map(String::from)
                .to_vec(),
            volumes: if with_dir_volume {
                vec![dir.join("disk")]
            } else {
                vec![]
            },
            volume_specs: vec![format!(
                "s3://keep/blocks?endpoint={}&region=us-east-1",
                moto.endpoint()
            )],
            env: vec![
                ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
                ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
            ],
            ..Default::default()
        },
    )
}

#[test]
fn the_sdk_round_trips_blocks_on_an_s3_volume() {
    let moto = Moto::start();
    bucket(&moto, "keep");
    let tmp = tempfile::tempdir().unwrap();
    let node = s3_node(tmp.path(), &moto, false);
    let mut args: Vec<String> = [
        "--proxy",
        &node.url,
        "--token",
        "s3-user",
        "--sizes",
        "0,1,4096,1048577,67108864",
        "--expect-signed",
    ]
    .map(String::from)
    .to_vec();
    args.push("--signing-key-file".into());
    args.push(tmp.path().join("key").display().to_string());
    sdk::check(&args, &[]);
    // Nothing went to a local directory: the blocks are in the bucket.
    assert!(!tmp.path().join("vol0").exists());
}

#[test]
fn a_missing_bucket_is_a_clear_startup_error() {
    let moto = Moto::start();
    let out = std::process::Command::new(keep_tests::bin_path("keepstore"))
        .args(["--listen", "127.0.0.1:0", "--volume"])
        .arg(format!(
            "s3://nosuchbucket?endpoint={}&region=us-east-1",
            moto.endpoint()
        ))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nosuchbucket") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn writes_fail_over_while_the_store_is_down_and_s3_serves_again_after() {
    let mut moto = Moto::start();
    bucket(&moto, "keep");
    let tmp = tempfile::tempdir().unwrap();
    let node = s3_node(tmp.path(), &moto, true);
    let c = node.client().with_token("t");
    let before: Vec<Vec<u8>> = (0..8)
        .map(|i| random_bytes(1000 + i, 80 + i as u64))
        .collect();
    let locs: Vec<String> = before.iter().map(|b| c.put_block(b)).collect();
    moto.kill();
    // While S3 is down, writes land on the directory volume: at most the
    // first one that finds S3 gone is refused (503, and the client retries).
    let during: Vec<Vec<u8>> = (0..8)
        .map(|i| random_bytes(2000 + i, 90 + i as u64))
        .collect();
    let mut refused = 0;
    let mut during_locs = Vec::new();
    for b in &during {
        let path = format!("/{}", md5_hex(b));
        let mut r = c.put(&path, b);
        if r.status == 503 {
            refused += 1;
            r = c.put(&path, b);
        }
        assert_eq!(r.status, 200, "{}", r.text());
        during_locs.push(r.text().trim().to_owned());
    }
    assert!(
        refused <= 1,
        "{refused} writes were refused instead of failing over"
    );
    // Blocks only S3 holds cannot be read now, and that is not a 200.
    let unreadable = locs
        .iter()
        .filter(|l| c.get(&format!("/{l}")).status != 200)
        .count();
    // (A small block's file is placed moments after its answer.)
    let on_disk = keep_tests::wait_for("the disk-held blocks' files", 10, || {
        Some(keep_tests::blocks_on_disk(&tmp.path().join("disk")).len())
            .filter(|n| *n >= 8 + (8 - unreadable))
    });
    assert_eq!(
        on_disk,
        8 + (8 - unreadable),
        "S3-held blocks are unreadable, disk-held ones fine"
    );
    // S3 just failed: reads of blocks the disk holds do not ask it first
    // (each ask would cost its retries, and count a volume error).
    let volume_errors = || -> u64 {
        c.get("/metrics")
            .text()
            .lines()
            .filter(|l| l.starts_with("keepstore_volume_errors_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let errors = volume_errors();
    assert!(errors > 0, "S3's failures were counted");
    for (loc, b) in during_locs.iter().zip(&during) {
        assert!(c.get(&format!("/{loc}")).body == *b);
    }
    assert_eq!(volume_errors(), errors, "the failed volume was asked last");
    // The store comes back (empty: moto keeps state in memory).
    moto.restart();
    bucket(&moto, "keep");
    let after = random_bytes(3000, 99);
    wait_for("S3 to take writes again", 30, || {
        let r = c.put(&format!("/{}", md5_hex(&after)), &after);
        (r.status == 200).then_some(())
    });
    for b in &during {
        assert_eq!(c.get(&format!("/{}", c.put_block(b))).body, *b);
    }
}

/// The sum of a node's `keepstore_volume_errors_total`.
fn volume_errors(node: &Keepstore) -> u64 {
    node.client()
        .get("/metrics")
        .text()
        .lines()
        .filter(|l| l.starts_with("keepstore_volume_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// With its S3 volume down, a node reads a block a peer holds from the
/// peer without asking S3 first (each ask costs S3's retries, and with a
/// silent store its timeouts).
#[test]
fn a_read_a_peer_can_answer_does_not_wait_for_a_failed_s3_volume() {
    let mut moto = Moto::start();
    bucket(&moto, "keep");
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("cluster-key");
    std::fs::write(&key, "s3-cluster-test-key").unwrap();
    let intro = Introducer::start(&tmp.path().join("intro"), &key);
    let member = |name: &str, volume_specs: Vec<String>| {
        let dir = tmp.path().join(name);
        Keepstore::start(
            &dir,
            NodeOptions {
                args: vec![
                    "--introducer".into(),
                    intro.url.clone(),
                    "--cluster-key-file".into(),
                    key.display().to_string(),
                    "--replication".into(),
                    "1".into(),
                ],
                // Only the read path asks the volumes here: pullsync,
                // which would ask them whether they lack the peer's
                // blocks, stays off.
                config: Some("[pullsync]\nenabled = false\n".into()),
                volumes: vec![dir.join("disk")],
                volume_specs,
                env: vec![
                    ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
                    ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
                ],
            },
        )
    };
    let spec = format!(
        "s3://keep/blocks?endpoint={}&region=us-east-1",
        moto.endpoint()
    );
    let a = member("a", vec![spec]);
    let b = member("b", vec![]);
    let (ca, cb) = (a.client(), b.client());
    let data = random_bytes(5000, 123);
    let loc = cb.put_block(&data);
    wait_for("node a to read through its peer", 30, || {
        (ca.get(&format!("/{loc}")).status == 200).then_some(())
    });
    moto.kill();
    // A block no one holds: a's S3 volume fails and becomes suspect.
    let nowhere = random_bytes(10, 124);
    let r = ca.get(&format!("/{}+10", md5_hex(&nowhere)));
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    let errors = volume_errors(&a);
    assert!(errors > 0, "the S3 failure was counted");
    let r = ca.get(&format!("/{loc}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == data);
    let head = ca.call("HEAD", &format!("/{loc}"), None, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(volume_errors(&a), errors, "S3 was not asked");
}
