//! [`Cluster`]: the caller's side — which of a job's options apply on a cluster, and the
//! [`Session`] that runs it, behind the same [`Results`] as a local job.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::broker::{Broker, CALLER_GONE};
use super::messages::Wants;
use super::session::{Session, Template};
use crate::backend::Backend;
use crate::call::job_fn::JobFn;
use crate::error::Error;
use crate::job::{ArgsReady, FailurePolicy, Job, ready_hooks};
use crate::results::Results;
use crate::wire;

/// Items per batch unless `chunk_size` says otherwise.
const BATCH_ITEMS: usize = 4096;
/// A stream's window: batches published and not yet handed over, at most.
const STREAM_WINDOW: u64 = 32;

static NEXT_JOB: AtomicU64 = AtomicU64::new(0);

/// A client of the NATS JetStream broker that cluster hosts ([`serve`](super::serve)) pull
/// from: runs a [`Job`] on whatever hosts serve that broker, as `run_multi_processed` runs
/// it on local processes.
///
/// ```no_run
/// #[spychro::job]
/// fn square(x: u64) -> u64 { x * x }
///
/// let cluster = spychro::cluster::Cluster::connect("nats://127.0.0.1:4222")?;
/// let out = cluster.run(spychro::Job::new(square, 0..1000u64))?;
/// assert_eq!(out[9], 81);
/// # Ok::<(), spychro::Error>(())
/// ```
pub struct Cluster {
    broker: Arc<Broker>,
    gone_after: Duration,
}

impl Cluster {
    /// Connects to the broker at `url` (`nats://host:port`), making the shared streams if
    /// they are missing.
    pub fn connect(url: &str) -> Result<Cluster, Error> {
        Ok(Cluster {
            broker: Arc::new(Broker::connect(url)?),
            gone_after: CALLER_GONE,
        })
    }

    /// How long after this process is gone (killed, or stopped by a signal while its thread
    /// was outside spychro) the broker drops its running jobs, and hosts their batches: 30 s
    /// unless set. A live caller always keeps its jobs, however slowly it reads a stream
    /// (spychro's own thread keeps talking to the broker).
    ///
    /// ```no_run
    /// let cluster = spychro::cluster::Cluster::connect("nats://127.0.0.1:4222")?
    ///     .gone_after(std::time::Duration::from_secs(5));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn gone_after(mut self, limit: Duration) -> Cluster {
        self.gone_after = limit.max(Duration::from_secs(1));
        self
    }

    /// Runs `job` on the cluster's hosts and waits for every item: outputs in input order,
    /// as `run_multi_processed` returns them (`keep_going()` gives each item's outcome). The
    /// input is read as batches are published, and the whole job is published at once.
    ///
    /// Which options apply is in [the module's table](super#options); one that cannot apply
    /// on a cluster is an [`Error::InvalidOption`].
    pub fn run<'h, F, I, A, P>(
        &self,
        job: Job<'h, F, I, A, P>,
    ) -> Result<P::Collected<F::Output>, Error>
    where
        F: JobFn + 'h,
        I: IntoIterator<Item = F::Item>,
        I::IntoIter: 'h,
        A: ArgsReady<F>,
        P: FailurePolicy,
    {
        P::collect(self.start(job, u64::MAX)?)
    }

    /// Like [`run`](Cluster::run), as an iterator: outputs in input order as they become
    /// ready (or as they finish, with [`Results::unordered`]), in bounded memory however long
    /// the input — at most 32 batches (`chunk_size` items each) are out at a time, and the
    /// input is read only as they are handed over. Dropping it withdraws the job.
    ///
    /// ```no_run
    /// #[spychro::job]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let cluster = spychro::cluster::Cluster::connect("nats://127.0.0.1:4222")?;
    /// let mut total = 0;
    /// for out in cluster.stream(spychro::Job::new(square, 0..10_000_000u64))? {
    ///     total += out?;
    /// }
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn stream<'h, F, I, A, P>(
        &self,
        job: Job<'h, F, I, A, P>,
    ) -> Result<Results<'h, F, I::IntoIter>, Error>
    where
        F: JobFn + 'h,
        I: IntoIterator<Item = F::Item>,
        I::IntoIter: 'h,
        A: ArgsReady<F>,
        P: FailurePolicy,
    {
        let per_batch = job.options.chunk_size.unwrap_or(BATCH_ITEMS).max(1) as u64;
        self.start(job, STREAM_WINDOW * per_batch)
    }

    /// Checks the job's options and starts its session, with at most `window` items out.
    fn start<'h, F, I, A, P>(
        &self,
        job: Job<'h, F, I, A, P>,
        window: u64,
    ) -> Result<Results<'h, F, I::IntoIter>, Error>
    where
        F: JobFn + 'h,
        I: IntoIterator<Item = F::Item>,
        I::IntoIter: 'h,
        A: ArgsReady<F>,
        P: FailurePolicy,
    {
        let o = &job.options;
        let defaults = crate::job::Options::default();
        for (set, option, why) in [
            (o.daemon != defaults.daemon, "daemon", HOSTS),
            (
                o.kill_descendants != defaults.kill_descendants,
                "kill_descendants",
                HOSTS,
            ),
            (
                o.capture_output != defaults.capture_output,
                "forward_output",
                HOSTS,
            ),
            (
                o.start_timeout != defaults.start_timeout,
                "start_timeout",
                HOSTS,
            ),
            (o.processes.is_some(), "processes", HOSTS),
            (o.memory_limit.is_some(), "memory_limit", HOSTS),
            (
                o.max_items_per_worker.is_some(),
                "max_items_per_worker",
                HOSTS,
            ),
            (o.program.is_some(), "worker_program", HOSTS),
            (job.hooks.on_insights.is_some(), "on_insights", INSIGHTS),
        ] {
            if set {
                return Err(Error::InvalidOption {
                    option,
                    message: why.into(),
                });
            }
        }
        let h = &job.hooks;
        let log_level = o.log_level.unwrap_or_else(log::max_level);
        let wants = Wants {
            messages: h.on_message.is_some(),
            progress: h.on_progress.is_some() || o.progress,
            worker_exits: h.on_worker_exit.is_some(),
            log_level: wire::level_to_wire(log_level),
        };
        let id = format!(
            "{:x}x{:x}x{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
            NEXT_JOB.fetch_add(1, Ordering::Relaxed)
        );
        let per_batch = o.chunk_size.unwrap_or(BATCH_ITEMS).max(1);
        let template = Template {
            name: F::NAME,
            signature: F::SIGNATURE,
            args: wire::encode_value(&job.args.into_args()).map_err(|message| {
                Error::Arguments {
                    job: F::NAME,
                    message,
                }
            })?,
            timeout_ms: o.timeout.map(|t| t.as_millis() as u64),
            retries: o.retries,
            wants,
        };
        let deadline = o.deadline;
        let items = job.items.into_iter();
        let hooks = ready_hooks::<P>(job.hooks, &job.options, &items);
        let session = Session::<F, _>::start(
            self.broker.clone(),
            id,
            template,
            items,
            per_batch,
            window,
            hooks,
            P::KEEP_GOING,
            deadline,
            self.gone_after,
        )?;
        Ok(Results::new(Backend::Remote(Box::new(session))))
    }
}

/// Why a pool's options are refused.
const HOSTS: &str = "does not apply to a cluster job: it belongs to the hosts' pools \
                     (spychro::cluster::serve)";
/// Why `on_insights` is refused.
const INSIGHTS: &str = "does not apply to a cluster job: its workers are on the hosts, and \
                        each host's pool keeps its own figures";
