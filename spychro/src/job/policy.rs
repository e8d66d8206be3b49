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
