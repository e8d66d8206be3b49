//! What a job is and how one item of it runs, in whichever process runs it: the [`JobFn`]
//! trait that `#[job]` implements, the [`Ctx`] an item talks through, the per-worker
//! [`WorkerState`](state::WorkerState), panics captured as
//! failures, and the helpers the macro's expansion calls.

pub(crate) mod ctx;
pub(crate) mod describe;
pub(crate) mod job_fn;
pub(crate) mod panic;
pub(crate) mod plain;
pub(crate) mod state;
