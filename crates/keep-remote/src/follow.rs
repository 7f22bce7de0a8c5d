//! Keeping the pool in step with the introducer.

use std::collections::HashSet;

use keep_introducer::client::Peer;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{PeerInfo, Pool};

impl Pool {
    /// Feeds the pool from the introducer: `download` and `upload` are the
    /// watches of `download_storage` and `upload_storage` peers
    /// (`IntroducerClient::subscribe_to`). The returned task calls
    /// [`Pool::update`] with their current values now and after every
    /// change of either, until `cancel` is cancelled or both watches close.
    pub fn follow(
        &self,
        download: watch::Receiver<Vec<Peer>>,
        upload: watch::Receiver<Vec<Peer>>,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let pool = self.clone();
        tokio::spawn(async move {
            let (mut download, mut upload) = (download, upload);
            let (mut download_open, mut upload_open) = (true, true);
            loop {
                let readable: Vec<PeerInfo> = download
                    .borrow_and_update()
                    .iter()
                    .map(PeerInfo::from)
                    .collect();
                let writable: HashSet<String> = upload
                    .borrow_and_update()
                    .iter()
                    .map(|p| p.uuid.clone())
                    .collect();
                pool.update(readable, writable);
                if !download_open && !upload_open {
                    return;
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    changed = download.changed(), if download_open => download_open = changed.is_ok(),
                    changed = upload.changed(), if upload_open => upload_open = changed.is_ok(),
                }
            }
        })
    }
}
