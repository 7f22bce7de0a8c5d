//! A local cluster, as `cargo xtask cluster` runs it: one introducer and
//! three storage nodes on loopback. Two-copy writes, forwarded reads, a
//! node killed with SIGKILL, the Arvados SDK over the cluster, and a clean
//! stop of every process.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keep_locator::{BlockHash, placement};
use keep_tests::{Client, md5_hex, random_bytes, sdk, wait_for};

struct Cluster {
    xtask: Child,
    info: serde_json::Value,
}

impl Cluster {
    fn url(&self, i: usize) -> String {
        self.info["keepstores"][i]["url"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    fn uuid(&self, i: usize) -> String {
        self.info["keepstores"][i]["uuid"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    fn volume(&self, i: usize) -> String {
        self.info["keepstores"][i]["volumes"][0]
            .as_str()
            .unwrap()
            .to_owned()
    }
    fn pid(&self, i: usize) -> i32 {
        self.info["keepstores"][i]["pid"].as_i64().unwrap() as i32
    }
}

impl Drop for Cluster {
    /// A test that fails part way leaves nothing running: the whole
    /// process group (cargo, xtask, the introducer and every node) is
    /// killed, not only `cargo run`, which would orphan the rest.
    fn drop(&mut self) {
        if let Some(group) = rustix::process::Pid::from_raw(self.xtask.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.xtask.kill();
        let _ = self.xtask.wait();
    }
}

/// A base port with `n` free ports after it.
fn free_ports(n: u16) -> u16 {
    for _ in 0..200 {
        let base = 20000 + rand::random_range(0..30000u16);
        if (0..=n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free port range");
}

fn start(dir: &Path) -> Cluster {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let base = free_ports(4);
    let xtask = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "-p",
            "xtask",
            "--",
            "cluster",
            "--profile",
            "debug",
            "--nodes",
            "3",
            "--replication",
            "2",
        ])
        .arg("--dir")
        .arg(dir)
        .args(["--base-port", &base.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.with_extension("xtask.log")).unwrap())
        // Its own process group, so that a failed test can stop it all.
        .process_group(0)
        .spawn()
        .expect("cargo xtask cluster");
    let json = wait_for("cluster.json", 300, || {
        std::fs::read_to_string(dir.join("cluster.json")).ok()
    });
    Cluster {
        xtask,
        info: serde_json::from_str(&json).unwrap(),
    }
}

fn holders(c: &Cluster, hex: &str) -> Vec<usize> {
    (0..3)
        .filter(|i| Path::new(&c.volume(*i)).join(&hex[..3]).join(hex).exists())
        .collect()
}

#[test]
fn a_local_cluster_replicates_forwards_survives_a_kill_and_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = start(&dir);
    let token = "cluster-user";
    let uuids: Vec<String> = (0..3).map(|i| c.uuid(i)).collect();

    // Two-copy writes through node 0 land on node 0 and on the first other
    // node in the block's rendezvous order, byte for byte; pullsync then
    // brings a copy to each of the block's two responsible nodes (the first
    // two of that order over all three) that lacks one.
    let n0 = Client::new(&c.url(0)).with_token(token);
    let mut blocks = Vec::new();
    for i in 0..12u64 {
        let data = random_bytes([100, 70_000, 2 << 20][i as usize % 3], 500 + i);
        let r = n0.call(
            "PUT",
            &format!("/{}", md5_hex(&data)),
            Some(&data),
            &[("X-Keep-Desired-Replicas", "2")],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-keep-replicas-stored"), Some("2"));
        let hash = BlockHash::of(&data);
        let order = placement::permuted_order(&hash, &uuids);
        let peer = *order.iter().find(|i| **i != 0).unwrap();
        let mut want: Vec<usize> = order[..2].to_vec();
        want.extend([0, peer]);
        want.sort();
        want.dedup();
        // A small block's file is placed moments after its answer.
        let mut held = Vec::new();
        let settled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(&format!("block {i}'s files"), 20, || {
                held = holders(&c, &hash.to_hex());
                (held == want).then_some(())
            })
        }));
        assert!(settled.is_ok(), "block {i} on nodes {held:?}, not {want:?}");
        blocks.push((data, r.text()));
    }

    // Reads through a node that lacks the block are forwarded.
    let mut forwarded = 0;
    for (data, loc) in &blocks {
        let hex = md5_hex(data);
        let Some(lacking) = (0..3).find(|i| !holders(&c, &hex).contains(i)) else {
            continue; // on all three: written through a node not responsible
        };
        forwarded += 1;
        let r = Client::new(&c.url(lacking))
            .with_token(token)
            .get(&format!("/{loc}"));
        assert_eq!(r.status, 200);
        assert!(r.body == *data, "forwarded content differs");
        let head = Client::new(&c.url(lacking)).with_token(token).call(
            "HEAD",
            &format!("/{loc}"),
            None,
            &[],
        );
        assert_eq!(head.status, 200);
    }
    assert!(forwarded >= 3, "only {forwarded} blocks lacked somewhere");
    let absent = format!("{}+3", md5_hex(b"nope"));
    let signed_absent = {
        let key = std::fs::read_to_string(dir.join("blob-signing-key")).unwrap();
        let key = keep_locator::SigningKey::new(key.trim_end().as_bytes().to_vec());
        let loc: keep_locator::Locator = absent.parse().unwrap();
        let ttl = Duration::from_secs(336 * 3600);
        key.sign(&loc, token, now() + 3600, ttl).to_string()
    };
    assert_eq!(
        n0.get(&format!("/{signed_absent}")).status,
        404,
        "404 only when no peer has it"
    );

    // SIGKILL node 2: every block stays readable through the others, and
    // new two-copy writes still get two copies.
    let victim = 2;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(c.pid(victim)).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    for via in [0, 1] {
        let client = Client::new(&c.url(via)).with_token(token);
        for (data, loc) in &blocks {
            let r = client.get(&format!("/{loc}"));
            assert_eq!(
                r.status, 200,
                "block unreadable via node {via} after the kill"
            );
            assert!(r.body == *data);
        }
    }
    for i in 0..6u64 {
        let data = random_bytes(5000, 900 + i);
        let started = Instant::now();
        let r = n0.call(
            "PUT",
            &format!("/{}", md5_hex(&data)),
            Some(&data),
            &[("X-Keep-Desired-Replicas", "2")],
        );
        assert_eq!(
            (r.status, r.header("x-keep-replicas-stored")),
            (200, Some("2")),
            "{}",
            r.text()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a dead peer cost {:?}",
            started.elapsed()
        );
        let held = wait_for("the two files", 10, || {
            Some(holders(&c, &md5_hex(&data))).filter(|h| h.len() >= 2)
        });
        assert_eq!(held, vec![0, 1], "the copies went to the live nodes");
    }

    // The Arvados SDK over the two live nodes, asking for two copies.
    let services = format!("{} {}", c.url(0), c.url(1));
    let mut args: Vec<String> = [
        "--use-env",
        "--token",
        token,
        "--sizes",
        "0,1,4096,1048577",
        "--copies",
        "2",
        "--expect-signed",
    ]
    .map(String::from)
    .to_vec();
    args.push("--signing-key-file".into());
    args.push(dir.join("blob-signing-key").display().to_string());
    sdk::check(&args, &[("ARVADOS_KEEP_SERVICES", &services)]);

    // SIGTERM stops every process, cleanly.
    let pids: Vec<i32> = [0, 1].iter().map(|i| c.pid(*i)).collect();
    let xtask_pid = rustix::process::Pid::from_raw(c.xtask.id() as i32).unwrap();
    rustix::process::kill_process(xtask_pid, rustix::process::Signal::TERM).unwrap();
    let status = wait_for("xtask to exit", 60, || c.xtask.try_wait().unwrap());
    assert!(status.success(), "xtask cluster exited with {status:?}");
    for pid in pids {
        let gone = !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "));
        assert!(gone, "node {pid} still running");
    }
    let log = std::fs::read_to_string(Path::new(&c.volume(0)).parent().unwrap().join("keep1.log"))
        .unwrap();
    assert!(log.contains("keepstore stopped"), "node 1 stopped cleanly");
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
