//! [`WorkerError`]: a worker process (or a [`Process`](crate::Process)) that failed outside of
//! any item: it could not start, did not answer, refused the job, or broke the protocol.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::item::ExitStatus;
use super::wire::WireError;

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
    pid: Option<u32>,
    program: PathBuf,
    /// The name of the [`Process`](crate::Process) this worker ran, if it ran one.
    process: Option<String>,
    kind: WorkerErrorKind,
}

impl WorkerError {
    /// The failure of the worker running `program` (`pid`, once it started).
    pub(crate) fn new(pid: Option<u32>, program: PathBuf, kind: WorkerErrorKind) -> WorkerError {
        WorkerError {
            pid,
            program,
            process: None,
            kind,
        }
    }

    /// The same failure, of the [`Process`](crate::Process) named `name`.
    pub(crate) fn of_process(mut self, name: &str) -> WorkerError {
        self.process = Some(name.to_owned());
        self
    }

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
        match (&self.process, self.pid) {
            (Some(name), Some(pid)) => write!(f, "process {name} (pid {pid}) {}", self.kind),
            (Some(name), None) => write!(f, "could not start process {name}: {}", self.kind),
            (None, Some(pid)) => write!(f, "worker process {pid} (`{program}`) {}", self.kind),
            (None, None) => write!(
                f,
                "could not start worker process `{program}`: {}",
                self.kind
            ),
        }
    }
}

impl std::error::Error for WorkerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            WorkerErrorKind::Spawn { error, .. } | WorkerErrorKind::Io(error) => Some(error),
            WorkerErrorKind::Wire(e) => Some(e),
            _ => None,
        }
    }
}

/// What went wrong with a worker; the tail of [`WorkerError`]'s message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerErrorKind {
    /// The process could not be created.
    #[error("{}", spawn_message(error, *custom_program))]
    Spawn {
        error: std::io::Error,
        /// The program was given with `worker_program` (so its path may be wrong).
        custom_program: bool,
    },
    /// It exited (on its own) before its handshake: it is not a spychro worker.
    #[error(
        "ended with {0} before its handshake; the program does not run spychro's worker \
         entry: it must be this binary (or one built from the same code) and link spychro; if \
         it replaces `main` with its own entry point, add `#[spychro::main]` or call \
         `spychro::init()` first in main"
    )]
    DiedBeforeHandshake(ExitStatus),
    /// Something killed it before its handshake, `starts` times in a row.
    #[error(
        "was killed by {status} before its handshake{}; something outside spychro is \
         killing workers as they start (the out-of-memory killer, a resource limit, another \
         program)",
        if *starts > 1 { format!(" ({starts} workers in a row)") } else { String::new() }
    )]
    KilledBeforeHandshake { status: ExitStatus, starts: u32 },
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
    /// The job's per-worker state could not be built there.
    #[error("could not build the per-worker state of job `{job}`: {reason}")]
    StateInit { job: String, reason: String },
    #[error("sent a malformed message: {0}")]
    Wire(WireError),
    /// It ended between items, with nothing to blame, too often.
    #[error("ended with {0} while idle (between items), repeatedly")]
    Died(ExitStatus),
    /// A process ended while its function ran, without a result (it called `exit`, or was
    /// killed).
    #[error(
        "ended with {status} while its function ran, before returning a result{}",
        exit_hint(*status)
    )]
    EndedWithoutResult { status: ExitStatus },
    #[error("could not be reached: {0}")]
    Io(std::io::Error),
}

/// A copy of an OS error (which is not `Clone`): its kind, code and text.
pub(crate) fn copy_io(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}

impl WorkerErrorKind {
    /// The same failure, for one more job that it ends.
    pub(crate) fn duplicate(&self) -> WorkerErrorKind {
        use WorkerErrorKind::*;
        match self {
            Spawn {
                error,
                custom_program,
            } => Spawn {
                error: copy_io(error),
                custom_program: *custom_program,
            },
            DiedBeforeHandshake(s) => DiedBeforeHandshake(*s),
            KilledBeforeHandshake { status, starts } => KilledBeforeHandshake {
                status: *status,
                starts: *starts,
            },
            HandshakeTimeout(d) => HandshakeTimeout(*d),
            ProtocolMismatch { ours, theirs } => ProtocolMismatch {
                ours: *ours,
                theirs: *theirs,
            },
            Refused { job, reason } => Refused {
                job: job.clone(),
                reason: reason.clone(),
            },
            StateInit { job, reason } => StateInit {
                job: job.clone(),
                reason: reason.clone(),
            },
            Wire(e) => Wire(e.duplicate()),
            Died(s) => Died(*s),
            EndedWithoutResult { status } => EndedWithoutResult { status: *status },
            Io(e) => Io(copy_io(e)),
        }
    }
}

fn spawn_message(error: &std::io::Error, custom_program: bool) -> String {
    match error.raw_os_error() {
        Some(libc::EAGAIN) => format!(
            "{error}: the system refused a new process; the limit on processes for this user \
             (`ulimit -u`) or on the machine's threads may be reached"
        ),
        Some(libc::EMFILE) | Some(libc::ENFILE) => format!(
            "{error}: too many open files to make the worker's socket and pipes; raise the \
             limit (`ulimit -n`) or close descriptors"
        ),
        Some(libc::ENOMEM) => format!("{error}: not enough memory to start a process"),
        _ if custom_program => format!("{error}; check the path given to `worker_program`"),
        _ => format!("{error}"),
    }
}

fn exit_hint(status: ExitStatus) -> &'static str {
    match status {
        ExitStatus::Code(_) => " (did it call `std::process::exit`?)",
        _ => "",
    }
}
