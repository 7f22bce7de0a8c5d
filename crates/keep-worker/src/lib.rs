//! One shape for background work, after Garage's `util/background`.
//!
//! A [`Worker`] does its job one step at a time ([`Worker::work`]) and says
//! what comes next ([`WorkerState`]): more at once, more after a pause,
//! nothing until [`Worker::wait_for_work`] sees some, or done. [`Workers`]
//! runs each worker on its own task with the same rules for everyone: a
//! failed step is counted, logged and retried after a [`Backoff`]; a busy
//! worker can be slowed down by its *tranquility* (it sleeps that many
//! times as long as its last step took); a panic is recorded instead of
//! lost; [`Workers::list`] shows every worker's state and
//! [`WorkerStatus`]; [`Workers::shutdown`] stops them all within a
//! deadline.
//!
//! ```
//! use std::time::Duration;
//!
//! use keep_worker::{WorkError, Worker, WorkerState, WorkerStatus, Workers};
//! use tokio_util::sync::CancellationToken;
//!
//! /// Counts down, one number per step.
//! struct Countdown(u32);
//!
//! impl Worker for Countdown {
//!     fn name(&self) -> String {
//!         "countdown".into()
//!     }
//!
//!     fn status(&self) -> WorkerStatus {
//!         WorkerStatus {
//!             progress: Some(format!("{} left", self.0)),
//!             ..WorkerStatus::default()
//!         }
//!     }
//!
//!     async fn work(&mut self, _cancel: &CancellationToken) -> Result<WorkerState, WorkError> {
//!         if self.0 == 0 {
//!             return Ok(WorkerState::Done);
//!         }
//!         self.0 -= 1;
//!         Ok(WorkerState::Busy)
//!     }
//!
//!     async fn wait_for_work(&mut self) -> WorkerState {
//!         WorkerState::Busy
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let workers = Workers::new();
//! workers.spawn(Countdown(3));
//! while workers.list()[0].state != "done" {
//!     tokio::time::sleep(Duration::from_millis(1)).await;
//! }
//! let info = &workers.list()[0];
//! assert_eq!((info.name.as_str(), info.iterations), ("countdown", 4));
//! assert_eq!(info.status.progress.as_deref(), Some("0 left"));
//! assert!(workers.shutdown(Duration::from_secs(1)).await);
//! # }
//! ```

#![warn(missing_docs)]

mod backoff;
mod registry;
mod runner;
mod worker;

pub use backoff::Backoff;
pub use registry::{SpawnOptions, WorkerId, WorkerInfo, Workers};
pub use worker::{WorkError, Worker, WorkerState, WorkerStatus};
