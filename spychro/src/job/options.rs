//! The [`Job`] builder's options: pool size and batching, time limits, retries and
//! recycling, isolation (memory limit, daemonic workers, what workers leave behind), output
//! forwarding, and the caller's handlers.

use std::path::PathBuf;
use std::time::Duration;

use super::Job;
use super::policy::KeepGoing;
use crate::call::job_fn::JobFn;
use crate::call::state::ExitOf;
use crate::engine::hooks::{PanicReport, WorkerLog};
use crate::engine::insights::Insights;
use crate::error::ItemError;

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
    /// a worker that is wedged in native code or stopped.
    ///
    /// The limit measures the item's own time in its worker: from the moment its bytes are
    /// decoded until its output is serialized and dropped, less any time the worker spent
    /// waiting for this process to read what the item sent (logs, messages) while a handler
    /// of yours was busy. Applies to multi-processed runs (in the other modes it is ignored,
    /// with a note on stderr).
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

    /// Stops the whole job, with [`Error::DeadlineExceeded`](crate::Error::DeadlineExceeded),
    /// once it has run for `limit`. Multi-processed runs kill their workers at once; the
    /// single-processed and multi-threaded modes start no item after the deadline (an item
    /// already running in this process cannot be stopped).
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
    /// runs alone in a batch, on another worker. Applies to multi-processed runs (ignored in the
    /// other modes, with a note on stderr).
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
    /// `maxtasksperchild`). Applies to multi-processed runs (ignored in the other modes, with a note
    /// on stderr).
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
    /// worker is replaced. Applies to multi-processed runs (ignored in the other modes, with a note
    /// on stderr); keep the limit well above the
    /// program's own footprint (hundreds of MiB: thread stacks count, and so do the 4 MiB each
    /// worker shares with the caller for plain items).
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
    /// own inside a worker (by default that is an [`Error::NestedPool`](crate::Error::NestedPool)). Whatever happens to
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

    /// With `false`, processes that a job starts (its workers' descendants) are left running
    /// when the workers end; by default they end with their worker — on shutdown, on a crash,
    /// a timeout or Ctrl-C, and when the caller itself is killed — so that no process is left
    /// behind. Set it for jobs that mean to start daemons.
    ///
    /// ```
    /// #[spychro::job]
    /// fn start_daemon(_: u8) -> u32 {
    ///     std::process::Command::new("sleep").arg("0.2").spawn().map(|c| c.id()).unwrap_or(0)
    /// }
    ///
    /// let pids = spychro::Job::new(start_daemon, [1]).kill_descendants(false).run_multi_processed()?;
    /// assert!(pids[0] > 0);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn kill_descendants(mut self, kill: bool) -> Self {
        self.options.kill_descendants = kill;
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

    /// Calls `handler` with `(pid, exit)` each time a worker ends the job's per-worker state
    /// ([`WorkerState::exit`](crate::WorkerState::exit)): when the job's items are done, when
    /// the worker is recycled, or (on a pool) when the job ends. A worker that crashed sends
    /// none. In single-processed and multi-threaded runs, each thread's state ends at the end
    /// of the input, with this process's pid.
    ///
    /// ```
    /// use spychro::WorkerState;
    ///
    /// struct Tally(u32);
    /// impl WorkerState<()> for Tally {
    ///     type Exit = u32;
    ///     fn init(_: &()) -> Result<Self, String> { Ok(Tally(0)) }
    ///     fn exit(self) -> u32 { self.0 }
    /// }
    ///
    /// #[spychro::job]
    /// fn count(x: u32, tally: &mut Tally) -> u32 { tally.0 += 1; x }
    ///
    /// let mut exits = Vec::new();
    /// spychro::Job::new(count, 0..50u32)
    ///     .processes(2)
    ///     .on_worker_exit(|pid, n: u32| exits.push((pid, n)))
    ///     .run_multi_processed()?;
    /// assert_eq!(exits.iter().map(|(_, n)| n).sum::<u32>(), 50);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn on_worker_exit(mut self, mut handler: impl FnMut(u32, ExitOf<F>) + 'h) -> Self {
        self.hooks.on_worker_exit = Some(Box::new(move |pid, bytes: &[u8]| {
            handler(pid, crate::wire::decode_value::<ExitOf<F>>(bytes)?);
            Ok(())
        }));
        self
    }

    /// Calls `handler` once, when the job ends (however it ends), with how its workers spent
    /// their time: per worker, items run, time busy, idle and starting, restarts. See
    /// [`Insights`](crate::Insights); a stream's [`Results::insights`](crate::Results::insights)
    /// and a pooled job's [`JobHandle::insights`](crate::JobHandle::insights) give them while
    /// it runs. With [`progress`](Job::progress), the bar's last line shows them too.
    ///
    /// ```
    /// #[spychro::job]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(ms)); ms }
    ///
    /// let mut busy = std::time::Duration::ZERO;
    /// spychro::Job::new(nap, vec![5u64; 20])
    ///     .processes(2)
    ///     .on_insights(|insights| busy = insights.busy())
    ///     .run_multi_processed()?;
    /// assert!(busy >= std::time::Duration::from_millis(100));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn on_insights(mut self, handler: impl FnMut(&Insights) + 'h) -> Self {
        self.hooks.on_insights = Some(Box::new(handler));
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
        let args = self.args;
        Job {
            job: self.job,
            items: self.items,
            args,
            policy: std::marker::PhantomData,
            options: self.options,
            hooks: self.hooks,
        }
    }
}
