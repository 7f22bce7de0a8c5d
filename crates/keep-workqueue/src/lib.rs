//! A replaceable, closable work list: Keep's `WorkQueue` (a.k.a.
//! `BlockWorkList`).
//!
//! A keepstore node receives whole lists of work from the data manager:
//! "pull these blocks from those servers" (`PUT /pull`) and "trash these
//! blocks" (`PUT /trash`). Each new list *replaces* the previous one; any
//! item of the old list that nobody has started is simply forgotten, while
//! work already in progress finishes undisturbed. A pool of workers takes
//! items one at a time, waiting while the list is empty.
//!
//! [`WorkQueue`] implements exactly that, for any item type `T`:
//!
//! * [`WorkQueue::replace`] swaps in a new list atomically;
//! * [`WorkQueue::next`] hands the next item to a worker, waiting (without
//!   busy-polling) while the list is empty; the item comes wrapped in a
//!   [`Ticket`] that counts as "in progress" until it is
//!   [`done`](Ticket::done) or dropped;
//! * [`WorkQueue::status`] reports how many items are queued and how many
//!   are in progress ([`QueueStatus`]);
//! * [`WorkQueue::delete`] removes queued items matching a predicate;
//! * [`WorkQueue::close`] shuts the queue down: waiting workers wake up with
//!   [`QueueError::Closed`], as does every later call.
//!
//! The queue is a cheap handle ([`Clone`] shares the same list), safe to use
//! from many tasks and threads at once. [`WorkQueue::next`] is
//! cancellation-safe: an item leaves the queue only at the moment the
//! future completes with it, so dropping a waiting `next()` future (in a
//! `select!`, a timeout, an aborted task) never loses an item.
//!
//! # Example
//!
//! ```
//! use keep_workqueue::{QueueError, QueueStatus, WorkQueue};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let queue: WorkQueue<String> = WorkQueue::with_limit(1000);
//!
//! // A worker: take items until the queue is closed.
//! let worker = tokio::spawn({
//!     let queue = queue.clone();
//!     async move {
//!         let mut handled = Vec::new();
//!         loop {
//!             match queue.next().await {
//!                 Ok(ticket) => {
//!                     handled.push(ticket.clone()); // deref to the item
//!                     ticket.done();
//!                 }
//!                 Err(QueueError::Closed) => return handled,
//!                 Err(e) => panic!("unexpected: {e}"),
//!             }
//!         }
//!     }
//! });
//!
//! // The "PUT /pull" handler replaces the whole list at once.
//! queue.replace(vec!["acbd18db4cc2f85cedef654fccc4a4d8".to_string()]).unwrap();
//! queue.idle().await;
//! assert_eq!(queue.status(), QueueStatus { queued: 0, in_progress: 0 });
//!
//! queue.close();
//! assert_eq!(worker.await.unwrap().len(), 1);
//! assert_eq!(queue.replace(Vec::new()), Err(QueueError::Closed));
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// Why a [`WorkQueue`] operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue has been [closed](WorkQueue::close).
    #[error("work queue is closed")]
    Closed,
    /// [`WorkQueue::replace`] was given more items than the queue's limit
    /// (see [`WorkQueue::with_limit`]); the current list was left untouched.
    #[error("work list has {len} items, more than the limit of {max}")]
    TooLong {
        /// Number of items in the rejected list.
        len: usize,
        /// The queue's capacity limit.
        max: usize,
    },
}

/// A snapshot of a [`WorkQueue`]'s counters, from [`WorkQueue::status`].
///
/// Serializes with Keep's `status.json` field names:
/// `{"Queued": 3, "InProgress": 1}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueStatus {
    /// Items waiting in the current list, not yet handed to a worker.
    pub queued: usize,
    /// Items handed to workers whose [`Ticket`] is still alive (this
    /// includes items of earlier, since replaced lists).
    pub in_progress: usize,
}

/// The mutable part of the queue, guarded by one mutex.
struct State<T> {
    queue: VecDeque<T>,
    in_progress: usize,
    closed: bool,
    /// Number of successful [`WorkQueue::replace`] calls so far.
    generation: u64,
}

impl<T> State<T> {
    fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_progress == 0
    }
}

struct Inner<T> {
    state: Mutex<State<T>>,
    /// `None` means unlimited.
    limit: Option<usize>,
    /// Woken (all waiters) when items arrive or the queue closes.
    items: Notify,
    /// Woken (all waiters) when the queue may have become idle.
    idle: Notify,
}

impl<T> Inner<T> {
    /// Locks the state. No user code runs under the lock except the
    /// [`WorkQueue::delete`] predicate; if that panics, the queue is still
    /// structurally sound, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Send + 'static> Inner<T> {
    /// Moves the front item to "in progress". Caller holds the lock.
    fn take_locked(self: &Arc<Self>, state: &mut State<T>) -> Option<Ticket<T>> {
        let item = state.queue.pop_front()?;
        state.in_progress += 1;
        Some(Ticket {
            item,
            generation: state.generation,
            _guard: InProgress {
                inner: Arc::clone(self) as Arc<dyn Finish>,
            },
        })
    }
}

/// A replaceable list of work items shared by any number of workers.
///
/// Cloning is cheap and yields another handle to the *same* queue. See the
/// [crate documentation](crate) for an overview and an example.
pub struct WorkQueue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for WorkQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("WorkQueue")
            .field("queued", &state.queue.len())
            .field("in_progress", &state.in_progress)
            .field("closed", &state.closed)
            .field("generation", &state.generation)
            .field("limit", &self.inner.limit)
            .finish()
    }
}

impl<T: Send + 'static> Default for WorkQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static> WorkQueue<T> {
    /// Creates an empty, open queue with no limit on the list length.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// Creates an empty, open queue whose lists may hold at most
    /// `max_items` items; a longer list makes [`replace`](Self::replace)
    /// fail with [`QueueError::TooLong`].
    pub fn with_limit(max_items: usize) -> Self {
        Self::build(Some(max_items))
    }

    fn build(limit: Option<usize>) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    in_progress: 0,
                    closed: false,
                    generation: 0,
                }),
                limit,
                items: Notify::new(),
                idle: Notify::new(),
            }),
        }
    }

    /// The capacity limit given to [`with_limit`](Self::with_limit), or
    /// `None` for an unlimited queue.
    pub fn limit(&self) -> Option<usize> {
        self.inner.limit
    }

    /// Replaces the whole list with `items`, in order.
    ///
    /// Items of the old list that no worker has taken yet are dropped;
    /// items already handed out stay in progress and finish undisturbed.
    /// Waiting workers wake up. Each successful call increments the
    /// [generation](Self::generation).
    ///
    /// # Errors
    ///
    /// [`QueueError::Closed`] after [`close`](Self::close);
    /// [`QueueError::TooLong`] if `items` exceeds the queue's limit. In both
    /// cases the current list is left untouched.
    pub fn replace(&self, items: Vec<T>) -> Result<(), QueueError> {
        let old;
        let (wake_items, wake_idle) = {
            let mut state = self.inner.lock();
            if state.closed {
                return Err(QueueError::Closed);
            }
            if let Some(max) = self.inner.limit.filter(|&max| items.len() > max) {
                return Err(QueueError::TooLong {
                    len: items.len(),
                    max,
                });
            }
            old = std::mem::replace(&mut state.queue, VecDeque::from(items));
            state.generation += 1;
            (!state.queue.is_empty(), state.is_idle())
        };
        // Drop the old items outside the lock: their destructors are user
        // code.
        drop(old);
        if wake_items {
            self.inner.items.notify_waiters();
        }
        if wake_idle {
            self.inner.idle.notify_waiters();
        }
        Ok(())
    }

    /// Takes the next item, waiting while the list is empty.
    ///
    /// The returned [`Ticket`] dereferences to the item and counts as in
    /// progress until it is [`done`](Ticket::done) or dropped.
    ///
    /// Cancellation-safe: the item is removed from the list only when this
    /// future completes with it, so dropping the future while it waits
    /// loses nothing.
    ///
    /// # Errors
    ///
    /// [`QueueError::Closed`] if the queue is closed, before or while
    /// waiting.
    pub async fn next(&self) -> Result<Ticket<T>, QueueError> {
        loop {
            // Register interest *before* looking at the state, so that a
            // `replace` or `close` between the check and the await still
            // wakes us.
            let notified = self.inner.items.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(ticket) = self.try_next()? {
                return Ok(ticket);
            }
            notified.await;
        }
    }

    /// Takes the next item if one is queued, without waiting.
    ///
    /// # Errors
    ///
    /// [`QueueError::Closed`] after [`close`](Self::close).
    pub fn try_next(&self) -> Result<Option<Ticket<T>>, QueueError> {
        let mut state = self.inner.lock();
        if state.closed {
            return Err(QueueError::Closed);
        }
        Ok(self.inner.take_locked(&mut state))
    }

    /// Removes every *queued* item for which `pred` returns `true` and
    /// returns how many were removed. Items in progress are not affected.
    ///
    /// `pred` runs while the queue is locked: keep it short, and do not
    /// call back into this queue from it (that would deadlock). If `pred`
    /// panics, the list is left unchanged.
    ///
    /// # Errors
    ///
    /// [`QueueError::Closed`] after [`close`](Self::close).
    pub fn delete(&self, mut pred: impl FnMut(&T) -> bool) -> Result<usize, QueueError> {
        let mut removed = Vec::new();
        let idle = {
            let mut state = self.inner.lock();
            if state.closed {
                return Err(QueueError::Closed);
            }
            // Ask the predicate about every item first, so that a panicking
            // predicate leaves the list unchanged.
            let doomed: Vec<bool> = state.queue.iter().map(&mut pred).collect();
            let queue = std::mem::take(&mut state.queue);
            let mut kept = VecDeque::with_capacity(queue.len());
            for (item, doomed) in queue.into_iter().zip(doomed) {
                if doomed {
                    removed.push(item);
                } else {
                    kept.push_back(item);
                }
            }
            state.queue = kept;
            state.is_idle()
        };
        let count = removed.len();
        drop(removed);
        if count > 0 && idle {
            self.inner.idle.notify_waiters();
        }
        Ok(count)
    }

    /// How many items are queued and how many are in progress.
    ///
    /// Works after [`close`](Self::close) too (nothing is queued then).
    pub fn status(&self) -> QueueStatus {
        let state = self.inner.lock();
        QueueStatus {
            queued: state.queue.len(),
            in_progress: state.in_progress,
        }
    }

    /// How many lists have been installed by [`replace`](Self::replace) so
    /// far (0 for a new queue). Every [`Ticket`] records the generation its
    /// item came from ([`Ticket::generation`]).
    pub fn generation(&self) -> u64 {
        self.inner.lock().generation
    }

    /// Closes the queue.
    ///
    /// Queued items are dropped; items in progress finish undisturbed (their
    /// tickets still decrement the in-progress count). Workers waiting in
    /// [`next`](Self::next) wake up with [`QueueError::Closed`], and every
    /// later `replace`, `next`, `try_next` and `delete` answers
    /// [`QueueError::Closed`]. Closing twice is harmless.
    pub fn close(&self) {
        let (old, idle) = {
            let mut state = self.inner.lock();
            state.closed = true;
            (std::mem::take(&mut state.queue), state.is_idle())
        };
        drop(old);
        self.inner.items.notify_waiters();
        if idle {
            self.inner.idle.notify_waiters();
        }
    }

    /// Whether [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// Resolves once nothing is queued and nothing is in progress.
    ///
    /// Resolves immediately if that is already the case. On a closed queue
    /// it resolves when the last in-progress ticket is released. Handy for
    /// tests and graceful shutdown.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.inner.lock().is_idle() {
                return;
            }
            notified.await;
        }
    }
}

/// Type-erased "an item finished" callback, so that [`InProgress`] (and thus
/// [`Ticket`]) need not carry the queue's lock type around generically.
trait Finish: Send + Sync {
    fn finish(&self);
}

impl<T: Send> Finish for Inner<T> {
    fn finish(&self) {
        let idle = {
            let mut state = self.lock();
            state.in_progress -= 1;
            state.is_idle()
        };
        if idle {
            self.idle.notify_waiters();
        }
    }
}

/// Decrements the queue's in-progress count when dropped.
struct InProgress {
    inner: Arc<dyn Finish>,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.inner.finish();
    }
}

/// An item handed to a worker by [`WorkQueue::next`] or
/// [`WorkQueue::try_next`].
///
/// Dereferences to the item. While the ticket lives, the item counts as in
/// progress in [`WorkQueue::status`]; [`done`](Self::done), dropping the
/// ticket (including by unwinding from a panicking worker) or
/// [`into_inner`](Self::into_inner) ends that.
#[must_use = "the item counts as in progress until the ticket is done or dropped"]
pub struct Ticket<T> {
    item: T,
    generation: u64,
    _guard: InProgress,
}

impl<T> Ticket<T> {
    /// Marks the item as finished (same as dropping the ticket, but
    /// explicit).
    pub fn done(self) {
        drop(self);
    }

    /// Marks the item as finished and returns it.
    pub fn into_inner(self) -> T {
        self.item
    }

    /// The [generation](WorkQueue::generation) of the list this item came
    /// from.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl<T> Deref for Ticket<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.item
    }
}

impl<T> DerefMut for Ticket<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.item
    }
}

impl<T: fmt::Debug> fmt::Debug for Ticket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("item", &self.item)
            .field("generation", &self.generation)
            .finish()
    }
}

#[cfg(test)]
mod tests;
