//! [`JobHandle`]: a job running in a [`Pool`](crate::Pool), from the thread that started it —
//! wait for it, cancel it, read its outputs as they come, or `.await` it.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::call::job_fn::JobFn;
use crate::engine::handlers::Handlers;
use crate::engine::hooks::Hooks;
use crate::engine::insights::Insights;
use crate::engine::job::Outcome;
use crate::engine::pooled::{EventQueue, Shared};
use crate::engine::service::{Command, Control};
use crate::error::Error;
use crate::job::{FailurePolicy, StopOnFailure};
use crate::sys::signals::Inside;

/// A job started in a [`Pool`](crate::Pool) with [`OnPool::spawn`](crate::OnPool::spawn) (or a
/// call started with [`Pool::submit`](crate::Pool::submit)): it runs while your thread does
/// other things.
///
/// - [`wait`](JobHandle::wait) returns what `run_*` would have (every output in input order,
///   or the first failure; every outcome with `keep_going`; the one output of a call);
/// - [`wait_timeout`](JobHandle::wait_timeout) waits at most so long;
/// - it is an iterator of the outputs in input order as they arrive, and an
///   [`unordered`](JobHandle::unordered) one in the order they finish;
/// - it is a `Future` of what `wait` returns, for any async runtime (spychro needs none: the
///   pool's thread wakes the task);
/// - [`cancel`](JobHandle::cancel) stops it: workers skip its remaining items and stay in the
///   pool. Dropping the handle before the job ended cancels it too.
///
/// Your handlers (`on_message`, `on_log`, ...) run on the thread that calls into the handle,
/// whenever it does (waiting, iterating, polling), in the order things happened.
///
/// ```
/// use spychro::{Job, Pool};
///
/// #[spychro::job]
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = Pool::builder().processes(2).start()?;
/// let a = Job::new(square, 0..100u64).on(&pool).spawn()?;
/// let b = Job::new(square, 100..200u64).on(&pool).spawn()?;
/// assert_eq!(b.wait()?[0], 10_000);
/// assert_eq!(a.wait()?[99], 9_801);
/// # Ok::<(), spychro::Error>(())
/// ```
#[must_use = "dropping a job's handle cancels the job"]
pub struct JobHandle<'h, F: JobFn, P: FailurePolicy = StopOnFailure> {
    shared: Arc<Shared<F>>,
    control: Arc<Control>,
    id: u32,
    hooks: Hooks<'h>,
    /// Outcomes taken from the shared state and not handed out yet.
    buffer: VecDeque<(u64, Outcome<F::Output>)>,
    /// Deliver in the order items finish rather than in input order.
    unordered: bool,
    /// The job ended (with this error, if it ended early), and everything was taken.
    end: Option<Option<Error>>,
    _policy: PhantomData<P>,
}

/// How long a take may wait.
enum Wait<'a, 'b> {
    Until(Option<Instant>),
    Task(&'a mut Context<'b>),
}

impl<'h, F: JobFn, P: FailurePolicy> JobHandle<'h, F, P> {
    pub(crate) fn new(
        shared: Arc<Shared<F>>,
        control: Arc<Control>,
        id: u32,
        hooks: Hooks<'h>,
    ) -> Self {
        JobHandle {
            shared,
            control,
            id,
            hooks,
            buffer: VecDeque::new(),
            unordered: false,
            end: None,
            _policy: PhantomData,
        }
    }

    /// Whether the pool is done with the job (every outcome is there to be taken).
    ///
    /// ```
    /// # use spychro::{Job, Pool};
    /// # #[spychro::job]
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = Pool::builder().processes(1).start()?;
    /// let mut job = Job::new(square, [3u64]).on(&pool).spawn()?;
    /// assert!(job.wait_timeout(std::time::Duration::from_secs(20)));
    /// assert!(job.is_finished());
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.end.is_some() || self.shared.lock().finished
    }

    /// Stops the job: nothing more of it is sent, its workers skip what they still hold of
    /// it after the item each is running (they stay in the pool), and it ends with
    /// [`Error::Cancelled`] — unless it had already ended.
    ///
    /// ```
    /// # use spychro::{Error, Job, Pool};
    /// #[spychro::job]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(ms)); ms }
    ///
    /// let pool = Pool::builder().processes(2).start()?;
    /// let job = Job::new(nap, vec![50u64; 1000]).on(&pool).spawn()?;
    /// job.cancel();
    /// assert!(matches!(job.wait(), Err(Error::Cancelled)));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn cancel(&self) {
        let _ = self.control.send(Command::Cancel(self.id));
    }

    /// How the pool's workers spent their time on this job so far (as it ended, once it
    /// has): per worker, the job's items and the time busy with them, and the time idle or
    /// starting, and the restarts, while the job ran. Its handlers get the final figures
    /// through [`Job::on_insights`](crate::Job::on_insights).
    ///
    /// ```
    /// # use spychro::{Job, Pool};
    /// # #[spychro::job]
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = Pool::builder().processes(2).start()?;
    /// let mut job = Job::new(square, 0..500u64).on(&pool).spawn()?;
    /// assert!(job.wait_timeout(std::time::Duration::from_secs(20)));
    /// let insights = job.insights();
    /// assert_eq!(insights.items(), 500);
    /// assert_eq!(insights.workers.len(), 2);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn insights(&self) -> Insights {
        if let Some(i) = self.shared.lock().insights.clone() {
            return i;
        }
        // The pool's thread answers while the job runs; a job that has just ended left its
        // figures in the shared state.
        match self.control.insights(Some(self.id)) {
            Some(i) => i,
            None => self.shared.lock().insights.clone().unwrap_or(Insights {
                elapsed: Duration::ZERO,
                workers: Vec::new(),
            }),
        }
    }

    /// Waits for the job to end and returns what `run_*` would have: every output in input
    /// order, or the first failure (every outcome with `keep_going`; the one output of a
    /// call).
    ///
    /// ```
    /// # use spychro::{Job, Pool};
    /// # #[spychro::job]
    /// # fn square(x: u64) -> u64 { x * x }
    /// let pool = Pool::builder().processes(2).start()?;
    /// assert_eq!(Job::new(square, 1..4u64).on(&pool).spawn()?.wait()?, [1, 4, 9]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn wait(mut self) -> Result<P::Collected<F::Output>, Error> {
        let mut all: Vec<Outcome<F::Output>> = Vec::new();
        loop {
            all.extend(self.buffer.drain(..).map(|(_, o)| o));
            if let Some(end) = self.end.take() {
                self.end = Some(None);
                if let Some(e) = end {
                    return Err(e);
                }
                return P::from_outcomes(all);
            }
            self.pump(Wait::Until(None));
        }
    }

    /// Waits at most `timeout` for the job to end; whether it did. Outputs that arrive
    /// meanwhile are kept for [`wait`](JobHandle::wait) and the iterator; your handlers run.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use spychro::{Job, Pool};
    /// #[spychro::job]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    ///
    /// let pool = Pool::builder().processes(1).start()?;
    /// let mut job = Job::new(nap, [300u64]).on(&pool).spawn()?;
    /// assert!(!job.wait_timeout(Duration::from_millis(10)));
    /// assert!(job.wait_timeout(Duration::from_secs(20)));
    /// assert_eq!(job.wait()?, [300]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.end.is_some() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.pump(Wait::Until(Some(deadline)));
        }
    }

    /// The outputs in the order their items finish, each with its index, instead of in input
    /// order (`imap_unordered`, `as_completed`).
    ///
    /// ```
    /// # use spychro::{Job, Pool};
    /// #[spychro::job]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(ms)); ms }
    ///
    /// let pool = Pool::builder().processes(2).start()?;
    /// let job = Job::new(nap, [400u64, 1]).on(&pool).spawn()?;
    /// let order: Vec<u64> = job.unordered().map(|r| r.map(|(i, _)| i)).collect::<Result<_, _>>()?;
    /// assert_eq!(order, [1, 0]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn unordered(mut self) -> Unordered<'h, F, P> {
        self.unordered = true;
        self.shared.lock().outcomes.reorder.set_unordered(true);
        Unordered(self)
    }

    /// Takes what is there: events (replayed into the handlers), outcomes (into the buffer),
    /// or the end; waits for something as `how` allows.
    fn pump(&mut self, how: Wait<'_, '_>) {
        let mut state = self.shared.lock();
        let mut inside = None;
        let deadline = match &how {
            Wait::Until(d) => *d,
            Wait::Task(_) => None,
        };
        loop {
            let events = std::mem::take(&mut state.outcomes.handlers.0);
            let finished = state.finished;
            let mut took = false;
            if self.unordered {
                while let Some(o) = state.outcomes.reorder.pop_arrived() {
                    state.outcomes.handlers.delivered(1);
                    self.buffer.push_back(o);
                    took = true;
                }
            } else {
                let first = state.outcomes.reorder.next_index();
                if let Some(chunk) = state.outcomes.pop_chunk() {
                    self.buffer.extend((first..).zip(chunk));
                    took = true;
                } else {
                    loop {
                        let index = state.outcomes.reorder.next_index();
                        let Some(o) = state.outcomes.pop_outcome() else {
                            break;
                        };
                        self.buffer.push_back((index, o));
                        took = true;
                    }
                }
            }
            if !took
                && finished
                && let Some(f) = state.outcomes.take_failure()
            {
                self.buffer.push_back((f.index(), Err(f)));
                took = true;
            }
            let ended = finished && !took;
            let error = if ended { state.error.take() } else { None };
            // The pool held back the job's next batch until outcomes were taken (a bounded
            // stream): it looked before some were, or they are taken now. Either way, it
            // must look again.
            if state.starved {
                state.starved = false;
                self.control.wake();
            }
            let events = {
                let mut e = events;
                e.append(&mut state.outcomes.handlers.0);
                e
            };
            if took || ended || !events.is_empty() {
                drop(state);
                EventQueue::replay(events, &mut self.hooks);
                if let Some(e) = self.hooks.broken.take() {
                    self.end = Some(Some(e));
                    self.cancel();
                } else if ended {
                    self.end = Some(error);
                }
                if took || ended || self.end.is_some() {
                    return;
                }
                // Only events came: look again (a task must not return `Pending` without
                // leaving its waker, or nothing would wake it).
                state = self.shared.lock();
                continue;
            }
            match &how {
                Wait::Task(cx) => {
                    state.waker = Some(cx.waker().clone());
                    return;
                }
                Wait::Until(d) => {
                    inside.get_or_insert_with(Inside::enter);
                    if d.is_some_and(|d| Instant::now() >= d) {
                        return;
                    }
                    state = self.shared.wait(state, *d);
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        // One more look at what arrived, then give up.
                        continue;
                    }
                }
            }
        }
    }
}

impl<F: JobFn, P: FailurePolicy> Iterator for JobHandle<'_, F, P> {
    type Item = Result<F::Output, Error>;

    /// The next output in input order, as it arrives (a failed item is `Err(Error::Item)`;
    /// without `keep_going` it is the last item).
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((_, o)) = self.buffer.pop_front() {
                return Some(o.map_err(Error::Item));
            }
            match &mut self.end {
                Some(end) => return end.take().map(Err),
                None => self.pump(Wait::Until(None)),
            }
        }
    }
}

impl<F: JobFn, P: FailurePolicy> Unpin for JobHandle<'_, F, P> {}

impl<F: JobFn, P: FailurePolicy> Future for JobHandle<'_, F, P> {
    type Output = Result<P::Collected<F::Output>, Error>;

    /// Ready once the job has ended, with what [`wait`](JobHandle::wait) returns. Outputs are
    /// taken as they arrive, and your handlers run, each time the task is polled.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            if this.end.is_some() {
                let all: Vec<_> = this.buffer.drain(..).map(|(_, o)| o).collect();
                return Poll::Ready(match this.end.replace(None).flatten() {
                    Some(e) => Err(e),
                    None => P::from_outcomes(all),
                });
            }
            let before = (this.buffer.len(), this.end.is_some());
            this.pump(Wait::Task(cx));
            if (this.buffer.len(), this.end.is_some()) == before {
                return Poll::Pending;
            }
        }
    }
}

impl<F: JobFn, P: FailurePolicy> Drop for JobHandle<'_, F, P> {
    fn drop(&mut self) {
        if self.end.is_none() && !self.shared.lock().finished {
            self.cancel();
        }
    }
}

/// The outputs of a pooled job in the order their items finish, each with its index: from
/// [`JobHandle::unordered`].
#[must_use = "dropping it cancels the job"]
pub struct Unordered<'h, F: JobFn, P: FailurePolicy>(JobHandle<'h, F, P>);

impl<F: JobFn, P: FailurePolicy> Iterator for Unordered<'_, F, P> {
    type Item = Result<(u64, F::Output), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let h = &mut self.0;
        loop {
            if let Some((index, o)) = h.buffer.pop_front() {
                return Some(o.map(|o| (index, o)).map_err(Error::Item));
            }
            match &mut h.end {
                Some(end) => return end.take().map(Err),
                None => h.pump(Wait::Until(None)),
            }
        }
    }
}
