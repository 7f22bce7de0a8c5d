//! Blocks on their way: a block offered by several peers at once is
//! wanted from one of them only.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use keep_locator::BlockHash;
use tokio::sync::Notify;

/// The blocks some puller of this node is fetching. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    fetching: Mutex<HashSet<BlockHash>>,
    released: Notify,
}

/// A claim on one block; dropping it releases the block.
#[derive(Debug)]
pub struct Claim {
    inner: Arc<Inner>,
    hash: BlockHash,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.inner.lock().remove(&self.hash);
        self.inner.released.notify_waiters();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashSet<BlockHash>> {
        self.fetching.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Claims {
    /// Claims `hash`; `None` if another puller has it.
    pub fn claim(&self, hash: BlockHash) -> Option<Claim> {
        self.inner.lock().insert(hash).then(|| Claim {
            inner: self.inner.clone(),
            hash,
        })
    }

    /// Whether a puller has `hash`.
    pub fn is_claimed(&self, hash: &BlockHash) -> bool {
        self.inner.lock().contains(hash)
    }

    /// Waits until nobody has `hash`, at most `limit`; true if released.
    pub async fn released(&self, hash: &BlockHash, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.inner.released.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if !self.is_claimed(hash) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_claim_per_block_until_released() {
        let claims = Claims::default();
        let h = BlockHash::of(b"x");
        let first = claims.claim(h).expect("free");
        assert!(claims.claim(h).is_none(), "claimed twice");
        assert!(!claims.released(&h, Duration::from_millis(20)).await);
        let waiter = {
            let claims = claims.clone();
            tokio::spawn(async move { claims.released(&h, Duration::from_secs(10)).await })
        };
        tokio::task::yield_now().await;
        drop(first);
        assert!(waiter.await.unwrap(), "released wakes the waiter");
        assert!(claims.claim(h).is_some());
    }
}
