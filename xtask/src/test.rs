//! `cargo xtask test`: everything the test suite needs, then the suite.

use std::path::PathBuf;
use std::process::Command;

use crate::{root, run_cmd};

/// Python packages the tests use, pinned in these files.
const REQUIREMENTS: &[&str] = &[
    "tests/sdk/requirements.txt",
    "crates/keep-volume-s3/tests/requirements.txt",
];

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let lint = !args.iter().any(|a| a == "--no-lint");
    let passthrough: Vec<&String> = args.iter().skip_while(|a| *a != "--").skip(1).collect();
    let venv = ensure_venv()?;
    let chromium = ensure_chromium()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if lint {
        run_cmd(Command::new(&cargo).args(["fmt", "--all", "--", "--check"]))?;
        run_cmd(Command::new(&cargo).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
        run_cmd(
            Command::new(&cargo)
                .args(["doc", "--workspace", "--no-deps", "--quiet"])
                .env("RUSTDOCFLAGS", "-D warnings"),
        )?;
    }
    run_cmd(Command::new(&cargo).args(["build", "--workspace", "--bins"]))?;
    let mut test = Command::new(&cargo);
    test.args(["test", "--workspace"])
        .args(passthrough)
        .env("KEEP_TEST_PYTHON", venv.join("bin/python"))
        .env("KEEP_TEST_MOTO", venv.join("bin/moto_server"))
        .env("KEEP_TEST_CHROMIUM", chromium);
    run_cmd(&mut test)
}

/// Creates (or refreshes, when a requirements file changed) the test
/// virtualenv under `target/test-venv`.
fn ensure_venv() -> anyhow::Result<PathBuf> {
    let root = root();
    let venv = root.join("target/test-venv");
    let files: Vec<PathBuf> = REQUIREMENTS
        .iter()
        .map(|f| root.join(f))
        .filter(|p| p.exists())
        .collect();
    let mut wanted = String::new();
    for f in &files {
        wanted.push_str(&std::fs::read_to_string(f)?);
    }
    let stamp = venv.join(".requirements");
    if venv.join("bin/python").exists()
        && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted)
    {
        return Ok(venv);
    }
    let python = which_python()?;
    run_cmd(
        Command::new(&python)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    let pip = venv.join("bin/pip");
    run_cmd(Command::new(&pip).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--upgrade",
        "pip",
    ]))?;
    let mut install = Command::new(&pip);
    install.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-cache-dir",
    ]);
    for f in &files {
        install.arg("-r").arg(f);
    }
    run_cmd(&mut install)?;
    std::fs::write(&stamp, wanted)?;
    Ok(venv)
}

/// Headless Chromium for the status-page tests: Debian's `chromium`,
/// installed with apt-get when missing (as root, or through `sudo -n`).
fn ensure_chromium() -> anyhow::Result<PathBuf> {
    if let Some(path) = on_path("chromium") {
        return Ok(path);
    }
    eprintln!("xtask: chromium is missing; installing Debian's package for the browser tests");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run_cmd(&mut cmd)
    };
    apt(&["update", "-qq"])
        .and_then(|()| apt(&["install", "-y", "-qq", "chromium"]))
        .map_err(|e| {
            anyhow::anyhow!("{e}\nthe status-page tests need Chromium: `apt-get install chromium`")
        })?;
    on_path("chromium").ok_or_else(|| anyhow::anyhow!("chromium is still not on the PATH"))
}

/// `name` in a folder of the PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn which_python() -> anyhow::Result<String> {
    for candidate in ["python3", "python"] {
        if Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Ok(candidate.to_owned());
        }
    }
    anyhow::bail!("Python 3 is needed for the tests (the Arvados SDK and the S3 test server)")
}
