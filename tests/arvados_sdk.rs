//! The real Arvados Python SDK (`arvados-python-client`, unchanged) against
//! the real node: blocks from 0 bytes to 64 MiB round-trip with signatures.
//!
//! The SDK lives in a virtualenv that `cargo xtask test` creates
//! (`target/test-venv`, from `tests/sdk/requirements.txt`); `KEEP_TEST_PYTHON`
//! may name another interpreter that has it.

use std::path::PathBuf;
use std::process::Command;

use keep_tests::{Keepstore, NodeOptions};

const SIZES: &str = "0,1,4096,1048576,1048577,67108864";

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KEEP_TEST_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/python");
    assert!(
        venv.exists(),
        "the Arvados SDK virtualenv is missing ({}): run `cargo xtask test`, which installs it",
        venv.display()
    );
    venv
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sdk/keep_sdk_check.py")
}

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

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("running the SDK check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        out.status.success(),
        "SDK check failed: {summary}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(summary).expect("JSON summary");
    assert_eq!(v["ok"], true, "{summary}");
    assert!(v["checks"].as_u64().unwrap() >= 12, "{summary}");
}

#[test]
fn sdk_round_trips_blocks_with_signatures_via_proxy() {
    let tmp = tempfile::tempdir().unwrap();
    let node = signed_node(tmp.path());
    run(Command::new(python())
        .arg(script())
        .args([
            "--proxy",
            &node.url,
            "--token",
            "sdk-user-token",
            "--sizes",
            SIZES,
            "--expect-signed",
        ])
        .arg("--signing-key-file")
        .arg(tmp.path().join("key")));
}

#[test]
fn sdk_finds_the_node_through_arvados_keep_services() {
    let tmp = tempfile::tempdir().unwrap();
    let node = signed_node(tmp.path());
    run(Command::new(python())
        .arg(script())
        .args([
            "--use-env",
            "--token",
            "sdk-env-token",
            "--sizes",
            "0,3,70000",
            "--expect-signed",
        ])
        .arg("--signing-key-file")
        .arg(tmp.path().join("key"))
        .env("ARVADOS_KEEP_SERVICES", &node.url));
}
