//! The offers waiting for their delivery, and the deliveries running: a
//! bounded map from ruid to the offered entries.
//!
//! An offer is kept until its delivery is asked for (once), it is
//! cancelled, it expires ([`ServeSettings::offer_ttl`]), or
//! [`ServeSettings::max_offers`] newer ones push it out (oldest first).
//! A delivery running is kept apart, with a flag that [`OfferBook::cancel`]
//! sets and the delivery checks at each frame; it leaves the book when its
//! stream is dropped. Running deliveries are not counted against the bound:
//! each holds a response open, and the server bounds those.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use super::{ServeError, ServeSettings};
use crate::wire::OfferEntry;

/// The offers and deliveries of one serving node.
#[derive(Debug)]
pub(crate) struct OfferBook {
    settings: ServeSettings,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The offers waiting for their delivery, by ruid.
    offers: HashMap<u32, Offered>,
    /// Their ruids by age (a sequence number): also by expiry, since
    /// every offer lives as long.
    by_age: BTreeMap<u64, u32>,
    next_seq: u64,
    /// The deliveries running, by ruid, with their cancel flags.
    delivering: HashMap<u32, Arc<AtomicBool>>,
}

/// What one offer offered.
#[derive(Debug)]
struct Offered {
    seq: u64,
    expires: Instant,
    entries: Vec<OfferEntry>,
}

impl OfferBook {
    pub(crate) fn new(settings: ServeSettings) -> Self {
        OfferBook {
            settings,
            state: Mutex::default(),
        }
    }

    /// Keeps `entries` for their delivery under a fresh ruid, forgetting
    /// the oldest offer if the book is full; answers the ruid.
    pub(crate) fn record(&self, entries: Vec<OfferEntry>) -> u32 {
        let mut st = self.lock();
        st.expire(Instant::now());
        while st.offers.len() >= self.settings.max_offers.max(1) {
            let Some((_, oldest)) = st.by_age.pop_first() else {
                break;
            };
            st.offers.remove(&oldest);
        }
        let ruid = st.fresh_ruid();
        let seq = st.next_seq;
        st.next_seq += 1;
        st.by_age.insert(seq, ruid);
        let expires = Instant::now() + self.settings.offer_ttl;
        st.offers.insert(
            ruid,
            Offered {
                seq,
                expires,
                entries,
            },
        );
        ruid
    }

    /// A ruid no offer or delivery has now, not kept (for an offer with
    /// nothing to deliver).
    pub(crate) fn unrecorded_ruid(&self) -> u32 {
        self.lock().fresh_ruid()
    }

    /// Takes the offer `ruid` for its delivery if `check` accepts its
    /// entries: it leaves the waiting offers (a delivery is asked for
    /// once) and joins the running deliveries until the answer is dropped.
    /// An offer `check` refuses stays.
    pub(crate) fn take(
        self: &Arc<Self>,
        ruid: u32,
        check: impl FnOnce(&[OfferEntry]) -> Result<(), ServeError>,
    ) -> Result<(Vec<OfferEntry>, InFlight), ServeError> {
        let mut st = self.lock();
        st.expire(Instant::now());
        let offered = st.offers.get(&ruid).ok_or(ServeError::UnknownRuid(ruid))?;
        check(&offered.entries)?;
        let offered = st.offers.remove(&ruid).expect("just found");
        st.by_age.remove(&offered.seq);
        let cancelled = Arc::new(AtomicBool::new(false));
        st.delivering.insert(ruid, cancelled.clone());
        let in_flight = InFlight {
            book: self.clone(),
            ruid,
            cancelled,
        };
        Ok((offered.entries, in_flight))
    }

    /// Forgets the offer `ruid`, or stops its delivery at its next frame;
    /// answers whether there was one.
    pub(crate) fn cancel(&self, ruid: u32) -> bool {
        let mut st = self.lock();
        if let Some(offered) = st.offers.remove(&ruid) {
            st.by_age.remove(&offered.seq);
            return true;
        }
        match st.delivering.remove(&ruid) {
            Some(flag) => {
                flag.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// How many offers wait for their delivery (expired ones included
    /// until the next call that expires them).
    pub(crate) fn waiting(&self) -> usize {
        self.lock().offers.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Forgets the offers expired at `now` (the oldest first).
    fn expire(&mut self, now: Instant) {
        while let Some((_, ruid)) = self.by_age.first_key_value() {
            let ruid = *ruid;
            if self.offers.get(&ruid).is_some_and(|o| o.expires > now) {
                break;
            }
            self.by_age.pop_first();
            self.offers.remove(&ruid);
        }
    }

    /// A random nonzero ruid that no offer or delivery has.
    fn fresh_ruid(&self) -> u32 {
        loop {
            let ruid: u32 = rand::random();
            if ruid != 0 && !self.offers.contains_key(&ruid) && !self.delivering.contains_key(&ruid)
            {
                return ruid;
            }
        }
    }
}

/// A delivery running: its cancel flag, and its place in the book until
/// it is dropped.
#[derive(Debug)]
pub(crate) struct InFlight {
    book: Arc<OfferBook>,
    ruid: u32,
    cancelled: Arc<AtomicBool>,
}

impl InFlight {
    /// The offer's ruid.
    pub(crate) fn ruid(&self) -> u32 {
        self.ruid
    }

    /// Whether [`OfferBook::cancel`] was called for it.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.book.lock();
        // Only this delivery's entry: a later one may reuse the ruid.
        if st
            .delivering
            .get(&self.ruid)
            .is_some_and(|flag| Arc::ptr_eq(flag, &self.cancelled))
        {
            st.delivering.remove(&self.ruid);
        }
    }
}
