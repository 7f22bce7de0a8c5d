//! [`FaultyVolume`]: a wrapper that makes another volume fail on demand.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use keep_locator::BlockHash;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::{
    BlockBody, BlockReader, ChunkSums, CopyId, EmptyTrashStats, IndexSender, Volume, VolumeError,
    VolumeParams, VolumeStatus,
};

/// A volume operation that faults can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// [`Volume::open`].
    Open,
    /// Each chunk an opened reader yields ([`BlockReader::chunks`]): the
    /// `n`th read of a block is its `n`th chunk.
    Read,
    /// [`Volume::write`].
    Write,
    /// [`Volume::touch`].
    Touch,
    /// [`Volume::mtime`].
    Mtime,
    /// [`Volume::trash`].
    Trash,
    /// [`Volume::untrash`].
    Untrash,
    /// [`Volume::trashed`].
    Trashed,
    /// [`Volume::empty_trash`].
    EmptyTrash,
    /// [`Volume::index`].
    Index,
    /// [`Volume::status`].
    Status,
    /// [`Volume::quarantine`].
    Quarantine,
}

impl Op {
    /// Every operation, for a fault on all of them.
    pub const ALL: [Op; 12] = [
        Op::Open,
        Op::Read,
        Op::Write,
        Op::Touch,
        Op::Mtime,
        Op::Trash,
        Op::Untrash,
        Op::Trashed,
        Op::EmptyTrash,
        Op::Index,
        Op::Status,
        Op::Quarantine,
    ];

    /// The operation's name, in lowercase.
    pub fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Read => "read",
            Op::Write => "write",
            Op::Touch => "touch",
            Op::Mtime => "mtime",
            Op::Trash => "trash",
            Op::Untrash => "untrash",
            Op::Trashed => "trashed",
            Op::EmptyTrash => "empty_trash",
            Op::Index => "index",
            Op::Status => "status",
            Op::Quarantine => "quarantine",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What an injected fault does to a call.
///
/// When several rules fire on one call, their latencies add up and the
/// first other fault (in the order they were injected) decides the
/// outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fails with [`VolumeError::Io`] (a read: the stream yields it in
    /// place of the chunk and ends, a stream that fails mid-way).
    Io,
    /// Fails with [`VolumeError::Unavailable`], as a store that is down.
    Unavailable,
    /// [`Op::Write`] fails with [`VolumeError::Full`]; [`Op::Status`]
    /// answers the inner volume's status with `full: true`. Any other
    /// operation fails with [`VolumeError::Full`].
    Full,
    /// Fails with [`VolumeError::NotFound`], as if the block were missing.
    NotFound,
    /// [`Op::Read`]: flips a byte of the chunk, which is then yielded, so
    /// the content fails its hash. [`Op::Open`]: the same to the first
    /// non-empty chunk of the reader it opens. Any other operation fails
    /// with [`VolumeError::Corrupt`].
    Corrupt,
    /// Sleeps this long (on tokio's clock) before the call goes on.
    Latency(Duration),
}

impl Fault {
    /// The error this fault makes `op` fail with.
    fn error(self, op: Op) -> VolumeError {
        match self {
            Fault::Io => {
                VolumeError::Io(std::io::Error::other(format!("injected i/o error on {op}")))
            }
            Fault::Unavailable => VolumeError::Unavailable(format!("injected fault on {op}")),
            Fault::Full => VolumeError::Full,
            Fault::NotFound => VolumeError::NotFound,
            Fault::Corrupt => VolumeError::Corrupt(format!("injected fault on {op}")),
            // Never an outcome: `Faults::decide` adds latencies up apart.
            Fault::Latency(_) => VolumeError::Unavailable(format!("injected latency on {op}")),
        }
    }
}

/// Which calls of its operation a fault hits. A rule counts the calls of
/// its operation from when it was injected: the first is call 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Every call.
    Always,
    /// The next `n` calls, then none.
    Times(u64),
    /// Every call after the next `k` (which go through).
    After(u64),
    /// The `times` calls after the next `skip`: `Window { skip: 2, times:
    /// 1 }` on [`Op::Read`] fails a read stream at its third chunk.
    Window {
        /// Calls that go through first.
        skip: u64,
        /// Calls hit after them.
        times: u64,
    },
    /// Each call with probability `p` (0 to 1), drawn from a random
    /// generator seeded with `seed`: the same sequence of calls meets the
    /// same faults on every run.
    Probability {
        /// The chance of each call to be hit.
        p: f64,
        /// The generator's seed.
        seed: u64,
    },
}

/// One injected fault.
struct Rule {
    op: Op,
    fault: Fault,
    schedule: Schedule,
    /// Calls of `op` seen since the rule was injected.
    seen: u64,
    rng: Option<SmallRng>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("op", &self.op)
            .field("fault", &self.fault)
            .field("schedule", &self.schedule)
            .field("seen", &self.seen)
            .finish()
    }
}

impl Rule {
    /// Whether it hits the next call of its operation.
    fn fires(&mut self) -> bool {
        let n = self.seen;
        self.seen += 1;
        match self.schedule {
            Schedule::Always => true,
            Schedule::Times(times) => n < times,
            Schedule::After(skip) => n >= skip,
            Schedule::Window { skip, times } => n >= skip && n - skip < times,
            Schedule::Probability { p, .. } if p.is_nan() || p <= 0.0 => false,
            Schedule::Probability { p, .. } if p >= 1.0 => true,
            Schedule::Probability { p, seed } => self
                .rng
                .get_or_insert_with(|| SmallRng::seed_from_u64(seed))
                .random_bool(p),
        }
    }
}

/// The rules and counters, shared with the readers a wrapper opened.
#[derive(Debug, Default)]
struct Shared {
    rules: Vec<Rule>,
    calls: [u64; Op::ALL.len()],
    injected: [u64; Op::ALL.len()],
}

/// What happens to one call.
struct Decision {
    /// The latencies that hit it, added up.
    delay: Duration,
    /// The first other fault that hit it (never a latency).
    fault: Option<Fault>,
}

impl Decision {
    /// Sleeps the latency, then gives the fault that decides the outcome.
    async fn apply(self) -> Option<Fault> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.fault
    }
}

#[derive(Debug, Default)]
struct Faults(Mutex<Shared>);

impl Faults {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a call of `op` and decides its faults.
    fn decide(&self, op: Op) -> Decision {
        let mut shared = self.lock();
        shared.calls[op.slot()] += 1;
        let mut decision = Decision {
            delay: Duration::ZERO,
            fault: None,
        };
        let mut hit = false;
        for rule in shared.rules.iter_mut().filter(|r| r.op == op) {
            if !rule.fires() {
                continue;
            }
            hit = true;
            match rule.fault {
                Fault::Latency(d) => decision.delay += d,
                fault => {
                    decision.fault.get_or_insert(fault);
                }
            }
        }
        if hit {
            shared.injected[op.slot()] += 1;
        }
        decision
    }
}

/// A [`Volume`] that passes every call to another one, except where a
/// fault was injected: an error ([`Fault::Io`], [`Fault::Unavailable`],
/// [`Fault::Full`], [`Fault::NotFound`]), a latency, a corrupt read or a
/// read stream that fails part-way. Faults are chosen per [`Op`] by a
/// [`Schedule`] (the next `n` calls, all calls after `k`, always, or at
/// random from a seed).
///
/// Faults can be injected and cleared at any time, from any task: clones
/// of a `FaultyVolume` share its faults and counters, so a test keeps one
/// while the code under test holds another as an `Arc<dyn Volume>`. It
/// counts every call per operation ([`calls`](Self::calls)), faulted or
/// not, so a test can also tell whether a volume was asked at all.
///
/// [`Volume::wants_sums`] and [`Volume::keep_sums`] go straight through.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
///
/// use keep_volume::conformance::{get, put, test_data};
/// use keep_volume::testing::{Fault, FaultyVolume, MemVolume, Op, Schedule};
/// use keep_volume::{Volume, VolumeError, VolumeParams};
///
/// let mem = MemVolume::new(VolumeParams::new("zzzzz-nyw5e-000000000000000"));
/// let vol = FaultyVolume::new(Arc::new(mem)).with(Op::Open, Fault::Io, Schedule::Times(1));
/// let hash = put(&vol, &test_data(100, 1), 100).await.unwrap();
///
/// // The first open fails, the next goes through.
/// assert!(matches!(get(&vol, &hash).await, Err(VolumeError::Io(_))));
/// assert_eq!(get(&vol, &hash).await.unwrap().len(), 100);
/// assert_eq!(vol.calls(Op::Open), 2);
/// assert_eq!(vol.injected(Op::Open), 1);
///
/// // Injected from here on, as another task could.
/// vol.inject(Op::Status, Fault::Full, Schedule::Always);
/// assert!(vol.status().await.unwrap().full);
/// vol.clear();
/// assert!(!vol.status().await.unwrap().full);
/// # }
/// ```
#[derive(Clone)]
pub struct FaultyVolume {
    inner: Arc<dyn Volume>,
    faults: Arc<Faults>,
}

impl std::fmt::Debug for FaultyVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyVolume")
            .field("inner", &self.inner)
            .field("rules", &self.faults.lock().rules)
            .finish()
    }
}

impl FaultyVolume {
    /// `inner`, with no faults yet.
    pub fn new(inner: Arc<dyn Volume>) -> FaultyVolume {
        FaultyVolume {
            inner,
            faults: Arc::default(),
        }
    }

    /// The wrapped volume.
    pub fn inner(&self) -> &Arc<dyn Volume> {
        &self.inner
    }

    /// This wrapper with one more fault: [`inject`](Self::inject) for
    /// building one in an expression.
    #[must_use]
    pub fn with(self, op: Op, fault: Fault, schedule: Schedule) -> FaultyVolume {
        self.inject(op, fault, schedule);
        self
    }

    /// Adds a fault on `op` at the calls `schedule` picks, counted from
    /// now. Rules add up: see [`Fault`] for what happens when several hit
    /// the same call.
    pub fn inject(&self, op: Op, fault: Fault, schedule: Schedule) -> &FaultyVolume {
        self.faults.lock().rules.push(Rule {
            op,
            fault,
            schedule,
            seen: 0,
            rng: None,
        });
        self
    }

    /// Removes every fault (the counters stay).
    pub fn clear(&self) {
        self.faults.lock().rules.clear();
    }

    /// Removes the faults on `op` (the counters stay).
    pub fn clear_op(&self, op: Op) {
        self.faults.lock().rules.retain(|r| r.op != op);
    }

    /// How many calls of `op` arrived (for [`Op::Read`]: chunks read),
    /// faulted or not.
    pub fn calls(&self, op: Op) -> u64 {
        self.faults.lock().calls[op.slot()]
    }

    /// How many calls of `op` at least one fault hit.
    pub fn injected(&self, op: Op) -> u64 {
        self.faults.lock().injected[op.slot()]
    }

    /// Sets every call and fault counter to zero (the faults stay).
    pub fn reset_counts(&self) {
        let mut shared = self.faults.lock();
        shared.calls = Default::default();
        shared.injected = Default::default();
    }

    /// Counts a call of `op`, sleeps its latency, and fails it if a fault
    /// says so.
    async fn before(&self, op: Op) -> Result<(), VolumeError> {
        match self.faults.decide(op).apply().await {
            Some(fault) => Err(fault.error(op)),
            None => Ok(()),
        }
    }
}

/// The chunk with its middle byte flipped (an empty chunk as it is).
fn flip_byte(chunk: &Bytes) -> Bytes {
    let mut data = chunk.to_vec();
    if let Some(b) = data.get_mut(chunk.len() / 2) {
        *b ^= 0x01;
    }
    Bytes::from(data)
}

/// A reader's chunks, with the faults on [`Op::Read`] applied.
fn faulty_chunks(
    inner: BoxStream<'static, Result<Bytes, VolumeError>>,
    faults: Arc<Faults>,
    corrupt_first: bool,
) -> BoxStream<'static, Result<Bytes, VolumeError>> {
    struct ReadState {
        inner: BoxStream<'static, Result<Bytes, VolumeError>>,
        faults: Arc<Faults>,
        /// Flip a byte of the next non-empty chunk (a corrupt open).
        corrupt_next: bool,
        /// An injected error ended the stream.
        done: bool,
    }
    let state = ReadState {
        inner,
        faults,
        corrupt_next: corrupt_first,
        done: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let item = s.inner.next().await?;
        let fault = s.faults.decide(Op::Read).apply().await;
        let item = match (item, fault) {
            (Err(e), _) => Err(e),
            (Ok(chunk), None) if s.corrupt_next && !chunk.is_empty() => {
                s.corrupt_next = false;
                Ok(flip_byte(&chunk))
            }
            (Ok(chunk), None) => Ok(chunk),
            (Ok(chunk), Some(Fault::Corrupt)) => Ok(flip_byte(&chunk)),
            (Ok(_), Some(fault)) => {
                s.done = true;
                Err(fault.error(Op::Read))
            }
        };
        Some((item, s))
    })
    .boxed()
}

#[async_trait]
impl Volume for FaultyVolume {
    fn params(&self) -> &VolumeParams {
        self.inner.params()
    }

    fn device_id(&self) -> &str {
        self.inner.device_id()
    }

    async fn open(&self, hash: &BlockHash) -> Result<BlockReader, VolumeError> {
        let fault = self.faults.decide(Op::Open).apply().await;
        let corrupt = match fault {
            None => false,
            Some(Fault::Corrupt) => true,
            Some(fault) => return Err(fault.error(Op::Open)),
        };
        let mut reader = self.inner.open(hash).await?;
        reader.chunks = faulty_chunks(reader.chunks, self.faults.clone(), corrupt);
        Ok(reader)
    }

    async fn write(&self, hash: &BlockHash, body: BlockBody) -> Result<(), VolumeError> {
        self.before(Op::Write).await?;
        self.inner.write(hash, body).await
    }

    /// Each block is one [`Op::Write`] call: those its fault hits fail
    /// with it, the others go to the inner volume's `write_many` together.
    async fn write_many(
        &self,
        blocks: Vec<(BlockHash, BlockBody)>,
    ) -> Vec<Result<(), VolumeError>> {
        let mut out = Vec::with_capacity(blocks.len());
        let mut passed = Vec::new();
        for (i, block) in blocks.into_iter().enumerate() {
            match self.before(Op::Write).await {
                Ok(()) => {
                    passed.push((i, block));
                    out.push(Ok(()));
                }
                Err(e) => out.push(Err(e)),
            }
        }
        let (places, passed): (Vec<usize>, Vec<_>) = passed.into_iter().unzip();
        for (i, answer) in places.into_iter().zip(self.inner.write_many(passed).await) {
            out[i] = answer;
        }
        out
    }

    async fn touch(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        self.before(Op::Touch).await?;
        self.inner.touch(hash).await
    }

    async fn mtime(&self, hash: &BlockHash) -> Result<i64, VolumeError> {
        self.before(Op::Mtime).await?;
        self.inner.mtime(hash).await
    }

    async fn trash(&self, hash: &BlockHash, if_mtime: Option<i64>) -> Result<(), VolumeError> {
        self.before(Op::Trash).await?;
        self.inner.trash(hash, if_mtime).await
    }

    async fn untrash(&self, hash: &BlockHash) -> Result<(), VolumeError> {
        self.before(Op::Untrash).await?;
        self.inner.untrash(hash).await
    }

    async fn trashed(&self, hash: &BlockHash) -> Result<bool, VolumeError> {
        self.before(Op::Trashed).await?;
        self.inner.trashed(hash).await
    }

    async fn empty_trash(&self) -> Result<EmptyTrashStats, VolumeError> {
        self.before(Op::EmptyTrash).await?;
        self.inner.empty_trash().await
    }

    async fn index(&self, prefix: &str, out: IndexSender) -> Result<(), VolumeError> {
        self.before(Op::Index).await?;
        self.inner.index(prefix, out).await
    }

    async fn status(&self) -> Result<VolumeStatus, VolumeError> {
        match self.faults.decide(Op::Status).apply().await {
            None => self.inner.status().await,
            Some(Fault::Full) => Ok(VolumeStatus {
                full: true,
                ..self.inner.status().await?
            }),
            Some(fault) => Err(fault.error(Op::Status)),
        }
    }

    async fn quarantine(&self, hash: &BlockHash, copy: Option<CopyId>) -> Result<(), VolumeError> {
        self.before(Op::Quarantine).await?;
        self.inner.quarantine(hash, copy).await
    }

    fn wants_sums(&self, size: u64) -> bool {
        self.inner.wants_sums(size)
    }

    async fn keep_sums(
        &self,
        hash: &BlockHash,
        size: u64,
        sums: ChunkSums,
    ) -> Result<(), VolumeError> {
        self.inner.keep_sums(hash, size, sums).await
    }
}
