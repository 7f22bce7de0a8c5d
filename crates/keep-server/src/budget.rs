//! The memory budget for block data in flight.
//!
//! Architecture invariant: every transfer of block bytes (a PUT body, a
//! GET response, a pull) holds a reservation from this budget while its
//! buffers exist, so the node's buffer memory stays under
//! `max_buffer_memory` whatever the number of concurrent requests. A
//! transfer that cannot get its reservation in time is answered 503.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use keep_volume::CHUNK_SIZE;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Reservations are counted in units of this many bytes.
const UNIT: u64 = 64 << 10;

/// How long a request waits for buffer memory before it is refused.
const WAIT: Duration = Duration::from_secs(30);

/// A shared budget of buffer bytes.
#[derive(Debug, Clone)]
pub struct Budget {
    sem: Arc<Semaphore>,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

/// A reservation; dropping it gives the bytes back.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    bytes: i64,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.gauge.dec_by(self.bytes);
    }
}

impl Budget {
    /// A budget of `bytes` (at least two chunks' worth).
    pub fn new(bytes: u64, gauge: prometheus_client::metrics::gauge::Gauge) -> Self {
        let units = (bytes / UNIT).max(2 * CHUNK_SIZE as u64 / UNIT);
        Budget {
            sem: Arc::new(Semaphore::new(units as usize)),
            gauge,
        }
    }

    /// Reserves what a transfer of a `size`-byte block buffers at most: two
    /// chunks for large blocks (one in flight, one being filled), the block
    /// itself for small ones.
    pub async fn reserve(&self, size: u64) -> Result<Reservation, ApiError> {
        let bytes = size.clamp(1, 2 * CHUNK_SIZE as u64);
        let units = bytes.div_ceil(UNIT) as u32;
        let permit = tokio::time::timeout(WAIT, self.sem.clone().acquire_many_owned(units))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server busy: no buffer memory free",
                )
            })?
            .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
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

    #[tokio::test]
    async fn reservations_are_bounded_and_returned() {
        let gauge = prometheus_client::metrics::gauge::Gauge::default();
        let budget = Budget::new(4 << 20, gauge.clone());
        let a = budget.reserve(64 << 20).await.unwrap();
        let b = budget.reserve(64 << 20).await.unwrap();
        assert_eq!(gauge.get(), 4 << 20);
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(4096).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "a full budget makes new transfers wait"
        );
        drop(a);
        waiting.await.unwrap().unwrap();
        drop(b);
        assert_eq!(gauge.get(), 0);
    }
}
