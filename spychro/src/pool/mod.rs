//! [`Pool`]: worker processes that outlive one job. Jobs of any `#[job]` function are started
//! on it ([`Job::on`](crate::Job::on)), from any thread, several at a time sharing its workers
//! fairly; each runs while the caller goes on, behind a [`JobHandle`] (`handle`). The pool
//! has a thread of its own (`engine::service`) that drives its workers.

mod handle;
mod on;

pub use handle::{JobHandle, Unordered};
pub use on::OnPool;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::call::job_fn::JobFn;
use crate::engine::conductor::Engine;
use crate::engine::insights::Insights;
use crate::engine::service::{self, Command, Control};
use crate::engine::workers::PoolOptions;
use crate::error::{Error, WorkerErrorKind};
use crate::job::{Call, Job, NoExtraArgs};

/// Worker processes that outlive one job: start it once, run any number of jobs (of any
/// `#[job]` functions) on it, from any thread, several at once.
///
/// Start it with [`Pool::builder`] (or [`Pool::new`] for the defaults), then run a job on it
/// with [`Job::on`](crate::Job::on): `.run()` waits for the outputs, `.spawn()` returns a
/// [`JobHandle`] at once, `.stream()` an iterator in bounded memory.
/// [`submit`](Pool::submit) starts a single call. A crashed or timed-out worker is replaced
/// inside the pool; a job's failure, cancellation or timeout leaves the pool serving the next
/// job. Dropping the pool ends its jobs and its workers (none is left behind); [`close`] then
/// [`join`] lets the jobs finish first, [`terminate`] ends everything at once.
///
/// [`close`]: Pool::close
/// [`join`]: Pool::join
/// [`terminate`]: Pool::terminate
///
/// ```
/// use spychro::{Job, Pool};
///
/// #[spychro::job]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[spychro::job]
/// fn shout(s: String) -> String { s.to_uppercase() }
///
/// let pool = Pool::builder().processes(2).start()?;
/// let pids = pool.pids();
/// assert_eq!(Job::new(square, 0..1000u64).on(&pool).run()?[999], 998_001);
/// assert_eq!(Job::new(shout, ["hi".to_string()]).on(&pool).run()?, ["HI"]);
/// assert_eq!(pool.submit(square, 12)?.wait()?, 144);
/// assert_eq!(pool.pids(), pids, "the same workers served every job");
/// # Ok::<(), spychro::Error>(())
/// ```
///
/// Ctrl-C and SIGTERM kill the pool's workers at once; every job in it ends with
/// [`Error::Interrupted`], and the pool takes no more jobs.
pub struct Pool {
    control: Arc<Control>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub(crate) options: PoolOptions,
}

/// How to start a [`Pool`]: the options that belong to the workers (a job's own options —
/// timeouts, retries, handlers — are given to each job).
///
/// ```
/// use std::time::Duration;
///
/// let pool = spychro::Pool::builder()
///     .processes(2)
///     .start_timeout(Duration::from_secs(10))
///     .max_items_per_worker(100_000)
///     .start()?;
/// assert_eq!(pool.processes(), 2);
/// # Ok::<(), spychro::Error>(())
/// ```
#[must_use = "a pool builder does nothing until `start` is called"]
#[derive(Clone, Debug)]
pub struct PoolBuilder {
    processes: Option<usize>,
    program: Option<PathBuf>,
    start_timeout: Duration,
    memory_limit: Option<u64>,
    max_items_per_worker: Option<u64>,
    daemon: bool,
    kill_descendants: bool,
    capture_output: bool,
}

impl PoolBuilder {
    /// The number of worker processes (default: the machine's available parallelism).
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// Runs the workers from `program` instead of this process's own binary (as
    /// [`Job::worker_program`](crate::Job::worker_program)).
    pub fn worker_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// How long a worker may take to start and say hello, and to load each job (default
    /// 30 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Limits each worker's address space (as [`Job::memory_limit`](crate::Job::memory_limit)).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// Replaces each worker after it has run `n` items, whatever jobs they were of.
    pub fn max_items_per_worker(mut self, n: u64) -> Self {
        self.max_items_per_worker = Some(n);
        self
    }

    /// Not daemonic: jobs may start pools of their own (as [`Job::daemon`](crate::Job::daemon)).
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Leave running the processes jobs start (as
    /// [`Job::kill_descendants`](crate::Job::kill_descendants)).
    pub fn kill_descendants(mut self, kill: bool) -> Self {
        self.kill_descendants = kill;
        self
    }

    /// Let workers write to this process's stdout and stderr directly (as
    /// [`Job::forward_output`](crate::Job::forward_output)).
    pub fn forward_output(mut self, forward: bool) -> Self {
        self.capture_output = forward;
        self
    }

    /// Starts the workers and returns once each has said hello.
    pub fn start(self) -> Result<Pool, Error> {
        let processes = self.processes.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(NonZeroUsize::get)
                .unwrap_or(1)
        });
        if processes == 0 {
            return Err(Error::invalid("processes", "it must be at least 1"));
        }
        if self.max_items_per_worker == Some(0) {
            return Err(Error::invalid(
                "max_items_per_worker",
                "it must be at least 1",
            ));
        }
        let (program, exec_self) = match self.program {
            Some(p) => (p, false),
            None => (
                std::env::current_exe()
                    .map_err(|e| Error::io("could not find this program's path", e))?,
                true,
            ),
        };
        let options = PoolOptions {
            processes,
            program,
            exec_self,
            start_timeout: self.start_timeout,
            memory_limit: self.memory_limit,
            capture_output: self.capture_output,
            nested: !self.daemon,
            kill_descendants: self.kill_descendants,
            max_items_per_worker: self.max_items_per_worker,
        };
        let mut engine = Engine::start(options.clone())?;
        engine.persistent = true;
        hello(&mut engine)?;
        let control =
            Control::new().map_err(|e| Error::io("could not make the pool's wake pipe", e))?;
        control.lock().pids = engine.workers.workers.iter().map(|w| w.pid).collect();
        let thread = {
            let control = Arc::clone(&control);
            std::thread::Builder::new()
                .name("spychro-pool".into())
                .spawn(move || service::serve(engine, control))
                .map_err(|e| Error::io("could not start the pool's thread", e))?
        };
        Ok(Pool {
            control,
            thread: Mutex::new(Some(thread)),
            options,
        })
    }
}

/// Waits until every worker of a fresh engine said hello (within its start timeout).
fn hello(engine: &mut Engine) -> Result<(), Error> {
    let deadline = Instant::now() + engine.workers.options.start_timeout;
    while engine
        .workers
        .workers
        .iter()
        .any(|w| w.state.handshake_deadline().is_some())
    {
        if Instant::now() >= deadline {
            let waited = engine.workers.options.start_timeout;
            let i = engine
                .workers
                .workers
                .iter()
                .position(|w| w.state.handshake_deadline().is_some())
                .unwrap_or(0);
            return Err(engine
                .workers
                .worker_error(i, WorkerErrorKind::HandshakeTimeout(waited)));
        }
        engine.step(&mut [], None)?;
    }
    Ok(())
}

impl Pool {
    /// A builder for a pool.
    ///
    /// ```
    /// let pool = spychro::Pool::builder().processes(1).start()?;
    /// assert_eq!(pool.pids().len(), 1);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            processes: None,
            program: None,
            start_timeout: Duration::from_secs(30),
            memory_limit: None,
            max_items_per_worker: None,
            daemon: true,
            kill_descendants: true,
            capture_output: true,
        }
    }

    /// A pool with the default options (one worker per available CPU).
    ///
    /// ```
    /// let pool = spychro::Pool::new()?;
    /// assert!(pool.processes() >= 1);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn new() -> Result<Pool, Error> {
        Pool::builder().start()
    }

    /// The number of worker processes.
    pub fn processes(&self) -> usize {
        self.options.processes
    }

    /// The pids of the workers now (a replaced worker has a new pid).
    pub fn pids(&self) -> Vec<u32> {
        self.control.lock().pids.clone()
    }

    /// How the workers spent their time since the pool started: per worker slot, items run,
    /// time busy, idle and starting, restarts (a replaced worker's slot keeps its figures and
    /// counts the restart). After the pool ended, the figures as it ended.
    ///
    /// ```
    /// #[spychro::job]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let pool = spychro::Pool::builder().processes(2).start()?;
    /// for _ in 0..3 {
    ///     spychro::Job::new(square, 0..100u64).on(&pool).run()?;
    /// }
    /// let insights = pool.insights();
    /// assert_eq!(insights.items(), 300);
    /// assert_eq!(insights.restarts(), 0);
    /// println!("{insights}");
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn insights(&self) -> Insights {
        self.control
            .insights(None)
            .or_else(|| self.control.lock().last_insights.clone())
            .unwrap_or(Insights {
                elapsed: Duration::ZERO,
                workers: Vec::new(),
            })
    }

    /// Starts a single call, `job(item)`, and returns its handle at once (Python's
    /// `apply_async`, `ProcessPoolExecutor.submit`): its [`wait`](JobHandle::wait) gives the
    /// output, or the item's failure as the error.
    ///
    /// ```
    /// #[spychro::job]
    /// fn double(x: u32) -> u32 { x * 2 }
    ///
    /// let pool = spychro::Pool::builder().processes(1).start()?;
    /// let calls: Vec<_> = (0..4).map(|x| pool.submit(double, x)).collect::<Result<_, _>>()?;
    /// let outs: Vec<u32> = calls.into_iter().map(|c| c.wait()).collect::<Result<_, _>>()?;
    /// assert_eq!(outs, [0, 2, 4, 6]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn submit<F>(&self, job: F, item: F::Item) -> Result<JobHandle<'static, F, Call>, Error>
    where
        F: JobFn,
        F::Args: NoExtraArgs<F> + Send,
        F::Item: Send + 'static,
        F::Output: Send,
    {
        Job::new(job, [item]).on(self).spawn_as::<Call>()
    }

    /// Takes no more jobs; the jobs there are run to their end. See [`join`](Pool::join).
    pub fn close(&self) {
        let _ = self.control.send(Command::Close);
    }

    /// After [`close`](Pool::close): waits until every job has ended and the workers are
    /// gone.
    ///
    /// ```
    /// #[spychro::job]
    /// fn id(x: u8) -> u8 { x }
    ///
    /// let pool = spychro::Pool::builder().processes(1).start()?;
    /// let job = spychro::Job::new(id, [1u8, 2]).on(&pool).spawn()?;
    /// pool.close();
    /// pool.join();
    /// assert_eq!(job.wait()?, [1, 2]);
    /// assert!(pool.pids().is_empty());
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn join(&self) {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    /// Ends every job now ([`Error::Misuse`](crate::Error::Misuse) says the pool was
    /// terminated) and kills the workers.
    ///
    /// ```
    /// #[spychro::job]
    /// fn nap(s: u64) -> u64 { std::thread::sleep(std::time::Duration::from_secs(s)); s }
    ///
    /// let pool = spychro::Pool::builder().processes(1).start()?;
    /// let job = spychro::Job::new(nap, [60u64]).on(&pool).spawn()?;
    /// pool.terminate();
    /// assert!(job.wait().is_err());
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn terminate(&self) {
        let _ = self.control.send(Command::Terminate);
        self.join();
    }

    pub(crate) fn control(&self) -> &Arc<Control> {
        &self.control
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}
