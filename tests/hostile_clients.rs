//! Clients that do not play fair: refused requests leave no trace, an
//! anonymous PUT cannot make the cluster fan out at will, invented method
//! names cannot grow the metrics, and the node sees to its open-file
//! limit before it takes connections.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use keep_tests::cluster::{Cluster, ROOT_TOKEN};
use keep_tests::{Keepstore, NodeOptions, bin_path, blocks_on_disk, md5_hex, random_bytes};

#[test]
fn malformed_headers_are_refused_before_a_byte_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Keepstore::start(tmp.path(), NodeOptions::default());
    let client = node.client();
    for (i, bad) in ["abc", "0", "-1", "2 copies", ""].iter().enumerate() {
        let data = random_bytes(1000 + i, i as u64);
        let hash = md5_hex(&data);
        let r = client.call(
            "PUT",
            &format!("/{hash}"),
            Some(&data),
            &[("X-Keep-Desired-Replicas", bad)],
        );
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
        assert!(r.text().contains("X-Keep-Desired-Replicas"), "{}", r.text());
        let head = client.call("HEAD", &format!("/{hash}+{}", data.len()), None, &[]);
        assert_eq!(head.status, 404, "{bad:?}: the refused block was stored");
    }
    // A good request still works, and the refused ones left no file.
    let data = random_bytes(999, 99);
    let r = client.call(
        "PUT",
        &format!("/{}", md5_hex(&data)),
        Some(&data),
        &[("X-Keep-Desired-Replicas", "1")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    keep_tests::wait_for("the good block placed", 10, || {
        (blocks_on_disk(&node.volumes[0]).len() == 1).then_some(())
    });
}

#[test]
fn an_anonymous_put_gets_at_most_max_anonymous_replicas() {
    let tmp = tempfile::tempdir().unwrap();
    // Replication 2 over three nodes: an anonymous PUT asking for three
    // copies gets two; the admin gets three.
    let c = Cluster::start(tmp.path(), 3, "");
    let put = |data: &[u8], token: Option<&str>| {
        let client = match token {
            Some(t) => c.nodes[0].client().with_token(t),
            None => c.nodes[0].client(),
        };
        let r = client.call(
            "PUT",
            &format!("/{}", md5_hex(data)),
            Some(data),
            &[("X-Keep-Desired-Replicas", "3")],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.header("x-keep-replicas-stored").unwrap().to_owned()
    };
    assert_eq!(put(&random_bytes(5000, 1), None), "2");
    assert_eq!(put(&random_bytes(5000, 2), Some("some client token")), "2");
    assert_eq!(put(&random_bytes(5000, 3), Some(ROOT_TOKEN)), "3");
}

#[test]
fn invented_method_names_do_not_add_metric_series() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Keepstore::start(tmp.path(), NodeOptions::default());
    let client = node.client();
    let addr = node.url.strip_prefix("http://").unwrap();
    for i in 0..20 {
        let request = format!("XMETHOD{i} /index HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = keep_tests::http::raw(addr, request.as_bytes(), false);
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    }
    let metrics = client.get("/metrics").text();
    assert!(!metrics.contains("XMETHOD"), "a series per invented method");
    let other: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("keepstore_requests_total{") && l.contains("method=\"other\""))
        .collect();
    assert_eq!(other.len(), 1, "{other:?}");
    assert!(other[0].ends_with(" 20"), "{other:?}");
}

/// Starts `keepstore` under `prlimit --nofile=SOFT:HARD`: its pid once it
/// listens, or its stderr if it exits first.
fn keepstore_with_nofile(dir: &std::path::Path, soft: u64, hard: u64) -> Result<u32, String> {
    let mut child = Command::new("prlimit")
        .arg(format!("--nofile={soft}:{hard}"))
        .arg("--")
        .arg(bin_path("keepstore"))
        .args(["--listen", "127.0.0.1:0", "--volume"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux)");
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    if BufReader::new(stdout).read_line(&mut line).unwrap_or(0) == 0 {
        let out = child.wait_with_output().unwrap();
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let pid = child.id();
    // Left running until the test reads its limits; killed below.
    std::mem::forget(child);
    Ok(pid)
}

#[test]
fn the_node_raises_its_open_file_limit_or_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    // Default max_connections (1024) and one volume need 1600 files.
    let err = keepstore_with_nofile(&tmp.path().join("low"), 300, 300).unwrap_err();
    assert!(err.contains("open-file limit"), "{err}");
    assert!(err.contains("max_connections = 1024"), "{err}");
    let pid = keepstore_with_nofile(&tmp.path().join("ok"), 300, 5000).unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    let row = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let soft: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        soft[3], "5000",
        "the soft limit was raised to the hard one: {row}"
    );
}

#[test]
fn the_node_credential_counts_only_in_the_authorization_header_and_opens_only_peer_routes() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::start(tmp.path(), 1, "");
    let credential = keep_remote::node_credential(keep_tests::cluster::CLUSTER_KEY.as_bytes());
    let client = c.nodes[0].client();
    let bearer = format!("Bearer {credential}");
    let r = client.call("GET", "/_keep/node", None, &[("Authorization", &bearer)]);
    assert_eq!(r.status, 200, "{}", r.text());
    // In the query string or a cookie it is no credential.
    let in_query = format!("/_keep/node?api_token={credential}");
    assert_eq!(client.get(&in_query).status, 403);
    use base64::Engine;
    let cookie = format!(
        "arvados_api_token={}",
        base64::engine::general_purpose::URL_SAFE.encode(&credential)
    );
    let r = client.call("GET", "/_keep/node", None, &[("Cookie", &cookie)]);
    assert_eq!(r.status, 403);
    // DELETE is for the admin: no node sends one.
    let data = random_bytes(100, 7);
    let locator = client.put_block(&data);
    let path = format!("/{locator}");
    let r = client.call("DELETE", &path, None, &[("Authorization", &bearer)]);
    assert_eq!(r.status, 403, "{}", r.text());
    let r = c.admin(0).call("DELETE", &path, None, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_forwarded_read_answers_as_a_local_one_whatever_the_size_hint() {
    use keep_locator::{BlockHash, placement};
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::start(tmp.path(), 3, "");
    // A block node 0 is responsible for (with another node): stored there
    // alone, pullsync brings it to the other, and the third never holds it.
    let (data, outsider) = (0..)
        .find_map(|seed| {
            let data = random_bytes(3000, 1000 + seed);
            let hash = BlockHash::from_hex(&md5_hex(&data)).unwrap();
            let uuids: Vec<&str> = c.uuids.iter().map(String::as_str).collect();
            let order = placement::permuted_order(&hash, &uuids);
            order[..2].contains(&0).then(|| (data, order[2]))
        })
        .unwrap();
    let hash = md5_hex(&data);
    let r = c.nodes[0].client().call(
        "PUT",
        &format!("/{hash}"),
        Some(&data),
        &[("X-Keep-Local-Only", "true")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let holder = c.nodes[0].client();
    let reader = c.nodes[outsider].client();
    for hint in [data.len(), 1, 99_999] {
        let path = format!("/{hash}+{hint}");
        let local = holder.get(&path);
        let forwarded = reader.get(&path);
        assert_eq!(local.status, 200, "local GET with hint {hint}");
        assert_eq!(
            forwarded.status, local.status,
            "forwarded GET with hint {hint}"
        );
        assert!(forwarded.body == data);
        let local = holder.call("HEAD", &path, None, &[]);
        let forwarded = reader.call("HEAD", &path, None, &[]);
        assert_eq!(forwarded.status, 200, "forwarded HEAD with hint {hint}");
        let length = data.len().to_string();
        assert_eq!(local.header("content-length"), Some(length.as_str()));
        assert_eq!(
            forwarded.header("content-length"),
            Some(length.as_str()),
            "the block's size, not the hint {hint}"
        );
    }
    // The outsider really forwarded: it holds no copy.
    let r = reader.call(
        "HEAD",
        &format!("/{hash}+3000"),
        None,
        &[("X-Keep-Local-Only", "true")],
    );
    assert_eq!(r.status, 404);
}

#[test]
fn stalled_put_bodies_are_cut_off_and_give_their_buffers_back() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    // 4 MiB of buffers: four stalled 1 MiB PUTs would hold all of it.
    let node = Keepstore::start(
        tmp.path(),
        NodeOptions {
            config: Some(
                "max_buffer_memory = \"4MiB\"\nrequest_body_idle_timeout = \"1s\"\n".into(),
            ),
            volumes: vec![tmp.path().join("vol0")],
            ..NodeOptions::default()
        },
    );
    let addr = node.url.strip_prefix("http://").unwrap().to_owned();
    let hash = md5_hex(&random_bytes(1 << 20, 5));
    let started = Instant::now();
    let stalled: Vec<std::net::TcpStream> = (0..8)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            let head =
                format!("PUT /{hash} HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\nA");
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    // Meanwhile an honest PUT gets its buffer within a few seconds, not
    // after the 30 s a request waits for buffer memory.
    let data = random_bytes(1 << 20, 6);
    let r = node
        .client()
        .call("PUT", &format!("/{}", md5_hex(&data)), Some(&data), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Each stalled request was answered 408 and nothing of it kept.
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = vec![0; 64];
        let n = s.read(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let head = node
        .client()
        .call("HEAD", &format!("/{hash}+1048576"), None, &[]);
    assert_eq!(head.status, 404);
}
