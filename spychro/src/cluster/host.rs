//! A cluster host: this program, started with the broker's address, runs a local [`Pool`] of
//! worker processes and feeds it batches pulled from the broker while it has room, so that a
//! crash in one item still fails only that item. Each batch is acknowledged once its
//! outcomes are stored in the broker (at-least-once: a host that dies before that leaves the
//! batch to be delivered again); while a batch runs, the host tells the broker it is alive,
//! passes on what the job's workers send (when the caller has handlers for it), and drops the
//! batch at once when its caller withdraws the job.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use futures::future::{AbortHandle, Abortable, LocalBoxFuture};
use futures::stream::FuturesUnordered;

use super::broker::{ACK_WAIT, Broker};
use super::messages::{
    Batch, CANCEL_ALL, Done, Report, WireOutcome, job_of_cancel, reports_subject,
};
use super::registry::{self, Sink};
use crate::error::Error;
use crate::pool::Pool;
use crate::wire;

/// `hostname:pid`, naming this host in errors and results.
pub(crate) fn host_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// A batch the host holds: its message (to acknowledge), its job, where its workers' events
/// wait, and how to drop it.
struct Held {
    message: jetstream::Message,
    job: String,
    sink: Sink,
    abort: AbortHandle,
}

/// How often the host passes on events and looks at the time (progress acknowledgements).
const TICK: Duration = Duration::from_millis(50);

/// Serves jobs from the broker at `url` with a local pool of `processes` workers (the number
/// of CPUs with `None`) until the process is stopped. Start it from the caller's own binary,
/// so that it has the same `#[job]` functions.
///
/// ```no_run
/// fn main() -> Result<(), spychro::Error> {
///     if let Ok(url) = std::env::var("SPYCHRO_BROKER") {
///         return spychro::cluster::serve(&url, None);
///     }
///     // ... the caller's program ...
///     Ok(())
/// }
/// ```
pub fn serve(url: &str, processes: Option<usize>) -> Result<(), Error> {
    let broker = Broker::connect(url)?;
    let mut builder = Pool::builder();
    if let Some(n) = processes {
        builder = builder.processes(n);
    }
    let pool = builder.start()?;
    let room = 2 * pool.pids().len().max(1);
    let me = host_name();
    log::info!(target: "spychro::cluster", "host {me} serving {url} with {room} batches at a time");
    broker.rt.block_on(async {
        let consumer = broker.hosts_consumer().await?;
        let mut cancels = broker
            .client
            .subscribe(CANCEL_ALL)
            .await
            .map_err(|e| broker.error("could not subscribe to withdrawn jobs", e))?;
        let mut running = FuturesUnordered::new();
        let mut held: HashMap<u64, Held> = HashMap::new();
        let mut next_key = 0u64;
        let mut fetch = None;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u64;
        // Jobs whose caller is gone: their batches are dropped as they come.
        let mut gone: HashSet<String> = HashSet::new();
        loop {
            // Ask for batches while there is room: the request stands until it is filled or
            // expires (soon when busy, so that room freed meanwhile is asked for again).
            if fetch.is_none() && held.len() < room {
                let busy = !held.is_empty();
                match consumer
                    .fetch()
                    .max_messages(room - held.len())
                    .expires(Duration::from_millis(if busy { 100 } else { 1000 }))
                    .messages()
                    .await
                {
                    Ok(messages) => fetch = Some(messages),
                    Err(e) => {
                        log::warn!(target: "spychro::cluster", "fetching batches: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
            tokio::select! {
                next = async { fetch.as_mut()?.next().await }, if fetch.is_some() => match next {
                    Some(Ok(message)) => {
                        let batch: Batch = match wire::decode_value(&message.payload) {
                            Ok(b) => b,
                            Err(e) => {
                                log::warn!(target: "spychro::cluster", "dropping an unreadable batch: {e}");
                                let _ = message.ack_with(AckKind::Term).await;
                                continue;
                            }
                        };
                        log::trace!(target: "spychro::cluster", "batch {} from {}", batch.job, batch.first);
                        if gone.contains(&batch.job) {
                            let _ = message.ack_with(AckKind::Term).await;
                            continue;
                        }
                        let key = next_key;
                        next_key += 1;
                        let (run, h) = take(&pool, batch, message);
                        running.push(async move { (key, run.await) });
                        held.insert(key, h);
                    }
                    Some(Err(e)) => {
                        log::warn!(target: "spychro::cluster", "fetching batches: {e}");
                        fetch = None;
                    }
                    None => fetch = None,
                },
                finished = running.next(), if !running.is_empty() => {
                    let Some((key, outcomes)) = finished else { continue };
                    let Some(h) = held.remove(&key) else { continue };
                    match outcomes {
                        Ok((first, refused, outcomes)) => {
                            let done = Done { first, host: me.clone(), refused, outcomes };
                            hand_in(&broker, &me, &h, done).await;
                        }
                        // Withdrawn by its caller: nobody wants its outcomes.
                        Err(_) => {
                            let _ = h.message.ack_with(AckKind::Term).await;
                        }
                    }
                }
                cancel = cancels.next() => {
                    let Some(cancel) = cancel else { continue };
                    log::debug!(target: "spychro::cluster", "withdrawn: {}", cancel.subject);
                    if let Some(job) = job_of_cancel(cancel.subject.as_str()) {
                        for h in held.values().filter(|h| h.job == job) {
                            h.abort.abort();
                        }
                    }
                }
                _ = tick.tick() => {
                    ticks += 1;
                    for h in held.values() {
                        pass_on(&broker, &me, h).await;
                    }
                    // Tell the broker that the batches held are alive, well within ACK_WAIT,
                    // and drop those whose caller is gone.
                    if ticks.is_multiple_of(ACK_WAIT.as_millis() as u64 / 3 / TICK.as_millis() as u64) {
                        for h in held.values() {
                            let _ = h.message.ack_with(AckKind::Progress).await;
                        }
                        let jobs: HashSet<&str> = held.values().map(|h| h.job.as_str()).collect();
                        for job in jobs {
                            if broker.caller_gone(job).await {
                                log::info!(target: "spychro::cluster", "the caller of job {job} is gone: dropping its batches");
                                if gone.len() > 10_000 {
                                    gone.clear();
                                }
                                gone.insert(job.to_owned());
                            }
                        }
                        for h in held.values().filter(|h| gone.contains(&h.job)) {
                            h.abort.abort();
                        }
                    }
                }
            }
        }
    })
}

/// What a batch comes to: its first index, why it was refused (if it was), its outcomes.
type Finished = (u64, Option<String>, Vec<WireOutcome>);

/// Starts `batch` (which came in `message`) on the pool.
fn take(
    pool: &Pool,
    batch: Batch,
    message: jetstream::Message,
) -> (Abortable<LocalBoxFuture<'static, Finished>>, Held) {
    let sink = Sink::default();
    let started =
        registry::find(&batch.name, batch.signature).and_then(|start| start(pool, &batch, &sink));
    let (first, n) = (batch.first, batch.items.len());
    let run: LocalBoxFuture<'static, Finished> = Box::pin(async move {
        match started {
            Ok(run) => (first, None, run.await),
            Err(why) => (first, Some(why), Vec::with_capacity(n)),
        }
    });
    let (abort, registration) = AbortHandle::new_pair();
    let held = Held {
        message,
        job: batch.job,
        sink,
        abort,
    };
    (Abortable::new(run, registration), held)
}

/// Passes on what a batch's workers sent since the last time.
async fn pass_on(broker: &Broker, me: &str, h: &Held) {
    let events = std::mem::take(&mut *h.sink.borrow_mut());
    if events.is_empty() {
        return;
    }
    let report = Report::Events {
        host: me.to_owned(),
        events,
    };
    match wire::encode_value(&report) {
        Ok(body) => {
            if let Ok(ack) = broker
                .js
                .publish(reports_subject(&h.job), body.into())
                .await
            {
                let _ = ack.await;
            }
        }
        Err(e) => log::warn!(target: "spychro::cluster", "could not encode events: {e}"),
    }
}

/// Stores a batch's outcomes (after what its workers sent), then acknowledges the batch: a
/// host that dies in between has its batch run again, and the caller keeps the first outcome
/// of each item.
async fn hand_in(broker: &Broker, me: &str, h: &Held, done: Done) {
    pass_on(broker, me, h).await;
    let body = match wire::encode_value(&Report::Done(done)) {
        Ok(b) => b,
        Err(e) => {
            log::warn!(target: "spychro::cluster", "could not encode outcomes: {e}");
            return;
        }
    };
    let stored = match broker
        .js
        .publish(reports_subject(&h.job), body.into())
        .await
    {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    if stored {
        let _ = h.message.ack().await;
    }
}
