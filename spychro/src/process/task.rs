//! [`Task`]: a process written as a type with its own state (Python's "subclassing
//! Process"), and the job that runs one in a child.

use super::Process;
use crate::call::ctx::Ctx;
use crate::call::job_fn::{AsJob, JobFn, Sealed};

/// A process written as a type with its own state (Python's "subclassing Process"): the
/// value is serialized to the child, which calls [`run`](Task::run) on it. Put
/// `#[spychro::task]` on the `impl` so that children can find it; then
/// [`Process::task`] runs a value.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spychro::{Process, Task};
///
/// #[derive(Serialize, Deserialize)]
/// struct Counter { from: u64, to: u64 }
///
/// #[spychro::task]
/// impl Task for Counter {
///     type Output = u64;
///     fn run(self) -> u64 { (self.from..self.to).sum() }
/// }
///
/// let mut p = Process::task(Counter { from: 1, to: 11 }).name("counter");
/// p.start()?;
/// assert_eq!(p.join()?, 55);
/// # Ok::<(), spychro::Error>(())
/// ```
pub trait Task: serde::Serialize + serde::de::DeserializeOwned + 'static {
    /// What `run` returns, sent back to the caller.
    type Output: serde::Serialize + serde::de::DeserializeOwned;
    /// The process's work, in the child.
    fn run(self) -> Self::Output;
}

/// Names a [`Task`] for the children that run it; implemented by `#[spychro::task]`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a registered task",
    note = "put `#[spychro::task]` on its `impl spychro::Task for {Self}` block"
)]
pub trait TaskJob: Task {
    /// The registered name.
    const NAME: &'static str;
    /// A hash of the type's definition site, checked when the child loads it.
    const SIGNATURE: u64;
}

/// The job that runs a [`Task`] value in a child.
#[doc(hidden)]
pub struct TaskRunner<T>(std::marker::PhantomData<fn(T)>);

impl<T> Clone for TaskRunner<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TaskRunner<T> {}

impl<T> Sealed for TaskRunner<T> {}

impl<T: TaskJob> JobFn for TaskRunner<T> {
    type Item = T;
    type Args = ();
    type Output = <T as Task>::Output;
    type Message = ();
    const NAME: &'static str = T::NAME;
    const SIGNATURE: u64 = T::SIGNATURE;

    type State = ();
    const STATEFUL: bool = false;

    fn call(item: T, _: &(), _: &mut (), _: &Ctx<'_, ()>) -> Result<Self::Output, String> {
        Ok(item.run())
    }

    fn describe(_: &T) -> Option<String> {
        None
    }
}

impl<T: TaskJob> Process<TaskRunner<T>> {
    /// A process that runs a [`Task`] value.
    pub fn task(task: T) -> Self {
        Process::with_args(TaskRunner(std::marker::PhantomData), task, ())
    }
}

impl<T: TaskJob> AsJob for TaskRunner<T> {
    type Job = Self;
    fn as_job(self) -> Self {
        self
    }
}
