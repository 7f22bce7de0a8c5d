//! The S3 volume against the conformance suite every backend passes, on
//! a real S3-compatible server (moto): once flat at a bucket prefix, once
//! sharded by hash prefix with tiny listing pages.

mod common;

use std::sync::Arc;
use std::time::Duration;

use keep_volume::{Volume, conformance};
use keep_volume_s3::S3Volume;

use common::{Moto, create_bucket, options};

/// S3 keeps LastModified to the second.
fn suite_options() -> conformance::Options {
    conformance::Options {
        mtime_resolution: Duration::from_secs(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_flat() {
    let moto = Moto::start();
    let endpoint = moto.endpoint();
    create_bucket(&endpoint, "flat").await;
    conformance::run(suite_options(), |params| {
        let opts = options(&endpoint, "flat", &params.uuid.clone(), params);
        async move { Arc::new(S3Volume::open(opts).await.expect("open")) as Arc<dyn Volume> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_sharded_small_pages() {
    let moto = Moto::start();
    let endpoint = moto.endpoint();
    create_bucket(&endpoint, "sharded").await;
    conformance::run(suite_options(), |params| {
        let mut opts = options(
            &endpoint,
            "sharded",
            &format!("keep/{}", params.uuid),
            params,
        );
        opts.spec.prefix_length = 3;
        opts.index_page_size = 3;
        async move { Arc::new(S3Volume::open(opts).await.expect("open")) as Arc<dyn Volume> }
    })
    .await;
}
