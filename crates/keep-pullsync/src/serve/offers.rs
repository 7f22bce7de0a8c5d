//! The offering side: cursors, and pages of a bin's entries (waiting for
//! new ones on a live request).

use std::sync::Arc;
use std::time::Duration;

use keep_store::Store;
use tokio::time::Instant;

use super::book::OfferBook;
use super::{Deliverer, ServeError, ServeSettings};
use crate::bins::is_bin;
use crate::index::{Cursors, IndexEntry, PullIndex};
use crate::wire::{CursorsReply, MAX_OFFER_ENTRIES, Offer, OfferEntry, OfferRequest};

/// Answers cursor and offer requests from the node's [`PullIndex`], and
/// keeps what it offered for the [`Deliverer`]s it makes.
#[derive(Debug, Clone)]
pub struct Offerer {
    index: Arc<PullIndex>,
    book: Arc<OfferBook>,
}

impl Offerer {
    /// An offerer over `index`, keeping offers as `settings` say.
    pub fn new(index: Arc<PullIndex>, settings: ServeSettings) -> Self {
        Offerer {
            index,
            book: Arc::new(OfferBook::new(settings)),
        }
    }

    /// A deliverer of this offerer's offers, reading blocks from `store`.
    pub fn deliverer(&self, store: Arc<Store>) -> Deliverer {
        Deliverer::new(store, self.book.clone())
    }

    /// The epoch and every bin's cursor, from one reading of the index.
    pub fn cursors(&self) -> CursorsReply {
        self.index.snapshot().into()
    }

    /// How many offers wait for their delivery.
    pub fn offers_waiting(&self) -> usize {
        self.book.waiting()
    }

    /// The entries of `req.bin` with BinIDs in `req.from..=req.to`, at most
    /// `min(req.limit, MAX_OFFER_ENTRIES)`, in BinID order.
    ///
    /// `topmost` is the highest BinID the offer covers: the last entry's
    /// when the page is full; when the range held no more, the highest of
    /// `min(req.to, cursor)` and the last entry's (the puller records the
    /// interval as synced even when nothing in it is left). When
    /// `req.from` is beyond the bin's cursor (a live request), the answer
    /// waits until the cursor reaches it, at most `wait`; after `wait`, or
    /// at once when the index gets a new epoch meanwhile, it is empty with
    /// `topmost = req.from - 1` (nothing covered).
    ///
    /// A non-empty offer is kept for its delivery under its fresh nonzero
    /// `ruid`; an empty one has a fresh ruid too, but nothing to deliver.
    ///
    /// # Errors
    ///
    /// [`ServeError::NoSuchBin`]; [`ServeError::BadRequest`] for `from` 0
    /// (BinIDs start at 1), `from > to`, or `limit` 0;
    /// [`ServeError::Db`] if the index read fails.
    pub async fn offer(&self, req: OfferRequest, wait: Duration) -> Result<Offer, ServeError> {
        check(&req)?;
        let bin = usize::from(req.bin);
        let mut watch = self.index.subscribe();
        let first = *watch.borrow_and_update();
        if first.bins[bin] < req.from {
            let deadline = Instant::now() + wait;
            loop {
                let changed = tokio::time::timeout_at(deadline, watch.changed()).await;
                // Timed out, or the index is gone: nothing came.
                let Ok(Ok(())) = changed else {
                    return Ok(self.nothing(&req));
                };
                let now: Cursors = *watch.borrow_and_update();
                if now.epoch != first.epoch {
                    return Ok(self.nothing(&req));
                }
                if now.bins[bin] >= req.from {
                    break;
                }
            }
        }
        // Read before the entries: every BinID up to it was committed
        // before the read below starts, so the read sees all of them.
        let now = self.index.snapshot();
        let limit = req.limit.min(MAX_OFFER_ENTRIES) as usize;
        let entries = self.range(req.bin, req.from, req.to, limit).await?;
        // A reset meanwhile: these entries are another numbering's.
        if now.epoch != first.epoch || self.index.epoch() != first.epoch {
            return Ok(self.nothing(&req));
        }
        let cursor = now.bins[bin];
        let topmost = match entries.last() {
            Some(last) if entries.len() == limit => last.bin_id,
            last => req
                .to
                .min(cursor)
                .max(last.map_or(0, |e| e.bin_id))
                .max(req.from - 1),
        };
        let entries: Vec<OfferEntry> = entries.into_iter().map(OfferEntry::from).collect();
        let ruid = if entries.is_empty() {
            self.book.unrecorded_ruid()
        } else {
            self.book.record(entries.clone())
        };
        Ok(Offer {
            epoch: first.epoch,
            ruid,
            topmost,
            entries,
        })
    }

    /// The empty offer of a live request that got nothing.
    fn nothing(&self, req: &OfferRequest) -> Offer {
        Offer {
            epoch: self.index.epoch(),
            ruid: self.book.unrecorded_ruid(),
            topmost: req.from - 1,
            entries: Vec::new(),
        }
    }

    /// [`PullIndex::range`] on a blocking thread.
    async fn range(
        &self,
        bin: u8,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<IndexEntry>, ServeError> {
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || index.range(bin, from, to, limit))
            .await
            .map_err(|e| ServeError::Task(e.to_string()))?
            .map_err(ServeError::from)
    }
}

/// Refuses a request that cannot be answered as asked.
fn check(req: &OfferRequest) -> Result<(), ServeError> {
    if !is_bin(req.bin) {
        return Err(ServeError::NoSuchBin(req.bin));
    }
    if req.from == 0 {
        return Err(ServeError::BadRequest("BinIDs start at 1"));
    }
    if req.from > req.to {
        return Err(ServeError::BadRequest("from is past to"));
    }
    if req.limit == 0 {
        return Err(ServeError::BadRequest("limit is 0"));
    }
    Ok(())
}
