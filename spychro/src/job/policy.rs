//! What a run does when an item fails ([`FailurePolicy`]: stop, or keep going) and whether a
//! job's extra arguments are known ([`ArgsReady`]): typestates of the [`Job`](super::Job)
//! builder, so that `run_*` returns the right type and a missing `.args(...)` is a compile
//! error.

use crate::call::job_fn::{JobFn, Sealed};
use crate::error::{Error, ItemError};
use crate::results::Results;

/// What a run does when an item fails: stop (the default) or keep going.
///
/// With [`StopOnFailure`], `run_*` return `Vec<Output>` and the first failure is the run's
/// error. With [`KeepGoing`] (set by [`Job::keep_going`](super::Job::keep_going)), they return every item's outcome,
/// `Vec<Result<Output, ItemError>>`, and only a failure of the machinery is an error.
pub trait FailurePolicy: Sealed {
    /// What `run_*` collect.
    type Collected<O>;
    #[doc(hidden)]
    const KEEP_GOING: bool;
    #[doc(hidden)]
    fn collect<F: JobFn, It: Iterator<Item = F::Item>>(
        results: Results<'_, F, It>,
    ) -> Result<Self::Collected<F::Output>, Error>;
    /// What a job in a pool collects from its outcomes, in input order (when stopping at a
    /// failure, the failure is the last of them).
    #[doc(hidden)]
    fn from_outcomes<O>(
        outcomes: Vec<Result<O, Box<ItemError>>>,
    ) -> Result<Self::Collected<O>, Error>;
}

/// The [`FailurePolicy`] of a single call submitted to a [`Pool`](crate::Pool): its handle's
/// `wait` gives the one output, or the item's failure as the error.
#[derive(Debug, Clone, Copy)]
pub struct Call;

impl Sealed for Call {}

impl FailurePolicy for Call {
    type Collected<O> = O;
    const KEEP_GOING: bool = false;
    fn collect<F: JobFn, It: Iterator<Item = F::Item>>(
        results: Results<'_, F, It>,
    ) -> Result<F::Output, Error> {
        let outputs = results.collect_outputs()?;
        one(outputs.into_iter().map(Ok).collect())
    }
    fn from_outcomes<O>(outcomes: Vec<Result<O, Box<ItemError>>>) -> Result<O, Error> {
        one(outcomes)
    }
}

/// The one outcome of a call.
fn one<O>(outcomes: Vec<Result<O, Box<ItemError>>>) -> Result<O, Error> {
    let n = outcomes.len();
    match outcomes.into_iter().next() {
        Some(Ok(out)) if n == 1 => Ok(out),
        Some(Err(failure)) => Err(Error::Item(failure)),
        _ => Err(Error::internal(format!("a call gave {n} outcomes, not 1"))),
    }
}

/// The default [`FailurePolicy`]: the first failed item stops the job.
#[derive(Debug, Clone, Copy)]
pub struct StopOnFailure;

/// The [`FailurePolicy`] set by [`Job::keep_going`](super::Job::keep_going): every item runs, failed or not.
#[derive(Debug, Clone, Copy)]
pub struct KeepGoing;

impl Sealed for StopOnFailure {}
impl Sealed for KeepGoing {}

impl FailurePolicy for StopOnFailure {
    type Collected<O> = Vec<O>;
    const KEEP_GOING: bool = false;
    fn collect<F: JobFn, It: Iterator<Item = F::Item>>(
        results: Results<'_, F, It>,
    ) -> Result<Vec<F::Output>, Error> {
        results.collect_outputs()
    }
    fn from_outcomes<O>(outcomes: Vec<Result<O, Box<ItemError>>>) -> Result<Vec<O>, Error> {
        outcomes
            .into_iter()
            .map(|o| o.map_err(Error::Item))
            .collect()
    }
}

impl FailurePolicy for KeepGoing {
    type Collected<O> = Vec<Result<O, ItemError>>;
    const KEEP_GOING: bool = true;
    fn collect<F: JobFn, It: Iterator<Item = F::Item>>(
        mut results: Results<'_, F, It>,
    ) -> Result<Vec<Result<F::Output, ItemError>>, Error> {
        let mut all = presized(&results);
        while let Some(chunk) = results.next_chunk() {
            let mut chunk = chunk?;
            all.extend(chunk.drain(..).map(|o| o.map_err(|f| *f)));
            results.recycle(chunk);
        }
        Ok(all)
    }
    fn from_outcomes<O>(
        outcomes: Vec<Result<O, Box<ItemError>>>,
    ) -> Result<Vec<Result<O, ItemError>>, Error> {
        Ok(outcomes.into_iter().map(|o| o.map_err(|f| *f)).collect())
    }
}

/// A vector with room for every outcome the job will have, when its input knows how many
/// (up to 16 Mi of them; past that it grows as usual): collecting then never moves it.
fn presized<F: JobFn, It: Iterator<Item = F::Item>, T>(results: &Results<'_, F, It>) -> Vec<T> {
    Vec::with_capacity(results.expected_len().unwrap_or(0).min(1 << 24))
}

/// The state of a [`Job`](super::Job) whose extra arguments have not been given.
#[derive(Debug, Clone, Copy)]
pub struct NoArgs;

/// The state of a [`Job`](super::Job) whose extra arguments were given with [`Job::args`](super::Job::args).
#[derive(Debug, Clone)]
pub struct WithArgs<T>(T);

impl<T> WithArgs<T> {
    pub(super) fn new(args: T) -> Self {
        WithArgs(args)
    }
}

/// The extra arguments of job `F` are known: either it takes none, or they were given.
#[diagnostic::on_unimplemented(
    message = "job `{F}` takes extra arguments after the item, and none were given",
    label = "extra arguments missing",
    note = "give them once with `.args(...)` before running: a single value for one extra \
            parameter, a tuple for several"
)]
pub trait ArgsReady<F: JobFn> {
    /// The arguments.
    #[doc(hidden)]
    fn into_args(self) -> F::Args;
}

impl<F: JobFn> ArgsReady<F> for NoArgs
where
    F::Args: NoExtraArgs<F>,
{
    fn into_args(self) -> F::Args {
        F::Args::none()
    }
}

/// Implemented by `()` only: the job takes no extra arguments.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "job `{F}` takes extra arguments (`{Self}`) after the item, and none were given",
    label = "extra arguments missing",
    note = "give them once with `.args(...)` before running: a single value for one extra \
            parameter, a tuple for several"
)]
pub trait NoExtraArgs<F> {
    /// The empty arguments.
    fn none() -> Self;
}

impl<F> NoExtraArgs<F> for () {
    fn none() -> Self {}
}

impl<F: JobFn> ArgsReady<F> for WithArgs<F::Args> {
    fn into_args(self) -> F::Args {
        self.0
    }
}
