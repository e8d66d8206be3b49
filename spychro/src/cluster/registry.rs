//! The jobs a cluster host can run, by name: `#[job]` registers each function here too (when
//! the `cluster` feature is on), with a typed entry point that runs a batch on the host's
//! local [`Pool`] and encodes the outcomes.

use std::future::Future;
use std::pin::Pin;

use super::messages::{Batch, WireOutcome};
use crate::call::job_fn::JobFn;
use crate::error::{Error, FailureKind};
use crate::job::Job;
use crate::pool::Pool;
use crate::wire::{self, WireFailure};

/// The outcomes of a batch, once the pool has run it.
pub(crate) type Running = Pin<Box<dyn Future<Output = Vec<WireOutcome>>>>;

/// Starts a batch on a pool.
type StartFn = fn(&Pool, &Batch) -> Result<Running, String>;

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

fn start<F>(pool: &Pool, batch: &Batch) -> Result<Running, String>
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
    let mut slots: Vec<Result<usize, String>> = Vec::with_capacity(batch.items.len());
    for bytes in &batch.items {
        match wire::decode_value::<F::Item>(bytes) {
            Ok(item) => {
                slots.push(Ok(items.len()));
                items.push(item);
            }
            Err(e) => slots.push(Err(e)),
        }
    }
    let mut job = Job::with_decoded_args(job, items, args).keep_going();
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
                    Ok(out) => wire::encode_value(&out).map_err(|message| {
                        (
                            WireFailure::from_kind(FailureKind::SerializeOutput { message }),
                            me,
                        )
                    }),
                    Err(e) => Err((WireFailure::from_kind(e.kind().clone()), e.pid())),
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
                        WireFailure::from_kind(FailureKind::Crashed {
                            status: crate::error::ExitStatus::Unknown,
                            message: "the host's pool gave fewer outcomes than items".into(),
                        }),
                        me,
                    ))
                }),
                Err(message) => Err((
                    WireFailure::from_kind(FailureKind::DeserializeItem { message }),
                    me,
                )),
            })
            .collect()
    }))
}

/// Every item's failure when the host's pool could not run the batch at all.
fn failed_all(e: &Error) -> WireFailure {
    WireFailure::from_kind(FailureKind::Crashed {
        status: crate::error::ExitStatus::Unknown,
        message: format!("the host could not run the batch: {e}"),
    })
}
