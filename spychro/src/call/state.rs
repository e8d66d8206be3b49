//! [`WorkerState`]: a value a job keeps in each worker across its items — a database
//! connection, a loaded model, a cache — built once there from the job's extra arguments, and
//! ended when the worker is done with the job, with a value sent back to the caller (mpire's
//! `worker_state`, `worker_init` and `worker_exit`).

use serde::{Serialize, de::DeserializeOwned};

use super::job_fn::JobFn;
use super::panic::{Capturing, catch};

/// A per-worker state for jobs whose extra arguments are `Args`.
///
/// A `#[job]` function takes it as a `&mut` parameter after the item. Each worker process
/// builds it once with [`init`](WorkerState::init) (given the job's extra arguments) before
/// the first item it runs of the job, passes it to every item it runs, and ends it with
/// [`exit`](WorkerState::exit) when it is done with the job (the job ended, the worker is
/// recycled, or the pool closes); the exit value reaches
/// [`Job::on_worker_exit`](crate::Job::on_worker_exit) on the caller's thread. A worker that
/// crashes loses its state and sends no exit value; its replacement builds a new one. In
/// single-processed and multi-threaded runs there is one state per thread.
///
/// An `init` that fails ends the job with [`Error::WorkerState`](crate::Error::WorkerState),
/// naming the worker.
///
/// ```
/// use spychro::{Job, WorkerState};
///
/// /// A cache kept in each worker.
/// struct Seen { prefix: String, items: u64 }
///
/// impl WorkerState<String> for Seen {
///     type Exit = u64;
///     fn init(prefix: &String) -> Result<Self, String> {
///         Ok(Seen { prefix: prefix.clone(), items: 0 })
///     }
///     fn exit(self) -> u64 { self.items }
/// }
///
/// #[spychro::job]
/// fn label(x: u32, _prefix: &String, seen: &mut Seen) -> String {
///     seen.items += 1;
///     format!("{}{x}", seen.prefix)
/// }
///
/// let mut total = 0;
/// let out = Job::new(label, 0..100u32)
///     .args("item-".to_string())
///     .processes(2)
///     .on_worker_exit(|_pid, items: u64| total += items)
///     .run_multi_processed()?;
/// assert_eq!(out[7], "item-7");
/// assert_eq!(total, 100, "every item was counted by the state of the worker that ran it");
/// # Ok::<(), spychro::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a per-worker state of a job whose extra arguments are `{Args}`",
    label = "a `&mut` parameter after the item is the job's per-worker state",
    note = "implement `spychro::WorkerState<{Args}>` for `{Self}` (`init` builds it in each \
            worker from the job's extra arguments, `exit` ends it); to change a value per \
            item instead, take it by value and return it"
)]
pub trait WorkerState<Args>: Sized {
    /// What the state hands back when its worker is done with the job (`()` for nothing).
    type Exit: Serialize + DeserializeOwned;

    /// Builds the state in a worker, from the job's extra arguments; `Err` says why it could
    /// not be (the job then ends with that message, naming the worker).
    fn init(args: &Args) -> Result<Self, String>;

    /// Ends the state; what it returns is sent to the caller.
    fn exit(self) -> Self::Exit;
}

/// No state: what a job without a `&mut` parameter keeps.
///
/// ```
/// use spychro::WorkerState;
///
/// assert!(<() as WorkerState<u32>>::init(&7).is_ok());
/// ```
#[diagnostic::do_not_recommend]
impl<Args> WorkerState<Args> for () {
    type Exit = ();

    fn init(_: &Args) -> Result<(), String> {
        Ok(())
    }

    fn exit(self) {}
}

/// The value a job's state hands back when its worker is done with the job.
pub type ExitOf<F> = <<F as JobFn>::State as WorkerState<<F as JobFn>::Args>>::Exit;

/// Builds job `F`'s state where its items run (a worker, or a thread of this process); `Err`
/// says why it could not be, a panic included.
pub(crate) fn build<F: JobFn>(args: &F::Args) -> Result<F::State, String> {
    let capturing = Capturing::start();
    let built = catch(|| F::State::init(args));
    drop(capturing);
    match built {
        Ok(Ok(state)) => Ok(state),
        Ok(Err(message)) => Err(message),
        Err(kind) => Err(format!("its init {kind}")),
    }
}

/// Ends job `F`'s state: its exit value, encoded for the caller; `Err` says why there is none
/// (the exit panicked, or its value does not serialize).
pub(crate) fn end<F: JobFn>(state: F::State) -> Result<Vec<u8>, String> {
    let capturing = Capturing::start();
    let ended = catch(|| state.exit());
    drop(capturing);
    let value = ended.map_err(|kind| format!("its exit {kind}"))?;
    crate::wire::encode_value(&value)
}
