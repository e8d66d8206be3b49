//! One item's failure: [`ItemError`] (which item, where it ran) and [`FailureKind`] (what went
//! wrong), and how a process ended ([`ExitStatus`]).

use std::fmt;
use std::time::Duration;

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
struct ItemErrorData {
    job: &'static str,
    index: u64,
    item: Option<String>,
    pid: u32,
    kind: FailureKind,
    host: Option<String>,
}

impl ItemError {
    /// The failure of item `index` of job `job` (described by `item`, when it can be) in
    /// process `pid`.
    pub(crate) fn new(
        job: &'static str,
        index: u64,
        item: Option<String>,
        pid: u32,
        kind: FailureKind,
    ) -> ItemError {
        ItemError(Box::new(ItemErrorData {
            job,
            index,
            item,
            pid,
            kind,
            host: None,
        }))
    }

    /// The same failure, on cluster host `host` (`hostname:pid`).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn on_host(mut self, host: String) -> ItemError {
        self.0.host = Some(host);
        self
    }

    /// For a job on a cluster (the `cluster` feature), the host that ran the item
    /// (`hostname:pid`; [`pid`](ItemError::pid) is then a process on that host); `None` for
    /// a job on this machine.
    ///
    /// ```
    /// #[spychro::job]
    /// fn check(x: u32) -> u32 { assert!(x < 3); x }
    ///
    /// let err = spychro::Job::new(check, 0..5).run_multi_processed().unwrap_err();
    /// assert_eq!(err.item().unwrap().host(), None);
    /// ```
    pub fn host(&self) -> Option<&str> {
        self.0.host.as_deref()
    }

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
        write!(f, " {site} {}", self.0.pid)?;
        if let Some(host) = &self.0.host {
            write!(f, " on host {host}")?;
        }
        write!(f, ": {}", self.0.kind)
    }
}

impl std::error::Error for ItemError {}

/// What went wrong with one item. It serializes, so that a failure can be kept or sent on
/// (cluster hosts send theirs to the caller this way).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
