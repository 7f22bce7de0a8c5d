//! Pullsync between real nodes on loopback: an introducer and storage
//! nodes with two copies per block. Every node should end up holding the
//! blocks it is responsible for (the first two of the block's rendezvous
//! order over the upload nodes), whatever it missed, and no block should
//! cross the wire twice.

use std::collections::BTreeSet;

use keep_locator::{BlockHash, placement};
use keep_tests::cluster::{Cluster, REPLICATION};
use keep_tests::{md5_hex, random_bytes, wait_for};

/// What these tests ask of a cluster beyond starting it.
trait SyncChecks {
    fn held(&self, i: usize) -> BTreeSet<String>;
    fn share(&self, i: usize, members: &[usize], hashes: &[String]) -> BTreeSet<String>;
    fn metric(&self, i: usize, name: &str) -> u64;
    fn wait_for_share(&self, i: usize, want: &BTreeSet<String>, all: &[String], secs: u64);
}

impl SyncChecks for Cluster {
    /// The blocks node `i` holds (its `/index`).
    fn held(&self, i: usize) -> BTreeSet<String> {
        let r = self.admin(i).get("/index");
        assert_eq!(r.status, 200, "index: {}", r.text());
        r.text()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l[..32].to_owned())
            .collect()
    }

    /// The blocks of `hashes` that node `i` is responsible for among the
    /// nodes `members`.
    fn share(&self, i: usize, members: &[usize], hashes: &[String]) -> BTreeSet<String> {
        let uuids: Vec<&str> = members.iter().map(|m| self.uuids[*m].as_str()).collect();
        hashes
            .iter()
            .filter(|h| {
                let hash = BlockHash::from_hex(h).unwrap();
                placement::permuted_order(&hash, &uuids)
                    .into_iter()
                    .take(REPLICATION)
                    .any(|k| uuids[k] == self.uuids[i])
            })
            .cloned()
            .collect()
    }

    /// A pullsync metric of node `i`.
    fn metric(&self, i: usize, name: &str) -> u64 {
        let text = self.nodes[i].client().get("/metrics").text();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}")) as u64
    }

    /// Waits until node `i` holds exactly `want` of the blocks in `all`.
    fn wait_for_share(&self, i: usize, want: &BTreeSet<String>, all: &[String], secs: u64) {
        let all: BTreeSet<&String> = all.iter().collect();
        let mut last = BTreeSet::new();
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for("the node's share", secs, || {
                last = self
                    .held(i)
                    .into_iter()
                    .filter(|h| all.contains(h))
                    .collect();
                (last == *want).then_some(())
            })
        }));
        if done.is_err() {
            let missing: Vec<_> = want.difference(&last).collect();
            let extra: Vec<_> = last.difference(want).collect();
            panic!(
                "node {i} holds {} of its {} blocks; missing {missing:?}, extra {extra:?}\nlog:\n{}",
                last.len(),
                want.len(),
                tail(&self.nodes[i].log_text())
            );
        }
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// PUTs `data` through node `i` asking for `copies` copies; its hash.
fn put(c: &Cluster, i: usize, data: &[u8], copies: usize) -> String {
    let hash = md5_hex(data);
    let r = c.nodes[i].client().call(
        "PUT",
        &format!("/{hash}"),
        Some(data),
        &[("X-Keep-Desired-Replicas", &copies.to_string())],
    );
    assert_eq!(r.status, 200, "PUT: {}", r.text());
    hash
}

/// `n` blocks of 1 byte to 4 MiB (every 20th is 4 MiB, the rest up to
/// 64 KiB), from `seed`.
fn blocks(n: usize, seed: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let s = seed * 1000 + i as u64;
            let len = match i {
                0 => 1,
                i if i % 20 == 19 => 4 << 20,
                _ => 1 + (s as usize * 7919) % (64 << 10),
            };
            random_bytes(len, s)
        })
        .collect()
}

#[test]
fn a_node_down_during_writes_catches_up_to_exactly_its_share_and_no_block_comes_twice() {
    let tmp = tempfile::tempdir().unwrap();
    // Small deliveries: an offer's wants go out in several at once (a
    // fresh offer for each after the first).
    let split = "[pullsync]\nmax_delivery_bytes = \"4MiB\"\n";
    let mut c = Cluster::start(tmp.path(), 3, split);
    c.nodes[2].kill();
    let data = blocks(200, 1);
    let mut hashes = Vec::new();
    for (k, d) in data.iter().enumerate() {
        hashes.push(put(&c, k % 2, d, 2));
    }
    c.nodes[2].restart();
    let want = c.share(2, &[0, 1, 2], &hashes);
    assert!(want.len() > 60, "node 2's share: {}", want.len());
    c.wait_for_share(2, &want, &hashes, 60);
    // Every block it received was one it lacked: nothing came twice.
    let received = c.metric(2, "keep_pullsync_received_blocks_total");
    assert_eq!(received, want.len() as u64, "blocks received");
    assert_eq!(c.metric(2, "keep_pullsync_unsolicited_total"), 0);
    assert_eq!(c.metric(2, "keep_pullsync_invalid_total"), 0);
    let bytes: u64 = data
        .iter()
        .filter(|d| want.contains(&md5_hex(d)))
        .map(|d| d.len() as u64)
        .sum();
    assert_eq!(
        c.metric(2, "keep_pullsync_received_bytes_total"),
        bytes,
        "bytes received"
    );
    assert_eq!(c.metric(2, "keep_pullsync_owed_blocks"), 0);
}

#[test]
fn blocks_written_with_one_copy_reach_their_nodes_through_live_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::start(tmp.path(), 3, "");
    // The sync routes are for the node credential only.
    let cursors = "/_keep/sync/cursors";
    assert_eq!(c.nodes[0].client().get(cursors).status, 401);
    assert_eq!(c.admin(0).get(cursors).status, 403, "not for the admin");
    let data = blocks(30, 2);
    let hashes: Vec<String> = data.iter().map(|d| put(&c, 0, d, 1)).collect();
    for i in 1..3 {
        let want = c.share(i, &[0, 1, 2], &hashes);
        c.wait_for_share(i, &want, &hashes, 30);
        assert_eq!(
            c.metric(i, "keep_pullsync_received_blocks_total"),
            want.len() as u64
        );
    }
}

#[test]
fn a_node_killed_mid_sync_resumes_without_receiving_much_again() {
    let tmp = tempfile::tempdir().unwrap();
    // Small deliveries, one at a time, with pauses: the sync takes long
    // enough to be killed in the middle.
    let slow = "[pullsync]\nmax_delivery_bytes = \"1MiB\"\nmax_deliveries = 2\ntranquility = 4\n";
    let mut c = Cluster::start(tmp.path(), 3, slow);
    c.nodes[2].kill();
    let data: Vec<Vec<u8>> = (0..120).map(|i| random_bytes(512 << 10, 300 + i)).collect();
    let hashes: Vec<String> = data.iter().map(|d| put(&c, 0, d, 2)).collect();
    let want = c.share(2, &[0, 1, 2], &hashes);
    let total = want.len() as u64 * (512 << 10);
    c.nodes[2].restart();
    let first = wait_for("a third of the share received", 60, || {
        let got = c.metric(2, "keep_pullsync_received_bytes_total");
        (got >= total / 3).then_some(got)
    });
    c.nodes[2].kill();
    assert!(first < total, "killed before the end ({first} of {total})");
    c.nodes[2].restart();
    c.wait_for_share(2, &want, &hashes, 120);
    let second = c.metric(2, "keep_pullsync_received_bytes_total");
    let again = (first + second).saturating_sub(total);
    assert!(
        again * 10 < total,
        "received {first} + {second} bytes for {total}: {again} again"
    );
}

#[test]
fn a_fourth_node_gets_its_share_and_a_wiped_node_refills() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(tmp.path(), 3, "");
    let data = blocks(60, 4);
    let hashes: Vec<String> = data.iter().map(|d| put(&c, 0, d, 2)).collect();
    c.add_node("");
    c.wait_until_all_see_each_other();
    let all = [0, 1, 2, 3];
    let share = c.share(3, &all, &hashes);
    assert!(!share.is_empty());
    c.wait_for_share(3, &share, &hashes, 60);
    assert_eq!(
        c.metric(3, "keep_pullsync_received_blocks_total"),
        share.len() as u64
    );

    // Node 1 loses its disk (all but its uuid) and comes back empty.
    let share1 = c.share(1, &all, &hashes);
    let before: BTreeSet<String> = c.held(1).intersection(&share1).cloned().collect();
    assert!(!before.is_empty());
    c.nodes[1].kill();
    let vol = c.nodes[1].volumes[0].clone();
    for entry in std::fs::read_dir(&vol).unwrap().flatten() {
        if entry.file_name() == ".keepstore-node-uuid" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    c.nodes[1].restart();
    // It gets back at least what it had of its share (blocks that were
    // only replicas elsewhere before node 3 joined included).
    wait_for("node 1 to refill", 60, || {
        before.is_subset(&c.held(1)).then_some(())
    });
}

#[test]
fn corrupt_bytes_at_a_peer_are_never_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(tmp.path(), 2, "");
    c.nodes[1].kill();
    let good = random_bytes(100_000, 501);
    let bad = random_bytes(100_000, 502);
    let (good_hash, bad_hash) = (put(&c, 0, &good, 1), put(&c, 0, &bad, 1));
    // Node 0 stops; the bad block's bytes rot on its disk.
    assert!(c.nodes[0].terminate(30).success());
    let file = c.nodes[0].volumes[0].join(&bad_hash[..3]).join(&bad_hash);
    wait_for("the block file", 10, || file.exists().then_some(()));
    let mut rotten = std::fs::read(&file).unwrap();
    rotten[50_000] ^= 0xff;
    std::fs::write(&file, &rotten).unwrap();
    c.nodes[0].restart();
    c.nodes[1].restart();
    let hashes = [good_hash.clone(), bad_hash.clone()];
    // Both nodes are responsible for both blocks (two copies, two nodes).
    wait_for("the good block at node 1", 60, || {
        c.held(1).contains(&good_hash).then_some(())
    });
    wait_for("node 0 to find the rot", 60, || {
        (!c.held(0).contains(&bad_hash)).then_some(())
    });
    assert!(!c.held(1).contains(&bad_hash), "no corrupt copy stored");
    let on_disk = keep_tests::blocks_on_disk(&c.nodes[1].volumes[0]);
    assert!(
        on_disk.iter().all(|(name, md5)| name == md5),
        "every block on node 1's disk matches its name: {on_disk:?}"
    );
    assert_eq!(c.share(1, &[0, 1], &hashes).len(), 2);
}

#[test]
fn a_block_in_the_trash_is_not_pulled_back() {
    let tmp = tempfile::tempdir().unwrap();
    let config = "blob_signing_ttl = \"1s\"\n";
    let mut c = Cluster::start(tmp.path(), 2, config);
    let gone = random_bytes(5000, 601);
    let gone_hash = put(&c, 0, &gone, 2);
    wait_for("both copies", 30, || {
        (c.held(0).contains(&gone_hash) && c.held(1).contains(&gone_hash)).then_some(())
    });
    // Node 1 trashes its copy (the block is older than the signing TTL).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let line = c.admin(1).get(&format!("/index/{gone_hash}")).text();
    let mtime: i64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let list = serde_json::json!([{"locator": format!("{gone_hash}+5000"), "block_mtime": mtime}]);
    let r = c.admin(1).put("/trash", list.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for("node 1 to trash it", 30, || {
        (!c.held(1).contains(&gone_hash)).then_some(())
    });
    // Node 1 forgets everything it synced and syncs again from node 0,
    // which still offers the block; a block of the same bin shows when
    // that bin is done.
    c.nodes[1].kill();
    std::fs::remove_file(c.nodes[1].volumes[0].join(keep_pullsync_intervals())).unwrap();
    let later = (700..)
        .map(|seed| random_bytes(3000, seed))
        .find(|d| md5_hex(d)[..1] == gone_hash[..1])
        .unwrap();
    let later_hash = put(&c, 0, &later, 1);
    c.nodes[1].restart();
    wait_for("the later block of the same bin", 60, || {
        c.held(1).contains(&later_hash).then_some(())
    });
    assert!(
        !c.held(1).contains(&gone_hash),
        "the trashed block came back"
    );
    assert_eq!(c.metric(1, "keep_pullsync_wanted_total"), 1);
}

/// The name of a node's synced-intervals file (in its state directory,
/// the first volume).
fn keep_pullsync_intervals() -> &'static str {
    "pullsync-intervals.redb"
}
