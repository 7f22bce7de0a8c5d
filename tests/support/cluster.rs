//! A cluster under test: an introducer and storage nodes on loopback,
//! with a root token and two copies per block.

use std::path::{Path, PathBuf};

use crate::{Client, Introducer, Keepstore, NodeOptions, wait_for};

/// The cluster key every node and the introducer share.
pub const CLUSTER_KEY: &str = "pullsync-test-cluster-key";
/// The admin token of every node.
pub const ROOT_TOKEN: &str = "pullsync-test-root-token";
/// Copies per block.
pub const REPLICATION: usize = 2;

/// The introducer and the nodes.
#[derive(Debug)]
pub struct Cluster {
    /// Where everything lives.
    pub dir: PathBuf,
    /// The introducer.
    pub intro: Introducer,
    /// The nodes, in the order they were added.
    pub nodes: Vec<Keepstore>,
    /// Their uuids, in the same order.
    pub uuids: Vec<String>,
}

impl Cluster {
    /// Starts an introducer and `n` nodes, each with `extra` config lines
    /// (heartbeats every 300 ms, one miss marks a peer down), and waits
    /// until every node takes uploads and knows the others.
    pub fn start(dir: &Path, n: usize, extra: &str) -> Cluster {
        std::fs::write(dir.join("cluster-key"), CLUSTER_KEY).unwrap();
        let intro = Introducer::start(&dir.join("intro"), &dir.join("cluster-key"));
        let mut c = Cluster {
            dir: dir.to_owned(),
            intro,
            nodes: Vec::new(),
            uuids: Vec::new(),
        };
        for _ in 0..n {
            c.add_node(extra);
        }
        c.wait_until_all_see_each_other();
        c
    }

    /// Starts one more node.
    pub fn add_node(&mut self, extra: &str) {
        let i = self.nodes.len();
        let dir = self.dir.join(format!("node{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cluster-key"), CLUSTER_KEY).unwrap();
        std::fs::write(dir.join("root-token"), ROOT_TOKEN).unwrap();
        let config = format!(
            "introducer = [\"{}\"]\n\
             cluster_key_file = \"cluster-key\"\n\
             system_root_token_file = \"root-token\"\n\
             replication = {REPLICATION}\n\
             {extra}\n\
             [heartbeat]\nperiod = \"300ms\"\nfailures_to_down = 1\n\
             [introducer_client]\npoll_wait = \"2s\"\nretry_min = \"100ms\"\nretry_max = \"500ms\"\n",
            self.intro.url
        );
        let node = Keepstore::start(
            &dir,
            NodeOptions {
                config: Some(config),
                volumes: vec![dir.join("vol0")],
                ..NodeOptions::default()
            },
        );
        let uuid = std::fs::read_to_string(node.volumes[0].join(".keepstore-node-uuid"))
            .unwrap()
            .trim()
            .to_owned();
        self.nodes.push(node);
        self.uuids.push(uuid);
    }

    /// Waits until the introducer lists every node for upload and each
    /// node pulls from all the others.
    pub fn wait_until_all_see_each_other(&self) {
        let mut all = self.uuids.clone();
        all.sort();
        wait_for("every node announced for upload", 30, || {
            (self.intro.announced("upload_storage") == all).then_some(())
        });
        for (i, n) in self.nodes.iter().enumerate() {
            wait_for("every node to know its peers", 30, || {
                let text = n.client().get("/_health/ping").status;
                let peers = self.pullsync_peers(i);
                (text == 200 && peers == self.nodes.len() - 1).then_some(())
            });
        }
    }

    /// How many peers node `i` pulls from (its `pullsync peers` worker).
    pub fn pullsync_peers(&self, i: usize) -> usize {
        let r = self.admin(i).get("/_keep/workers");
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap_or_default();
        rows.iter()
            .find(|w| w["name"] == "pullsync peers")
            .and_then(|w| w["progress"].as_str())
            .and_then(|p| p.strip_prefix("pulling from "))
            .and_then(|p| p.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// A client of node `i` with the root token.
    pub fn admin(&self, i: usize) -> Client {
        self.nodes[i].client().with_token(ROOT_TOKEN)
    }
}
