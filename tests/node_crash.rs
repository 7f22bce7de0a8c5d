//! A node killed with SIGKILL during concurrent writes comes back with every
//! acknowledged block intact and no partial block visible.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use keep_tests::{
    Keepstore, NodeOptions, blocks_on_disk, files_in_block_dirs, md5_hex, random_bytes, wait_for,
};

#[test]
fn sigkill_during_concurrent_writes_loses_no_acknowledged_block() {
    let tmp = tempfile::tempdir().unwrap();
    let mut node = Keepstore::start(tmp.path(), NodeOptions::default());
    let acked: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..6u64)
        .map(|w| {
            let (acked, stop, url) = (acked.clone(), stop.clone(), node.url.clone());
            std::thread::spawn(move || {
                let client = keep_tests::Client::new(&url);
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // Sizes from a few bytes to several chunks.
                    let size =
                        [10, 4096, 300_000, 1 << 20, (2 << 20) + 17, 5 << 20][(i + w as usize) % 6];
                    let data = random_bytes(size, w * 1_000_000 + i as u64);
                    let path = format!("/{}", md5_hex(&data));
                    // A request cut off by the kill is not acknowledged.
                    let ok = client
                        .try_call("PUT", &path, Some(&data), &[])
                        .is_ok_and(|r| r.status == 200);
                    if !ok {
                        break;
                    }
                    acked.lock().unwrap().push(data);
                }
            })
        })
        .collect();
    wait_for("some acknowledged writes", 60, || {
        (acked.lock().unwrap().len() >= 40).then_some(())
    });
    node.kill();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // Before the restart: whatever has a block's name is that block, whole.
    let vol = node.volumes[0].clone();
    for (name, md5) in blocks_on_disk(&vol) {
        assert_eq!(name, md5, "a file under a block's name holds other bytes");
    }
    node.restart();
    // After it: leftovers of interrupted writes are gone, every acknowledged
    // block reads back intact.
    let leftovers: Vec<String> = files_in_block_dirs(&vol)
        .into_iter()
        .filter(|n| n.starts_with("tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files survived the restart: {leftovers:?}"
    );
    let client = node.client();
    for data in &acked {
        let r = client.get(&format!("/{}+{}", md5_hex(data), data.len()));
        assert_eq!(r.status, 200, "an acknowledged block is missing");
        assert!(r.body == *data, "an acknowledged block changed");
    }
    let index = client.get("/index");
    assert_eq!(
        index.status, 401,
        "index needs the admin token: the node is really serving"
    );
    eprintln!("{} acknowledged blocks survived SIGKILL", acked.len());
}
