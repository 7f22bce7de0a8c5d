//! A real S3-compatible server for the tests: moto's `moto_server`,
//! started on a free loopback port and killed when its guard drops.
//!
//! The server is `$KEEP_TEST_MOTO` if set, else `moto_server` on `PATH`;
//! without either the tests fail, saying how to install it.

#![allow(dead_code)]

use std::time::Duration;

use keep_volume::VolumeParams;
use keep_volume_s3::{S3Options, S3Spec};
use rusty_s3::S3Action;

pub use keep_volume_s3::testing::{ACCESS_KEY, Moto, SECRET_KEY, create_bucket, raw_bucket};

/// Every key in a bucket, sorted.
pub async fn keys(endpoint: &str, name: &str) -> Vec<String> {
    let (bucket, creds) = raw_bucket(endpoint, name);
    let url = bucket
        .list_objects_v2(Some(&creds))
        .sign(Duration::from_secs(600));
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&body).expect("listing");
    assert!(
        parsed.next_continuation_token.is_none(),
        "test listing fits a page"
    );
    parsed.contents.into_iter().map(|c| c.key).collect()
}

/// Puts an object directly, bypassing the volume.
pub async fn raw_put(endpoint: &str, name: &str, key: &str, data: &[u8]) {
    let (bucket, creds) = raw_bucket(endpoint, name);
    let url = bucket
        .put_object(Some(&creds), key)
        .sign(Duration::from_secs(600));
    let resp = reqwest::Client::new()
        .put(url)
        .header("content-length", data.len())
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "raw put: {}", resp.status());
}

/// Options for a volume at `s3://bucket/prefix` on `endpoint`, with the
/// race recovery off (the conformance suite trashes blocks it just wrote;
/// a node never does) and quick retries.
pub fn options(endpoint: &str, bucket: &str, prefix: &str, params: VolumeParams) -> S3Options {
    let spec = S3Spec::parse(&format!(
        "s3://{bucket}/{prefix}?endpoint={endpoint}&region=us-east-1"
    ))
    .expect("spec");
    let mut opts = S3Options::new(spec, params, ACCESS_KEY, SECRET_KEY);
    opts.signing_ttl = Duration::ZERO;
    opts.retry.base_delay = Duration::from_millis(20);
    opts
}
