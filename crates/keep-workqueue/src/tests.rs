//! Unit, model-based property and stress tests for [`WorkQueue`].

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt as _;
use futures::task::ArcWake;
use proptest::prelude::*;

use super::*;

/// Generous upper bound for anything that should happen "at once".
const DEADLINE: Duration = Duration::from_secs(10);

/// The exact contents of the queue, in order (test-only peek).
fn queued<T: Clone>(q: &WorkQueue<T>) -> Vec<T> {
    q.inner.lock().queue.iter().cloned().collect()
}

fn st(queued: usize, in_progress: usize) -> QueueStatus {
    QueueStatus {
        queued,
        in_progress,
    }
}

/// Polls `fut` once with a no-op waker.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    Pin::new(fut).poll(&mut cx)
}

#[test]
fn new_queue_is_empty_and_open() {
    let q: WorkQueue<u32> = WorkQueue::new();
    assert_eq!(q.status(), st(0, 0));
    assert!(!q.is_closed());
    assert_eq!(q.generation(), 0);
    assert_eq!(q.limit(), None);
    assert!(q.try_next().unwrap().is_none());
    let d: WorkQueue<u32> = WorkQueue::default();
    assert_eq!(d.status(), st(0, 0));
}

#[test]
fn items_come_out_in_order_and_count_in_progress() {
    let q = WorkQueue::new();
    q.replace(vec![1, 2, 3]).unwrap();
    assert_eq!(q.status(), st(3, 0));
    let a = q.try_next().unwrap().unwrap();
    let b = q.try_next().unwrap().unwrap();
    assert_eq!((*a, *b), (1, 2));
    assert_eq!(q.status(), st(1, 2));
    a.done();
    assert_eq!(q.status(), st(1, 1));
    drop(b);
    assert_eq!(q.status(), st(1, 0));
    let c = q.try_next().unwrap().unwrap();
    assert_eq!(c.into_inner(), 3);
    assert_eq!(q.status(), st(0, 0));
    assert!(q.try_next().unwrap().is_none());
}

#[test]
fn ticket_derefs_mutably_and_reports_generation() {
    let q = WorkQueue::new();
    q.replace(vec![String::from("a")]).unwrap();
    q.replace(vec![String::from("b")]).unwrap();
    let mut t = q.try_next().unwrap().unwrap();
    assert_eq!(t.generation(), 2);
    assert_eq!(q.generation(), 2);
    t.push('!');
    assert_eq!(t.as_str(), "b!");
    assert_eq!(format!("{t:?}"), r#"Ticket { item: "b!", generation: 2 }"#);
}

#[test]
fn clones_share_the_same_queue() {
    let q = WorkQueue::new();
    let q2 = q.clone();
    q.replace(vec![7]).unwrap();
    assert_eq!(*q2.try_next().unwrap().unwrap(), 7);
    q2.close();
    assert!(q.is_closed());
}

#[test]
fn debug_does_not_need_item_debug() {
    struct Opaque;
    let q = WorkQueue::with_limit(4);
    q.replace(vec![Opaque, Opaque]).unwrap();
    let _t = q.try_next().unwrap().unwrap();
    assert_eq!(
        format!("{q:?}"),
        "WorkQueue { queued: 1, in_progress: 1, closed: false, generation: 1, limit: Some(4) }"
    );
}

#[test]
fn replace_drops_old_pending_and_keeps_in_progress() {
    struct Counted(u32, Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let q = WorkQueue::new();
    q.replace((0..5).map(|i| Counted(i, drops.clone())).collect())
        .unwrap();
    let t0 = q.try_next().unwrap().unwrap();
    let t1 = q.try_next().unwrap().unwrap();
    assert_eq!(q.status(), st(3, 2));

    q.replace((10..12).map(|i| Counted(i, drops.clone())).collect())
        .unwrap();
    // The three untouched items of the old list were dropped ...
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    // ... while the two in-progress ones are still alive and counted.
    assert_eq!(q.status(), st(2, 2));
    assert_eq!((t0.0, t1.0), (0, 1));
    assert_eq!(t0.generation(), 1);

    let n = q.try_next().unwrap().unwrap();
    assert_eq!((n.0, n.generation()), (10, 2));
    assert_eq!(q.status(), st(1, 3));
    t0.done();
    drop(t1);
    n.done();
    assert_eq!(q.status(), st(1, 0));
    assert_eq!(drops.load(Ordering::SeqCst), 6);
}

#[test]
fn replace_with_empty_list_clears_queue() {
    let q = WorkQueue::new();
    q.replace(vec![1, 2]).unwrap();
    q.replace(vec![]).unwrap();
    assert_eq!(q.status(), st(0, 0));
    assert_eq!(q.generation(), 2);
}

#[test]
fn limit_rejects_long_lists_and_keeps_current() {
    let q = WorkQueue::with_limit(3);
    assert_eq!(q.limit(), Some(3));
    q.replace(vec![1, 2, 3]).unwrap();
    let t = q.try_next().unwrap().unwrap();
    assert_eq!(
        q.replace(vec![9, 9, 9, 9]),
        Err(QueueError::TooLong { len: 4, max: 3 })
    );
    assert_eq!(queued(&q), vec![2, 3]);
    assert_eq!(q.status(), st(2, 1));
    assert_eq!(q.generation(), 1);
    drop(t);

    let zero = WorkQueue::with_limit(0);
    zero.replace(Vec::<u8>::new()).unwrap();
    assert_eq!(
        zero.replace(vec![1]),
        Err(QueueError::TooLong { len: 1, max: 0 })
    );
    assert_eq!(
        QueueError::TooLong { len: 1, max: 0 }.to_string(),
        "work list has 1 items, more than the limit of 0"
    );
}

#[test]
fn delete_removes_only_queued_items() {
    let q = WorkQueue::new();
    q.replace(vec![1, 2, 3, 4, 5, 6]).unwrap();
    let t = q.try_next().unwrap().unwrap(); // 1 is in progress
    assert_eq!(q.delete(|i| i % 2 == 1).unwrap(), 2); // 3 and 5
    assert_eq!(queued(&q), vec![2, 4, 6]);
    assert_eq!(q.status(), st(3, 1));
    assert_eq!(*t, 1);
    assert_eq!(q.delete(|_| false).unwrap(), 0);
    assert_eq!(q.delete(|_| true).unwrap(), 3);
    assert_eq!(q.status(), st(0, 1));
}

#[test]
fn panicking_delete_predicate_leaves_list_unchanged() {
    let q = WorkQueue::new();
    q.replace(vec![1, 2, 3]).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        q.delete(|&i| if i == 3 { panic!("boom") } else { true })
    }));
    assert!(r.is_err());
    assert_eq!(queued(&q), vec![1, 2, 3]);
    // The queue still works after the (poisoned) lock.
    assert_eq!(*q.try_next().unwrap().unwrap(), 1);
}

#[test]
fn close_fails_everything_and_drops_queue() {
    let q = WorkQueue::new();
    q.replace(vec![1, 2, 3]).unwrap();
    let t = q.try_next().unwrap().unwrap();
    q.close();
    q.close(); // idempotent
    assert!(q.is_closed());
    assert_eq!(q.status(), st(0, 1));
    assert_eq!(q.replace(vec![4]), Err(QueueError::Closed));
    assert_eq!(q.try_next().err(), Some(QueueError::Closed));
    assert_eq!(q.delete(|_| true), Err(QueueError::Closed));
    assert_eq!(
        q.next().now_or_never().map(|r| r.err()),
        Some(Some(QueueError::Closed))
    );
    // In-progress work still finishes and is accounted for.
    assert_eq!(*t, 1);
    t.done();
    assert_eq!(q.status(), st(0, 0));
    assert_eq!(QueueError::Closed.to_string(), "work queue is closed");
}

#[test]
fn status_serializes_like_keepstore() {
    let json = serde_json::to_string(&st(3, 1)).unwrap();
    assert_eq!(json, r#"{"Queued":3,"InProgress":1}"#);
}

#[tokio::test]
async fn waiting_worker_wakes_on_replace() {
    let q = WorkQueue::new();
    let worker = tokio::spawn({
        let q = q.clone();
        async move { q.next().await.map(Ticket::into_inner) }
    });
    // Wait until the worker is parked (it cannot take anything yet).
    tokio::task::yield_now().await;
    assert!(!worker.is_finished());
    q.replace(vec!["x"]).unwrap();
    let got = tokio::time::timeout(DEADLINE, worker)
        .await
        .expect("worker did not wake")
        .unwrap();
    assert_eq!(got, Ok("x"));
    assert_eq!(q.status(), st(0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_wakes_all_waiters_with_closed() {
    let q: WorkQueue<u32> = WorkQueue::new();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move { q.next().await.map(Ticket::into_inner) })
        })
        .collect();
    tokio::task::yield_now().await;
    q.close();
    for w in workers {
        let r = tokio::time::timeout(DEADLINE, w)
            .await
            .expect("waiter not woken by close")
            .unwrap();
        assert_eq!(r, Err(QueueError::Closed));
    }
}

#[tokio::test]
async fn timed_out_next_loses_no_item() {
    let q = WorkQueue::new();
    let r = tokio::time::timeout(Duration::from_millis(20), q.next()).await;
    assert!(r.is_err(), "empty queue must not yield");
    q.replace(vec![1, 2]).unwrap();
    assert_eq!(q.status(), st(2, 0));
    assert_eq!(*q.next().await.unwrap(), 1);
}

#[tokio::test]
async fn pending_next_dropped_after_replace_loses_no_item() {
    let q = WorkQueue::new();
    let mut fut = Box::pin(q.next());
    assert!(futures::poll!(fut.as_mut()).is_pending());
    // The waiter is woken, but never polled again before being dropped.
    q.replace(vec![1]).unwrap();
    drop(fut);
    assert_eq!(q.status(), st(1, 0));
    assert_eq!(queued(&q), vec![1]);
    assert_eq!(*q.try_next().unwrap().unwrap(), 1);
}

#[tokio::test]
async fn next_losing_a_select_loses_no_item() {
    let q = WorkQueue::new();
    for _ in 0..3 {
        tokio::select! {
            biased;
            () = std::future::ready(()) => {}
            t = q.next() => panic!("next() should lose the race, got {:?}", t.map(|t| *t)),
        }
    }
    q.replace(vec![5]).unwrap();
    tokio::select! {
        biased;
        () = std::future::ready(()) => {}
        _t = q.next() => panic!("next() should lose the race"),
    }
    assert_eq!(queued(&q), vec![5]);
}

#[tokio::test]
async fn aborted_worker_loses_no_item() {
    let q = WorkQueue::new();
    let worker = tokio::spawn({
        let q = q.clone();
        async move { q.next().await.map(Ticket::into_inner) }
    });
    tokio::task::yield_now().await;
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    q.replace(vec![1]).unwrap();
    assert_eq!(q.status(), st(1, 0));
}

#[tokio::test]
async fn panicking_worker_does_not_leak_in_progress() {
    let q = WorkQueue::new();
    q.replace(vec![1, 2]).unwrap();
    let worker = tokio::spawn({
        let q = q.clone();
        async move {
            let t = q.next().await.unwrap();
            assert_eq!(q.status().in_progress, 1);
            panic!("worker failed on {}", *t);
        }
    });
    assert!(worker.await.unwrap_err().is_panic());
    assert_eq!(q.status(), st(1, 0));
}

#[tokio::test]
async fn replace_while_in_progress_keeps_count_and_drops_pending() {
    let q = WorkQueue::new();
    q.replace(vec![1, 2, 3, 4]).unwrap();
    let a = q.next().await.unwrap();
    let b = q.next().await.unwrap();
    q.replace(vec![10, 11]).unwrap();
    assert_eq!(q.status(), st(2, 2));
    assert_eq!(queued(&q), vec![10, 11]);
    assert_eq!(*q.next().await.unwrap(), 10);
    assert_eq!(q.status(), st(1, 2));
    drop((a, b));
    assert_eq!(q.status(), st(1, 0));
}

#[tokio::test]
async fn idle_resolves_when_work_drains() {
    let q = WorkQueue::new();
    q.idle().await; // already idle
    q.replace(vec![1, 2, 3]).unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move {
                while let Ok(t) = q.next().await {
                    tokio::task::yield_now().await;
                    t.done();
                }
            })
        })
        .collect();
    tokio::time::timeout(DEADLINE, q.idle())
        .await
        .expect("queue never became idle");
    assert_eq!(q.status(), st(0, 0));
    q.close();
    for w in workers {
        tokio::time::timeout(DEADLINE, w).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn idle_after_delete_and_close() {
    let q = WorkQueue::new();
    q.replace(vec![1, 2]).unwrap();
    let mut idle = Box::pin(q.idle());
    assert!(futures::poll!(idle.as_mut()).is_pending());
    q.delete(|_| true).unwrap();
    tokio::time::timeout(DEADLINE, idle).await.unwrap();

    q.replace(vec![1, 2]).unwrap();
    let t = q.try_next().unwrap().unwrap();
    let mut idle = Box::pin(q.idle());
    assert!(futures::poll!(idle.as_mut()).is_pending());
    q.close(); // drops the queued item, but one is still in progress
    assert!(futures::poll!(idle.as_mut()).is_pending());
    t.done();
    tokio::time::timeout(DEADLINE, idle).await.unwrap();
}

/// Many workers, many replacements, on a multi-threaded runtime: every item
/// is handed out at most once, the final list is fully processed, and
/// shutdown wakes everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stress_many_workers() {
    const WORKERS: usize = 16;
    const ROUNDS: u64 = 300;

    type Item = (u64, usize);
    let q: WorkQueue<Item> = WorkQueue::with_limit(64);
    let seen: Arc<Mutex<HashSet<Item>>> = Arc::default();
    let handed = Arc::new(AtomicUsize::new(0));

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (q, seen, handed) = (q.clone(), seen.clone(), handed.clone());
            tokio::spawn(async move {
                loop {
                    let t = match q.next().await {
                        Ok(t) => t,
                        Err(e) => return e,
                    };
                    assert_eq!(t.generation(), t.0, "ticket generation mismatch");
                    assert!(seen.lock().unwrap().insert(*t), "{:?} handed out twice", *t);
                    handed.fetch_add(1, Ordering::Relaxed);
                    if (t.1 + w) % 3 == 0 {
                        tokio::task::yield_now().await;
                    }
                    t.done();
                }
            })
        })
        .collect();

    let mut expected_final = 0;
    for round in 1..=ROUNDS {
        let len = (round as usize * 7) % 65;
        let items: Vec<Item> = (0..len).map(|i| (round, i)).collect();
        q.replace(items).unwrap();
        assert_eq!(q.generation(), round);
        let mut removed = 0;
        if round % 5 == 0 {
            removed = q.delete(|&(_, i)| i % 11 == 0).unwrap();
            assert!(removed <= len.div_ceil(11));
        }
        if round % 3 == 0 {
            tokio::task::yield_now().await;
        }
        if round == ROUNDS {
            expected_final = len - removed;
        }
        let s = q.status();
        assert!(s.queued <= 64 && s.in_progress <= WORKERS, "{s:?}");
    }

    tokio::time::timeout(Duration::from_secs(60), q.idle())
        .await
        .expect("work did not drain before the deadline");
    assert_eq!(q.status(), st(0, 0));
    {
        let seen = seen.lock().unwrap();
        let final_items = seen.iter().filter(|(g, _)| *g == ROUNDS).count();
        assert_eq!(
            final_items, expected_final,
            "final list not fully processed"
        );
        assert_eq!(seen.len(), handed.load(Ordering::Relaxed));
    }

    q.close();
    for w in workers {
        let e = tokio::time::timeout(DEADLINE, w)
            .await
            .expect("worker not stopped by close")
            .unwrap();
        assert_eq!(e, QueueError::Closed);
    }
}

// ---------------------------------------------------------------------------
// Model-based property test.

/// Items are `(generation, index)`, unique across the whole run.
type Item = (u64, usize);

#[derive(Debug, Clone)]
enum Op {
    /// Replace with a fresh list of this many items.
    Replace(usize),
    /// `try_next()`.
    Take,
    /// `next().now_or_never()`.
    NextNow,
    /// Start a `next()` future and poll it once; keep it if pending.
    StartWaiter,
    /// Poll the n-th pending waiter again.
    PollWaiter(usize),
    /// Drop the n-th pending waiter (cancellation).
    DropWaiter(usize),
    /// `done()` the n-th held ticket.
    Done(usize),
    /// Drop the n-th held ticket.
    DropTicket(usize),
    /// Delete queued items whose index is divisible by this.
    Delete(usize),
    Close,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..7).prop_map(Op::Replace),
        4 => Just(Op::Take),
        2 => Just(Op::NextNow),
        2 => Just(Op::StartWaiter),
        2 => any::<usize>().prop_map(Op::PollWaiter),
        1 => any::<usize>().prop_map(Op::DropWaiter),
        3 => any::<usize>().prop_map(Op::Done),
        1 => any::<usize>().prop_map(Op::DropTicket),
        1 => (1usize..4).prop_map(Op::Delete),
        1 => Just(Op::Close),
    ]
}

/// The reference model: a plain `VecDeque` plus counters.
#[derive(Debug, Default)]
struct Model {
    limit: Option<usize>,
    queue: VecDeque<Item>,
    in_progress: usize,
    closed: bool,
    generation: u64,
    /// Every item of the current generation's list, as installed.
    current: Vec<Item>,
    /// Items of the current generation deleted via `delete`.
    deleted: HashSet<Item>,
    /// Every item ever handed out (any generation).
    handed: HashSet<Item>,
}

impl Model {
    /// What a take should produce.
    fn take(&mut self) -> Result<Option<Item>, QueueError> {
        if self.closed {
            return Err(QueueError::Closed);
        }
        let item = self.queue.pop_front();
        if item.is_some() {
            self.in_progress += 1;
        }
        Ok(item)
    }
}

/// Records that a waker was invoked.
#[derive(Default)]
struct WakeFlag(AtomicBool);

impl ArcWake for WakeFlag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.store(true, Ordering::SeqCst);
    }
}

type NextFuture<'a> = Pin<Box<dyn Future<Output = Result<Ticket<Item>, QueueError>> + 'a>>;

struct Waiter<'a> {
    fut: NextFuture<'a>,
    woken: Arc<WakeFlag>,
}

impl Waiter<'_> {
    fn poll(&mut self) -> Poll<Result<Ticket<Item>, QueueError>> {
        self.woken.0.store(false, Ordering::SeqCst);
        let waker = futures::task::waker(self.woken.clone());
        self.fut.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

/// Checks a take's outcome against the model and keeps the ticket.
fn check_take(
    model: &mut Model,
    got: Result<Option<Ticket<Item>>, QueueError>,
    held: &mut Vec<Ticket<Item>>,
) -> Result<(), TestCaseError> {
    let want = model.take();
    match (got, want) {
        (Ok(Some(t)), Ok(Some(item))) => {
            prop_assert_eq!(*t, item);
            prop_assert_eq!(t.generation(), item.0);
            prop_assert!(model.handed.insert(item), "{:?} handed out twice", item);
            held.push(t);
        }
        (Ok(None), Ok(None)) => {}
        (Err(e), Err(w)) => prop_assert_eq!(e, w),
        (got, want) => {
            return Err(TestCaseError::fail(format!(
                "take mismatch: got {:?}, model {:?}",
                got.map(|o| o.map(|t| *t)),
                want
            )));
        }
    }
    Ok(())
}

fn check_invariants(
    q: &WorkQueue<Item>,
    model: &Model,
    held: &[Ticket<Item>],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        q.status(),
        QueueStatus {
            queued: model.queue.len(),
            in_progress: model.in_progress,
        }
    );
    prop_assert_eq!(held.len(), model.in_progress);
    prop_assert_eq!(q.is_closed(), model.closed);
    prop_assert_eq!(q.generation(), model.generation);
    let real = queued(q);
    prop_assert_eq!(&real, &Vec::from(model.queue.clone()));
    if let Some(max) = model.limit {
        prop_assert!(real.len() <= max);
    }
    if !model.closed {
        // Every item of the current list is exactly one of: handed out,
        // still queued, deleted.
        let queued_set: HashSet<Item> = real.iter().copied().collect();
        prop_assert_eq!(queued_set.len(), real.len(), "duplicate in queue");
        for item in &model.current {
            let states = [
                model.handed.contains(item),
                queued_set.contains(item),
                model.deleted.contains(item),
            ];
            prop_assert_eq!(
                states.iter().filter(|&&b| b).count(),
                1,
                "item {:?} is in states {:?}",
                item,
                states
            );
        }
        prop_assert!(real.iter().all(|i| i.0 == model.generation));
    } else {
        prop_assert!(real.is_empty());
    }
    Ok(())
}

fn run_model(limit: Option<usize>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let q: WorkQueue<Item> = match limit {
        Some(max) => WorkQueue::with_limit(max),
        None => WorkQueue::new(),
    };
    let mut model = Model {
        limit,
        ..Model::default()
    };
    let mut held: Vec<Ticket<Item>> = Vec::new();
    let mut waiters: Vec<Waiter<'_>> = Vec::new();

    for op in ops {
        match op {
            Op::Replace(len) => {
                let gen_ = model.generation + 1;
                let items: Vec<Item> = (0..len).map(|i| (gen_, i)).collect();
                let got = q.replace(items.clone());
                let want = if model.closed {
                    Err(QueueError::Closed)
                } else if limit.is_some_and(|max| len > max) {
                    Err(QueueError::TooLong {
                        len,
                        max: limit.unwrap_or_default(),
                    })
                } else {
                    Ok(())
                };
                prop_assert_eq!(got, want);
                if want.is_ok() {
                    model.generation = gen_;
                    model.queue = items.iter().copied().collect();
                    model.current = items;
                    model.deleted.clear();
                    if len > 0 {
                        for w in &waiters {
                            prop_assert!(w.woken.0.load(Ordering::SeqCst), "waiter not woken");
                        }
                    }
                }
            }
            Op::Take => {
                let got = q.try_next();
                check_take(&mut model, got, &mut held)?;
            }
            Op::NextNow => match q.next().now_or_never() {
                Some(got) => check_take(&mut model, got.map(Some), &mut held)?,
                None => {
                    prop_assert!(!model.closed && model.queue.is_empty());
                }
            },
            Op::StartWaiter => {
                let mut w = Waiter {
                    fut: Box::pin(q.next()),
                    woken: Arc::default(),
                };
                match w.poll() {
                    Poll::Ready(got) => check_take(&mut model, got.map(Some), &mut held)?,
                    Poll::Pending => {
                        prop_assert!(!model.closed && model.queue.is_empty());
                        waiters.push(w);
                    }
                }
            }
            Op::PollWaiter(i) if !waiters.is_empty() => {
                let i = i % waiters.len();
                match waiters[i].poll() {
                    Poll::Ready(got) => {
                        drop(waiters.swap_remove(i));
                        check_take(&mut model, got.map(Some), &mut held)?;
                    }
                    Poll::Pending => {
                        prop_assert!(!model.closed && model.queue.is_empty());
                    }
                }
            }
            Op::DropWaiter(i) if !waiters.is_empty() => {
                // Cancelling a pending waiter must not take anything.
                drop(waiters.swap_remove(i % waiters.len()));
            }
            Op::PollWaiter(_) | Op::DropWaiter(_) => {}
            Op::Done(i) if !held.is_empty() => {
                held.swap_remove(i % held.len()).done();
                model.in_progress -= 1;
            }
            Op::DropTicket(i) if !held.is_empty() => {
                drop(held.swap_remove(i % held.len()));
                model.in_progress -= 1;
            }
            Op::Done(_) | Op::DropTicket(_) => {}
            Op::Delete(m) => {
                let got = q.delete(|&(_, i)| i % m == 0);
                if model.closed {
                    prop_assert_eq!(got, Err(QueueError::Closed));
                } else {
                    let before = model.queue.len();
                    let deleted = &mut model.deleted;
                    model.queue.retain(|&item| {
                        let doomed = item.1 % m == 0;
                        if doomed {
                            deleted.insert(item);
                        }
                        !doomed
                    });
                    prop_assert_eq!(got, Ok(before - model.queue.len()));
                }
            }
            Op::Close => {
                q.close();
                model.closed = true;
                model.queue.clear();
                for w in &waiters {
                    prop_assert!(w.woken.0.load(Ordering::SeqCst), "waiter not woken");
                }
            }
        }
        check_invariants(&q, &model, &held)?;
    }

    // Wind down: pending waiters either see Closed or stay pending; all
    // tickets release their count.
    q.close();
    for mut w in waiters {
        match w.poll() {
            Poll::Ready(r) => prop_assert_eq!(r.err(), Some(QueueError::Closed)),
            Poll::Pending => prop_assert!(false, "waiter pending after close"),
        }
    }
    drop(held);
    prop_assert_eq!(q.status(), st(0, 0));
    let mut idle = Box::pin(q.idle());
    prop_assert!(poll_once(&mut idle).is_ready());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn model_interleavings(
        limit in prop::option::of(0usize..6),
        ops in prop::collection::vec(op_strategy(), 1..80),
    ) {
        run_model(limit, ops)?;
    }
}
