//! A job in a persistent pool. Its input is read, and its outcomes decoded, on the pool's own
//! thread; what the caller sees — outcomes, the events its handlers are due, the end — waits in
//! [`Shared`] state behind a lock, and the caller's thread takes it (a handle's `wait`, `next`,
//! or its `Future::poll`), waking from a condition variable or through the task's waker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::batch::{InFlight, ItemBytes};
use super::handlers::Handlers;
use super::hooks::{Hooks, WorkerLog};
use super::insights::Insights;
use super::intake::describe;
use super::job::{JobCore, JobIo, PlainOutputs};
use super::local::{exact_len, read_items};
use super::outcomes::Outcomes;
use crate::call::job_fn::JobFn;
use crate::error::{Error, ItemError, WireError};
use crate::wire::ResultsHeader;

/// Something the caller's handlers are due, in the order it happened.
pub(crate) enum Event {
    Failure(ItemError),
    Message(u32, u64, Vec<u8>),
    Log(WorkerLog),
    Progress(u32, u64, f64),
    Delivered(usize),
    WorkerExit(u32, Vec<u8>),
    Insights(Insights),
}

/// Events kept for the caller's thread.
#[derive(Default)]
pub(crate) struct EventQueue(pub(crate) Vec<Event>);

impl Handlers for EventQueue {
    fn failure(&mut self, failure: &ItemError) {
        self.0.push(Event::Failure(failure.clone()));
    }
    fn message(&mut self, pid: u32, item: u64, message: &[u8]) {
        self.0.push(Event::Message(pid, item, message.to_vec()));
    }
    fn log(&mut self, record: WorkerLog) {
        self.0.push(Event::Log(record));
    }
    fn progress(&mut self, pid: u32, item: u64, fraction: f64) {
        self.0.push(Event::Progress(pid, item, fraction));
    }
    fn delivered(&mut self, n: usize) {
        if let Some(Event::Delivered(m)) = self.0.last_mut() {
            *m += n;
        } else {
            self.0.push(Event::Delivered(n));
        }
    }
    fn worker_exit(&mut self, pid: u32, exit: &[u8]) {
        self.0.push(Event::WorkerExit(pid, exit.to_vec()));
    }
    fn insights(&mut self, insights: &Insights) {
        self.0.push(Event::Insights(insights.clone()));
    }
    fn take_broken(&mut self) -> Option<Error> {
        None
    }
}

impl EventQueue {
    /// Hands every kept event to `hooks`, in order.
    pub(crate) fn replay(events: Vec<Event>, hooks: &mut Hooks<'_>) {
        for event in events {
            match event {
                Event::Failure(f) => hooks.failure(&f),
                Event::Message(pid, item, m) => hooks.message(pid, Some(item), &m),
                Event::Log(record) => hooks.log(record),
                Event::Progress(pid, item, f) => hooks.progress(pid, item, f),
                Event::Delivered(n) => hooks.delivered_many(n),
                Event::WorkerExit(pid, exit) => hooks.worker_exit(pid, &exit),
                Event::Insights(insights) => hooks.insights(&insights),
            }
        }
    }
}

/// What a pooled job shares between the pool's thread and the caller's.
pub(crate) struct Shared<F: JobFn> {
    pub(crate) state: Mutex<State<F>>,
    pub(crate) changed: Condvar,
    /// Counts changes (under the lock), so that a waiter can spin on it briefly before
    /// sleeping on `changed`.
    generation: AtomicU64,
}

/// How long a waiter spins for a change before it sleeps: a round trip through the pool's
/// thread and a worker takes tens of microseconds, about what waking a sleeping thread (a
/// halted CPU, in a virtual machine) can cost on its own.
const SPIN: Duration = Duration::from_micros(50);

/// The shared state of a pooled job.
pub(crate) struct State<F: JobFn> {
    pub(crate) outcomes: Outcomes<F, EventQueue>,
    /// The pool is done with the job: nothing more will arrive.
    pub(crate) finished: bool,
    /// Why the job ended before its items did (the machinery, a cancel, a signal).
    pub(crate) error: Option<Error>,
    /// The task awaiting the job, to wake when something arrives.
    pub(crate) waker: Option<Waker>,
    /// The pool stopped sending items until the consumer takes some (a bounded stream).
    pub(crate) starved: bool,
    /// How the workers spent their time on the job, once it ended.
    pub(crate) insights: Option<Insights>,
}

impl<F: JobFn> Shared<F> {
    pub(crate) fn new(keep_going: bool) -> Arc<Shared<F>> {
        Arc::new(Shared {
            state: Mutex::new(State {
                outcomes: Outcomes::new(keep_going, EventQueue::default()),
                finished: false,
                error: None,
                waker: None,
                starved: false,
                insights: None,
            }),
            changed: Condvar::new(),
            generation: AtomicU64::new(0),
        })
    }

    /// Waits for a change after `state` was looked at: spins up to [`SPIN`], then sleeps on
    /// the condition variable until `deadline` (an hour at most). Returns the state, locked.
    pub(crate) fn wait<'a>(
        &'a self,
        state: MutexGuard<'a, State<F>>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, State<F>> {
        let seen = self.generation.load(Ordering::Acquire);
        drop(state);
        let spin_until = Instant::now() + SPIN;
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == seen && Instant::now() < spin_until {
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let state = self.lock();
        if self.generation.load(Ordering::Acquire) != seen {
            return state;
        }
        let wait = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(3600));
        if wait.is_zero() {
            return state;
        }
        self.changed
            .wait_timeout(state, wait)
            .map(|(s, _)| s)
            .unwrap_or_else(|e| e.into_inner().0)
    }

    /// The state, locked (a panic while it was held does not make it unusable: every change
    /// to it is whole).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<F>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes whoever waits for the job, after a change made under `state`.
    pub(crate) fn notify(&self, mut state: MutexGuard<'_, State<F>>) {
        self.generation.fetch_add(1, Ordering::Release);
        let waker = state.waker.take();
        drop(state);
        self.changed.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The pool is done with the job, for `error` if it ended early.
    pub(crate) fn finish(&self, error: Option<Error>) {
        let mut state = self.lock();
        state.finished = true;
        if state.error.is_none() {
            state.error = error;
        }
        self.notify(state);
    }
}

/// A job of `F` over an input `It` that the pool's thread reads.
pub(crate) struct PooledJob<F: JobFn, It> {
    pub(crate) core: JobCore,
    pub(crate) input: It,
    pub(crate) shared: Arc<Shared<F>>,
}

impl<F: JobFn, It: Iterator<Item = F::Item>> JobIo for PooledJob<F, It> {
    fn core(&self) -> &JobCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut JobCore {
        &mut self.core
    }

    fn read_items(&mut self, size: usize, max_bytes: usize, items: &mut Vec<u8>, raw: bool) -> u32 {
        let shared = &self.shared;
        read_items::<F>(
            &mut self.core,
            &mut self.input,
            size,
            max_bytes,
            items,
            raw,
            |f| {
                let mut state = shared.lock();
                state.outcomes.fail(f);
                shared.notify(state);
            },
        )
    }

    fn remaining(&self) -> Option<usize> {
        exact_len(&self.input)
    }

    fn delivered(&self) -> u64 {
        self.shared.lock().outcomes.reorder.next_index()
    }

    fn starved(&mut self) {
        self.shared.lock().starved = true;
    }

    fn take_results(
        &mut self,
        pid: u32,
        batch: &InFlight,
        header: &ResultsHeader,
        outcomes: &[u8],
        plain: Option<PlainOutputs>,
    ) -> Result<(), WireError> {
        let mut state = self.shared.lock();
        let taken = state
            .outcomes
            .take_results(pid, header, outcomes, plain, |index| {
                describe::<F>(batch.item((index - batch.first) as u32))
            });
        self.shared.notify(state);
        taken
    }

    fn fail(&mut self, failure: Box<ItemError>) {
        let mut state = self.shared.lock();
        state.outcomes.fail(failure);
        self.shared.notify(state);
    }

    fn stopped(&self) -> bool {
        self.shared.lock().outcomes.stopped()
    }

    fn log(&mut self, record: WorkerLog) {
        let mut state = self.shared.lock();
        state.outcomes.handlers.log(record);
        self.shared.notify(state);
    }

    fn message(&mut self, pid: u32, item: u64, message: &[u8]) {
        let mut state = self.shared.lock();
        state.outcomes.handlers.message(pid, item, message);
        self.shared.notify(state);
    }

    fn progress(&mut self, pid: u32, item: u64, fraction: f64) {
        let mut state = self.shared.lock();
        state.outcomes.handlers.progress(pid, item, fraction);
        self.shared.notify(state);
    }

    fn describe(&self, item: Option<ItemBytes<'_>>) -> Option<String> {
        describe::<F>(item)
    }

    fn take_broken(&mut self) -> Option<Error> {
        None
    }

    fn worker_exit(&mut self, pid: u32, exit: &[u8]) {
        let mut state = self.shared.lock();
        state.outcomes.handlers.worker_exit(pid, exit);
        self.shared.notify(state);
    }

    fn ended(&mut self, insights: &Insights) {
        let mut state = self.shared.lock();
        state.outcomes.handlers.insights(insights);
        state.insights = Some(insights.clone());
        self.shared.notify(state);
    }
}
