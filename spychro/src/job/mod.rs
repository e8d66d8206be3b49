//! [`Job`]: the builder that runs a `#[job]` function over items, in this process, on threads,
//! or in a pool of worker processes. The builder's options are in `options`, the failure
//! policy and argument typestates in `policy`, and the `run_*`/`stream_*` methods (where the
//! options are checked, once) in `start`.

mod options;
mod policy;
mod start;

pub(crate) use start::ready_hooks;

use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

pub use policy::{
    ArgsReady, Call, FailurePolicy, KeepGoing, NoArgs, NoExtraArgs, StopOnFailure, WithArgs,
};

use crate::call::job_fn::{AsJob, JobFn, TakesArgs};
use crate::engine::hooks::Hooks;

/// A job: a `#[job]` function, the items to run it on, and how to run it.
///
/// Build it with [`Job::new`], set options, then run it with one of the `run_*` methods (all
/// outputs as a `Vec`, in input order) or the `stream_*` methods (an iterator, in input order,
/// in bounded memory).
///
/// ```
/// use std::time::Duration;
///
/// #[spychro::job]
/// fn plus_one(x: u64) -> u64 { x + 1 }
///
/// let out = spychro::Job::new(plus_one, 0..1000u64)
///     .processes(2)
///     .run_multi_processed()?;
/// assert_eq!(out[999], 1000);
///
/// // The same job, in this process, for a debugger or `dbg!`:
/// let same = spychro::Job::new(plus_one, 0..1000u64).run_single_processed()?;
/// assert_eq!(out, same);
/// # Ok::<(), spychro::Error>(())
/// ```
#[must_use = "a job does nothing until one of its run_* or stream_* methods is called"]
pub struct Job<'h, F, I, A = NoArgs, P = StopOnFailure> {
    job: F,
    pub(crate) items: I,
    pub(crate) args: A,
    policy: PhantomData<P>,
    pub(crate) options: Options,
    pub(crate) hooks: Hooks<'h>,
}

impl<'h, F: JobFn, I> Job<'h, F, I, WithArgs<F::Args>, StopOnFailure> {
    /// A job of `job` over `items` with its arguments already decoded (a cluster host runs
    /// what a caller sent).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn with_decoded_args(job: F, items: I, args: F::Args) -> Self {
        Job {
            job,
            items,
            args: WithArgs::new(args),
            policy: PhantomData,
            options: Options::default(),
            hooks: Hooks::default(),
        }
    }
}

impl<'h, F, I, A, P> Job<'h, F, I, A, P> {
    /// The same job in another typestate (arguments given, failure policy chosen).
    fn with<A2, P2>(self, args: A2) -> Job<'h, F, I, A2, P2> {
        Job {
            job: self.job,
            items: self.items,
            args,
            policy: PhantomData,
            options: self.options,
            hooks: self.hooks,
        }
    }
}

/// The builder's settings, carried unchanged from one typestate to the next.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) processes: Option<usize>,
    pub(crate) chunk_size: Option<usize>,
    pub(crate) program: Option<PathBuf>,
    pub(crate) start_timeout: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) retries: u32,
    pub(crate) max_items_per_worker: Option<u64>,
    pub(crate) memory_limit: Option<u64>,
    pub(crate) daemon: bool,
    pub(crate) kill_descendants: bool,
    pub(crate) capture_output: bool,
    pub(crate) progress: bool,
    pub(crate) log_level: Option<log::LevelFilter>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            processes: None,
            chunk_size: None,
            program: None,
            start_timeout: Duration::from_secs(30),
            timeout: None,
            deadline: None,
            retries: 0,
            max_items_per_worker: None,
            memory_limit: None,
            daemon: true,
            kill_descendants: true,
            capture_output: true,
            progress: false,
            log_level: None,
        }
    }
}

/// What [`Job::new`] takes as items for job `F`: any `IntoIterator` of `F`'s item type, checked
/// at compile time. `Items` is the value itself.
///
/// The check is written so that a wrong item type is one error that names the job and both
/// types (see [`TakesItem`]), and that later calls on the job (`.run_*()`) add none.
///
/// ```
/// use spychro::JobItems;
///
/// #[spychro::job]
/// fn double(x: u32) -> u32 { x * 2 }
///
/// fn count<F: spychro::JobFn, I: JobItems<F>>(_: F, items: I) -> I::Items { items.checked() }
/// assert_eq!(count(double, vec![1u32, 2]).len(), 2);
/// ```
pub trait JobItems<F: JobFn> {
    /// `Self`, once checked.
    type Items;
    /// `self`, once checked.
    #[doc(hidden)]
    fn checked(self) -> Self::Items;
}

impl<F: JobFn, I: IntoIterator> JobItems<F> for I
where
    F: TakesItem<I::Item, F::Item>,
{
    // `I` itself, written through `TakesItem` so that where the item types differ this type
    // is left unknown (rustc then reports only the failed bound, not every later use).
    type Items = <F as TakesItem<I::Item, F::Item>>::Same<I>;
    fn checked(self) -> Self::Items {
        F::same(self)
    }
}

/// Implemented for every type `Self` (a job, where used) when `Given` is `Expected`: the impl's
/// header, not a where clause, compares the item types, so that a mismatch is reported with
/// this message (an associated-type bound would give rustc's bare "type mismatch resolving"
/// instead).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "job `{Self}` takes items of type `{Expected}`, but these items are `{Given}`",
    label = "expected items of type `{Expected}`",
    note = "the items of a job are values of its first parameter's type (owned: `String` for \
            `&str`); convert them (`.map(...)`, `.cloned()` for references) or change the \
            job's first parameter"
)]
pub trait TakesItem<Given, Expected> {
    /// `I` when `Given` is `Expected`.
    type Same<I>;
    /// `items` itself.
    fn same<I>(items: I) -> Self::Same<I>;
}

impl<F, T> TakesItem<T, T> for F {
    type Same<I> = I;
    fn same<I>(items: I) -> I {
        items
    }
}

impl<'h, F, I> Job<'h, F, I, NoArgs, StopOnFailure> {
    /// A job that runs `job` on each of `items`.
    ///
    /// `items` is any `IntoIterator` of the job's item type (checked at compile time); it is
    /// read lazily, as workers have room. The `Job` built is `Job<F, I>` (`J` and `It` are
    /// `F` and `I`, named through [`AsJob`] and [`JobItems`] so that a misuse is one compile
    /// error that names the fix, and no further error at later calls).
    ///
    /// ```
    /// #[spychro::job]
    /// fn len(s: String) -> usize { s.len() }
    ///
    /// let words = vec!["a".to_string(), "bcd".to_string()];
    /// assert_eq!(spychro::Job::new(len, words).run_single_processed()?, [1, 3]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn new<J, It>(job: F, items: I) -> Job<'h, J, It, NoArgs, StopOnFailure>
    where
        F: AsJob<Job = J>,
        J: JobFn,
        I: JobItems<J, Items = It>,
    {
        Job {
            job: job.as_job(),
            items: items.checked(),
            args: NoArgs,
            policy: PhantomData,
            options: Options::default(),
            hooks: Hooks::default(),
        }
    }
}

impl<'h, F, I> Job<'h, F, I, NoArgs, StopOnFailure>
where
    F: JobFn,
    I: IntoIterator<Item = F::Item>,
{
    /// Gives the job's extra arguments: the parameters after the item. They are sent to each
    /// worker once, not once per item. One extra parameter takes the value itself; several
    /// take a tuple.
    ///
    /// A parameter declared by value (`factor: u64`) receives a clone for each item; one
    /// declared by reference (`table: &Table`) borrows the worker's copy, with no clone.
    ///
    /// ```
    /// #[spychro::job]
    /// fn scale(x: u64, factor: u64, offset: &u64) -> u64 { x * factor + offset }
    ///
    /// let out = spychro::Job::new(scale, [1, 2, 3]).args((10, 5)).run_multi_processed()?;
    /// assert_eq!(out, [15, 25, 35]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn args<B, X>(self, args: B) -> Job<'h, F, I, WithArgs<X>, StopOnFailure>
    where
        F: TakesArgs<B, Checked = X>,
    {
        self.with(WithArgs::new(F::checked(args)))
    }
}
