//! The errors users see: what happened, to which item, in which worker, and what to do.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The error returned by the `run_*` methods of [`Job`](crate::Job).
///
/// Match on it to tell an item's failure (the job's own code failed) from a failure of the
/// machinery around it (a worker that could not start, a broken pipe, a bad option).
///
/// ```
/// #[spychro::job]
/// fn halve(x: u64) -> Result<u64, String> {
///     if x % 2 == 1 { return Err(format!("{x} is odd")) }
///     Ok(x / 2)
/// }
///
/// let err = spychro::Job::new(halve, [2, 4, 5, 6]).run_single_processed().unwrap_err();
/// match err {
///     spychro::Error::Item(failure) => {
///         assert_eq!(failure.index(), 2);
///         assert_eq!(failure.message(), "5 is odd");
///     }
///     other => panic!("unexpected: {other}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An item failed and the job stopped, as the default policy says.
    #[error(transparent)]
    Item(Box<ItemError>),
    /// A worker process failed outside of any item: it could not start, refused the job, or
    /// broke the protocol.
    #[error(transparent)]
    Worker(Box<WorkerError>),
    /// An option given to the builder cannot work.
    #[error("invalid job option: {0}")]
    Config(String),
    /// A multi-processed job or a process was started inside a daemonic worker or process.
    #[error(
        "cannot start processes inside a daemonic worker or process (pid {pid}); daemonic \
         workers may not have children: start the outer job or process with .daemon(false)"
    )]
    NestedPool {
        /// The pid of the worker that tried.
        pid: u32,
    },
    /// SIGINT (Ctrl-C) or SIGTERM arrived while the job ran: the workers were killed at once
    /// and the previous signal handlers were put back.
    #[error(
        "interrupted by {} while the job ran; its workers were stopped",
        signal_name(*signal)
    )]
    Interrupted {
        /// The signal number.
        signal: i32,
    },
    /// The whole job ran past the limit set with [`Job::deadline`](crate::Job::deadline).
    #[error(
        "the job ran past its deadline of {limit:?} ({completed} items had completed in \
         order); its workers were stopped"
    )]
    DeadlineExceeded {
        /// The limit.
        limit: std::time::Duration,
        /// Items delivered in order before it passed.
        completed: u64,
    },
    /// A handler given to the job (`on_message`, `on_log`, ...) panicked; the job was stopped
    /// and its workers killed.
    #[error("the job's {handler} handler panicked: {message}")]
    Handler {
        /// Which handler.
        handler: &'static str,
        /// The panic message.
        message: String,
    },
    /// The operating system refused something the pool needs (a socket, a poll).
    #[error("{context}: {source}")]
    Io {
        /// What the pool was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The item failure, when this error is one.
    ///
    /// ```
    /// #[spychro::job]
    /// fn boom(x: u8) -> u8 { if x == 1 { panic!("no ones") } x }
    ///
    /// let err = spychro::Job::new(boom, [0, 1]).run_single_processed().unwrap_err();
    /// assert_eq!(err.item().map(|f| f.index()), Some(1));
    /// ```
    pub fn item(&self) -> Option<&ItemError> {
        match self {
            Error::Item(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<ItemError> for Error {
    fn from(e: ItemError) -> Self {
        Error::Item(Box::new(e))
    }
}

impl From<WorkerError> for Error {
    fn from(e: WorkerError) -> Self {
        Error::Worker(Box::new(e))
    }
}

/// One item's failure: which item, where it ran, and what went wrong.
///
/// ```
/// #[spychro::job]
/// fn check(x: u32) -> u32 { assert!(x < 3, "{x} is too big"); x }
///
/// let err = spychro::Job::new(check, 0..5).run_single_processed().unwrap_err();
/// let failure = err.item().unwrap();
/// assert_eq!(failure.index(), 3);
/// assert_eq!(failure.item_debug(), Some("3"));
/// assert!(matches!(failure.kind(), spychro::FailureKind::Panicked { .. }));
/// assert!(failure.to_string().contains("3 is too big"));
/// ```
#[derive(Debug, Clone)]
pub struct ItemError(Box<ItemErrorData>);

/// What an [`ItemError`] holds, behind one pointer: a `Result<Output, ItemError>` stays as
/// small as the output.
#[derive(Debug, Clone)]
pub(crate) struct ItemErrorData {
    pub(crate) job: &'static str,
    pub(crate) index: u64,
    pub(crate) item: Option<String>,
    pub(crate) pid: u32,
    pub(crate) kind: FailureKind,
}

impl From<ItemErrorData> for ItemError {
    fn from(data: ItemErrorData) -> Self {
        ItemError(Box::new(data))
    }
}

impl ItemError {
    /// The item's position in the input, counting from 0.
    pub fn index(&self) -> u64 {
        self.0.index
    }

    /// A short `Debug` rendering of the item, when its type implements `Debug`.
    pub fn item_debug(&self) -> Option<&str> {
        self.0.item.as_deref()
    }

    /// The pid of the process that ran the item (the caller's own pid in single-processed and
    /// multi-threaded runs).
    pub fn pid(&self) -> u32 {
        self.0.pid
    }

    /// The registered name of the job (module path and function name).
    pub fn job(&self) -> &'static str {
        self.0.job
    }

    /// What went wrong.
    pub fn kind(&self) -> &FailureKind {
        &self.0.kind
    }

    /// The failure's message alone: the panic message, or the `Display` of the returned error.
    pub fn message(&self) -> &str {
        self.0.kind.message()
    }
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job `{}` failed on item {}", self.0.job, self.0.index)?;
        if let Some(item) = &self.0.item {
            write!(f, " ({item})")?;
        }
        // Two failures happen on the caller's side of the wire, whatever the mode.
        let site = match self.0.kind {
            FailureKind::SerializeItem { .. } | FailureKind::DeserializeOutput { .. } => {
                "in the calling process"
            }
            _ => "in process",
        };
        write!(f, " {site} {}: {}", self.0.pid, self.0.kind)
    }
}

impl std::error::Error for ItemError {}

/// What went wrong with one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FailureKind {
    /// The job panicked.
    Panicked {
        /// The panic message.
        message: String,
        /// Where it panicked (`file:line:column`), when known.
        location: Option<String>,
        /// The backtrace, when `RUST_BACKTRACE` asked for one.
        backtrace: Option<String>,
    },
    /// The job returned `Err`; this is the error's `Display` (alternate form, which shows the
    /// chain of causes for `anyhow`-style errors).
    Returned {
        /// The error's text.
        message: String,
    },
    /// The item could not be serialized to be sent to a worker.
    SerializeItem {
        /// The serializer's message.
        message: String,
    },
    /// The worker could not deserialize the item.
    DeserializeItem {
        /// The deserializer's message.
        message: String,
    },
    /// The job's output could not be serialized in the worker.
    SerializeOutput {
        /// The serializer's message.
        message: String,
    },
    /// The job's output could not be deserialized in the caller.
    DeserializeOutput {
        /// The deserializer's message.
        message: String,
    },
    /// The worker process died while the item ran.
    Crashed {
        /// How it ended.
        status: ExitStatus,
        /// A description of the failure.
        message: String,
    },
    /// The item ran past the limit set with [`Job::timeout`](crate::Job::timeout); its worker
    /// was killed and replaced.
    TimedOut {
        /// The limit.
        limit: Duration,
        /// How long it had run when it was stopped.
        elapsed: Duration,
        /// A description of the failure.
        message: String,
    },
    /// The worker ran out of the memory allowed by
    /// [`Job::memory_limit`](crate::Job::memory_limit) while the item ran.
    OutOfMemory {
        /// The limit, in bytes.
        limit: u64,
        /// What the worker reported, such as the allocation that failed.
        message: String,
    },
}

impl FailureKind {
    /// The message alone.
    pub fn message(&self) -> &str {
        match self {
            FailureKind::Panicked { message, .. }
            | FailureKind::Returned { message }
            | FailureKind::SerializeItem { message }
            | FailureKind::DeserializeItem { message }
            | FailureKind::SerializeOutput { message }
            | FailureKind::DeserializeOutput { message }
            | FailureKind::Crashed { message, .. }
            | FailureKind::TimedOut { message, .. }
            | FailureKind::OutOfMemory { message, .. } => message,
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Panicked {
                message,
                location,
                backtrace,
            } => {
                match location {
                    Some(at) => write!(f, "panicked at {at}: {message}")?,
                    None => write!(f, "panicked: {message}")?,
                }
                if let Some(bt) = backtrace {
                    write!(f, "\nbacktrace:\n{bt}")?;
                }
                Ok(())
            }
            FailureKind::Returned { message } => write!(f, "returned an error: {message}"),
            FailureKind::SerializeItem { message } => write!(
                f,
                "the item could not be serialized to send it to a worker: {message}"
            ),
            FailureKind::DeserializeItem { message } => write!(
                f,
                "the worker could not deserialize the item: {message}; \
                 check that the item type's Serialize and Deserialize agree"
            ),
            FailureKind::SerializeOutput { message } => {
                write!(f, "the job's output could not be serialized: {message}")
            }
            FailureKind::DeserializeOutput { message } => write!(
                f,
                "the job's output could not be deserialized: {message}; \
                 check that the output type's Serialize and Deserialize agree"
            ),
            FailureKind::Crashed { message, .. } | FailureKind::TimedOut { message, .. } => {
                write!(f, "{message}")
            }
            FailureKind::OutOfMemory { limit, message } => write!(
                f,
                "ran out of memory (limit {} MiB): {message}",
                limit / (1024 * 1024)
            ),
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal number.
    Signal(i32),
    /// It is gone, but how it ended is unknown.
    Unknown,
}

impl ExitStatus {
    pub(crate) fn from_std(status: std::process::ExitStatus) -> ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(sig)) => ExitStatus::Signal(sig),
            _ => ExitStatus::Unknown,
        }
    }
}

/// `SIGINT`, `SIGTERM`, ... or the number.
pub(crate) fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().to_owned(),
        Err(_) => format!("signal {sig}"),
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(sig) => match nix::sys::signal::Signal::try_from(sig) {
                Ok(s) => write!(f, "signal {sig} ({})", s.as_str()),
                Err(_) => write!(f, "signal {sig}"),
            },
            ExitStatus::Unknown => write!(f, "an unknown status"),
        }
    }
}

/// A worker process failed outside of any item.
///
/// ```
/// #[spychro::job]
/// fn plus_one(x: u64) -> u64 { x + 1 }
///
/// let err = spychro::Job::new(plus_one, 0..3)
///     .worker_program("/no/such/program")
///     .run_multi_processed()
///     .unwrap_err();
/// assert!(err.to_string().contains("could not start worker process `/no/such/program`"));
/// ```
#[derive(Debug)]
pub struct WorkerError {
    pub(crate) pid: Option<u32>,
    pub(crate) program: PathBuf,
    pub(crate) kind: WorkerErrorKind,
}

impl WorkerError {
    /// The worker's pid, when it started.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The program the worker runs.
    pub fn program(&self) -> &std::path::Path {
        &self.program
    }
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let program = self.program.display();
        let pid = match self.pid {
            Some(pid) => pid,
            None => {
                return write!(
                    f,
                    "could not start worker process `{program}`: {}",
                    self.kind
                );
            }
        };
        write!(f, "worker process {pid} (`{program}`) {}", self.kind)
    }
}

impl std::error::Error for WorkerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            WorkerErrorKind::Spawn(e) | WorkerErrorKind::Io(e) => Some(e),
            WorkerErrorKind::Wire(e) => Some(e),
            _ => None,
        }
    }
}

/// What went wrong with a worker; the tail of [`WorkerError`]'s message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerErrorKind {
    #[error("{0}; check the path given to `worker_program`")]
    Spawn(std::io::Error),
    #[error(
        "ended with {0} before its handshake; the program does not run spychro's worker \
         entry: it must be this binary (or one built from the same code) and link spychro; if \
         it replaces `main` with its own entry point, add `#[spychro::main]` or call \
         `spychro::init()` first in main"
    )]
    DiedBeforeHandshake(ExitStatus),
    #[error(
        "did not complete its handshake within {0:?}; is it a spychro binary? raise the limit \
         with `start_timeout` if the machine is slow"
    )]
    HandshakeTimeout(Duration),
    #[error(
        "speaks spychro protocol {theirs}, this process speaks {ours}; rebuild both from the \
         same version of spychro"
    )]
    ProtocolMismatch { ours: u32, theirs: u32 },
    #[error("refused job `{job}`: {reason}")]
    Refused { job: String, reason: String },
    #[error("sent a malformed message: {0}")]
    Wire(crate::wire::WireError),
    #[error("ended with {0} while idle")]
    Died(ExitStatus),
    #[error("could not be reached: {0}")]
    Io(std::io::Error),
}
