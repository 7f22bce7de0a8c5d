use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn set(ranges: &[(u64, u64)]) -> IntervalSet {
    IntervalSet::from_ranges(ranges.iter().copied())
}

#[test]
fn adding_merges_overlapping_and_touching_ranges() {
    let mut s = set(&[(1, 2), (6, 8)]);
    s.add(3, 5);
    assert_eq!(s.ranges(), [(1, 8)]);
    let mut s = set(&[(1, 2), (6, 8)]);
    s.add(4, 4);
    assert_eq!(s.ranges(), [(1, 2), (4, 4), (6, 8)]);
    s.add(0, 100);
    assert_eq!(s.ranges(), [(0, 100)]);
    s.add(200, 300);
    s.add(101, 199);
    assert_eq!(s.ranges(), [(0, 300)]);
    s.add(50, 60);
    assert_eq!(s.ranges(), [(0, 300)], "inside: nothing changes");
    s.add(9, 3);
    assert_eq!(s.ranges(), [(0, 300)], "an empty range adds nothing");
}

#[test]
fn ranges_at_the_ends_of_u64() {
    let mut s = set(&[(u64::MAX, u64::MAX)]);
    s.add(u64::MAX - 5, u64::MAX - 1);
    assert_eq!(s.ranges(), [(u64::MAX - 5, u64::MAX)]);
    s.add(0, 0);
    assert_eq!(s.ranges(), [(0, 0), (u64::MAX - 5, u64::MAX)]);
    assert!(s.contains(u64::MAX));
    assert!(!s.contains(u64::MAX - 6));
    assert_eq!(s.first_gap(u64::MAX - 5), None, "covered to the end");
    assert_eq!(s.first_gap(0), Some((1, Some(u64::MAX - 6))));
}

#[test]
fn first_gap_finds_where_to_sync_next() {
    let s = IntervalSet::new();
    assert_eq!(s.first_gap(1), Some((1, None)));
    let s = set(&[(1, 10), (20, 30)]);
    assert_eq!(s.first_gap(1), Some((11, Some(19))));
    assert_eq!(s.first_gap(0), Some((0, Some(0))));
    assert_eq!(s.first_gap(15), Some((15, Some(19))));
    assert_eq!(s.first_gap(20), Some((31, None)));
    assert_eq!(s.first_gap(31), Some((31, None)));
    assert_eq!(s.first_gap(100), Some((100, None)));
}

#[test]
fn contains_is_inclusive() {
    let s = set(&[(3, 5), (9, 9)]);
    let got: Vec<u64> = (0..12).filter(|&x| s.contains(x)).collect();
    assert_eq!(got, [3, 4, 5, 9]);
}

/// The integers of a small domain a list of ranges covers.
fn covered(ranges: &[(u64, u64)]) -> BTreeSet<u64> {
    ranges.iter().flat_map(|&(s, e)| s..=e).collect()
}

const DOMAIN: u64 = 64;

fn range_strategy() -> impl Strategy<Value = (u64, u64)> {
    (0..DOMAIN, 0..DOMAIN)
}

proptest! {
    #[test]
    fn merging_matches_a_set_of_integers(ranges in prop::collection::vec(range_strategy(), 0..20)) {
        let s = IntervalSet::from_ranges(ranges.iter().copied());
        let model = covered(&ranges);
        // Same members.
        for x in 0..=DOMAIN {
            prop_assert_eq!(s.contains(x), model.contains(&x), "x = {}", x);
        }
        prop_assert_eq!(covered(s.ranges()), model);
        // Sorted, each non-empty, with a gap between neighbours.
        for &(a, b) in s.ranges() {
            prop_assert!(a <= b);
        }
        for w in s.ranges().windows(2) {
            prop_assert!(w[0].1 + 1 < w[1].0, "{:?} not merged", w);
        }
    }

    #[test]
    fn first_gap_matches_a_set_of_integers(
        ranges in prop::collection::vec(range_strategy(), 0..20),
        from in 0..DOMAIN + 2,
    ) {
        let s = IntervalSet::from_ranges(ranges.iter().copied());
        let model = covered(&ranges);
        // The domain is small, so a gap always exists.
        let (start, end) = s.first_gap(from).unwrap();
        let want_start = (from..).find(|x| !model.contains(x)).unwrap();
        prop_assert_eq!(start, want_start);
        let next_covered = model.range(start..).next().copied();
        prop_assert_eq!(end, next_covered.map(|n| n - 1));
    }
}
