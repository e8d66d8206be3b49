//! The errors users see: what happened, to which item, in which worker, and what to do.
//!
//! This is the vocabulary every layer may use; it imports nothing from the rest of the crate.
//! [`Error`] is what a run returns; an item's failure is an [`ItemError`] (`item`), a
//! worker's a [`WorkerError`] (`worker`), a malformed message a [`WireError`] (`wire`).

mod item;
mod supervisor;
mod wire;
mod worker;

pub(crate) use item::signal_name;
pub use item::{ExitStatus, FailureKind, ItemError};
pub use supervisor::{SupervisorError, Undelivered};
pub use wire::WireError;
pub use worker::WorkerError;
pub(crate) use worker::WorkerErrorKind;

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
    #[error("invalid option `{option}`: {message}")]
    InvalidOption {
        /// The option, as the builder method is named.
        option: &'static str,
        /// What is wrong with it and what would work.
        message: String,
    },
    /// The extra arguments given with [`Job::args`](crate::Job::args) (or to a
    /// [`Process`](crate::Process)) could not be serialized.
    #[error("the extra arguments of job `{job}` could not be serialized: {message}")]
    Arguments {
        /// The job's registered name.
        job: &'static str,
        /// The serializer's message.
        message: String,
    },
    /// An API was used in a way it does not allow (a process started twice, joined after
    /// its result was taken, ...); the message says what and what to do instead.
    #[error("{0}")]
    Misuse(String),
    /// spychro broke one of its own rules. Please report it, with the message.
    #[error("internal error in spychro (please report it): {0}")]
    Internal(String),
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
    /// A job's per-worker state ([`WorkerState`](crate::WorkerState)) could not be built: its
    /// `init` returned an error (or panicked) in a worker (or, in this process, on a thread).
    #[error("the per-worker state of job `{job}` could not be built in process {pid}: {message}")]
    WorkerState {
        /// The job's registered name.
        job: &'static str,
        /// The process that tried to build it.
        pid: u32,
        /// What `init` said.
        message: String,
    },
    /// A [`Supervisor`](crate::Supervisor) ended early: a process failed, a message could
    /// not be delivered, an object had nowhere to go.
    #[error(transparent)]
    Supervisor(Box<SupervisorError>),
    /// The job was cancelled (through its handle) before all of its items ran.
    #[error("the job was cancelled before all of its items ran")]
    Cancelled,
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

    pub(crate) fn invalid(option: &'static str, message: impl Into<String>) -> Error {
        Error::InvalidOption {
            option,
            message: message.into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Error {
        Error::Internal(message.into())
    }
}

impl From<ItemError> for Error {
    fn from(e: ItemError) -> Self {
        Error::Item(Box::new(e))
    }
}

impl From<Box<ItemError>> for Error {
    fn from(e: Box<ItemError>) -> Self {
        Error::Item(e)
    }
}

impl From<WorkerError> for Error {
    fn from(e: WorkerError) -> Self {
        Error::Worker(Box::new(e))
    }
}
