//! The jobs a cluster host can run, by name: `#[job]` registers each function here too (when
//! the `cluster` feature is on), with a typed entry point that runs a batch on the host's
//! local [`Pool`] and encodes the outcomes (and passes on what the job's workers send, when
//! the caller has handlers for it).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use super::messages::{Batch, Event, Wants, WireOutcome};
use crate::call::job_fn::JobFn;
use crate::engine::hooks::Hooks;
use crate::error::{Error, FailureKind};
use crate::job::{Job, Options};
use crate::pool::Pool;
use crate::wire;

/// The outcomes of a batch, once the pool has run it.
pub(crate) type Running = Pin<Box<dyn Future<Output = Vec<WireOutcome>>>>;

/// Where a running batch's handlers put what its workers send, for the host to pass on.
pub(crate) type Sink = Rc<RefCell<Vec<Event>>>;

/// Starts a batch on a pool.
type StartFn = fn(&Pool, &Batch, &Sink) -> Result<Running, String>;

/// Every job linked into this binary, for cluster hosts.
#[linkme::distributed_slice]
pub static CLUSTER_JOBS: [ClusterEntry];

/// A job as a cluster host sees it.
#[doc(hidden)]
pub struct ClusterEntry {
    name: &'static str,
    signature: u64,
    start: StartFn,
}

impl ClusterEntry {
    /// The entry of job `F`; `#[job]` places one in [`CLUSTER_JOBS`].
    pub const fn of<F>() -> ClusterEntry
    where
        F: JobFn,
        F::Item: Send,
        F::Output: Send,
        F::Args: Send,
    {
        ClusterEntry {
            name: F::NAME,
            signature: F::SIGNATURE,
            start: start::<F>,
        }
    }
}

/// Finds job `name` and checks its signature; the error says what differs.
pub(crate) fn find(name: &str, signature: u64) -> Result<StartFn, String> {
    let entry = CLUSTER_JOBS
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| {
            format!(
                "host {} has no job `{name}`: it runs another program (start hosts from the \
             caller's own binary)",
                super::host::host_name()
            )
        })?;
    if entry.signature != signature {
        return Err(format!(
            "host {} has job `{name}` with another signature: it was built from other code \
             (rebuild and restart the hosts)",
            super::host::host_name()
        ));
    }
    Ok(entry.start)
}

fn start<F>(pool: &Pool, batch: &Batch, sink: &Sink) -> Result<Running, String>
where
    F: JobFn,
    F::Item: Send,
    F::Output: Send,
    F::Args: Send,
{
    let job = F::instance().ok_or("this job cannot run on a cluster host")?;
    let args: F::Args = wire::decode_value(&batch.args)
        .map_err(|e| format!("the job's extra arguments did not decode on the host: {e}"))?;
    // Items that do not decode fail alone; the others run.
    let mut items = Vec::with_capacity(batch.items.len());
    let mut slots: Vec<Result<u64, String>> = Vec::with_capacity(batch.items.len());
    for (k, bytes) in batch.items.iter().enumerate() {
        match wire::decode_value::<F::Item>(bytes) {
            Ok(item) => {
                slots.push(Ok(batch.first + k as u64));
                items.push(item);
            }
            Err(e) => slots.push(Err(e)),
        }
    }
    // The pool numbers the items it runs from 0; the caller numbers them as its input.
    let indexes: Rc<[u64]> = slots
        .iter()
        .filter_map(|s| s.as_ref().ok().copied())
        .collect();
    let mut job = Job::with_decoded_args(job, items, args).keep_going();
    forward_events(&mut job.hooks, &mut job.options, batch.wants, sink, indexes);
    if let Some(ms) = batch.timeout_ms {
        job = job.timeout(std::time::Duration::from_millis(ms));
    }
    let handle = job
        .retries(batch.retries)
        .on(pool)
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(Box::pin(async move {
        let me = std::process::id();
        let ran: Vec<WireOutcome> = match handle.await {
            Ok(outcomes) => outcomes
                .into_iter()
                .map(|o| match o {
                    Ok(out) => wire::encode_value(&out)
                        .map_err(|message| (FailureKind::SerializeOutput { message }, me)),
                    Err(e) => Err((e.kind().clone(), e.pid())),
                })
                .collect(),
            Err(e) => {
                let failed = failed_all(&e);
                (0..slots.iter().filter(|s| s.is_ok()).count())
                    .map(|_| Err((failed.clone(), me)))
                    .collect()
            }
        };
        let mut ran = ran.into_iter();
        slots
            .into_iter()
            .map(|slot| match slot {
                Ok(_) => ran.next().unwrap_or_else(|| {
                    Err((
                        FailureKind::Crashed {
                            status: crate::error::ExitStatus::Unknown,
                            message: "the host's pool gave fewer outcomes than items".into(),
                        },
                        me,
                    ))
                }),
                Err(message) => Err((FailureKind::DeserializeItem { message }, me)),
            })
            .collect()
    }))
}

/// Sets the batch's handlers to put what the caller wants to hear of into `sink`, with the
/// caller's item numbers (`indexes[k]` is the pool's item `k`).
fn forward_events(
    hooks: &mut Hooks<'static>,
    options: &mut Options,
    wants: Wants,
    sink: &Sink,
    indexes: Rc<[u64]>,
) {
    let index = move |k: u64| indexes.get(k as usize).copied().unwrap_or(k);
    // The caller reports panics (its `on_panic`, or stderr); the host logs them too, with
    // the caller's item numbers.
    let at = index.clone();
    hooks.on_panic = Some(Box::new(move |r| {
        log::warn!(target: "spychro::cluster", "item {} panicked in process {}: {}", at(r.index), r.pid, r.message);
    }));
    if wants.messages {
        let sink = sink.clone();
        hooks.on_message = Some(Box::new(move |pid, body: &[u8]| {
            let body = body.to_vec();
            sink.borrow_mut().push(Event::Message { pid, body });
            Ok(())
        }));
    }
    if wants.worker_exits {
        let sink = sink.clone();
        hooks.on_worker_exit = Some(Box::new(move |pid, body: &[u8]| {
            let body = body.to_vec();
            sink.borrow_mut().push(Event::WorkerExit { pid, body });
            Ok(())
        }));
    }
    if wants.progress {
        let (sink, index) = (sink.clone(), index.clone());
        hooks.on_progress = Some(Box::new(move |pid, item, fraction| {
            let item = index(item);
            sink.borrow_mut().push(Event::Progress {
                pid,
                item,
                fraction,
            });
        }));
    }
    if wants.log_level > 0 {
        options.log_level = Some(wire::filter_from_wire(wants.log_level));
        let sink = sink.clone();
        hooks.on_log = Some(Box::new(move |r| {
            sink.borrow_mut().push(Event::Log {
                pid: r.pid,
                level: wire::level_to_wire(r.level.to_level_filter()),
                target: r.target.clone(),
                message: r.message.clone(),
                item: r.item.map(&index),
                time_ms: r
                    .time
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0),
            })
        }));
    }
}

/// Every item's failure when the host's pool could not run the batch at all.
fn failed_all(e: &Error) -> FailureKind {
    FailureKind::Crashed {
        status: crate::error::ExitStatus::Unknown,
        message: format!("the host could not run the batch: {e}"),
    }
}
