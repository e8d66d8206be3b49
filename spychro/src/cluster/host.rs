//! A cluster host: this program, started with the broker's address, runs a local [`Pool`] of
//! worker processes and feeds it batches pulled from the broker while it has room, so that a
//! crash in one item still fails only that item. Each batch is acknowledged once its
//! outcomes are stored in the broker (at-least-once: a host that dies before that leaves the
//! batch to be delivered again); while a batch runs, the host tells the broker it is alive.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::broker::{ACK_WAIT, Broker};
use super::messages::{Batch, Done, results_subject};
use super::registry;
use crate::error::Error;
use crate::pool::Pool;
use crate::wire;

/// `hostname:pid`, naming this host in errors and results.
pub(crate) fn host_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

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
        let mut running = FuturesUnordered::new();
        let mut in_flight: HashMap<u64, jetstream::Message> = HashMap::new();
        let mut next_key = 0u64;
        let mut last_progress = Instant::now();
        loop {
            // Take batches while there is room (waiting up to a second when idle).
            if running.len() < room {
                let idle = running.is_empty();
                let fetched = consumer
                    .fetch()
                    .max_messages(room - running.len())
                    .expires(Duration::from_millis(if idle { 1000 } else { 5 }))
                    .messages()
                    .await;
                match fetched {
                    Ok(mut messages) => {
                        while let Some(Ok(message)) = messages.next().await {
                            let batch: Batch = match wire::decode_value(&message.payload) {
                                Ok(b) => b,
                                Err(e) => {
                                    log::warn!(target: "spychro::cluster", "dropping an unreadable batch: {e}");
                                    let _ = message.ack().await;
                                    continue;
                                }
                            };
                            let started = registry::find(&batch.name, batch.signature)
                                .and_then(|start| start(&pool, &batch));
                            let (first, job, n) = (batch.first, batch.job, batch.items.len());
                            let key = next_key;
                            next_key += 1;
                            in_flight.insert(key, message);
                            running.push(async move {
                                let (refused, outcomes) = match started {
                                    Ok(run) => (None, run.await),
                                    Err(why) => (Some(why), Vec::with_capacity(n)),
                                };
                                let done = Done {
                                    first,
                                    host: host_name(),
                                    refused,
                                    outcomes,
                                };
                                (key, job, done)
                            });
                        }
                    }
                    Err(e) => {
                        log::warn!(target: "spychro::cluster", "fetching batches: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            // Hand in what finished: when full, wait for one (or for the next progress ack).
            let wait = if running.len() >= room {
                ACK_WAIT / 3
            } else {
                Duration::from_millis(1)
            };
            while let Ok(Some((key, job, done))) = tokio::time::timeout(wait, running.next()).await {
                let message = in_flight.remove(&key);
                let body = match wire::encode_value(&done) {
                    Ok(b) => b,
                    Err(e) => {
                        log::warn!(target: "spychro::cluster", "could not encode outcomes: {e}");
                        continue;
                    }
                };
                // Stored first, acknowledged after: a host that dies in between has its
                // batch run again, and the caller keeps the first outcome of each item.
                let stored = match broker.js.publish(results_subject(&job), body.into()).await {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if let (true, Some(m)) = (stored, message) {
                    let _ = m.ack().await;
                }
                if running.len() < room {
                    break;
                }
            }
            if last_progress.elapsed() >= ACK_WAIT / 3 {
                last_progress = Instant::now();
                for m in in_flight.values() {
                    let _ = m.ack_with(AckKind::Progress).await;
                }
            }
        }
    })
}
