//! The multi-process engine: a pool of worker processes (`pool`) and the run of one job over
//! it (`run`), with adaptive batch sizing (`sizer`) in-order delivery (`reorder`) and
//! in-place collection (`placed`).

mod outbox;
mod output;
mod placed;
mod pool;
mod reorder;
mod run;
mod sizer;

pub(crate) use pool::PoolOptions;
pub(crate) use run::{Outcome, Run, RunOptions};
