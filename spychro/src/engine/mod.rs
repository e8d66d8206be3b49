//! The caller's side of worker processes (see `README.md` beside this file for the protocol
//! and its invariants):
//!
//! - `conductor`: the engine and one turn of its loop, for any number of jobs; `run`: one
//!   job driven from the caller's thread, with the one delivery routine; `service`: a
//!   persistent pool's thread; `pooled`: a job in such a pool;
//! - `dispatch`: batches out; `intake`: frames in; `loss`: crash attribution, retries,
//!   replacement; `deadlines`: hello, set-up, item and job time limits;
//! - `handshake`: the hello, shared by pools and [`Process`](crate::Process);
//! - `workers`: a pool's worker processes; `worker`: one of them; `batch`: a batch in flight;
//! - `job`: a job as the engine sees it ([`JobCore`](job::JobCore) and the typed side,
//!   `JobIo`); `local`: a job whose input and handlers are on the caller's thread;
//!   `outcomes`: a job's outcomes and how results are decoded into them; `handlers` and
//!   `hooks`: the caller's handlers and the progress bar; `insights`: how the workers spent
//!   their time;
//! - `sizer` (batch sizes), `reorder` (in-order delivery), `placed` (in-place collection),
//!   `outbox` (what waits to be sent), `output` (forwarded stdout/stderr), `slots` (where a
//!   plain job's batches go in a worker's region).

pub(crate) mod batch;
pub(crate) mod conductor;
mod deadlines;
mod dispatch;
pub(crate) mod handlers;
pub(crate) mod handshake;
pub(crate) mod hooks;
pub(crate) mod insights;
pub(crate) mod intake;
pub(crate) mod job;
pub(crate) mod local;
mod loss;
mod outbox;
pub(crate) mod outcomes;
pub(crate) mod output;
mod placed;
pub(crate) mod pooled;
pub(crate) mod reorder;
pub(crate) mod run;
pub(crate) mod service;
pub(crate) mod sizer;
mod slots;
pub(crate) mod worker;
pub(crate) mod workers;
