//! Run ordinary functions over many items in a pool of worker **processes**, with the
//! ergonomics of rayon and the robustness of the best Python process pools.
//!
//! `#[spychro::job]` makes a function a job: it stays an ordinary function, and it can also be
//! run by [`Job`] over many items, in this process (for debugging), on threads, or in a pool
//! of worker processes where a crash, an abort or a leak in one item cannot take the caller
//! down.
//!
//! ```
//! use spychro::Job;
//!
//! #[spychro::job]
//! fn plus_one(x: u64) -> u64 { x + 1 }
//!
//! assert_eq!(plus_one(3), 4); // still an ordinary function
//!
//! let out = Job::new(plus_one, 0..100_000u64).processes(2).run_multi_processed()?;
//! assert_eq!(out.len(), 100_000);
//! assert_eq!(out[41], 42);
//! # Ok::<(), spychro::Error>(())
//! ```
//!
//! # How workers find the job
//!
//! A worker is this same program, started again with a socket to the caller. Before `main`
//! runs, spychro sees that it is a worker, looks the job up by its registered name (module
//! path and function name), serves items until the caller is done, and exits: your `main`
//! never runs in a worker. This works in binaries, examples, tests and benches with no setup.
//! If your program replaces the entry point (a custom test harness, a `#[no_main]` binary),
//! call [`init()`] first, or put [`#[spychro::main]`](main) on `main`.
//!
//! # Modes
//!
//! | method | where items run | for |
//! |---|---|---|
//! | [`Job::run_multi_processed`] | a pool of worker processes | isolation, crash-prone or leaky code |
//! | [`Job::run_multi_threaded`] | a rayon thread pool in this process | jobs that need no isolation |
//! | [`Job::run_single_processed`] | this thread, one by one | debugging, `dbg!`, breakpoints |
//!
//! Each has a `stream_*` twin that returns the outputs as an iterator in bounded memory.

// Showing `fn main` is the point of the entry-point examples.
#![allow(clippy::needless_doctest_main)]

// The layers, lowest first; each uses only those before it (see `src/README.md`).
mod backend;
mod call;
mod channel;
#[cfg(feature = "cluster")]
pub mod cluster;
mod engine;
mod error;
mod job;
mod pool;
mod process;
mod results;
mod supervisor;
mod sys;
mod wire;
mod worker;

pub use call::ctx::Ctx;
pub use call::job_fn::{AsJob, JobFn, TakesArgs};
pub use call::plain::Plain;
pub use call::state::{ExitOf, WorkerState};
pub use channel::{
    JoinError, JoinTimeoutError, Mailbox, PipeEnd, Postbox, Receiver, RecvError, RecvTimeoutError,
    SendError, Sender, TaskDoneError, TryRecvError, pipe, postbox, queue,
};
pub use engine::hooks::{PanicReport, WorkerLog};
pub use engine::insights::{Insights, WorkerInsights};
pub use error::{
    Error, ExitStatus, FailureKind, ItemError, SupervisorError, Undelivered, WireError, WorkerError,
};
pub use job::{
    ArgsReady, Call, FailurePolicy, Job, JobItems, KeepGoing, NoArgs, NoExtraArgs, StopOnFailure,
    TakesItem, WithArgs,
};
pub use pool::{JobHandle, OnPool, Pool, PoolBuilder, Unordered};
pub use process::{
    CurrentProcess, ForkServer, Joined, Process, ProcessControl, ProcessList, Task, current_process,
};
pub use results::{Results, UnorderedResults};
pub use supervisor::{
    Actor, DebugLogger, Ended, Fail, Flow, Letter, Link, LinkError, Listen, Logger, Message,
    MessageKind, Origin, Outcome, Restart, Served, Supervisor, SupervisorHandle, To,
};

/// Derives [`Message`] for a supervisor's message enum, and makes its `<Name>Kind` enum (one
/// kind per variant; `#[message(parent = Variant)]` puts a kind below another, for
/// listeners). See [`Message`].
pub use spychro_macros::Message;

/// Registers an `impl Actor for YourType` block so that a [`Supervisor`] can run its values
/// in child processes (see [`Actor`]).
pub use spychro_macros::actor;

/// Makes a function a job that [`Job`] can run in worker processes.
///
/// The function stays callable as before. Its first parameter is the item; any further
/// parameters are extra arguments given once with [`Job::args`]. Parameter and return types
/// must be `Serialize + DeserializeOwned`. A parameter may be a reference (`&T`): it is
/// deserialized as `T` and borrowed for the call; `&str`, `&[T]`, `&Path` and `&OsStr` travel
/// as `String`, `Vec<T>`, `PathBuf` and `OsString`.
///
/// A function whose return type is written `Result<T, E>` (or an alias whose name is
/// `Result`, like `io::Result<T>` or `anyhow::Result<T>`), with `E: Display`, has each `Err`
/// reported as that item's failure, so `?` works inside. An alias with another name
/// (`type Fallible<T> = Result<T, String>`) is an ordinary output: write `Result` to opt in.
///
/// ```
/// #[spychro::job]
/// fn parse(line: String) -> Result<u32, std::num::ParseIntError> {
///     Ok(line.trim().parse::<u32>()?)
/// }
///
/// assert_eq!(parse(" 7 ".into()).unwrap(), 7);
/// let err = spychro::Job::new(parse, ["1".into(), "x".into()]).run_single_processed();
/// assert_eq!(err.unwrap_err().item().unwrap().index(), 1);
/// ```
///
/// The attribute rejects, at compile time, what cannot be a job: async, generic or unsafe
/// functions, methods, functions without an item parameter. It must be on a free function (a
/// module-level or nested `fn`); inside an `impl` block the compiler reports errors about the
/// items the attribute generates, since an attribute cannot see that it is in an impl.
///
/// The name refers to a constant whose type implements [`JobFn`] and dereferences to a
/// function pointer, which is why `plus_one(3)` still works; where a plain function value is
/// needed (`iter.map(...)`), write `*plus_one`. Being a constant, the name cannot be reused by
/// a `let` binding or a pattern in the same module (Rust reads it as a constant pattern and
/// says so): keep jobs in a module of their own, or name the binding differently.
///
/// A job may also take a context, `ctx: &Ctx<M>`, anywhere after the item, to send typed
/// messages and progress to the caller while the item runs (see [`Ctx`]).
pub use spychro_macros::job;

/// Marks `main` so that a worker process never runs it: the same as calling [`init()`] as
/// main's first line. Only needed where spychro's automatic entry cannot run (see the crate
/// docs); harmless elsewhere.
///
/// ```
/// #[spychro::main]
/// fn main() {
///     println!("workers never print this");
/// }
/// ```
pub use spychro_macros::main;

/// Registers an `impl Task for YourType` block so that [`Process::task`] can run its values
/// in child processes (see [`Task`]).
pub use spychro_macros::task;

/// Enters worker mode if this process was started as a spychro worker (it then never
/// returns); does nothing otherwise.
///
/// spychro calls this automatically before `main`; call it yourself, as the first line of
/// `main`, only in programs whose entry point bypasses that (see the crate docs).
///
/// ```
/// fn main() {
///     spychro::init();
///     // ... the program ...
/// }
/// ```
pub fn init() {
    worker::entry::enter_if_worker();
}

/// The README's code blocks, compiled and run as doc tests so that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// Registers a `#[job]` for cluster hosts (with the `cluster` feature; nothing without it).
#[doc(hidden)]
#[cfg(feature = "cluster")]
#[macro_export]
macro_rules! __cluster_entry {
    ($job:ident) => {
        #[$crate::__private::linkme::distributed_slice($crate::__private::CLUSTER_JOBS)]
        #[linkme(crate = $crate::__private::linkme)]
        static CLUSTER_ENTRY: $crate::__private::ClusterEntry =
            $crate::__private::ClusterEntry::of::<$job>();
    };
}

/// Registers a `#[job]` for cluster hosts (with the `cluster` feature; nothing without it).
#[doc(hidden)]
#[cfg(not(feature = "cluster"))]
#[macro_export]
macro_rules! __cluster_entry {
    ($job:ident) => {};
}

/// Not public API: what `#[job]`, `#[task]` and `#[main]` expand to.
#[doc(hidden)]
pub mod __private {
    pub use crate::call::describe::{CloneArg, Describe, DescribeDebug, DescribeOpaque, JobError};
    pub use crate::call::job_fn::Sealed;
    pub use crate::call::plain::{PlainNo, PlainYes, Probe};
    pub use crate::process::{TaskJob, TaskRunner};
    pub use crate::supervisor::{ActorJob, ActorRunner};
    pub use crate::worker::registry::{JOBS, JobEntry};
    pub use linkme;

    pub use crate::__cluster_entry as cluster_entry;
    #[cfg(feature = "cluster")]
    pub use crate::cluster::{CLUSTER_JOBS, ClusterEntry};

    /// The worker entry for `#[spychro::main]`.
    pub fn enter_worker() {
        crate::worker::entry::enter_if_worker();
    }
}
