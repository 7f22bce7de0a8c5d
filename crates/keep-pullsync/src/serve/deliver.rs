//! The delivering side: the blocks a puller wants of an offer, as one body
//! of frames ([`frame`](super::frame)), read through the storage core.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use keep_locator::BlockHash;
use keep_store::{Found, Store, StoreError, VerifiedBlock};

use super::ServeError;
use super::book::{InFlight, OfferBook};
use super::frame::encode_header;
use crate::bitvector::BitVector;
use crate::wire::{DeliveryHeader, OfferEntry};

/// Delivers the blocks of an [`Offerer`](super::Offerer)'s offers (made
/// with [`Offerer::deliverer`](super::Offerer::deliverer)).
#[derive(Debug, Clone)]
pub struct Deliverer {
    store: Arc<Store>,
    book: Arc<OfferBook>,
}

impl Deliverer {
    pub(crate) fn new(store: Arc<Store>, book: Arc<OfferBook>) -> Self {
        Deliverer { store, book }
    }

    /// The blocks of offer `ruid` that `want` asks for (bit `i` for entry
    /// `i`), as a body of frames in the offer's order.
    ///
    /// The offer is used up: a second delivery of it is refused. Each
    /// block is looked for on the healthy volumes, then on the suspect
    /// ones, and its bytes come out verified ([`Store::verify`]); a block
    /// gone since the offer gets a frame marked missing, with no bytes.
    /// One block's bytes are in memory at a time (the next block is read
    /// once the body has taken the last one).
    ///
    /// The body ends with an error, and the frames it had not sent, when a
    /// block cannot be read (a volume fault, no buffer memory: the puller
    /// asks again later), when its stored copies fail their checksum (they
    /// are moved aside: asked again, it is missing), and when the delivery
    /// is [cancelled](Self::cancel) (at the next frame).
    ///
    /// # Errors
    ///
    /// [`ServeError::UnknownRuid`] if no offer `ruid` waits for its
    /// delivery; [`ServeError::BadWant`] if `want`'s length is not the
    /// offer's entry count (the offer then stays).
    pub fn deliver(&self, ruid: u32, want: &BitVector) -> Result<Delivery, ServeError> {
        let (entries, in_flight) = self.book.take(ruid, |entries| {
            if want.len() == entries.len() {
                Ok(())
            } else {
                Err(ServeError::BadWant {
                    bits: want.len(),
                    entries: entries.len(),
                })
            }
        })?;
        let wanted: Vec<OfferEntry> = want.iter_ones().map(|i| entries[i]).collect();
        let frames = wanted.len();
        let sending = Sending {
            store: self.store.clone(),
            wanted: wanted.into_iter(),
            in_flight,
            block: None,
        };
        Ok(Delivery {
            frames,
            stream: sending.into_stream().boxed(),
        })
    }

    /// Forgets offer `ruid`, or stops its delivery at its next frame;
    /// answers whether there was either.
    pub fn cancel(&self, ruid: u32) -> bool {
        self.book.cancel(ruid)
    }
}

/// The body of one delivery: the bytes of its frames, in order, ending
/// with an error if it cannot go on (see [`Deliverer::deliver`]).
pub struct Delivery {
    frames: usize,
    stream: BoxStream<'static, Result<Bytes, ServeError>>,
}

impl Delivery {
    /// How many frames the body carries when it completes (one per wanted
    /// block).
    pub fn frames(&self) -> usize {
        self.frames
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl Stream for Delivery {
    type Item = Result<Bytes, ServeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.poll_next_unpin(cx)
    }
}

/// A delivery on its way.
struct Sending {
    store: Arc<Store>,
    wanted: std::vec::IntoIter<OfferEntry>,
    /// Its cancel flag; it leaves the book when this is dropped.
    in_flight: InFlight,
    /// The block whose bytes are being sent.
    block: Option<BoxStream<'static, Result<Bytes, StoreError>>>,
}

impl Sending {
    fn into_stream(self) -> impl Stream<Item = Result<Bytes, ServeError>> + Send + 'static {
        futures::stream::unfold(Some(self), |state| async move {
            let mut st = state?;
            while let Some(block) = &mut st.block {
                match block.next().await {
                    Some(Ok(chunk)) if chunk.is_empty() => {}
                    Some(Ok(chunk)) => return Some((Ok(chunk), Some(st))),
                    Some(Err(e)) => return Some((Err(e.into()), None)),
                    None => st.block = None,
                }
            }
            if st.in_flight.is_cancelled() {
                return Some((Err(ServeError::Cancelled(st.in_flight.ruid())), None));
            }
            let hash = st.wanted.next()?.block_hash();
            match read(&st.store, hash).await {
                Ok(Some(block)) => {
                    let header = encode_header(&DeliveryHeader::present(hash, block.size));
                    st.block = Some(block.into_stream());
                    Some((Ok(header), Some(st)))
                }
                Ok(None) => Some((Ok(encode_header(&DeliveryHeader::missing(hash))), Some(st))),
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}

/// The block `hash`, verified as it streams, from the healthy volumes,
/// else the suspect ones; `None` if no volume has it.
async fn read(store: &Store, hash: BlockHash) -> Result<Option<VerifiedBlock>, ServeError> {
    let mut lookup = store.lookup(hash, false);
    let found = match lookup.healthy().await? {
        Some(found) => Some(found),
        None => lookup.suspect().await?,
    };
    match found {
        Some(Found::Block(block)) => Ok(Some(block)),
        Some(Found::Exists(_)) => {
            Err(StoreError::Read("a lookup for bytes answered a size".into()).into())
        }
        None => match lookup.verdict() {
            StoreError::NotFound => Ok(None),
            e => Err(e.into()),
        },
    }
}
