//! The multi-process engine: a pool of worker processes (`pool`) and the run of one job over
//! it (`run`), with adaptive batch sizing (`sizer`) and in-order delivery (`reorder`).

mod output;
mod pool;
mod reorder;
mod run;
mod sizer;

pub(crate) use pool::PoolOptions;
pub(crate) use run::{Outcome, Run, RunOptions};
