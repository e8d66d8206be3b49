//! The caller's side of a multi-process run (see `README.md` beside this file for the
//! protocol and its invariants):
//!
//! - `run`: the conductor — the poll loop and the one delivery routine;
//! - `dispatch`: batches out; `intake`: frames in; `loss`: crash attribution, retries,
//!   replacement; `deadlines`: handshake, item and job time limits;
//! - `handshake`: hello and job set-up, shared by pools and [`Process`](crate::Process);
//! - `pool`: the worker processes; `worker`: one of them; `batch`: a batch in flight;
//! - `job`: one job's state; `hooks`: the caller's handlers and the progress bar;
//! - `sizer` (batch sizes), `reorder` (in-order delivery), `placed` (in-place collection),
//!   `outbox` (what waits to be sent), `output` (forwarded stdout/stderr).

pub(crate) mod batch;
mod deadlines;
mod dispatch;
pub(crate) mod handshake;
pub(crate) mod hooks;
pub(crate) mod intake;
pub(crate) mod job;
mod loss;
mod outbox;
pub(crate) mod output;
mod placed;
pub(crate) mod pool;
mod reorder;
pub(crate) mod run;
mod sizer;
pub(crate) mod worker;
