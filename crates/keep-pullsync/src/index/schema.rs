//! The pull index's tables and the per-bin counters kept in them.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use crate::bins::BINS;
use crate::db::DbError;

/// `"epoch"` → the index's epoch; `"clean"` → 1 while closed cleanly, else 0.
pub(super) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// bin → (last BinID handed out, BinIDs reserved durably up to).
pub(super) const COUNTERS: TableDefinition<'_, u8, (u64, u64)> = TableDefinition::new("counters");
/// (bin, BinID) → (hash, size).
pub(super) const ENTRIES: TableDefinition<'_, (u8, u64), ([u8; 16], u64)> =
    TableDefinition::new("entries");
/// hash → (bin, BinID).
pub(super) const BY_HASH: TableDefinition<'_, [u8; 16], (u8, u64)> =
    TableDefinition::new("by_hash");

const EPOCH: &str = "epoch";
const CLEAN: &str = "clean";

/// How many BinIDs a durable commit reserves for a bin ahead of use.
///
/// Batches are committed lazily, so a crash can lose BinIDs that were
/// already handed out (and offered to peers, which recorded them as
/// synced). The counters are never lower than what was offered because a
/// batch that goes past a bin's reservation is committed durably together
/// with a new reservation `LEASE` further on, and an open after a crash
/// starts every bin at its reservation. The cost: one fsync per `LEASE`
/// new blocks of a bin, and a jump of at most `LEASE` in a bin's BinIDs
/// after a crash (pullers do not mind gaps).
pub(super) const LEASE: u64 = 1024;

/// One bin's counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counter {
    /// The last BinID handed out (0: none yet).
    pub(super) last: u64,
    /// No BinID up to this one may be handed out again, even after a crash.
    pub(super) reserved: u64,
}

/// Every bin's counter.
pub(super) type Counters = [Counter; BINS];

/// What `meta` holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    pub(super) epoch: u64,
    pub(super) clean: bool,
}

/// Reads `meta`, or `None` for a file that has none yet (or no epoch).
pub(super) fn read_meta(txn: &WriteTransaction) -> Result<Option<Meta>, DbError> {
    let table = txn.open_table(META)?;
    let Some(epoch) = table.get(EPOCH)?.map(|g| g.value()) else {
        return Ok(None);
    };
    if epoch == 0 {
        return Err(DbError::Corrupt("epoch 0".into()));
    }
    let clean = table.get(CLEAN)?.is_some_and(|g| g.value() == 1);
    Ok(Some(Meta { epoch, clean }))
}

/// Writes `meta`.
pub(super) fn write_meta(txn: &WriteTransaction, meta: Meta) -> Result<(), DbError> {
    let mut table = txn.open_table(META)?;
    table.insert(EPOCH, meta.epoch)?;
    table.insert(CLEAN, u64::from(meta.clean))?;
    Ok(())
}

/// Reads every bin's counter (zero for a bin never written).
pub(super) fn read_counters(txn: &WriteTransaction) -> Result<Counters, DbError> {
    let table = txn.open_table(COUNTERS)?;
    let mut counters = Counters::default();
    for (bin, counter) in counters.iter_mut().enumerate() {
        if let Some(g) = table.get(bin_u8(bin))? {
            let (last, reserved) = g.value();
            if last > reserved {
                return Err(DbError::Corrupt(format!(
                    "bin {bin}: BinID {last} past its reservation {reserved}"
                )));
            }
            *counter = Counter { last, reserved };
        }
    }
    Ok(counters)
}

/// Writes every bin's counter.
pub(super) fn write_counters(txn: &WriteTransaction, counters: &Counters) -> Result<(), DbError> {
    let mut table = txn.open_table(COUNTERS)?;
    for (bin, c) in counters.iter().enumerate() {
        table.insert(bin_u8(bin), (c.last, c.reserved))?;
    }
    Ok(())
}

/// Extends the reservation of every bin whose counter went past it; says
/// whether any did (then the commit must be durable).
pub(super) fn renew_leases(counters: &mut Counters) -> bool {
    let mut renewed = false;
    for c in counters.iter_mut().filter(|c| c.last > c.reserved) {
        c.reserved = c.last.saturating_add(LEASE);
        renewed = true;
    }
    renewed
}

/// After a crash: every bin goes on after its reservation, past any BinID
/// a lost batch may have handed out.
pub(super) fn skip_to_reservations(counters: &mut Counters) {
    for c in counters.iter_mut() {
        c.last = c.reserved;
    }
}

/// The last BinID of each bin.
pub(super) fn cursors_of(counters: &Counters) -> [u64; BINS] {
    counters.map(|c| c.last)
}

/// Empties the entry tables.
pub(super) fn clear_entries(txn: &WriteTransaction) -> Result<(), DbError> {
    txn.open_table(ENTRIES)?.retain(|_, _| false)?;
    txn.open_table(BY_HASH)?.retain(|_, _| false)?;
    Ok(())
}

/// A new epoch: random, nonzero, and not `old`.
pub(super) fn new_epoch(old: Option<u64>) -> u64 {
    loop {
        let epoch: u64 = rand::random();
        if epoch != 0 && Some(epoch) != old {
            return epoch;
        }
    }
}

/// A bin index of `0..BINS` as the table's key.
fn bin_u8(bin: usize) -> u8 {
    u8::try_from(bin).expect("BINS fits in u8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_renewed_only_past_it() {
        let mut c = Counters::default();
        assert!(
            !renew_leases(&mut c),
            "nothing handed out, nothing to reserve"
        );
        c[3].last = 1;
        assert!(renew_leases(&mut c));
        assert_eq!(c[3].reserved, 1 + LEASE);
        assert_eq!(c[4].reserved, 0);
        c[3].last = 1 + LEASE;
        assert!(!renew_leases(&mut c), "up to the reservation is covered");
        c[3].last += 1;
        assert!(renew_leases(&mut c));
        assert_eq!(c[3].reserved, 2 + 2 * LEASE);
    }

    #[test]
    fn after_a_crash_counters_go_on_from_their_reservation() {
        let mut c = Counters::default();
        c[0] = Counter {
            last: 5,
            reserved: 5 + LEASE,
        };
        skip_to_reservations(&mut c);
        assert_eq!(c[0].last, 5 + LEASE);
        assert_eq!(c[1].last, 0, "an empty bin stays empty");
    }

    #[test]
    fn new_epochs_are_nonzero_and_new() {
        for _ in 0..100 {
            let e = new_epoch(None);
            assert_ne!(e, 0);
            assert_ne!(new_epoch(Some(e)), e);
        }
    }
}
