//! The memory budget for block data in flight.
//!
//! Architecture invariant: every transfer of block bytes (a PUT body, a
//! GET response, a pull, a replica) holds a reservation from this budget
//! while its buffers exist, so the node's buffer memory stays under
//! `max_buffer_memory` whatever the number of concurrent requests. A
//! transfer that cannot get its reservation in time fails with
//! [`StoreError::Busy`].

use std::sync::Arc;
use std::time::Duration;

use keep_volume::CHUNK_SIZE;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::StoreError;

/// Reservations are counted in units of this many bytes.
const UNIT: u64 = 64 << 10;

/// How long a transfer waits for buffer memory before it is refused.
pub const WAIT: Duration = Duration::from_secs(30);

/// A shared budget of buffer bytes.
#[derive(Debug, Clone)]
pub struct Budget {
    sem: Arc<Semaphore>,
    gauge: Gauge,
    wait: Duration,
}

/// A reservation; dropping it gives the bytes back.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    bytes: i64,
    gauge: Gauge,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.gauge.dec_by(self.bytes);
    }
}

impl Budget {
    /// A budget of `bytes` (at least two chunks' worth); `gauge` shows the
    /// bytes reserved.
    pub fn new(bytes: u64, gauge: Gauge) -> Self {
        Budget::with_wait(bytes, gauge, WAIT)
    }

    /// A budget whose reservations wait at most `wait`.
    pub fn with_wait(bytes: u64, gauge: Gauge, wait: Duration) -> Self {
        let units = (bytes / UNIT).max(2 * CHUNK_SIZE as u64 / UNIT);
        Budget {
            sem: Arc::new(Semaphore::new(units as usize)),
            gauge,
            wait,
        }
    }

    /// Reserves what a transfer of a `size`-byte block buffers at most: two
    /// chunks for large blocks (one in flight, one being filled), the block
    /// itself for small ones.
    pub async fn reserve(&self, size: u64) -> Result<Reservation, StoreError> {
        let bytes = size.clamp(1, 2 * CHUNK_SIZE as u64);
        let units = bytes.div_ceil(UNIT) as u32;
        let permit = tokio::time::timeout(self.wait, self.sem.clone().acquire_many_owned(units))
            .await
            .map_err(|_| StoreError::Busy("no buffer memory free"))?
            .map_err(|_| StoreError::Busy("shutting down"))?;
        let bytes = i64::from(units) * UNIT as i64;
        self.gauge.inc_by(bytes);
        Ok(Reservation {
            _permit: permit,
            bytes,
            gauge: self.gauge.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full budget makes a transfer wait until a reservation is dropped,
    /// and refuses it once the wait is over.
    #[tokio::test(start_paused = true)]
    async fn a_full_budget_blocks_until_memory_is_returned() {
        let gauge = Gauge::default();
        let budget = Budget::with_wait(4 << 20, gauge.clone(), Duration::from_secs(30));
        let a = budget.reserve(64 << 20).await.unwrap();
        let b = budget.reserve(64 << 20).await.unwrap();
        assert_eq!(gauge.get(), 4 << 20);
        let mut waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(4096).await.map(|_| ()) }
        });
        // Ten seconds on (paused clock): still waiting, not refused.
        assert!(
            tokio::time::timeout(Duration::from_secs(10), &mut waiting)
                .await
                .is_err(),
            "a full budget makes new transfers wait"
        );
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), &mut waiting)
            .await
            .expect("returned memory lets the waiting transfer go on")
            .unwrap()
            .unwrap();
        // With the budget full again, the wait ends in a refusal.
        let c = budget.reserve(2 << 20).await.unwrap();
        let refused = budget.reserve(4096).await.unwrap_err();
        assert!(matches!(refused, StoreError::Busy(_)), "{refused}");
        drop((b, c));
        assert_eq!(gauge.get(), 0);
    }
}
