//! [`Cluster`]: the caller's side — publishes a job's items in batches to the broker's work
//! queue, reads the hosts' outcomes back, keeps the first outcome of each item (a batch that
//! was delivered twice is run twice), and hands them back in input order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use futures::StreamExt;

use super::broker::Broker;
use super::messages::{Batch, Done, ITEMS_STREAM, RESULTS_STREAM, items_subject, results_subject};
use crate::call::job_fn::JobFn;
use crate::error::{Error, FailureKind, ItemError};
use crate::job::{ArgsReady, FailurePolicy, Job};
use crate::sys::signals::{Guard, Inside};
use crate::wire;

/// Items per batch unless `chunk_size` says otherwise.
const BATCH_ITEMS: usize = 4096;

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
    broker: Broker,
}

impl Cluster {
    /// Connects to the broker at `url` (`nats://host:port`), making the shared streams if
    /// they are missing.
    pub fn connect(url: &str) -> Result<Cluster, Error> {
        Ok(Cluster {
            broker: Broker::connect(url)?,
        })
    }

    /// Runs `job` on the cluster's hosts and waits for every item: outputs in input order,
    /// as `run_multi_processed` returns them (`keep_going()` gives each item's outcome).
    /// `timeout`, `retries`, `deadline` and `chunk_size` (items per batch) apply; the
    /// options of a local pool (processes, memory limit, recycling, worker program, output
    /// forwarding) belong to the hosts and are refused here.
    pub fn run<'h, F, I, A, P>(
        &self,
        job: Job<'h, F, I, A, P>,
    ) -> Result<P::Collected<F::Output>, Error>
    where
        F: JobFn,
        I: IntoIterator<Item = F::Item>,
        A: ArgsReady<F>,
        P: FailurePolicy,
    {
        let o = &job.options;
        for (set, option) in [
            (o.processes.is_some(), "processes"),
            (o.memory_limit.is_some(), "memory_limit"),
            (o.max_items_per_worker.is_some(), "max_items_per_worker"),
            (o.program.is_some(), "worker_program"),
        ] {
            if set {
                return Err(Error::InvalidOption {
                    option,
                    message: "does not apply to a cluster job: it belongs to the hosts' pools \
                              (spychro::cluster::serve)"
                        .into(),
                });
            }
        }
        let h = &job.hooks;
        for (set, option) in [
            (h.on_message.is_some(), "on_message"),
            (h.on_log.is_some(), "on_log"),
            (h.on_panic.is_some(), "on_panic"),
            (h.on_progress.is_some(), "on_progress"),
            (h.on_worker_exit.is_some(), "on_worker_exit"),
            (h.on_insights.is_some(), "on_insights"),
            (o.progress, "progress"),
        ] {
            if set {
                return Err(Error::InvalidOption {
                    option,
                    message: "is not carried back from cluster hosts yet: remove it, or run \
                              the job locally"
                        .into(),
                });
            }
        }
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
        let timeout_ms = o.timeout.map(|t| t.as_millis() as u64);
        let retries = o.retries;
        let deadline = o.deadline.map(|d| (d, Instant::now() + d));
        let args =
            wire::encode_value(&job.args.into_args()).map_err(|message| Error::Arguments {
                job: F::NAME,
                message,
            })?;
        let guard = Guard::new().ok();
        let _inside = Inside::enter();
        let broker = &self.broker;
        let outcome = broker.rt.block_on(async {
            // Publish every batch (each stored by the broker before the next).
            let mut n = 0u64;
            let mut items = job.items.into_iter();
            loop {
                let mut encoded = Vec::with_capacity(per_batch);
                for item in items.by_ref().take(per_batch) {
                    match wire::encode_value(&item) {
                        Ok(b) => encoded.push(b),
                        Err(message) => {
                            return Err(Error::Item(Box::new(ItemError::new(
                                F::NAME,
                                n + encoded.len() as u64,
                                None,
                                std::process::id(),
                                FailureKind::SerializeItem { message },
                            ))));
                        }
                    }
                }
                if encoded.is_empty() {
                    break;
                }
                let count = encoded.len() as u64;
                let batch = Batch {
                    job: id.clone(),
                    name: F::NAME.into(),
                    signature: F::SIGNATURE,
                    args: args.clone(),
                    first: n,
                    items: encoded,
                    timeout_ms,
                    retries,
                };
                let body = wire::encode_value(&batch).map_err(Error::internal)?;
                broker
                    .js
                    .publish(items_subject(&id), body.into())
                    .await
                    .map_err(|e| broker.error("could not publish a batch", e))?
                    .await
                    .map_err(|e| broker.error("the broker did not store a batch", e))?;
                n += count;
            }
            // Read the outcomes, keeping the first of each item.
            let stream = broker
                .js
                .get_stream(RESULTS_STREAM)
                .await
                .map_err(|e| broker.error("no results stream", e))?;
            let consumer = stream
                .create_consumer(consumer::pull::Config {
                    durable_name: Some(format!("caller-{id}")),
                    filter_subject: results_subject(&id),
                    deliver_policy: DeliverPolicy::All,
                    ack_policy: consumer::AckPolicy::Explicit,
                    ..Default::default()
                })
                .await
                .map_err(|e| broker.error("could not read results", e))?;
            let mut outcomes: Vec<Option<Result<F::Output, Box<ItemError>>>> =
                (0..n).map(|_| None).collect();
            let mut have = 0u64;
            let mut messages = consumer
                .messages()
                .await
                .map_err(|e| broker.error("could not read results", e))?;
            while have < n {
                if let Some(signal) = guard.as_ref().and_then(|g| g.fired()) {
                    return Err(Error::Interrupted { signal });
                }
                if let Some((limit, at)) = deadline
                    && Instant::now() >= at
                {
                    let completed = outcomes.iter().take_while(|o| o.is_some()).count() as u64;
                    return Err(Error::DeadlineExceeded { limit, completed });
                }
                let next = tokio::time::timeout(Duration::from_millis(100), messages.next()).await;
                let message = match next {
                    Err(_) => continue,
                    Ok(None) => return Err(broker.error("the results ended", "no more messages")),
                    Ok(Some(Err(e))) => {
                        log::warn!(target: "spychro::cluster", "reading results: {e}");
                        continue;
                    }
                    Ok(Some(Ok(m))) => m,
                };
                let _ = message.ack().await;
                let done: Done = match wire::decode_value(&message.payload) {
                    Ok(d) => d,
                    Err(e) => {
                        log::warn!(target: "spychro::cluster", "an unreadable result: {e}");
                        continue;
                    }
                };
                if let Some(why) = done.refused {
                    return Err(Error::Misuse(format!(
                        "cluster host {} refused job `{}`: {why}",
                        done.host,
                        F::NAME
                    )));
                }
                for (k, outcome) in done.outcomes.into_iter().enumerate() {
                    let index = done.first + k as u64;
                    let Some(slot) = outcomes.get_mut(index as usize) else {
                        continue;
                    };
                    if slot.is_some() {
                        continue; // a batch run twice: the first outcome stays
                    }
                    *slot = Some(match outcome {
                        Ok(bytes) => wire::decode_value::<F::Output>(&bytes).map_err(|message| {
                            Box::new(ItemError::new(
                                F::NAME,
                                index,
                                None,
                                std::process::id(),
                                FailureKind::DeserializeOutput { message },
                            ))
                        }),
                        Err((failure, pid)) => Err(Box::new(ItemError::new(
                            F::NAME,
                            index,
                            None,
                            pid,
                            failure.into_kind(),
                        ))),
                    });
                    have += 1;
                }
            }
            let _ = stream.delete_consumer(&format!("caller-{id}")).await;
            Ok(outcomes)
        });
        // Whatever happened, nothing of this job stays in the broker: unrun batches are
        // withdrawn (so that no host works for a caller that is gone) and outcomes dropped.
        broker.rt.block_on(async {
            if let Ok(s) = broker.js.get_stream(ITEMS_STREAM).await {
                let _ = s.purge().filter(items_subject(&id)).await;
            }
            if let Ok(s) = broker.js.get_stream(RESULTS_STREAM).await {
                let _ = s.purge().filter(results_subject(&id)).await;
                let _ = s.delete_consumer(&format!("caller-{id}")).await;
            }
        });
        let outcomes: Option<Vec<_>> = outcome?.into_iter().collect();
        let mut hooks = job.hooks;
        if let (Some(f), Some(all)) = (hooks.on_failure.as_mut(), outcomes.as_ref()) {
            for e in all.iter().filter_map(|o| o.as_ref().err()) {
                f(e);
            }
        }
        P::from_outcomes(outcomes.ok_or_else(|| {
            Error::internal("a cluster job ended with an item without an outcome")
        })?)
    }
}
