//! Every refusal the node makes, with its status, and proof that a refused
//! request stores nothing.

use keep_tests::http::raw;
use keep_tests::{Keepstore, NodeOptions, files_in_block_dirs, md5_hex, random_bytes};

const KEY: &str = "statuses-signing-key";
const ROOT: &str = "statuses-root-token";

fn node(dir: &std::path::Path, config: Option<String>) -> Keepstore {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("key"), KEY).unwrap();
    std::fs::write(dir.join("root"), ROOT).unwrap();
    let args = [
        "--blob-signing-key-file",
        "key",
        "--system-root-token-file",
        "root",
    ]
    .map(String::from)
    .to_vec();
    Keepstore::start(
        dir,
        NodeOptions {
            args,
            config,
            ..Default::default()
        },
    )
}

fn status_of(answer: &str) -> u16 {
    answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[test]
fn refused_puts_store_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let n = node(tmp.path(), None);
    let c = n.client();
    let data = random_bytes(5000, 1);
    let hex = md5_hex(&data);

    // Content that does not match the hash in the URL.
    let r = c.put(&format!("/{}", md5_hex(b"other")), &data);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("hash"), "{}", r.text());

    // A declared body over 64 MiB, refused before it is read.
    let over = format!(
        "PUT /{hex} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        (64 << 20) + 1
    );
    assert_eq!(status_of(&raw(&n.url, over.as_bytes(), false)), 413);

    // A chunked body that grows past 64 MiB while streaming.
    let big = vec![7u8; (64 << 20) + 4096];
    let mut chunked = format!(
        "PUT /{hex} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for piece in big.chunks(1 << 20) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(status_of(&raw(&n.url, &chunked, false)), 413);

    // A body shorter than its Content-Length (the client stops sending).
    let mut short = format!(
        "PUT /{hex} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .into_bytes();
    short.extend_from_slice(&data[..1000]);
    assert_eq!(status_of(&raw(&n.url, &short, true)), 400);

    // A malformed Content-Length, and a malformed hash.
    let bad_len = format!(
        "PUT /{hex} HTTP/1.1\r\nHost: x\r\nContent-Length: 12x\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(status_of(&raw(&n.url, bad_len.as_bytes(), false)), 400);
    assert_eq!(c.put(&format!("/{}", &hex[..31]), &data).status, 400);
    assert_eq!(
        c.put(&format!("/{}", hex.to_uppercase()), &data).status,
        400
    );

    assert!(
        files_in_block_dirs(&n.volumes[0]).is_empty(),
        "refused PUTs left files: {:?}",
        files_in_block_dirs(&n.volumes[0])
    );
    assert_eq!(
        c.with_token(ROOT).get("/index").text(),
        "",
        "and nothing is listed"
    );
}

#[test]
fn signature_and_lookup_statuses() {
    let tmp = tempfile::tempdir().unwrap();
    let n = node(tmp.path(), None);
    let user = n.client().with_token("user");
    let signed = user.put_block(b"foo");
    let (bare, _) = signed.split_once("+A").unwrap();
    // No token at all: 401.
    assert_eq!(n.client().get(&format!("/{signed}")).status, 401);
    // A token but no signature: 401.
    assert_eq!(user.get(&format!("/{bare}")).status, 401);
    // Another token: the signature is invalid: 400.
    assert_eq!(
        n.client()
            .with_token("someone-else")
            .get(&format!("/{signed}"))
            .status,
        400
    );
    // A tampered signature: 400.
    let sig_at = signed.find("+A").unwrap() + 2;
    let mut tampered = signed.clone().into_bytes();
    tampered[sig_at] = if tampered[sig_at] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        user.get(&format!("/{}", String::from_utf8(tampered).unwrap()))
            .status,
        400
    );
    // An expired signature: 401.
    let key = keep_locator::SigningKey::new(KEY);
    let loc: keep_locator::Locator = bare.parse().unwrap();
    let ttl = std::time::Duration::from_secs(336 * 3600);
    let expired = key.sign(&loc, "user", 1_000_000_000, ttl);
    assert_eq!(user.get(&format!("/{expired}")).status, 401);
    // A valid signature for a block nobody stored: 404.
    let missing: keep_locator::Locator = format!("{}+3", md5_hex(b"bar")).parse().unwrap();
    let far = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    assert_eq!(
        user.get(&format!("/{}", key.sign(&missing, "user", far, ttl)))
            .status,
        404
    );
    // A locator without a size: 405. A malformed one: 400.
    let no_size = key.sign(
        &keep_locator::Locator {
            size: None,
            ..loc.clone()
        },
        "user",
        far,
        ttl,
    );
    assert_eq!(user.get(&format!("/{no_size}")).status, 405);
    assert_eq!(
        user.get(&format!("/{}+3+bad hint", md5_hex(b"foo")).replace(' ', "%20"))
            .status,
        400
    );
    // Methods and routes that do not exist.
    assert_eq!(
        user.call("POST", &format!("/{signed}"), None, &[]).status,
        405
    );
    assert_eq!(user.get("/no/such/route").status, 400);
}

#[test]
fn admin_routes_need_the_root_token() {
    let tmp = tempfile::tempdir().unwrap();
    let n = node(tmp.path(), None);
    let hex = md5_hex(b"foo");
    for (method, path) in [
        ("GET", "/index".to_owned()),
        ("GET", format!("/index/{}", &hex[..3])),
        ("PUT", format!("/untrash/{hex}+3")),
        ("DELETE", format!("/{hex}+3")),
    ] {
        assert_eq!(
            n.client().call(method, &path, None, &[]).status,
            401,
            "{method} {path} without a token"
        );
        assert_eq!(
            n.client()
                .with_token("wrong")
                .call(method, &path, None, &[])
                .status,
            403,
            "{method} {path} with a wrong token"
        );
    }
    assert_eq!(
        n.client().with_token(ROOT).get("/index/xyz").status,
        400,
        "bad prefix"
    );
}

#[test]
fn full_and_read_only_volumes() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("full");
    // Every volume full: 507.
    let full = node(
        &tmp.path().join("a"),
        Some(format!(
            "volumes = [{{ path = {:?}, min_free = \"1000000TiB\" }}]\n",
            vol.display().to_string()
        )),
    );
    let r = full.client().put(&format!("/{}", md5_hex(b"foo")), b"foo");
    assert_eq!(r.status, 507, "{}", r.text());
    drop(full);
    // No writable volume: 503.
    let ro = node(
        &tmp.path().join("b"),
        Some(format!(
            "volumes = [{{ path = {:?}, read_only = true }}]\n",
            vol.display().to_string()
        )),
    );
    let r = ro.client().put(&format!("/{}", md5_hex(b"foo")), b"foo");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(files_in_block_dirs(&vol).is_empty());
}

#[test]
fn config_errors_name_the_field_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "blob_signing_ttl = \"fortnight\"\n").unwrap();
    let out = std::process::Command::new(keep_tests::bin_path("keepstore"))
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("blob_signing_ttl"),
        "{err}"
    );
    std::fs::write(tmp.path().join("key"), "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\n").unwrap();
    std::fs::write(
        &cfg,
        format!(
            "blob_signing_key_file = {:?}\nlisten = \"nonsense\"\n",
            tmp.path().join("key")
        ),
    )
    .unwrap();
    let out = std::process::Command::new(keep_tests::bin_path("keepstore"))
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen") && !err.contains("kkkkkkkk"),
        "secrets stay out of errors: {err}"
    );
}
