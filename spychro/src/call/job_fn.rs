//! The trait that `#[job]` implements: a function's types, registered name and typed call.

use serde::{Serialize, de::DeserializeOwned};

use super::ctx::Ctx;
use super::state::WorkerState;

/// Implemented by `#[job]` types (and spychro's own job-like types) only, so that
/// [`JobFn`] and the failure policies cannot be implemented elsewhere.
pub trait Sealed {}

/// A function made into a job by [`#[spychro::job]`](crate::job).
///
/// `#[job]` implements this trait for you; it cannot be implemented by hand (a job must also be
/// registered so that a worker process can find it by name). It appears in bounds such as
/// [`Job::new`](crate::Job::new), where it checks at compile time that the items you give have
/// the job's item type.
///
/// ```
/// use spychro::JobFn;
///
/// #[spychro::job]
/// fn scale(x: u64, factor: u64) -> u64 { x * factor }
///
/// fn item_of<F: JobFn>(_: F) -> &'static str { std::any::type_name::<F::Item>() }
/// assert_eq!(item_of(scale), "u64");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a spychro job",
    label = "not a `#[spychro::job]` function",
    note = "add `#[spychro::job]` to the function's definition; closures and plain functions \
            cannot run in worker processes because workers find jobs by their registered name"
)]
pub trait JobFn: Copy + Send + Sync + 'static + Sealed + AsJob<Job = Self> {
    /// The type of one item: the job function's first parameter, owned.
    type Item: Serialize + DeserializeOwned;
    /// The extra arguments after the item, given once with [`Job::args`](crate::Job::args):
    /// `()` for none, the type itself for one, a tuple for several.
    type Args: Serialize + DeserializeOwned;
    /// What the job returns for one item (the `Ok` type when the function returns `Result`).
    type Output: Serialize + DeserializeOwned;
    /// What the job sends through its [`Ctx`](crate::Ctx) parameter (`()` without one).
    type Message: Serialize + DeserializeOwned;
    /// The per-worker state the job takes as `&mut State` (`()` without one): built once in
    /// each worker (each thread, in this process), kept across its items. See
    /// [`WorkerState`](crate::WorkerState).
    type State: WorkerState<Self::Args>;

    /// The registered name: module path and function name.
    #[doc(hidden)]
    const NAME: &'static str;
    /// A hash of the function's signature, checked when a worker loads the job.
    #[doc(hidden)]
    const SIGNATURE: u64;

    /// Whether the job takes a state (then its workers report its exit value).
    #[doc(hidden)]
    const STATEFUL: bool;

    /// A value of the job (`#[job]`'s constant), for code that has only its type (a cluster
    /// host running a job by name); `None` for spychro's own job-like types.
    #[doc(hidden)]
    fn instance() -> Option<Self> {
        None
    }

    /// Calls the function; `Err` carries the text of an `Err` it returned.
    #[doc(hidden)]
    fn call(
        item: Self::Item,
        args: &Self::Args,
        state: &mut Self::State,
        ctx: &Ctx<'_, Self::Message>,
    ) -> Result<Self::Output, String>;

    /// A short `Debug` of the item, when its type implements `Debug`.
    #[doc(hidden)]
    fn describe(item: &Self::Item) -> Option<String>;

    /// The sizes of the item and output types, for those that are [`Plain`](crate::Plain)
    /// (`#[job]` finds out); `None` for the others.
    #[doc(hidden)]
    fn plain_sizes() -> (Option<usize>, Option<usize>) {
        (None, None)
    }
}

/// What [`Job::new`](crate::Job::new) takes as its job: a `#[spychro::job]` function, which
/// implements it for itself (`Job` is `Self`).
///
/// It is implemented for each job rather than for every [`JobFn`] (of which it is a
/// supertrait, so that `F: JobFn` still implies it), so that a value that is not a job matches
/// no impl at all: the `Job`'s function type is then left unknown, and the misuse is one error
/// rather than one more for each later call (`.run_*()`).
///
/// ```
/// use spychro::AsJob;
///
/// #[spychro::job]
/// fn id(x: u8) -> u8 { x }
///
/// fn job_of<F: AsJob>(f: F) -> F::Job { f.as_job() }
/// assert_eq!(job_of(id)(3), 3);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a spychro job",
    label = "not a `#[spychro::job]` function",
    note = "add `#[spychro::job]` to the function's definition; closures and plain functions \
            cannot run in worker processes because workers find jobs by their registered name"
)]
pub trait AsJob: Copy {
    /// `Self`.
    type Job: JobFn;
    /// `self`.
    #[doc(hidden)]
    fn as_job(self) -> Self::Job;
}

/// Implemented by `#[spychro::job]` for a job with extra arguments `A` (its parameters after
/// the item), and only for those: [`Job::args`](crate::Job::args) on a job that has none is
/// then one error that says so, rather than a type mismatch against `()`. `Checked` is `A`.
///
/// (For a job that has extra arguments, rustc unifies `A` with them before it looks at what
/// `.args(...)` was given, so a wrong type there is its own "mismatched types" error, which
/// points at the wrong value.)
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "job `{Self}` takes no extra arguments",
    label = "this job takes no extra arguments",
    note = "leave out `.args(...)`: it gives the job's parameters after the item, and `{Self}` \
            has none"
)]
pub trait TakesArgs<A> {
    /// `A`.
    type Checked;
    /// `args` itself.
    fn checked(args: A) -> Self::Checked;
}
