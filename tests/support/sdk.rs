//! Running the real Arvados Python SDK (`tests/sdk/keep_sdk_check.py`).
//!
//! The SDK lives in a virtualenv that `cargo xtask test` creates
//! (`target/test-venv`, from `tests/sdk/requirements.txt`);
//! `KEEP_TEST_PYTHON` may name another interpreter that has it.

use std::path::PathBuf;
use std::process::Command;

/// The Python interpreter that has the SDK.
pub fn python() -> PathBuf {
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

/// Runs the SDK check with `args` (and `env`), and asserts that every check
/// passed; returns the JSON summary.
pub fn check(args: &[String], env: &[(&str, &str)]) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sdk/keep_sdk_check.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running the SDK check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        out.status.success(),
        "SDK check failed: {summary}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(summary).expect("JSON summary");
    assert_eq!(v["ok"], true, "{summary}");
    v
}
