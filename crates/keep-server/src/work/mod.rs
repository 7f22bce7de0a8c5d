//! Work lists: the node's pull and trash lists, which pull workers and
//! trash workers drain (Keep's data-manager protocol; seeds
//! `keep-pull-worker-story-3761` and `keep-blockworklist-idea-3705`).
//! `PUT /pull` and `PUT /trash` (`handlers::worklists`) replace them.
//!
//! A new list replaces the old one whole: entries nobody started are
//! dropped, entries in progress finish.

pub mod pull;
pub mod trash;

use keep_locator::BlockHash;
use keep_workqueue::{Ticket, WorkQueue};

use crate::metrics::{Metrics, OutcomeLabels};

/// One block to fetch from other servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullItem {
    /// The block.
    pub hash: BlockHash,
    /// Its size.
    pub size: u64,
    /// Servers to try, in order.
    pub servers: Vec<String>,
    /// The volume to write to; any when `None`.
    pub mount: Option<String>,
}

/// One block copy to trash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashItem {
    /// The block.
    pub hash: BlockHash,
    /// The mtime (unix ns) the copy must still have.
    pub mtime: i64,
    /// The volume; every volume when `None`.
    pub mount: Option<String>,
}

/// The node's two work lists.
#[derive(Debug)]
pub struct WorkLists {
    /// Blocks to pull.
    pub pull: WorkQueue<PullItem>,
    /// Copies to trash.
    pub trash: WorkQueue<TrashItem>,
    max_items: usize,
}

impl WorkLists {
    /// Empty lists holding at most `max_items` entries each.
    pub fn new(max_items: usize) -> Self {
        WorkLists {
            pull: WorkQueue::with_limit(max_items),
            trash: WorkQueue::with_limit(max_items),
            max_items,
        }
    }

    /// The most entries a list may have.
    pub fn max_items(&self) -> usize {
        self.max_items
    }

    /// Closes both lists: workers stop after their current entry.
    pub fn close(&self) {
        self.pull.close();
        self.trash.close();
    }
}

/// A worker's end of one list: the entry `wait` took for the next step,
/// and the list.
#[derive(Debug)]
pub(crate) struct Taker<T> {
    queue: WorkQueue<T>,
    pending: Option<Ticket<T>>,
}

/// What a worker's step found on its list.
pub(crate) enum Next<T> {
    /// An entry to work on.
    Entry(Ticket<T>),
    /// Nothing now.
    Empty,
    /// The list is closed: the worker is done.
    Closed,
}

impl<T: Send + 'static> Taker<T> {
    pub(crate) fn new(queue: WorkQueue<T>) -> Self {
        Taker {
            queue,
            pending: None,
        }
    }

    /// The entry to work on now, if any (never waits).
    pub(crate) fn take(&mut self) -> Next<T> {
        if let Some(t) = self.pending.take() {
            return Next::Entry(t);
        }
        match self.queue.try_next() {
            Ok(Some(t)) => Next::Entry(t),
            Ok(None) => Next::Empty,
            Err(_) => Next::Closed,
        }
    }

    /// Waits for an entry (kept for the next `take`): `Busy`, or `Done`
    /// once the list is closed. Cancel-safe: an entry leaves the list only
    /// when it is handed over.
    pub(crate) async fn wait(&mut self) -> keep_worker::WorkerState {
        match self.queue.next().await {
            Ok(ticket) => {
                self.pending = Some(ticket);
                keep_worker::WorkerState::Busy
            }
            Err(_) => keep_worker::WorkerState::Done,
        }
    }

    /// Entries waiting on the list.
    pub(crate) fn queued(&self) -> u64 {
        self.queue.status().queued as u64
    }
}

/// Copies the lists' lengths into the metrics gauges.
pub fn refresh_gauges(lists: &WorkLists, m: &Metrics) {
    let (p, t) = (lists.pull.status(), lists.trash.status());
    m.pull_queue.set(p.queued as i64);
    m.pull_in_progress.set(p.in_progress as i64);
    m.trash_queue.set(t.queued as i64);
    m.trash_in_progress.set(t.in_progress as i64);
}

/// Counters of work-list outcomes, by outcome.
pub type Outcomes = prometheus_client::metrics::family::Family<
    OutcomeLabels,
    prometheus_client::metrics::counter::Counter,
>;

/// Counts an outcome.
fn count(family: &Outcomes, outcome: &str) {
    family
        .get_or_create(&OutcomeLabels {
            outcome: outcome.to_owned(),
        })
        .inc();
}
