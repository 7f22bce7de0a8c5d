//! Switching a journal back on after it ran out of space or descriptors.
//!
//! A journal switched off by a failure stays off until the next open,
//! except when every failure was running out of space (or quota) or of
//! file descriptors (`EMFILE`, `ENFILE`: a burst of connections, gone a
//! moment later): the operator may free some, and the node should not
//! need a restart to get its fast small writes back. Then the journal thread tries again
//! ([`Writer::recover`]) when a small write finds the journal off and the
//! retry is due: first [`FIRST_WAIT`] after the failure, then twice as
//! long after each attempt that fails, up to [`MOST_WAIT`].
//!
//! Coming back is what the next open would do, without the restart: wait
//! for the placer, replay the journal (rewrite, the crash-safe way, every
//! journaled block whose file is missing or wrong), `syncfs`, and retire
//! every record by raising the generation. Any other failure (an I/O
//! error, a failed flush) keeps the journal off until the next open: after
//! a failed flush the page cache may show data the disk lost, so no
//! check done by this process can be trusted.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::record::HEADER_LEN;
use super::{Writer, layout, lock, place};

/// The first retry comes this long after the failure.
pub(super) const FIRST_WAIT: Duration = Duration::from_secs(10);
/// Retries never wait longer than this.
pub(super) const MOST_WAIT: Duration = Duration::from_secs(600);

/// Whether a journal switched off by `e` may come back without a restart.
pub(super) fn recoverable(e: &io::Error) -> bool {
    matches!(
        Errno::from_io_error(e),
        Some(Errno::NOSPC | Errno::DQUOT | Errno::MFILE | Errno::NFILE)
    )
}

/// When a journal switched off tries to come back.
#[derive(Debug)]
pub(super) struct Retry {
    wait: Duration,
    /// The next attempt; `None` while the journal is on.
    at: Option<Instant>,
    /// A failure that no attempt may undo happened.
    sticky: bool,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            wait: FIRST_WAIT,
            at: None,
            sticky: false,
        }
    }
}

impl Retry {
    /// A failure at `now`: the first schedules an attempt.
    pub(super) fn failed(&mut self, now: Instant, recoverable: bool) {
        self.sticky |= !recoverable;
        self.at.get_or_insert(now + self.wait);
    }

    /// Whether an attempt is due at `now`; if so, the next one is put off
    /// by the current wait, so that one due attempt is asked for once.
    pub(super) fn due(&mut self, now: Instant) -> bool {
        match self.at {
            Some(at) if !self.sticky && now >= at => {
                self.at = Some(now + self.wait);
                true
            }
            _ => false,
        }
    }

    /// Whether an attempt may be made at all.
    pub(super) fn allowed(&self) -> bool {
        !self.sticky
    }

    /// An attempt at `now` failed: wait twice as long.
    pub(super) fn attempt_failed(&mut self, now: Instant) {
        self.wait = (self.wait * 2).min(MOST_WAIT);
        self.at = Some(now + self.wait);
    }

    /// Makes an attempt due now (if the journal is off).
    #[cfg(test)]
    pub(super) fn make_due(&mut self) {
        if self.at.is_some() {
            self.at = Some(Instant::now());
        }
    }

    /// The journal is on again.
    pub(super) fn recovered(&mut self) {
        *self = Retry::default();
    }
}

/// Why coming back failed, and whether a later attempt may succeed.
struct Failed {
    error: io::Error,
    retry: bool,
}

impl Writer {
    /// Switches a journal that is off back on, if its failures allow;
    /// returns whether it is on.
    pub(super) fn recover(&mut self) -> bool {
        if !self.shared.failed.load(Ordering::SeqCst) {
            return true;
        }
        if !lock(&self.shared.retry).allowed() {
            return false;
        }
        match self.come_back() {
            Ok(restored) => {
                lock(&self.shared.retry).recovered();
                self.shared.failed.store(false, Ordering::SeqCst);
                tracing::warn!(root = %self.root.display(), restored, "journal switched back on");
                true
            }
            Err(Failed { error, retry }) => {
                let mut schedule = lock(&self.shared.retry);
                schedule.failed(Instant::now(), retry);
                schedule.attempt_failed(Instant::now());
                let until = if retry {
                    "tried again later"
                } else {
                    "off until the volume is opened again"
                };
                tracing::warn!(root = %self.root.display(), %error, "journal still off, {until}");
                false
            }
        }
    }

    /// What an open does, on a running volume: returns how many blocks
    /// were rewritten.
    fn come_back(&mut self) -> Result<u64, Failed> {
        let for_good = |error| Failed {
            error,
            retry: false,
        };
        self.wait_for_placer().map_err(for_good)?;
        // The placer may have failed another way while this waited.
        if !lock(&self.shared.retry).allowed() {
            return Err(for_good(io::Error::other(
                "the placer failed other than for space",
            )));
        }
        // A rewrite that ran out of space did so before its file was
        // renamed into place (a failed flush after that carries no OS
        // error code, see `place::write_file`): a later attempt starts
        // afresh.
        let restored = self.replay().map_err(|error| Failed {
            retry: recoverable(&error),
            error,
        })?;
        rustix::fs::syncfs(&self.file).map_err(|e| for_good(e.into()))?;
        // Every block answered from memory has its file now (`replay`
        // rewrote those the placer failed on), unless a damaged record
        // ended the replay before theirs: checked, as those few blocks
        // would otherwise be dropped from memory with their records
        // retired. Only this thread adds any.
        let unplaced: Vec<_> = lock(&self.shared.unplaced)
            .iter()
            .map(|(h, d)| (*h, d.clone()))
            .collect();
        for (hash, data) in unplaced {
            if !place::holds(&layout::block_path(&self.root, &hash), &data) {
                return Err(for_good(io::Error::other(format!(
                    "block {hash} is still not in its file"
                ))));
            }
        }
        self.write_header(self.generation + 1).map_err(for_good)?;
        self.offset = HEADER_LEN;
        lock(&self.shared.pending).clear();
        lock(&self.shared.new_dirs).clear();
        lock(&self.shared.unplaced).clear();
        Ok(restored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_running_out_of_space_quota_or_descriptors_is_recoverable() {
        for (errno, ok) in [
            (Errno::NOSPC, true),
            (Errno::DQUOT, true),
            (Errno::MFILE, true),
            (Errno::NFILE, true),
            (Errno::IO, false),
            (Errno::NOTDIR, false),
        ] {
            let e = io::Error::from_raw_os_error(errno.raw_os_error());
            assert_eq!(recoverable(&e), ok, "{errno:?}");
        }
        assert!(!recoverable(&io::Error::other("the placer stopped")));
    }

    #[test]
    fn retries_back_off_and_start_over_once_recovered() {
        let t0 = Instant::now();
        let mut r = Retry::default();
        assert!(!r.due(t0 + MOST_WAIT), "on: nothing to retry");
        r.failed(t0, true);
        // A second failure does not put the first attempt off.
        r.failed(t0 + FIRST_WAIT / 2, true);
        assert!(!r.due(t0 + FIRST_WAIT - Duration::from_millis(1)));
        assert!(r.due(t0 + FIRST_WAIT));
        assert!(!r.due(t0 + FIRST_WAIT), "asked for once");
        let mut now = t0 + FIRST_WAIT;
        let mut wait = FIRST_WAIT;
        for _ in 0..12 {
            r.attempt_failed(now);
            wait = (wait * 2).min(MOST_WAIT);
            assert!(!r.due(now + wait - Duration::from_millis(1)));
            assert!(r.due(now + wait));
            now += wait;
        }
        assert_eq!(wait, MOST_WAIT);
        r.recovered();
        r.failed(now, true);
        assert!(r.due(now + FIRST_WAIT), "the wait starts over");
    }

    #[test]
    fn any_other_failure_keeps_it_off() {
        let t0 = Instant::now();
        let mut r = Retry::default();
        r.failed(t0, true);
        r.failed(t0, false);
        assert!(!r.allowed());
        assert!(!r.due(t0 + MOST_WAIT * 10));
    }
}
