//! [`Job`]: the builder that runs a `#[job]` function over items, in this process, on threads,
//! or in a pool of worker processes.

use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::{PoolOptions, Run, RunOptions};
use crate::error::{Error, ItemError};
use crate::hooks::{Hooks, PanicReport, WorkerLog};
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
pub struct Job<'h, F, I, A = NoArgs, P = StopOnFailure> {
    job: F,
    items: I,
    args: A,
    policy: PhantomData<P>,
    options: Options,
    hooks: Hooks<'h>,
}

/// The builder's settings, carried unchanged from one typestate to the next.
#[derive(Clone, Debug)]
struct Options {
    processes: Option<usize>,
    chunk_size: Option<usize>,
    program: Option<PathBuf>,
    start_timeout: Duration,
    timeout: Option<Duration>,
    deadline: Option<Duration>,
    retries: u32,
    max_items_per_worker: Option<u64>,
    memory_limit: Option<u64>,
    daemon: bool,
    capture_output: bool,
    progress: bool,
    log_level: Option<log::LevelFilter>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            processes: None,
            chunk_size: None,
            program: None,
            start_timeout: Duration::from_secs(30),
            timeout: None,
            deadline: None,
            retries: 0,
            max_items_per_worker: None,
            memory_limit: None,
            daemon: true,
            capture_output: true,
            progress: false,
            log_level: None,
        }
    }
}

/// What a run does when an item fails: stop (the default) or keep going.
///
/// With [`StopOnFailure`], `run_*` return `Vec<Output>` and the first failure is the run's
/// error. With [`KeepGoing`] (set by [`Job::keep_going`]), they return every item's outcome,
/// `Vec<Result<Output, ItemError>>`, and only a failure of the machinery is an error.
pub trait FailurePolicy: crate::private::Sealed {
    /// What `run_*` collect.
    type Collected<O>;
    #[doc(hidden)]
    const KEEP_GOING: bool;
    #[doc(hidden)]
    fn collect<F: JobFn, It: Iterator<Item = F::Item>>(
        results: Results<'_, F, It>,
    ) -> Result<Self::Collected<F::Output>, Error>;
}

/// The default [`FailurePolicy`]: the first failed item stops the job.
#[derive(Debug, Clone, Copy)]
pub struct StopOnFailure;

/// The [`FailurePolicy`] set by [`Job::keep_going`]: every item runs, failed or not.
#[derive(Debug, Clone, Copy)]
pub struct KeepGoing;

impl crate::private::Sealed for StopOnFailure {}
impl crate::private::Sealed for KeepGoing {}

impl FailurePolicy for StopOnFailure {
    type Collected<O> = Vec<O>;
    const KEEP_GOING: bool = false;
    fn collect<F: JobFn, It: Iterator<Item = F::Item>>(
        results: Results<'_, F, It>,
    ) -> Result<Vec<F::Output>, Error> {
        results.collect_outputs()
    }
}

impl FailurePolicy for KeepGoing {
    type Collected<O> = Vec<Result<O, ItemError>>;
    const KEEP_GOING: bool = true;
    fn collect<F: JobFn, It: Iterator<Item = F::Item>>(
        mut results: Results<'_, F, It>,
    ) -> Result<Vec<Result<F::Output, ItemError>>, Error> {
        let mut all = presized(&results);
        while let Some(chunk) = results.next_chunk() {
            let mut chunk = chunk?;
            all.extend(chunk.drain(..).map(|o| o.map_err(|f| *f)));
            results.recycle(chunk);
        }
        Ok(all)
    }
}

/// A vector with room for every outcome the job will have, when its input knows how many
/// (up to 16 Mi of them; past that it grows as usual): collecting then never moves it.
fn presized<F: JobFn, It: Iterator<Item = F::Item>, T>(results: &Results<'_, F, It>) -> Vec<T> {
    Vec::with_capacity(results.expected_len().unwrap_or(0).min(1 << 24))
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

impl<'h, F, I> Job<'h, F, I, NoArgs, StopOnFailure>
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
            policy: PhantomData,
            options: Options::default(),
            hooks: Hooks::default(),
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
    pub fn args(self, args: F::Args) -> Job<'h, F, I, WithArgs<F::Args>, StopOnFailure> {
        Job {
            job: self.job,
            items: self.items,
            args: WithArgs(args),
            policy: PhantomData,
            options: self.options,
            hooks: self.hooks,
        }
    }
}

impl<'h, F: JobFn, I, A, P> Job<'h, F, I, A, P> {
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
        self.options.processes = Some(n);
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
        self.options.chunk_size = Some(n);
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
        self.options.program = Some(program.into());
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
        self.options.start_timeout = timeout;
        self
    }

    /// Fails an item that runs longer than `limit` in a worker process: its worker is killed
    /// and replaced, and the job goes on under its failure policy (or retries the item, see
    /// [`retries`](Job::retries)). The limit is enforced by the caller, so it holds even for
    /// a worker that is wedged in native code or stopped. Applies to multi-processed runs.
    ///
    /// ```
    /// # use std::time::Duration;
    /// #[spychro::job]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    ///
    /// let err = spychro::Job::new(nap, [1, 5_000])
    ///     .timeout(Duration::from_millis(200))
    ///     .run_multi_processed()
    ///     .unwrap_err();
    /// let failure = err.item().unwrap();
    /// assert_eq!(failure.index(), 1);
    /// assert!(matches!(failure.kind(), spychro::FailureKind::TimedOut { .. }));
    /// ```
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.options.timeout = Some(limit);
        self
    }

    /// Stops the whole job, with [`Error::DeadlineExceeded`], once it has run for `limit`.
    /// Applies to multi-processed runs.
    ///
    /// ```
    /// # use std::time::Duration;
    /// #[spychro::job]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    ///
    /// let err = spychro::Job::new(nap, [10_000])
    ///     .deadline(Duration::from_millis(200))
    ///     .run_multi_processed()
    ///     .unwrap_err();
    /// assert!(matches!(err, spychro::Error::DeadlineExceeded { .. }));
    /// ```
    pub fn deadline(mut self, limit: Duration) -> Self {
        self.options.deadline = Some(limit);
        self
    }

    /// Runs an item again, up to `n` more times, when its worker crashed or timed out while
    /// running it (a panic or an `Err` is not retried: it would happen again). Each retry
    /// runs alone in a batch, on another worker. Applies to multi-processed runs.
    ///
    /// ```
    /// #[spychro::job]
    /// fn flaky(x: u32) -> u32 { x }
    ///
    /// let out = spychro::Job::new(flaky, 0..10).retries(2).run_multi_processed()?;
    /// assert_eq!(out.len(), 10);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn retries(mut self, n: u32) -> Self {
        self.options.retries = n;
        self
    }

    /// Replaces each worker process after it has run `n` items, to contain leaks (Python's
    /// `maxtasksperchild`). Applies to multi-processed runs.
    ///
    /// ```
    /// #[spychro::job]
    /// fn pid(_: u32) -> u32 { std::process::id() }
    ///
    /// let pids = spychro::Job::new(pid, 0..6).processes(1).max_items_per_worker(2)
    ///     .run_multi_processed()?;
    /// assert_eq!(pids.iter().collect::<std::collections::HashSet<_>>().len(), 3);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn max_items_per_worker(mut self, n: u64) -> Self {
        self.options.max_items_per_worker = Some(n);
        self
    }

    /// Limits each worker's address space to `bytes` (`RLIMIT_AS`). An item whose allocation
    /// fails under the limit fails as [`FailureKind::OutOfMemory`](crate::FailureKind); its
    /// worker is replaced. Applies to multi-processed runs; keep the limit well above the
    /// program's own footprint (hundreds of MiB: thread stacks count).
    ///
    /// ```
    /// #[spychro::job]
    /// fn hog(mib: usize) -> usize { vec![1u8; mib << 20].iter().map(|&b| b as usize).sum() }
    ///
    /// let err = spychro::Job::new(hog, [1, 4096])
    ///     .memory_limit(1 << 30)
    ///     .run_multi_processed()
    ///     .unwrap_err();
    /// assert!(matches!(err.item().unwrap().kind(), spychro::FailureKind::OutOfMemory { .. }));
    /// ```
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.options.memory_limit = Some(bytes);
        self
    }

    /// With `false`, workers are not daemonic: a job may start a multi-processed job of its
    /// own inside a worker (by default that is an [`Error::NestedPool`]). Whatever happens to
    /// the outer job, the whole tree is torn down with it: each worker ends as soon as its
    /// caller's end of its socket closes.
    ///
    /// ```
    /// #[spychro::job]
    /// fn inner(x: u64) -> u64 { x * 2 }
    ///
    /// #[spychro::job]
    /// fn outer(n: u64) -> u64 {
    ///     spychro::Job::new(inner, 0..n).processes(1).run_multi_processed().unwrap().iter().sum()
    /// }
    ///
    /// let out = spychro::Job::new(outer, [3, 4]).processes(1).daemon(false).run_multi_processed()?;
    /// assert_eq!(out, [6, 12]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.options.daemon = daemon;
        self
    }

    /// With `false`, workers write straight to this process's stdout and stderr instead of
    /// having each line forwarded, whole and prefixed with `[worker PID]` (the default).
    /// Forwarding is what lets an out-of-memory abort be recognised.
    ///
    /// ```
    /// #[spychro::job]
    /// fn shout(x: u8) -> u8 { println!("item {x}"); x }
    ///
    /// let out = spychro::Job::new(shout, [1]).forward_output(false).run_multi_processed()?;
    /// assert_eq!(out, [1]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn forward_output(mut self, forward: bool) -> Self {
        self.options.capture_output = forward;
        self
    }

    /// Calls `handler` with each failed item as soon as the failure is seen (on this thread,
    /// while the job runs), whatever the failure policy.
    ///
    /// ```
    /// #[spychro::job]
    /// fn odd_only(x: u32) -> Result<u32, String> {
    ///     if x % 2 == 0 { Err(format!("{x} is even")) } else { Ok(x) }
    /// }
    ///
    /// let mut seen = Vec::new();
    /// let outcomes = spychro::Job::new(odd_only, 0..6)
    ///     .keep_going()
    ///     .on_failure(|f| seen.push(f.index()))
    ///     .run_multi_processed()?;
    /// assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 3);
    /// seen.sort();
    /// assert_eq!(seen, [0, 2, 4]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn on_failure(mut self, handler: impl FnMut(&ItemError) + 'h) -> Self {
        self.hooks.on_failure = Some(Box::new(handler));
        self
    }

    /// Calls `handler` with `(pid, message)` for each message a job sends through its
    /// [`Ctx`](crate::Ctx), on this thread, while the job runs, in the order each item sent
    /// them and before that item's output is delivered. The handler may borrow and change the
    /// caller's local state; the message type is the job's, checked at compile time.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// #[spychro::job]
    /// fn work(ms: u64, ctx: &spychro::Ctx<Duration>) -> u64 {
    ///     let start = Instant::now();
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ctx.send(start.elapsed());
    ///     ms
    /// }
    ///
    /// let mut total = Duration::ZERO; // aggregated as the job runs
    /// spychro::Job::new(work, [5, 10, 15])
    ///     .on_message(|_pid, took: Duration| total += took)
    ///     .run_multi_processed()?;
    /// assert!(total >= Duration::from_millis(30));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn on_message(mut self, mut handler: impl FnMut(u32, F::Message) + 'h) -> Self {
        self.hooks.on_message = Some(Box::new(move |pid, bytes: &[u8]| {
            handler(pid, crate::wire::decode_value::<F::Message>(bytes)?);
            Ok(())
        }));
        self
    }

    /// Calls `handler` with each `log` record that a job writes in a worker process, instead
    /// of re-emitting it through this process's logger (the default, which tags each record
    /// with `[worker PID item N]` and keeps its level and target, so `env_logger` and the like
    /// filter it as usual). Records are sent only up to [`log_level`](Job::log_level).
    /// Single-processed and multi-threaded runs log straight to this process's logger.
    ///
    /// ```
    /// #[spychro::job]
    /// fn noisy(x: u32) -> u32 { log::warn!("item {x} is odd"); x }
    ///
    /// let mut lines = Vec::new();
    /// spychro::Job::new(noisy, [1, 3])
    ///     .on_log(|r| lines.push((r.item, r.level, r.message.clone())))
    ///     .run_multi_processed()?;
    /// lines.sort();
    /// assert_eq!(lines[0], (Some(0), log::Level::Warn, "item 1 is odd".to_string()));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn on_log(mut self, handler: impl FnMut(&WorkerLog) + 'h) -> Self {
        self.hooks.on_log = Some(Box::new(handler));
        if self.options.log_level.is_none() {
            self.options.log_level = Some(log::LevelFilter::Info);
        }
        self
    }

    /// The most verbose level of `log` records that workers send. The default is this
    /// process's `log::max_level()` (so nothing is sent when no logger is installed), or
    /// `Info` once [`on_log`](Job::on_log) is set.
    ///
    /// ```
    /// #[spychro::job]
    /// fn chatty(x: u32) -> u32 { log::debug!("detail"); log::info!("summary"); x }
    ///
    /// let mut n = 0;
    /// spychro::Job::new(chatty, [1])
    ///     .on_log(|_| n += 1)
    ///     .log_level(log::LevelFilter::Debug)
    ///     .run_multi_processed()?;
    /// assert_eq!(n, 2);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn log_level(mut self, level: log::LevelFilter) -> Self {
        self.options.log_level = Some(level);
        self
    }

    /// Calls `handler` with a report (pid, time, item, message, location, backtrace) of each
    /// item that panicked, as soon as the caller learns of it. Without one, a run that
    /// [keeps going](Job::keep_going) prints each report to stderr; a run that stops returns
    /// the panic as its error instead.
    ///
    /// ```
    /// #[spychro::job]
    /// fn fragile(x: u32) -> u32 { assert!(x != 2, "two is bad"); x }
    ///
    /// let mut reports = Vec::new();
    /// let _ = spychro::Job::new(fragile, 0..4)
    ///     .keep_going()
    ///     .on_panic(|r| reports.push((r.index, r.message.clone())))
    ///     .run_multi_processed()?;
    /// assert_eq!(reports, [(2, "two is bad".to_string())]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn on_panic(mut self, handler: impl FnMut(&PanicReport) + 'h) -> Self {
        self.hooks.on_panic = Some(Box::new(handler));
        self
    }

    /// Calls `handler` with `(pid, item, fraction)` each time a job reports how far an item
    /// has got through [`Ctx::progress`](crate::Ctx::progress).
    ///
    /// ```
    /// #[spychro::job]
    /// fn steps(n: u32, ctx: &spychro::Ctx) -> u32 {
    ///     for i in 1..=n { ctx.progress(i as f64 / n as f64) }
    ///     n
    /// }
    ///
    /// let mut last = 0.0;
    /// spychro::Job::new(steps, [4]).on_progress(|_, _, f| last = f).run_multi_processed()?;
    /// assert_eq!(last, 1.0);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn on_progress(mut self, handler: impl FnMut(u32, u64, f64) + 'h) -> Self {
        self.hooks.on_progress = Some(Box::new(handler));
        self
    }

    /// Draws a progress bar on stderr (items done out of the total, when the input knows its
    /// length; rate; time left), only when stderr is a terminal. Worker output and logs are
    /// written above it.
    ///
    /// ```
    /// #[spychro::job]
    /// fn plus_one(x: u64) -> u64 { x + 1 }
    ///
    /// let out = spychro::Job::new(plus_one, 0..1000u64).progress(true).run_multi_processed()?;
    /// assert_eq!(out.len(), 1000);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn progress(mut self, show: bool) -> Self {
        self.options.progress = show;
        self
    }

    /// Keeps going after failed items: every item runs, and `run_*` return every item's
    /// outcome in input order, `Vec<Result<Output, ItemError>>` (spychronous's
    /// `suppress_worker_exceptions`). A crashed or timed-out item's worker is replaced. Only a
    /// failure of the machinery (a worker that cannot start, Ctrl-C, the deadline) is still
    /// an error.
    ///
    /// ```
    /// #[spychro::job]
    /// fn check(x: u32) -> u32 { assert!(x != 3, "three"); x }
    ///
    /// let outcomes = spychro::Job::new(check, 0..5).keep_going().run_multi_processed()?;
    /// assert_eq!(outcomes.len(), 5);
    /// assert_eq!(outcomes[3].as_ref().unwrap_err().message(), "three");
    /// assert_eq!(outcomes[4].as_ref().ok(), Some(&4));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn keep_going(self) -> Job<'h, F, I, A, KeepGoing> {
        Job {
            job: self.job,
            items: self.items,
            args: self.args,
            policy: PhantomData,
            options: self.options,
            hooks: self.hooks,
        }
    }

    fn pool_size(&self) -> usize {
        self.options.processes.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(NonZeroUsize::get)
                .unwrap_or(1)
        })
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
        F::Item: Send,
        F::Output: Send,
        F::Args: Sync,
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
        let items = self.items.into_iter();
        let hooks = ready_hooks::<P>(self.hooks, &self.options, &items);
        Ok(Results::single(
            Single::new(items, self.args.into_args()),
            P::KEEP_GOING,
            hooks,
        ))
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
        F::Item: Send,
        F::Output: Send,
        F::Args: Sync,
    {
        let threads = self.pool_size();
        let items = self.items.into_iter();
        let hooks = ready_hooks::<P>(self.hooks, &self.options, &items);
        Ok(Results::threads(
            Threads::new(items, self.args.into_args(), threads, P::KEEP_GOING)?,
            P::KEEP_GOING,
            hooks,
        ))
    }

    fn start_processes(self, bounded: bool) -> Result<Results<'h, F, I::IntoIter>, Error>
    where
        A: ArgsReady<F>,
    {
        let processes = self.pool_size();
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
        };
        let run = RunOptions {
            chunk_size: o.chunk_size,
            bounded,
            keep_going: P::KEEP_GOING,
            timeout: o.timeout,
            deadline: o.deadline,
            retries: o.retries,
            max_items_per_worker: o.max_items_per_worker,
            log_level: o.log_level.unwrap_or_else(log::max_level),
        };
        let args = self.args.into_args();
        let items = self.items.into_iter();
        let hooks = ready_hooks::<P>(self.hooks, &o, &items);
        let run = Run::start(pool, run, hooks, items, &args)?;
        Ok(Results::processes(run, P::KEEP_GOING))
    }
}

/// Readies a run's handlers: panic reports to stderr when keeping going without `on_panic`,
/// and the progress bar, sized by the input when it knows its length.
fn ready_hooks<'h, P: FailurePolicy>(
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
