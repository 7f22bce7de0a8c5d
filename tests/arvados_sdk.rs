//! The real Arvados Python SDK (`arvados-python-client`, unchanged) against
//! the real node: blocks from 0 bytes to 64 MiB round-trip with signatures.

use keep_tests::{Keepstore, NodeOptions, sdk};

const SIZES: &str = "0,1,4096,1048576,1048577,67108864";

fn signed_node(dir: &std::path::Path) -> Keepstore {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("key"), "sdk-test-signing-key\n").unwrap();
    let args = ["--blob-signing-key-file", "key"]
        .map(String::from)
        .to_vec();
    Keepstore::start(
        dir,
        NodeOptions {
            args,
            ..Default::default()
        },
    )
}

fn args(list: &[&str], dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.push("--signing-key-file".into());
    v.push(dir.join("key").display().to_string());
    v
}

#[test]
fn sdk_round_trips_blocks_with_signatures_via_proxy() {
    let tmp = tempfile::tempdir().unwrap();
    let node = signed_node(tmp.path());
    let summary = sdk::check(
        &args(
            &[
                "--proxy",
                &node.url,
                "--token",
                "sdk-user-token",
                "--sizes",
                SIZES,
                "--expect-signed",
            ],
            tmp.path(),
        ),
        &[],
    );
    assert!(summary["checks"].as_u64().unwrap() >= 20, "{summary}");
}

#[test]
fn sdk_finds_the_node_through_arvados_keep_services() {
    let tmp = tempfile::tempdir().unwrap();
    let node = signed_node(tmp.path());
    let summary = sdk::check(
        &args(
            &[
                "--use-env",
                "--token",
                "sdk-env-token",
                "--sizes",
                "0,3,70000",
                "--expect-signed",
            ],
            tmp.path(),
        ),
        &[("ARVADOS_KEEP_SERVICES", &node.url)],
    );
    assert!(summary["checks"].as_u64().unwrap() >= 10, "{summary}");
}
