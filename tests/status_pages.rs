//! The status pages in a real browser: headless Chromium (Debian's
//! `chromium`, which `cargo xtask test` installs) loads each page from real
//! binaries on loopback, and the tests read the DOM it rendered. A
//! screenshot of each page goes to `target/status-pages/` (the README
//! links them); no test depends on pixels.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use keep_introducer::{Announcement, ClusterKey, DOWNLOAD_STORAGE, UPLOAD_STORAGE, new_nonce};
use keep_tests::cluster::{CLUSTER_KEY, Cluster, ROOT_TOKEN};
use keep_tests::{Client, Keepstore, NodeOptions, random_bytes, wait_for};

/// Headless Chromium: `KEEP_TEST_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("KEEP_TEST_CHROMIUM") {
        return p.into();
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.exists())
    });
    found.expect(
        "these tests need Debian's chromium: run them through `cargo xtask test`, \
         which installs it, or `apt-get install chromium`",
    )
}

/// Runs headless Chromium on `url` with `args`; its stdout.
fn browse(url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("running chromium");
    assert!(
        out.status.success(),
        "chromium on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The DOM Chromium rendered from the page at `url`.
fn dom(url: &str) -> String {
    let dom = browse(url, &["--dump-dom"]);
    assert!(dom.contains("</html>"), "no page at {url}: {dom}");
    dom
}

/// A screenshot of the page at `url`, `height` pixels tall, as
/// `target/status-pages/<name>.png`.
fn screenshot(url: &str, name: &str, height: u32) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/status-pages");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.png"));
    browse(
        url,
        &[
            &format!("--window-size=1280,{height}"),
            &format!("--screenshot={}", file.display()),
        ],
    );
    let png = std::fs::read(&file).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", file.display());
    file
}

/// The state a page shows for the row of node `uuid` (`data-state`).
fn row_state(dom: &str, uuid: &str) -> Option<String> {
    let start = dom.find(&format!("id=\"peer-{uuid}\""))?;
    let rest = &dom[start..];
    let rest = &rest[rest.find("data-state=\"")? + 12..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn status_json(client: &Client) -> serde_json::Value {
    let r = client.get("/_status.json");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

/// Nothing secret shows: not the root token, the cluster key or the node
/// credential made from it.
fn assert_no_secret(what: &str, text: &str) {
    let credential = keep_remote::node_credential(CLUSTER_KEY.as_bytes());
    for secret in [ROOT_TOKEN, CLUSTER_KEY, credential.as_str()] {
        assert!(!text.contains(secret), "{what} shows a secret");
    }
}

#[test]
fn both_nodes_show_up_in_the_browser_and_a_killed_one_goes_down_within_a_heartbeat() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(tmp.path(), 2, "");
    // Traffic for the charts: 20 PUTs and 20 GETs of 4 KiB through node 0.
    let client = c.nodes[0].client();
    for i in 0..20 {
        let locator = client.put_block(&random_bytes(4096, i));
        assert_eq!(client.get(&format!("/{locator}")).status, 200);
    }
    let urls: Vec<String> = c
        .nodes
        .iter()
        .map(|n| n.client().base().to_owned())
        .collect();
    for (i, url) in urls.iter().enumerate() {
        let other = &c.uuids[1 - i];
        // Wait for a heartbeat answer (the page names its version).
        wait_for("the peer's first heartbeat answer", 10, || {
            status_json(&c.nodes[i].client())["peers"][0]["last_heartbeat"]
                .as_u64()
                .map(|_| ())
        });
        let page = dom(url);
        assert_eq!(
            row_state(&page, &c.uuids[i]).as_deref(),
            Some("self"),
            "{page}"
        );
        assert_eq!(row_state(&page, other).as_deref(), Some("up"), "{page}");
        for section in [
            "id=\"node\"",
            "id=\"traffic\"",
            "id=\"volumes\"",
            "id=\"work\"",
            "id=\"pullsync\"",
        ] {
            assert!(page.contains(section), "{section} missing");
        }
        assert!(
            page.contains(&format!("id=\"sync-{other}\"")),
            "pullsync progress per peer"
        );
        assert!(!page.contains("<script"), "no script on the page");
        assert_no_secret("the node page", &page);
    }
    let shot = screenshot(&urls[0], "node", 1700);
    let json = status_json(&client);
    assert_no_secret("/_status.json", &json.to_string());
    assert_eq!(json["traffic"]["put"]["requests"], 20);
    assert_eq!(json["traffic"]["get"]["requests"], 20);
    assert!(json["traffic"]["get"]["p99_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(json["traffic"]["put"]["bytes"], 20 * 4096);
    let vol = &json["volumes"][0];
    assert_eq!(vol["location"], c.nodes[0].volumes[0].display().to_string());
    assert_eq!(vol["health"], "healthy");
    assert!(vol["available_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        json["peers"][0]["replicas_sent"], 20,
        "each PUT sent its second copy"
    );
    assert!(
        json["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "pullsync index")
    );

    // Kill node 1: node 0's next heartbeat (every 300 ms) marks it down.
    c.nodes[1].kill();
    let killed = Instant::now();
    wait_for("node 1 shown down", 10, || {
        (status_json(&client)["peers"][0]["state"] == "down").then_some(())
    });
    // Within the heartbeat interval, give or take the scheduling of a busy
    // test machine (the status is polled every 20 ms).
    let took = killed.elapsed();
    let interval = Duration::from_millis(300);
    let slack = Duration::from_millis(700);
    assert!(
        took < interval + slack,
        "down after {took:?}, heartbeats every {interval:?}"
    );
    eprintln!("node 1 shown down {took:?} after it was killed");
    let page = dom(&urls[0]);
    assert_eq!(
        row_state(&page, &c.uuids[1]).as_deref(),
        Some("down"),
        "{page}"
    );
    screenshot(&c.intro.url, "introducer", 760);
    eprintln!("screenshots: {} and introducer.png", shot.display());
}

/// A signed announcement of a node that is not there, with a hostile
/// nickname.
fn announce_hostile(intro: &str, service: &str, uuid: &str, nickname: &str, withdrawn: bool) {
    let signed = Announcement {
        service: service.into(),
        uuid: uuid.into(),
        url: "http://127.0.0.1:9".into(),
        nickname: nickname.into(),
        version: "0.0.1".into(),
        seqnum: if withdrawn { 2 } else { 1 },
        nonce: new_nonce(),
        withdrawn,
    }
    .sign(&ClusterKey::new(CLUSTER_KEY).unwrap());
    let r = Client::new(intro).call(
        "POST",
        "/v1/announce",
        Some(&serde_json::to_vec(&signed).unwrap()),
        &[("Content-Type", "application/json")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn what_announcements_carry_shows_as_text_on_both_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::start(tmp.path(), 1, "");
    let evil = "<script>document.title='owned'</script><img src=x>";
    let ghost = "zzzzz-bi6l4-0000000000ghost";
    announce_hostile(&c.intro.url, UPLOAD_STORAGE, ghost, evil, false);
    // Also offered as a download service, so the node takes it as a peer.
    announce_hostile(&c.intro.url, DOWNLOAD_STORAGE, ghost, evil, false);

    let page = dom(&c.intro.url);
    let escaped = "&lt;script&gt;document.title='owned'&lt;/script&gt;&lt;img src=x&gt;";
    assert!(
        page.contains(escaped),
        "the nickname shows as text:\n{page}"
    );
    assert!(
        !page.contains("<script"),
        "no script element was made:\n{page}"
    );
    assert!(!page.contains("<img"), "no image element was made");
    assert!(
        page.contains("<title>Keep introducer</title>"),
        "the title stands"
    );
    for uuid in [&c.uuids[0], &ghost.to_owned()] {
        assert!(
            page.contains(&format!("id=\"upload_storage-{uuid}\"")),
            "{uuid} listed"
        );
    }
    assert_no_secret("the introducer page", &page);
    let json = status_json(&Client::new(&c.intro.url));
    let uploads = &json["services"][0];
    assert_eq!(uploads["service"], "upload_storage");
    assert_eq!(uploads["live"], 2);
    let ghost_row = uploads["announcements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["uuid"] == ghost)
        .unwrap();
    assert_eq!(
        ghost_row["nickname"], evil,
        "the JSON carries the text as it came"
    );
    assert!(ghost_row["announced_at"].as_u64().is_some());
    assert!(json.get("subscribers_waiting").is_some());

    // The node learns the ghost as a peer: its page escapes the nickname too.
    let node = c.nodes[0].client();
    wait_for("the ghost listed as a peer", 15, || {
        (status_json(&node)["peers"][0]["uuid"] == ghost).then_some(())
    });
    let page = dom(node.base());
    assert!(
        page.contains("&lt;script&gt;document.title='owned'"),
        "{page}"
    );
    assert!(
        !page.contains("<script") && !page.contains("<img"),
        "{page}"
    );
    assert_eq!(
        row_state(&page, ghost).as_deref(),
        Some("down"),
        "nothing answers there"
    );

    // A withdrawal shows as such.
    announce_hostile(&c.intro.url, UPLOAD_STORAGE, ghost, evil, true);
    let page = dom(&c.intro.url);
    let row = &page[page
        .find(&format!("id=\"upload_storage-{ghost}\""))
        .unwrap()..];
    assert!(
        row.starts_with(&format!(
            "id=\"upload_storage-{ghost}\" data-state=\"withdrawn\""
        )),
        "{row}"
    );
}

#[test]
fn the_page_answers_browsers_only_sends_its_policy_and_can_be_turned_off() {
    let tmp = tempfile::tempdir().unwrap();
    let on = Keepstore::start(&tmp.path().join("on"), NodeOptions::default());
    let browser = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let r = on.client().call("GET", "/", None, &browser);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Not a browser: as before there was a page.
    assert_eq!(on.client().get("/").status, 400);
    assert_eq!(on.client().call("HEAD", "/", None, &browser).status, 400);
    let json = status_json(&on.client());
    assert_eq!(json["node"]["in_cluster"], false);
    assert!(json["pullsync"].is_null());

    let off = Keepstore::start(
        &tmp.path().join("off"),
        NodeOptions {
            config: Some("status_pages = false\n".into()),
            ..NodeOptions::default()
        },
    );
    assert_eq!(off.client().call("GET", "/", None, &browser).status, 400);
    assert_eq!(off.client().get("/_status.json").status, 404);
}
