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
use keep_workqueue::WorkQueue;

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
