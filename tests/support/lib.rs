//! Support for the end-to-end tests: start the real binaries on loopback
//! ports, talk HTTP to them, look at their files.
//!
//! The binaries are built (incrementally) before the first test starts one,
//! with the same cargo and profile as the tests, so a test never runs
//! against a stale binary.

pub mod cluster;
pub mod http;
pub mod process;
pub mod sdk;

pub use http::{Client, Reply};
pub use process::{Introducer, Keepstore, NodeOptions, bin_path};

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = vec![0u8; len];
    rng.fill_bytes(&mut out);
    out
}

/// The MD5 of `data` as lowercase hex.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `secs`.
pub fn wait_for<T>(what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every file under `root` whose name is a block hash, with its content's
/// MD5 (so a test can check bytes on disk).
pub fn blocks_on_disk(root: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(root) else {
        return out;
    };
    for dir in dirs.flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                let data = std::fs::read(f.path()).unwrap_or_default();
                out.push((name, md5_hex(&data)));
            }
        }
    }
    out.sort();
    out
}

/// Every file name under `root`'s block folders (blocks, trash, temp files).
pub fn files_in_block_dirs(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if dir.path().is_dir() && name.len() == 3 {
            for f in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                out.push(f.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}
