//! Running a [`Job`]: the `run_*` methods (every output, in input order) and the `stream_*`
//! methods (an iterator in bounded memory), for each way of running. The options are checked
//! here, once, before anything starts.

use std::num::NonZeroUsize;
use std::time::Instant;

use super::policy::{ArgsReady, FailurePolicy};
use super::{Job, Options};
use crate::backend::Backend;
use crate::backend::local::Local;
use crate::backend::single::Single;
use crate::backend::threads::Threads;
use crate::call::job_fn::JobFn;
use crate::engine::hooks::Hooks;
use crate::engine::job::JobOptions;
use crate::engine::run::Run;
use crate::engine::workers::PoolOptions;
use crate::error::Error;
use crate::results::Results;

/// Where a job's items run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Single,
    Threads,
    Processes,
}

impl Options {
    /// The number of workers (or threads): as set, or the machine's available parallelism.
    fn pool_size(&self) -> usize {
        self.processes.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(NonZeroUsize::get)
                .unwrap_or(1)
        })
    }

    /// Refuses a job's own options that cannot work.
    pub(crate) fn check_job(&self) -> Result<(), Error> {
        if self.chunk_size == Some(0) {
            return Err(Error::invalid("chunk_size", "it must be at least 1"));
        }
        if self.timeout == Some(std::time::Duration::ZERO) {
            return Err(Error::invalid(
                "timeout",
                "it must be more than zero (every item would time out)",
            ));
        }
        Ok(())
    }

    /// Refuses options that cannot work, and says (on stderr) which ones have no effect in
    /// `mode`.
    fn check(&self, mode: Mode) -> Result<(), Error> {
        if self.processes == Some(0) {
            return Err(Error::invalid("processes", "it must be at least 1"));
        }
        if self.max_items_per_worker == Some(0) {
            return Err(Error::invalid(
                "max_items_per_worker",
                "it must be at least 1",
            ));
        }
        self.check_job()?;
        if mode == Mode::Processes {
            return Ok(());
        }
        let ignored: Vec<&str> = [
            (self.timeout.is_some(), "timeout"),
            (self.retries > 0, "retries"),
            (self.memory_limit.is_some(), "memory_limit"),
            (self.max_items_per_worker.is_some(), "max_items_per_worker"),
            (self.program.is_some(), "worker_program"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if !ignored.is_empty() {
            let how = match mode {
                Mode::Single => "run_single_processed/stream_single_processed",
                _ => "run_multi_threaded/stream_multi_threaded",
            };
            eprintln!(
                "spychro: {} {} no effect in {how}: items run in this process, not in worker \
                 processes",
                ignored.join(", "),
                if ignored.len() == 1 { "has" } else { "have" }
            );
        }
        Ok(())
    }
}

impl<'h, F, I, A, P> Job<'h, F, I, A, P>
where
    F: JobFn,
    I: IntoIterator<Item = F::Item>,
    P: FailurePolicy,
{
    /// Runs every item in this process, one after another, and returns the outputs in input
    /// order. Outcomes and errors are the same as [`run_multi_processed`]; a debugger, `dbg!`
    /// and breakpoints work in the job. Items are serialized (and that can fail, as in a
    /// pool) but outputs are not.
    ///
    /// [`run_multi_processed`]: Job::run_multi_processed
    ///
    /// ```
    /// #[spychro::job]
    /// fn plus_one(x: u64) -> u64 { x + 1 }
    ///
    /// assert_eq!(spychro::Job::new(plus_one, [1, 2]).run_single_processed()?, [2, 3]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn run_single_processed(self) -> Result<P::Collected<F::Output>, Error>
    where
        A: ArgsReady<F>,
    {
        P::collect(self.stream_single_processed()?)
    }

    /// Runs the items in a pool of worker processes and returns the outputs in input order.
    ///
    /// The first item that fails stops the job: workers are killed and the error names the
    /// item's index, the worker's pid and what happened.
    ///
    /// ```
    /// #[spychro::job]
    /// fn plus_one(x: u64) -> u64 { x + 1 }
    ///
    /// let out = spychro::Job::new(plus_one, 0..10_000u64).processes(2).run_multi_processed()?;
    /// assert!(out.iter().enumerate().all(|(i, &x)| x == i as u64 + 1));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn run_multi_processed(self) -> Result<P::Collected<F::Output>, Error>
    where
        A: ArgsReady<F>,
    {
        P::collect(self.start_processes(false)?)
    }

    /// Runs the items on a pool of threads in this process (rayon), with the same outcomes
    /// and errors as [`run_multi_processed`], for jobs that need no process isolation.
    ///
    /// [`run_multi_processed`]: Job::run_multi_processed
    ///
    /// ```
    /// #[spychro::job]
    /// fn plus_one(x: u64) -> u64 { x + 1 }
    ///
    /// let out = spychro::Job::new(plus_one, 0..10_000u64).run_multi_threaded()?;
    /// assert_eq!(out[9_999], 10_000);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn run_multi_threaded(self) -> Result<P::Collected<F::Output>, Error>
    where
        A: ArgsReady<F>,
        F::Item: Send + 'static,
        F::Output: Send + 'static,
        F::Args: Send + Sync + 'static,
        F::State: Send + 'static,
    {
        P::collect(self.stream_multi_threaded()?)
    }

    /// Like [`run_single_processed`](Job::run_single_processed), as an iterator.
    ///
    /// ```
    /// #[spychro::job]
    /// fn plus_one(x: u64) -> u64 { x + 1 }
    ///
    /// let mut it = spychro::Job::new(plus_one, 0..).stream_single_processed()?;
    /// assert_eq!(it.nth(41).transpose()?, Some(42));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn stream_single_processed(self) -> Result<Results<'h, F, I::IntoIter>, Error>
    where
        A: ArgsReady<F>,
    {
        self.options.check(Mode::Single)?;
        let deadline = self.options.deadline.map(|d| (Instant::now() + d, d));
        let items = self.items.into_iter();
        let hooks = ready_hooks::<P>(self.hooks, &self.options, &items);
        let single = Single::new(items, self.args.into_args());
        Ok(Results::new(Backend::Single(Box::new(Local::new(
            single,
            hooks,
            P::KEEP_GOING,
            deadline,
        )))))
    }

    /// Like [`run_multi_processed`](Job::run_multi_processed), as an iterator: outputs in
    /// input order as they become ready, in bounded memory however long the input.
    ///
    /// ```
    /// #[spychro::job]
    /// fn plus_one(x: u64) -> u64 { x + 1 }
    ///
    /// let sum: u64 = spychro::Job::new(plus_one, 0..100_000u64)
    ///     .processes(2)
    ///     .stream_multi_processed()?
    ///     .sum::<Result<u64, _>>()?;
    /// assert_eq!(sum, (1..=100_000u64).sum());
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn stream_multi_processed(self) -> Result<Results<'h, F, I::IntoIter>, Error>
    where
        A: ArgsReady<F>,
    {
        self.start_processes(true)
    }

    /// Like [`run_multi_threaded`](Job::run_multi_threaded), as an iterator.
    ///
    /// ```
    /// #[spychro::job]
    /// fn plus_one(x: u64) -> u64 { x + 1 }
    ///
    /// let first: Vec<u64> = spychro::Job::new(plus_one, 0..)
    ///     .stream_multi_threaded()?
    ///     .take(3)
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(first, [1, 2, 3]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn stream_multi_threaded(self) -> Result<Results<'h, F, I::IntoIter>, Error>
    where
        A: ArgsReady<F>,
        F::Item: Send + 'static,
        F::Output: Send + 'static,
        F::Args: Send + Sync + 'static,
        F::State: Send + 'static,
    {
        self.options.check(Mode::Threads)?;
        let threads = self.options.pool_size();
        let deadline = self.options.deadline.map(|d| (Instant::now() + d, d));
        let items = self.items.into_iter();
        let hooks = ready_hooks::<P>(self.hooks, &self.options, &items);
        let pool = Threads::new(
            items,
            self.args.into_args(),
            threads,
            P::KEEP_GOING,
            deadline.map(|(at, _)| at),
        )?;
        Ok(Results::new(Backend::Threads(Box::new(Local::new(
            pool,
            hooks,
            P::KEEP_GOING,
            deadline,
        )))))
    }

    fn start_processes(self, bounded: bool) -> Result<Results<'h, F, I::IntoIter>, Error>
    where
        A: ArgsReady<F>,
    {
        self.options.check(Mode::Processes)?;
        let processes = self.options.pool_size();
        let o = self.options;
        let (program, exec_self) = match o.program.clone() {
            Some(p) => (p, false),
            None => (
                std::env::current_exe()
                    .map_err(|e| Error::io("could not find this program's path", e))?,
                true,
            ),
        };
        let pool = PoolOptions {
            processes,
            program,
            exec_self,
            start_timeout: o.start_timeout,
            memory_limit: o.memory_limit,
            capture_output: o.capture_output,
            nested: !o.daemon,
            kill_descendants: o.kill_descendants,
            max_items_per_worker: o.max_items_per_worker,
        };
        let run = JobOptions {
            chunk_size: o.chunk_size,
            bounded,
            keep_going: P::KEEP_GOING,
            timeout: o.timeout,
            deadline: o.deadline,
            retries: o.retries,
            log_level: o.log_level.unwrap_or_else(log::max_level),
        };
        let args = self.args.into_args();
        let items = self.items.into_iter();
        let hooks = ready_hooks::<P>(self.hooks, &o, &items);
        let run = Run::start(pool, run, hooks, items, &args)?;
        Ok(Results::new(Backend::Processes(Box::new(run))))
    }
}

/// Readies a run's handlers: panic reports to stderr when keeping going without `on_panic`,
/// and the progress bar, sized by the input when it knows its length.
pub(crate) fn ready_hooks<'h, P: FailurePolicy>(
    mut hooks: Hooks<'h>,
    options: &Options,
    items: &impl Iterator,
) -> Hooks<'h> {
    hooks.report_panics = P::KEEP_GOING;
    if options.progress {
        let total = match items.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo as u64),
            _ => None,
        };
        hooks.start_bar(total);
    }
    hooks
}
