//! Nodes and the introducer: what a node publishes, read-only nodes, and
//! draining on SIGTERM.

use keep_tests::{Introducer, Keepstore, NodeOptions, md5_hex, wait_for};

const KEY: &str = "introducer-test-cluster-key";

fn node(dir: &std::path::Path, introducer: &Introducer, extra: &[&str]) -> Keepstore {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("cluster-key"), KEY).unwrap();
    let mut args: Vec<String> = vec![
        "--introducer".into(),
        introducer.url.clone(),
        "--cluster-key-file".into(),
        "cluster-key".into(),
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

fn uuid_of(n: &Keepstore) -> String {
    std::fs::read_to_string(n.volumes[0].join(".keepstore-node-uuid"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn nodes_publish_upload_and_download_and_read_only_nodes_download_only() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("cluster-key"), KEY).unwrap();
    let intro = Introducer::start(&tmp.path().join("intro"), &tmp.path().join("cluster-key"));
    let rw = node(&tmp.path().join("rw"), &intro, &[]);
    let ro = node(&tmp.path().join("ro"), &intro, &["--read-only"]);
    let (rw_uuid, ro_uuid) = (uuid_of(&rw), uuid_of(&ro));
    let mut both = vec![rw_uuid.clone(), ro_uuid.clone()];
    both.sort();
    wait_for("both nodes announced for download", 20, || {
        (intro.announced("download_storage") == both).then_some(())
    });
    wait_for("the writable node announced for upload", 20, || {
        (intro.announced("upload_storage") == vec![rw_uuid.clone()]).then_some(())
    });
    // The read-only node refuses client PUTs.
    let r = ro.client().put(&format!("/{}", md5_hex(b"foo")), b"foo");
    assert_eq!(r.status, 503, "{}", r.text());
    // A read through the read-only node is forwarded to the one that has it.
    let loc = rw.client().put_block(b"served by the writable node");
    wait_for("the read-only node to know its peer", 20, || {
        (ro.client().get(&format!("/{loc}")).status == 200).then_some(())
    });
}

#[test]
fn a_node_drains_on_sigterm_and_stops_taking_uploads() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("cluster-key"), KEY).unwrap();
    let intro = Introducer::start(&tmp.path().join("intro"), &tmp.path().join("cluster-key"));
    let mut n = node(&tmp.path().join("n"), &intro, &[]);
    let uuid = uuid_of(&n);
    wait_for("announced for upload", 20, || {
        (intro.announced("upload_storage") == vec![uuid.clone()]).then_some(())
    });
    let status = n.terminate(30);
    assert!(status.success(), "{status:?}");
    assert!(
        intro.announced("upload_storage").is_empty(),
        "a drained node no longer takes uploads"
    );
    assert_eq!(
        intro.announced("download_storage"),
        vec![uuid],
        "it still serves what it has"
    );
}

#[test]
fn a_node_with_an_introducer_needs_the_cluster_key() {
    let out = std::process::Command::new(keep_tests::bin_path("keepstore"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--introducer",
            "http://127.0.0.1:9",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cluster_key_file"));
}
