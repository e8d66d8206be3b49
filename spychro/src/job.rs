//! [`Job`]: the builder that runs a `#[job]` function over items, in this process, on threads,
//! or in a pool of worker processes.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::{PoolOptions, Run, RunOptions};
use crate::error::Error;
use crate::job_fn::JobFn;
use crate::results::Results;
use crate::single::Single;
use crate::threads::Threads;

/// A job: a `#[job]` function, the items to run it on, and how to run it.
///
/// Build it with [`Job::new`], set options, then run it with one of the `run_*` methods (all
/// outputs as a `Vec`, in input order) or the `stream_*` methods (an iterator, in input order,
/// in bounded memory).
///
/// ```
/// use std::time::Duration;
///
/// #[spychro::job]
/// fn plus_one(x: u64) -> u64 { x + 1 }
///
/// let out = spychro::Job::new(plus_one, 0..1000u64)
///     .processes(2)
///     .run_multi_processed()?;
/// assert_eq!(out[999], 1000);
///
/// // The same job, in this process, for a debugger or `dbg!`:
/// let same = spychro::Job::new(plus_one, 0..1000u64).run_single_processed()?;
/// assert_eq!(out, same);
/// # Ok::<(), spychro::Error>(())
/// ```
#[must_use = "a job does nothing until one of its run_* or stream_* methods is called"]
pub struct Job<F, I, A = NoArgs> {
    job: F,
    items: I,
    args: A,
    processes: Option<usize>,
    chunk_size: Option<usize>,
    program: Option<PathBuf>,
    start_timeout: Duration,
}

/// The state of a [`Job`] whose extra arguments have not been given.
#[derive(Debug, Clone, Copy)]
pub struct NoArgs;

/// The state of a [`Job`] whose extra arguments were given with [`Job::args`].
#[derive(Debug, Clone)]
pub struct WithArgs<T>(T);

/// The extra arguments of job `F` are known: either it takes none, or they were given.
#[diagnostic::on_unimplemented(
    message = "job `{F}` takes extra arguments after the item, and none were given",
    label = "extra arguments missing",
    note = "give them once with `.args(...)` before running: a single value for one extra \
            parameter, a tuple for several"
)]
pub trait ArgsReady<F: JobFn> {
    /// The arguments.
    #[doc(hidden)]
    fn into_args(self) -> F::Args;
}

impl<F: JobFn> ArgsReady<F> for NoArgs
where
    F::Args: NoExtraArgs<F>,
{
    fn into_args(self) -> F::Args {
        F::Args::none()
    }
}

/// Implemented by `()` only: the job takes no extra arguments.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "job `{F}` takes extra arguments (`{Self}`) after the item, and none were given",
    label = "extra arguments missing",
    note = "give them once with `.args(...)` before running: a single value for one extra \
            parameter, a tuple for several"
)]
pub trait NoExtraArgs<F> {
    /// The empty arguments.
    fn none() -> Self;
}

impl<F> NoExtraArgs<F> for () {
    fn none() -> Self {}
}

impl<F: JobFn> ArgsReady<F> for WithArgs<F::Args> {
    fn into_args(self) -> F::Args {
        self.0
    }
}

impl<F, I> Job<F, I, NoArgs>
where
    F: JobFn,
    I: IntoIterator<Item = F::Item>,
{
    /// A job that runs `job` on each of `items`.
    ///
    /// `items` is any `IntoIterator` of the job's item type (checked at compile time); it is
    /// read lazily, as workers have room.
    ///
    /// ```
    /// #[spychro::job]
    /// fn len(s: String) -> usize { s.len() }
    ///
    /// let words = vec!["a".to_string(), "bcd".to_string()];
    /// assert_eq!(spychro::Job::new(len, words).run_single_processed()?, [1, 3]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn new(job: F, items: I) -> Self {
        Job {
            job,
            items,
            args: NoArgs,
            processes: None,
            chunk_size: None,
            program: None,
            start_timeout: Duration::from_secs(30),
        }
    }

    /// Gives the job's extra arguments: the parameters after the item. They are sent to each
    /// worker once, not once per item. One extra parameter takes the value itself; several
    /// take a tuple.
    ///
    /// A parameter declared by value (`factor: u64`) receives a clone for each item; one
    /// declared by reference (`table: &Table`) borrows the worker's copy, with no clone.
    ///
    /// ```
    /// #[spychro::job]
    /// fn scale(x: u64, factor: u64, offset: &u64) -> u64 { x * factor + offset }
    ///
    /// let out = spychro::Job::new(scale, [1, 2, 3]).args((10, 5)).run_multi_processed()?;
    /// assert_eq!(out, [15, 25, 35]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn args(self, args: F::Args) -> Job<F, I, WithArgs<F::Args>> {
        Job {
            job: self.job,
            items: self.items,
            args: WithArgs(args),
            processes: self.processes,
            chunk_size: self.chunk_size,
            program: self.program,
            start_timeout: self.start_timeout,
        }
    }
}

impl<F: JobFn, I, A> Job<F, I, A> {
    /// The number of worker processes (or threads, in multi-threaded mode). The default is
    /// the machine's available parallelism.
    ///
    /// ```
    /// #[spychro::job]
    /// fn pid(_: u32) -> u32 { std::process::id() }
    ///
    /// let pids = spychro::Job::new(pid, 0..100).processes(2).run_multi_processed()?;
    /// assert!(!pids.contains(&std::process::id()));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// Sends exactly `n` items per message instead of sizing batches adaptively (which aims
    /// for a few milliseconds of work per batch). `chunk_size(1)` sends items one at a time.
    ///
    /// ```
    /// #[spychro::job]
    /// fn double(x: u8) -> u16 { x as u16 * 2 }
    ///
    /// let out = spychro::Job::new(double, [1, 2, 3]).chunk_size(1).run_multi_processed()?;
    /// assert_eq!(out, [2, 4, 6]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.chunk_size = Some(n);
        self
    }

    /// Runs the workers from `program` instead of this process's own binary. The program must
    /// be built from the same code (it must register the same job).
    ///
    /// ```
    /// #[spychro::job]
    /// fn id(x: u8) -> u8 { x }
    ///
    /// let err = spychro::Job::new(id, [1]).worker_program("/bin/true").run_multi_processed();
    /// assert!(err.unwrap_err().to_string().contains("before its handshake"));
    /// ```
    pub fn worker_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// How long a worker may take to start and load the job (default 30 s) before the run
    /// fails with an error naming it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// #[spychro::job]
    /// fn id(x: u8) -> u8 { x }
    ///
    /// let out = spychro::Job::new(id, [1]).start_timeout(Duration::from_secs(5)).run_multi_processed()?;
    /// assert_eq!(out, [1]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    fn pool_size(&self) -> usize {
        self.processes.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(NonZeroUsize::get)
                .unwrap_or(1)
        })
    }
}

impl<F, I, A> Job<F, I, A>
where
    F: JobFn,
    I: IntoIterator<Item = F::Item>,
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
    pub fn run_single_processed(self) -> Result<Vec<F::Output>, Error>
    where
        A: ArgsReady<F>,
    {
        self.stream_single_processed()?.collect()
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
    pub fn run_multi_processed(self) -> Result<Vec<F::Output>, Error>
    where
        A: ArgsReady<F>,
    {
        self.start_processes(false)?.collect()
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
    pub fn run_multi_threaded(self) -> Result<Vec<F::Output>, Error>
    where
        A: ArgsReady<F>,
        F::Item: Send,
        F::Output: Send,
        F::Args: Sync,
    {
        self.stream_multi_threaded()?.collect()
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
    pub fn stream_single_processed(self) -> Result<Results<F, I::IntoIter>, Error>
    where
        A: ArgsReady<F>,
    {
        Ok(Results::single(Single::new(
            self.items.into_iter(),
            self.args.into_args(),
        )))
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
    pub fn stream_multi_processed(self) -> Result<Results<F, I::IntoIter>, Error>
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
    pub fn stream_multi_threaded(self) -> Result<Results<F, I::IntoIter>, Error>
    where
        A: ArgsReady<F>,
        F::Item: Send,
        F::Output: Send,
        F::Args: Sync,
    {
        let threads = self.pool_size();
        Ok(Results::threads(Threads::new(
            self.items.into_iter(),
            self.args.into_args(),
            threads,
        )?))
    }

    fn start_processes(self, bounded: bool) -> Result<Results<F, I::IntoIter>, Error>
    where
        A: ArgsReady<F>,
    {
        let processes = self.pool_size();
        let (program, exec_self) = match self.program {
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
            start_timeout: self.start_timeout,
        };
        let run = RunOptions {
            chunk_size: self.chunk_size,
            bounded,
        };
        let args = self.args.into_args();
        Ok(Results::processes(Run::start(
            pool,
            run,
            self.items.into_iter(),
            &args,
        )?))
    }
}
