//! The table of jobs, filled at link time by `#[job]`, that a worker searches by name.

use std::any::Any;
use std::collections::HashMap;
use std::sync::OnceLock;

use super::batch::{ResultsSink, run_batch};
use super::plain::run_plain_batch;
use crate::call::job_fn::JobFn;
use crate::error::WireError;

/// Every job linked into this binary.
#[linkme::distributed_slice]
pub static JOBS: [JobEntry];

/// Decodes a job's extra arguments.
pub(crate) type LoadFn = fn(&[u8]) -> Result<Box<dyn Any>, String>;

/// Builds a job's per-worker state from its (decoded) extra arguments.
pub(crate) type InitFn = fn(&dyn Any) -> Result<Box<dyn Any>, String>;

/// Ends a job's per-worker state: its exit value, encoded.
pub(crate) type ExitFn = fn(Box<dyn Any>) -> Result<Vec<u8>, String>;

/// Runs one batch of items (how many, their bytes) with the loaded arguments and state,
/// writing outcomes to the sink.
pub(crate) type RunBatchFn =
    fn(&dyn Any, &mut dyn Any, u32, &[u8], &mut ResultsSink<'_>) -> Result<(), WireError>;

/// Runs one plain batch (its items and outputs in the worker's region).
pub(crate) type RunPlainFn = fn(
    &dyn Any,
    &mut dyn Any,
    &crate::wire::PlainBatch,
    &mut ResultsSink<'_>,
) -> Result<(), WireError>;

/// A job as the worker sees it: a name, a signature hash, and type-erased entry points.
#[doc(hidden)]
pub struct JobEntry {
    pub(crate) name: &'static str,
    pub(crate) signature: u64,
    /// It takes a per-worker state (whose exit value the caller wants).
    pub(crate) stateful: bool,
    pub(crate) load: LoadFn,
    pub(crate) init: InitFn,
    pub(crate) exit: ExitFn,
    pub(crate) run_batch: RunBatchFn,
    pub(crate) run_plain: RunPlainFn,
}

impl JobEntry {
    /// The entry for job `F`; `#[job]` places one in [`JOBS`].
    pub const fn of<F: JobFn>() -> JobEntry {
        JobEntry {
            name: F::NAME,
            signature: F::SIGNATURE,
            stateful: F::STATEFUL,
            load: load::<F>,
            init: init::<F>,
            exit: exit::<F>,
            run_batch: run_batch::<F>,
            run_plain: run_plain_batch::<F>,
        }
    }
}

fn load<F: JobFn>(args: &[u8]) -> Result<Box<dyn Any>, String> {
    crate::wire::decode_value::<F::Args>(args)
        .map(|a| Box::new(a) as Box<dyn Any>)
        .map_err(|e| format!("its extra arguments failed to deserialize: {e}"))
}

fn init<F: JobFn>(args: &dyn Any) -> Result<Box<dyn Any>, String> {
    let args = args.downcast_ref::<F::Args>().ok_or_else(|| {
        format!(
            "job `{}` was loaded with arguments of another type",
            F::NAME
        )
    })?;
    crate::call::state::build::<F>(args).map(|state| Box::new(state) as Box<dyn Any>)
}

fn exit<F: JobFn>(state: Box<dyn Any>) -> Result<Vec<u8>, String> {
    let state = state
        .downcast::<F::State>()
        .map_err(|_| format!("job `{}` kept a state of another type", F::NAME))?;
    crate::call::state::end::<F>(*state)
}

/// The jobs by name, indexed on first use.
fn index() -> &'static HashMap<&'static str, Vec<&'static JobEntry>> {
    static INDEX: OnceLock<HashMap<&'static str, Vec<&'static JobEntry>>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut map: HashMap<_, Vec<_>> = HashMap::new();
        for entry in JOBS.iter() {
            map.entry(entry.name).or_default().push(entry);
        }
        map
    })
}

/// Builds the index now (a fork server does, so that its copies find it built).
pub(crate) fn warm() {
    index();
}

/// Finds a job by name and checks its signature; the error says what differs.
pub(crate) fn find(name: &str, signature: u64) -> Result<&'static JobEntry, String> {
    let index = index();
    match index.get(name).map(Vec::as_slice) {
        None | Some([]) => Err(format!(
            "this binary has no job named `{name}` ({} jobs are registered); the worker \
             program was built from different code than the caller",
            JOBS.len()
        )),
        Some([entry]) if entry.signature == signature => Ok(entry),
        Some([entry]) => Err(format!(
            "its job `{name}` has signature hash {:#018x}, the caller's has {signature:#018x}; \
             the worker program was built from different code than the caller",
            entry.signature
        )),
        Some(many) => Err(format!(
            "{} jobs are registered as `{name}`; give the functions distinct names or put \
             them in distinct modules",
            many.len()
        )),
    }
}
