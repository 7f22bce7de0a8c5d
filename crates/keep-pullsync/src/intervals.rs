//! What a puller has synced from one bin of one peer: a set of closed BinID
//! ranges, kept sorted and merged, and where to go next (the first gap).
//!
//! After each offer it handled, a puller adds `[start, topmost]`; it asks
//! the peer next for the [`first_gap`](IntervalSet::first_gap). The sets
//! persist in an [`IntervalStore`].

mod store;

#[cfg(test)]
mod tests;

pub use store::IntervalStore;

/// A set of `u64`s as sorted, disjoint, non-adjacent closed ranges
/// (`[1,2]` and `[3,5]` are kept as `[1,5]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntervalSet {
    /// Sorted by start; between two ranges at least one number is missing.
    ranges: Vec<(u64, u64)>,
}

impl IntervalSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The set of every range in `ranges` (in any order, overlapping or
    /// not; a range whose start is past its end adds nothing).
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut set = Self::new();
        for (start, end) in ranges {
            set.add(start, end);
        }
        set
    }

    /// Adds `start..=end`, merging it with the ranges it overlaps or
    /// touches. Adds nothing if `start > end`.
    pub fn add(&mut self, start: u64, end: u64) {
        if start > end {
            return;
        }
        // The first range that could merge: one ending at start - 1 or later.
        let first = self
            .ranges
            .partition_point(|&(_, e)| e.saturating_add(1) < start);
        // Past the last range that could merge: one starting at end + 1 or
        // earlier.
        let last = self
            .ranges
            .partition_point(|&(s, _)| s <= end.saturating_add(1));
        if first == last {
            self.ranges.insert(first, (start, end));
            return;
        }
        let merged = (
            start.min(self.ranges[first].0),
            end.max(self.ranges[last - 1].1),
        );
        self.ranges.splice(first..last, [merged]);
    }

    /// Whether `x` is in the set.
    pub fn contains(&self, x: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, e)| e < x);
        self.ranges.get(i).is_some_and(|&(s, _)| s <= x)
    }

    /// The first missing range at or after `from`: its start, and its end
    /// (`None` when nothing is known past it, so the gap runs on). `None`
    /// when every number from `from` up to `u64::MAX` is in the set.
    pub fn first_gap(&self, from: u64) -> Option<(u64, Option<u64>)> {
        let i = self.ranges.partition_point(|&(_, e)| e < from);
        let (start, next) = match self.ranges.get(i) {
            // `from` is covered: the gap starts after this range.
            Some(&(s, e)) if s <= from => (e.checked_add(1)?, self.ranges.get(i + 1)),
            next => (from, next),
        };
        Some((start, next.map(|&(s, _)| s - 1)))
    }

    /// The ranges, sorted, disjoint and non-adjacent.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}
