//! Telling someone which blocks the node gained or lost: every volume
//! change the storage core makes (a write, a trash, an untrash, a block
//! moved aside) is reported to the one [`BlockObserver`] a node sets with
//! [`Store::observe`](crate::Store::observe). Pullsync's index keeps
//! itself current this way.
//!
//! Reports are hints, made after the volume answered: an observer that
//! needs the truth asks the store again (a trash on one volume leaves a
//! copy on another; a quarantine of a copy rewritten since moves nothing).
//! They must be cheap and must not block: they are called on the data path.

use std::sync::{Arc, OnceLock};

use keep_locator::BlockHash;

/// Who hears of block changes.
pub trait BlockObserver: Send + Sync + std::fmt::Debug + 'static {
    /// A volume now holds `hash` (written, rewritten or untrashed); `size`
    /// when the writer knew it up front.
    fn stored(&self, hash: BlockHash, size: Option<u64>);

    /// A volume no longer holds `hash` (trashed or moved aside).
    fn removed(&self, hash: BlockHash);
}

/// The store's observer, once set; shared with every volume wrapper.
#[derive(Debug, Default)]
pub(crate) struct ObserverSlot(OnceLock<Arc<dyn BlockObserver>>);

impl ObserverSlot {
    /// Sets the observer; false if one was set already.
    pub(crate) fn set(&self, observer: Arc<dyn BlockObserver>) -> bool {
        self.0.set(observer).is_ok()
    }

    pub(crate) fn stored(&self, hash: &BlockHash, size: Option<u64>) {
        if let Some(o) = self.0.get() {
            o.stored(*hash, size);
        }
    }

    pub(crate) fn removed(&self, hash: &BlockHash) {
        if let Some(o) = self.0.get() {
            o.removed(*hash);
        }
    }
}
