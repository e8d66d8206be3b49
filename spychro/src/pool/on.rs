//! [`OnPool`]: a [`Job`] bound for a persistent [`Pool`]: run it there and wait, start it and
//! get a [`JobHandle`], or stream its outputs.

use std::marker::PhantomData;

use super::{JobHandle, Pool};
use crate::call::job_fn::JobFn;
use crate::engine::job::{JobCore, JobOptions};
use crate::engine::pooled::{PooledJob, Shared};
use crate::engine::run::setup_frame;
use crate::engine::service::Command;
use crate::error::Error;
use crate::job::{ArgsReady, FailurePolicy, Job, Options, ready_hooks};

/// A [`Job`] to run on a [`Pool`], from [`Job::on`].
///
/// ```
/// use spychro::{Job, Pool};
///
/// #[spychro::job]
/// fn plus_one(x: u64) -> u64 { x + 1 }
///
/// let pool = Pool::builder().processes(2).start()?;
/// assert_eq!(Job::new(plus_one, 0..3u64).on(&pool).run()?, [1, 2, 3]);
/// let sum: u64 = Job::new(plus_one, 0..1000u64).on(&pool).stream()?.sum::<Result<u64, _>>()?;
/// assert_eq!(sum, (1..=1000).sum());
/// # Ok::<(), spychro::Error>(())
/// ```
#[must_use = "a job does nothing until run, spawned or streamed"]
pub struct OnPool<'p, 'h, F, I, A, P> {
    job: Job<'h, F, I, A, P>,
    pool: &'p Pool,
}

impl<'h, F, I, A, P> Job<'h, F, I, A, P> {
    /// Runs this job on `pool`'s workers (started once, shared by every job run on it)
    /// instead of a pool of its own. The pool's options apply (processes, memory limit,
    /// recycling, ...): setting them on a job run on a pool is an error, at its start.
    ///
    /// Items, outputs and extra arguments must be `Send` (and the input `'static`): the
    /// pool's thread reads the input and decodes the outputs.
    ///
    /// ```
    /// #[spychro::job]
    /// fn double(x: u32) -> u32 { x * 2 }
    ///
    /// let pool = spychro::Pool::builder().processes(1).start()?;
    /// let handle = spychro::Job::new(double, vec![1, 2, 3]).on(&pool).spawn()?;
    /// assert_eq!(handle.wait()?, [2, 4, 6]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn on(self, pool: &Pool) -> OnPool<'_, 'h, F, I, A, P> {
        OnPool { job: self, pool }
    }
}

impl<'h, F, I, A, P> OnPool<'_, 'h, F, I, A, P>
where
    F: JobFn,
    F::Item: Send,
    F::Output: Send,
    F::Args: Send,
    I: IntoIterator<Item = F::Item>,
    I::IntoIter: Send + 'static,
    A: ArgsReady<F>,
    P: FailurePolicy,
{
    /// Runs the job on the pool and waits for it: what `run_*` return.
    pub fn run(self) -> Result<P::Collected<F::Output>, Error> {
        self.spawn()?.wait()
    }

    /// Starts the job on the pool and returns its handle at once.
    pub fn spawn(self) -> Result<JobHandle<'h, F, P>, Error> {
        self.spawn_as::<P>()
    }

    /// Starts the job on the pool; its handle iterates over the outputs in input order as
    /// they come, in bounded memory (the pool sends items only as the consumer takes
    /// outputs).
    pub fn stream(self) -> Result<JobHandle<'h, F, P>, Error> {
        self.start::<P>(true)
    }

    /// Starts the job, collected under policy `Q`.
    pub(crate) fn spawn_as<Q: FailurePolicy>(self) -> Result<JobHandle<'h, F, Q>, Error> {
        self.start::<Q>(false)
    }

    fn start<Q: FailurePolicy>(self, bounded: bool) -> Result<JobHandle<'h, F, Q>, Error> {
        let OnPool { job, pool } = self;
        pool_options_unset(&job.options)?;
        job.options.check_job()?;
        let o = &job.options;
        let options = JobOptions {
            chunk_size: o.chunk_size,
            bounded,
            keep_going: Q::KEEP_GOING || P::KEEP_GOING,
            timeout: o.timeout,
            deadline: o.deadline,
            retries: o.retries,
            log_level: o.log_level.unwrap_or_else(log::max_level),
        };
        let control = pool.control();
        let id = control.next_id();
        let args = job.args.into_args();
        let setup = setup_frame::<F>(id, &args, &options, &pool.options)?;
        let items = job.items.into_iter();
        let hooks = ready_hooks::<P>(job.hooks, o, &items);
        let shared = Shared::<F>::new(options.keep_going);
        let pooled = PooledJob {
            core: JobCore::of::<F>(id, options, setup),
            input: items,
            shared: shared.clone(),
        };
        let finished_shared = shared.clone();
        control.send(Command::Submit {
            job: Box::new(pooled),
            finished: Box::new(move |error| finished_shared.finish(error)),
        })?;
        let _ = PhantomData::<P>;
        Ok(JobHandle::new(shared, control.clone(), id, hooks))
    }
}

/// Refuses the options that belong to a pool, set on a job run on one.
fn pool_options_unset(o: &Options) -> Result<(), Error> {
    let default = Options::default();
    let set = [
        (o.processes.is_some(), "processes"),
        (o.program.is_some(), "worker_program"),
        (o.start_timeout != default.start_timeout, "start_timeout"),
        (o.memory_limit.is_some(), "memory_limit"),
        (o.max_items_per_worker.is_some(), "max_items_per_worker"),
        (o.daemon != default.daemon, "daemon"),
        (
            o.kill_descendants != default.kill_descendants,
            "kill_descendants",
        ),
        (o.capture_output != default.capture_output, "forward_output"),
    ];
    match set.into_iter().find(|(set, _)| *set) {
        Some((_, option)) => Err(Error::invalid(
            option,
            "it is the pool's, not a job's: set it on Pool::builder(), or run the job in a \
             pool of its own (run_multi_processed)",
        )),
        None => Ok(()),
    }
}
