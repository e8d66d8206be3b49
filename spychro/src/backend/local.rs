//! What the in-process backends (single-processed and multi-threaded) share around the items
//! they run: the caller's handlers, the failure policy, the job's deadline, and the same
//! delivery calls as the process engine.

use std::time::{Duration, Instant};

use crate::call::job_fn::JobFn;
use crate::engine::hooks::Hooks;
use crate::engine::insights::{Insights, WorkerInsights};
use crate::engine::job::Indexed;
use crate::error::Error;

/// Runs items in this process and gives their outcomes in input order.
pub(crate) trait Produce<F: JobFn> {
    /// The next outcome, `None` at the end of the input (where the per-thread states end);
    /// `Err` when a state could not be built.
    fn produce(&mut self, hooks: &mut Hooks<'_>) -> Result<Option<Indexed<F::Output>>, Error>;

    /// Gives outcomes in the order items finish rather than in input order (set before the
    /// first is taken); a source that runs one item at a time has no other order.
    fn set_unordered(&mut self) {}

    /// What each thread that runs items did so far.
    fn tallies(&self) -> Vec<Tally>;
}

/// What one thread did: items run, and the time they took.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tally {
    pub(crate) items: u64,
    pub(crate) busy: Duration,
}

impl Tally {
    /// Counts one item that ran from `since` until now.
    pub(crate) fn add(&mut self, since: Instant) {
        self.items += 1;
        self.busy += since.elapsed();
    }
}

/// An in-process backend.
pub(crate) struct Local<'h, P> {
    source: P,
    hooks: Hooks<'h>,
    keep_going: bool,
    deadline: Option<(Instant, Duration)>,
    delivered: u64,
    done: bool,
    started: Instant,
    /// The insights, once the job ended (and the handlers had them).
    insights: Option<Insights>,
}

impl<'h, P> Local<'h, P> {
    pub(crate) fn new(
        source: P,
        hooks: Hooks<'h>,
        keep_going: bool,
        deadline: Option<(Instant, Duration)>,
    ) -> Self {
        Local {
            source,
            hooks,
            keep_going,
            deadline,
            delivered: 0,
            done: false,
            started: Instant::now(),
            insights: None,
        }
    }

    /// The job's insights: now, or as it ended. Each thread is a worker of this process.
    pub(crate) fn insights<F: JobFn>(&self) -> Insights
    where
        P: Produce<F>,
    {
        if let Some(i) = &self.insights {
            return i.clone();
        }
        let elapsed = self.started.elapsed();
        let pid = std::process::id();
        let workers = self
            .source
            .tallies()
            .iter()
            .enumerate()
            .map(|(slot, t)| WorkerInsights {
                slot,
                pid,
                items: t.items,
                busy: t.busy,
                idle: elapsed.saturating_sub(t.busy),
                starting: Duration::ZERO,
                restarts: 0,
            })
            .collect();
        Insights { elapsed, workers }
    }

    /// The job ends: its insights go to the handlers (once).
    fn report<F: JobFn>(&mut self)
    where
        P: Produce<F>,
    {
        if self.insights.is_none() {
            let insights = self.insights::<F>();
            self.hooks.insights(&insights);
            self.insights = Some(insights);
        }
    }

    /// The next outcome in input order (or, after [`set_unordered`](Local::set_unordered),
    /// as items finish), with its index; `Ok(None)` at the end. When the job ends (here or
    /// by a failure), its insights go to the handlers.
    pub(crate) fn next<F: JobFn>(&mut self) -> Result<Option<Indexed<F::Output>>, Error>
    where
        P: Produce<F>,
    {
        let was_done = self.done;
        let next = self.step::<F>();
        if self.done && !was_done {
            self.report::<F>();
            if let Some(e) = self.hooks.broken.take()
                && next.is_ok()
            {
                return Err(e);
            }
        }
        next
    }

    /// Delivers outcomes as items finish, each with its index.
    pub(crate) fn set_unordered<F: JobFn>(&mut self)
    where
        P: Produce<F>,
    {
        self.source.set_unordered();
    }

    fn step<F: JobFn>(&mut self) -> Result<Option<Indexed<F::Output>>, Error>
    where
        P: Produce<F>,
    {
        if self.done {
            return Ok(None);
        }
        if let Some((at, limit)) = self.deadline
            && Instant::now() >= at
        {
            self.done = true;
            return Err(Error::DeadlineExceeded {
                limit,
                completed: self.delivered,
            });
        }
        let outcome = match self.source.produce(&mut self.hooks) {
            Ok(outcome) => outcome,
            Err(e) => {
                self.done = true;
                return Err(e);
            }
        };
        if let Some((_, Err(failure))) = &outcome {
            self.hooks.failure(failure);
            if !self.keep_going {
                self.done = true;
            }
        }
        if let Some(e) = self.hooks.broken.take() {
            self.done = true;
            return Err(e);
        }
        match outcome {
            Some(o) => {
                self.hooks.delivered();
                self.delivered += 1;
                Ok(Some(o))
            }
            None => {
                self.done = true;
                // Items that the deadline kept from starting end the input early.
                if let Some((at, limit)) = self.deadline
                    && Instant::now() >= at
                {
                    return Err(Error::DeadlineExceeded {
                        limit,
                        completed: self.delivered,
                    });
                }
                Ok(None)
            }
        }
    }

    pub(crate) fn collect_outputs<F: JobFn>(&mut self) -> Result<Vec<F::Output>, Error>
    where
        P: Produce<F>,
    {
        let mut all = Vec::new();
        while let Some((_, outcome)) = self.next::<F>()? {
            all.push(outcome?);
        }
        Ok(all)
    }
}

/// Builds job `F`'s state in this process (for one thread).
pub(crate) fn init_here<F: JobFn>(args: &F::Args) -> Result<F::State, Error> {
    crate::call::state::build::<F>(args).map_err(|message| Error::WorkerState {
        job: F::NAME,
        pid: std::process::id(),
        message,
    })
}

/// Ends job `F`'s state in this process: its exit value reaches the handlers, as a worker's
/// would (through its encoding).
pub(crate) fn exit_here<F: JobFn>(state: F::State, hooks: &mut Hooks<'_>) {
    match crate::call::state::end::<F>(state) {
        Ok(bytes) => hooks.worker_exit(std::process::id(), &bytes),
        Err(why) => log::warn!(
            "the per-worker state of job `{}` ended without an exit value: {why}",
            F::NAME
        ),
    }
}
