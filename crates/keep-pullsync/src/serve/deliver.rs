//! The delivering side: the blocks a puller wants of an offer, as one body
//! of frames ([`frame`](super::frame)), read through the storage core.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
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
    /// Frame headers and the bytes of small blocks are gathered into
    /// pieces of about 256 KiB before they go to the body (a delivery of
    /// 4 KiB blocks is then a few large writes, not two small ones per
    /// block); a chunk of 64 KiB or more goes as it is.
    /// So at most one gathered piece and one block's bytes are in memory
    /// (the next block is read once the body has taken what was before).
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
            gathered: BytesMut::new(),
            next: None,
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

/// Pieces are gathered into one buffer until it holds this many bytes.
const GATHER: usize = 256 << 10;

/// A chunk of at least this many bytes is not copied into the buffer: it
/// goes to the body as it is (after what was gathered before it).
const PASS: usize = 64 << 10;

/// A delivery on its way.
struct Sending {
    store: Arc<Store>,
    wanted: std::vec::IntoIter<OfferEntry>,
    /// Its cancel flag; it leaves the book when this is dropped.
    in_flight: InFlight,
    /// The block whose bytes are being sent.
    block: Option<BoxStream<'static, Result<Bytes, StoreError>>>,
    /// Headers and small chunks not yet handed to the body.
    gathered: BytesMut,
    /// What goes to the body after `gathered`: a large chunk, or the
    /// error that ends the body.
    next: Option<Result<Bytes, ServeError>>,
}

impl Sending {
    fn into_stream(self) -> impl Stream<Item = Result<Bytes, ServeError>> + Send + 'static {
        futures::stream::unfold(Some(self), |state| async move {
            let mut st = state?;
            loop {
                if let Some(next) = st.next.take() {
                    let go_on = next.is_ok();
                    return Some((next, go_on.then_some(st)));
                }
                if st.gathered.len() >= GATHER {
                    return Some((Ok(st.take_gathered()), Some(st)));
                }
                let next = match st.next_piece().await {
                    Ok(Some(piece)) if piece.len() < PASS => {
                        st.gathered.extend_from_slice(&piece);
                        continue;
                    }
                    Ok(Some(piece)) => Ok(piece),
                    Ok(None) if st.gathered.is_empty() => return None,
                    Ok(None) => return Some((Ok(st.take_gathered()), Some(st))),
                    Err(e) => Err(e),
                };
                if st.gathered.is_empty() {
                    let go_on = next.is_ok();
                    return Some((next, go_on.then_some(st)));
                }
                st.next = Some(next);
                return Some((Ok(st.take_gathered()), Some(st)));
            }
        })
    }

    fn take_gathered(&mut self) -> Bytes {
        std::mem::take(&mut self.gathered).freeze()
    }

    /// The next bytes of the body: a chunk of the current block, or the
    /// next frame's header (its block read and verified as it streams);
    /// `None` after the last frame.
    async fn next_piece(&mut self) -> Result<Option<Bytes>, ServeError> {
        while let Some(block) = &mut self.block {
            match block.next().await {
                Some(Ok(chunk)) if chunk.is_empty() => {}
                Some(Ok(chunk)) => return Ok(Some(chunk)),
                Some(Err(e)) => return Err(e.into()),
                None => self.block = None,
            }
        }
        if self.in_flight.is_cancelled() {
            return Err(ServeError::Cancelled(self.in_flight.ruid()));
        }
        let Some(entry) = self.wanted.next() else {
            return Ok(None);
        };
        let hash = entry.block_hash();
        Ok(Some(match read(&self.store, hash).await? {
            Some(block) => {
                let header = encode_header(&DeliveryHeader::present(hash, block.size));
                self.block = Some(block.into_stream());
                header
            }
            None => encode_header(&DeliveryHeader::missing(hash)),
        }))
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
