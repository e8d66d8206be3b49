//! [`Process`]: one job function run in a child process with its arguments, like Python's
//! `multiprocessing.Process`; [`ProcessList`]: many of them together; [`Task`]: a process
//! written as a type with its own state.
//!
//! A process starts the way a pool worker does (same spawning, handshake and job lookup), runs
//! its one item, and exits: 0 when the function returned, 1 when it panicked or returned `Err`.
//! A thread of the caller reads what it sends: its `log` records (re-emitted through the
//! caller's logger as they come), and its result or panic for [`Process::join`].

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{
    Error, ExitStatus, FailureKind, ItemError, ItemErrorData, WorkerError, WorkerErrorKind,
};
use crate::hooks::WorkerLog;
use crate::job::NoExtraArgs;
use crate::job_fn::JobFn;
use crate::spawn::{SpawnOptions, spawn_worker};
use crate::status::StatusPage;
use crate::wire::{self, WireError};

static NEXT: AtomicUsize = AtomicUsize::new(1);

/// The exit code of a process in Python's convention: `Some(0)` success, `Some(n > 0)` exit
/// code `n`, `Some(-s)` killed by signal `s`, `None` still running (or never started).
pub type ExitCode = Option<i32>;

/// A job function run in a child process.
///
/// ```
/// use spychro::Process;
///
/// #[spychro::job]
/// fn worker(n: u64, name: String) -> String {
///     let me = spychro::current_process();
///     format!("{} ({name}) computed {}", me.name, n * n)
/// }
///
/// let mut p = Process::with_args(worker, 7, "squarer".to_string()).name("my_service");
/// p.start()?;
/// assert!(p.pid().is_some());
/// assert_eq!(p.join()?, "my_service (squarer) computed 49");
/// assert_eq!(p.exit_code(), Some(0));
/// # Ok::<(), spychro::Error>(())
/// ```
pub struct Process<F: JobFn> {
    name: String,
    daemon: bool,
    state: State<F>,
}

enum State<F: JobFn> {
    Ready { item: F::Item, args: F::Args },
    Running(Box<Running>),
    Done(ExitCode),
    Broken,
}

struct Running {
    child: Child,
    /// The encoded output, or the failure, from the reader thread.
    outcome: mpsc::Receiver<Result<Vec<u8>, Error>>,
    result: Option<Result<Vec<u8>, Error>>,
    exit: ExitCode,
    _status: StatusPage,
}

impl<F: JobFn> Process<F>
where
    F::Args: NoExtraArgs<F>,
{
    /// A process that will run `job(item)`. It is named `Process-N` (counted per program)
    /// until [`name`](Process::name) says otherwise, and is daemonic.
    pub fn new(job: F, item: F::Item) -> Self {
        Self::with_args(job, item, F::Args::none())
    }
}

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

impl<T> crate::private::Sealed for TaskRunner<T> {}

impl<T: TaskJob> JobFn for TaskRunner<T> {
    type Item = T;
    type Args = ();
    type Output = <T as Task>::Output;
    type Message = ();
    const NAME: &'static str = T::NAME;
    const SIGNATURE: u64 = T::SIGNATURE;

    fn call(item: T, _: &(), _: &crate::Ctx<'_, ()>) -> Result<Self::Output, String> {
        Ok(item.run())
    }

    fn describe(_: &T) -> Option<String> {
        None
    }
}

impl<T: TaskJob> Process<TaskRunner<T>> {
    /// A process that runs a [`Task`] value.
    pub fn task(task: T) -> Self {
        Process {
            name: format!("Process-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            daemon: true,
            state: State::Ready {
                item: task,
                args: (),
            },
        }
    }
}

impl<F: JobFn> Process<F> {
    /// A process that will run `job(item, args...)`: one extra argument as the value itself,
    /// several as a tuple.
    pub fn with_args(job: F, item: F::Item, args: F::Args) -> Self {
        let _ = job;
        Process {
            name: format!("Process-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            daemon: true,
            state: State::Ready { item, args },
        }
    }

    /// Names the process; the child sees it in [`current_process`](crate::current_process).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Daemonic (the default): killed when its handle is dropped, and it may not start
    /// processes or pools of its own. Not daemonic: dropping the handle waits for it, and it
    /// may start children. Either way the child ends when the caller's process ends: it
    /// watches its socket to the caller.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// The process's name.
    pub fn get_name(&self) -> &str {
        &self.name
    }

    /// Starts the child and hands it its item.
    pub fn start(&mut self) -> Result<(), Error> {
        if crate::worker::is_worker() && !crate::worker::may_nest() {
            return Err(Error::NestedPool {
                pid: std::process::id(),
            });
        }
        let (item, args) = match std::mem::replace(&mut self.state, State::Broken) {
            State::Ready { item, args } => (item, args),
            other => {
                self.state = other;
                return Err(Error::Config(format!(
                    "process {} was already started",
                    self.name
                )));
            }
        };
        log::debug!(target: "spychro::process", "starting {}", self.name);
        let ((records, args_bytes), fds) = crate::channel::capture_fds(|| {
            let mut records = Vec::new();
            let item = wire::push_value(&mut records, &item);
            (item.map(|_| records), wire::encode_value(&args))
        });
        let records = records.map_err(|e| item_error::<F>(&self.name, e))?;
        let args_bytes = args_bytes.map_err(|e| {
            Error::Config(format!(
                "the arguments of {} could not be serialized: {e}",
                self.name
            ))
        })?;
        let program = std::env::current_exe()
            .map_err(|e| Error::io("could not find this program's path", e))?;
        let spawned = spawn_worker(&SpawnOptions {
            program: &program,
            exec_self: true,
            memory_limit: None,
            capture_output: false,
            inherit: &fds,
        })
        .map_err(|e| WorkerError {
            pid: None,
            program: program.clone(),
            kind: WorkerErrorKind::Spawn(e),
        })?;
        // The child has its copies of the channel ends now; ours close with the item.
        drop(item);
        drop(args);
        let mut child = spawned.child;
        let pid = child.id();
        let fail = |kind| -> Error {
            WorkerError {
                pid: Some(pid),
                program: program.clone(),
                kind,
            }
            .into()
        };
        let sock = spawned.sock;
        let setup = wire::Setup {
            job: 0,
            name: F::NAME.to_owned(),
            signature: F::SIGNATURE,
            args: args_bytes,
            nested: !self.daemon,
            log_level: log::max_level() as u8,
            timed: false,
            process: Some(self.name.clone()),
        };
        let mut out = Vec::new();
        let framed = wire::push_message(&mut out, wire::TAG_SETUP, &setup)
            .and_then(|()| wire::push_batch(&mut out, 0, 0, 1, &records));
        if let Err(e) = framed {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Config(format!(
                "could not frame the start of {}: {e}",
                self.name
            )));
        }
        if let Err(e) = handshake(&sock, &out) {
            let _ = child.kill();
            let status = child.wait().map(ExitStatus::from_std).ok();
            return Err(fail(match (e, status) {
                (Handshake::Refused(reason), _) => WorkerErrorKind::Refused {
                    job: F::NAME.to_owned(),
                    reason,
                },
                (Handshake::Protocol(theirs), _) => WorkerErrorKind::ProtocolMismatch {
                    ours: wire::PROTOCOL_VERSION,
                    theirs,
                },
                (Handshake::Timeout, _) => {
                    WorkerErrorKind::HandshakeTimeout(Duration::from_secs(30))
                }
                (Handshake::Closed, Some(status)) => WorkerErrorKind::DiedBeforeHandshake(status),
                (Handshake::Closed, None) => {
                    WorkerErrorKind::DiedBeforeHandshake(ExitStatus::Unknown)
                }
                (Handshake::Wire(e), _) => WorkerErrorKind::Wire(e),
            }));
        }
        let (tx, rx) = mpsc::channel();
        let name = self.name.clone();
        let reader = std::thread::Builder::new()
            .name(format!("spychro-{name}"))
            .spawn(move || {
                let result = read_outcome(&sock, pid, &name, F::NAME);
                let _ = tx.send(result);
            });
        if let Err(e) = reader {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::io("could not start the process's reader thread", e));
        }
        log::debug!(target: "spychro::process", "{} started as pid {pid}", self.name);
        self.state = State::Running(Box::new(Running {
            child,
            outcome: rx,
            result: None,
            exit: None,
            _status: spawned.status,
        }));
        Ok(())
    }

    /// The child's pid, once started.
    pub fn pid(&self) -> Option<u32> {
        match &self.state {
            State::Running(r) => Some(r.child.id()),
            _ => None,
        }
    }

    /// Whether the child is running.
    pub fn is_alive(&mut self) -> bool {
        match &mut self.state {
            State::Running(r) => {
                r.poll_exit();
                r.exit.is_none()
            }
            _ => false,
        }
    }

    /// The exit code, in Python's convention (see [`ExitCode`]).
    pub fn exit_code(&mut self) -> ExitCode {
        match &mut self.state {
            State::Running(r) => {
                r.poll_exit();
                r.exit
            }
            State::Done(code) => *code,
            _ => None,
        }
    }

    /// Asks the child to stop (SIGTERM).
    pub fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
    }

    /// Kills the child (SIGKILL).
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
    }

    fn signal(&mut self, sig: i32) {
        if let State::Running(r) = &mut self.state
            && r.exit.is_none()
        {
            // SAFETY: kill(2) on the pid of our own unreaped child.
            unsafe { libc::kill(r.child.id() as i32, sig) };
        }
    }

    /// Waits for the child to end and returns what the function returned; a panic, an `Err`,
    /// a crash or a signal is an error naming the process.
    pub fn join(&mut self) -> Result<F::Output, Error> {
        self.join_until(None)?
            .ok_or_else(|| Error::Config("process ended without a result".into()))
    }

    /// Like [`join`](Process::join), waiting at most `timeout`: `Ok(None)` if the child is
    /// still running then.
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<F::Output>, Error> {
        self.join_until(Some(Instant::now() + timeout))
    }

    fn join_until(&mut self, deadline: Option<Instant>) -> Result<Option<F::Output>, Error> {
        let State::Running(r) = &mut self.state else {
            return Err(Error::Config(format!(
                "process {} is not running: start it first (or it was joined already)",
                self.name
            )));
        };
        if r.result.is_none() {
            let got = match deadline {
                None => r.outcome.recv().ok(),
                Some(d) => match r
                    .outcome
                    .recv_timeout(d.saturating_duration_since(Instant::now()))
                {
                    Ok(got) => Some(got),
                    Err(mpsc::RecvTimeoutError::Timeout) => return Ok(None),
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                },
            };
            r.result =
                Some(got.unwrap_or_else(|| {
                    Err(Error::Config("the process's reader thread ended".into()))
                }));
        }
        // The child exits right after it answers (or it died): reap it.
        let status = r
            .child
            .wait()
            .map(ExitStatus::from_std)
            .unwrap_or(ExitStatus::Unknown);
        let code = python_code(status);
        let result = r.result.take().expect("set above");
        self.state = State::Done(code);
        log::debug!(target: "spychro::process", "{} ended with {status}", self.name);
        let result = result.map_err(|e| match e {
            // A child that died answers nothing: report how it ended.
            Error::Worker(w) if matches!(w.kind, WorkerErrorKind::Died(_)) => WorkerError {
                pid: w.pid,
                program: w.program,
                kind: WorkerErrorKind::Died(status),
            }
            .into(),
            e => e,
        });
        let bytes = result?;
        let out = wire::decode_value::<F::Output>(&bytes).map_err(|message| {
            ItemError::from(ItemErrorData {
                job: F::NAME,
                index: 0,
                item: Some(self.name.clone()),
                pid: std::process::id(),
                kind: FailureKind::DeserializeOutput { message },
            })
        })?;
        Ok(Some(out))
    }
}

impl Running {
    fn poll_exit(&mut self) {
        if self.exit.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exit = python_code(ExitStatus::from_std(status));
        }
    }
}

impl<F: JobFn> Drop for Process<F> {
    fn drop(&mut self) {
        if let State::Running(_) = self.state {
            if self.daemon {
                self.kill();
            }
            let _ = self.join();
        }
    }
}

fn python_code(status: ExitStatus) -> ExitCode {
    match status {
        ExitStatus::Code(c) => Some(c),
        ExitStatus::Signal(s) => Some(-s),
        ExitStatus::Unknown => None,
    }
}

fn item_error<F: JobFn>(name: &str, message: String) -> Error {
    ItemError::from(ItemErrorData {
        job: F::NAME,
        index: 0,
        item: Some(name.to_owned()),
        pid: std::process::id(),
        kind: FailureKind::SerializeItem { message },
    })
    .into()
}

enum Handshake {
    Closed,
    Timeout,
    Protocol(u32),
    Refused(String),
    Wire(WireError),
}

/// Reads the child's hello, sends its set-up and item, and waits for the set-up's answer.
fn handshake(sock: &UnixStream, start: &[u8]) -> Result<(), Handshake> {
    let _ = sock.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = sock;
    let mut body = Vec::new();
    let read = |reader: &mut &UnixStream, body: &mut Vec<u8>| match wire::read_frame(reader, body) {
        Ok(Some(tag)) => Ok(tag),
        Ok(None) => Err(Handshake::Closed),
        Err(WireError::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(Handshake::Timeout)
        }
        Err(WireError::Io(_)) => Err(Handshake::Closed),
        Err(e) => Err(Handshake::Wire(e)),
    };
    if read(&mut reader, &mut body)? != wire::TAG_HELLO {
        return Err(Handshake::Wire(WireError::UnknownTag(0)));
    }
    let hello: wire::Hello = wire::decode(&body, "hello").map_err(Handshake::Wire)?;
    if hello.protocol != wire::PROTOCOL_VERSION {
        return Err(Handshake::Protocol(hello.protocol));
    }
    (&*sock).write_all(start).map_err(|_| Handshake::Closed)?;
    loop {
        match read(&mut reader, &mut body)? {
            wire::TAG_SETUP_DONE => {
                let done: wire::SetupDone =
                    wire::decode(&body, "setup done").map_err(Handshake::Wire)?;
                let _ = sock.set_read_timeout(None);
                return done.result.map_err(Handshake::Refused);
            }
            wire::TAG_LOG => {
                if let Ok(log) = wire::decode::<wire::WireLog>(&body, "log") {
                    crate::hooks::reemit(&WorkerLog::from_wire(0, log));
                }
            }
            other => return Err(Handshake::Wire(WireError::UnknownTag(other))),
        }
    }
}

/// The reader thread: re-emits the child's logs as they come and returns its encoded output
/// once the child has closed its end. (Closing ours earlier would make the child's watchdog
/// end it before it exits on its own.)
fn read_outcome(
    sock: &UnixStream,
    pid: u32,
    name: &str,
    job: &'static str,
) -> Result<Vec<u8>, Error> {
    let mut reader = sock;
    let mut body = Vec::new();
    let mut outcome: Option<Result<Vec<u8>, Error>> = None;
    let died = || -> Error {
        WorkerError {
            pid: Some(pid),
            program: name.into(),
            kind: WorkerErrorKind::Died(ExitStatus::Unknown),
        }
        .into()
    };
    loop {
        let tag = match wire::read_frame(&mut reader, &mut body) {
            Ok(Some(tag)) => tag,
            Ok(None) | Err(WireError::Io(_)) => return outcome.unwrap_or_else(|| Err(died())),
            Err(e) => {
                return Err(WorkerError {
                    pid: Some(pid),
                    program: name.into(),
                    kind: WorkerErrorKind::Wire(e),
                }
                .into());
            }
        };
        match tag {
            wire::TAG_LOG => {
                if let Ok(log) = wire::decode::<wire::WireLog>(&body, "log") {
                    crate::hooks::reemit(&WorkerLog::from_wire(pid, log));
                }
            }
            wire::TAG_RESULTS => {
                let Ok((header, rest)) = wire::parse_results(&body) else {
                    return Err(died());
                };
                if !header.failed {
                    outcome = Some(Ok(rest.to_vec()));
                    continue;
                }
                let Ok(failure) = wire::decode::<wire::WireFailure>(rest, "failure") else {
                    return Err(died());
                };
                let kind = failure.kind;
                let failure = ItemError::from(ItemErrorData {
                    job,
                    index: 0,
                    item: Some(name.to_owned()),
                    pid,
                    kind,
                });
                // Forwarded to the caller's stderr, as Python prints a child's traceback.
                let report = format!(
                    "spychro: process {name} (pid {pid}) failed: {}\n",
                    failure.kind()
                );
                crate::hooks::write_above(|| eprint!("{report}"));
                outcome = Some(Err(failure.into()));
            }
            // Messages and progress have no handler on a lone process.
            _ => {}
        }
    }
}

/// A running [`Process`] of any job, as [`ProcessList`] holds it.
pub trait ProcessControl {
    /// Starts it.
    fn start(&mut self) -> Result<(), Error>;
    /// Waits for it and returns its exit code (its result is dropped).
    fn wait(&mut self) -> ExitCode;
    /// Whether it runs.
    fn is_alive(&mut self) -> bool;
    /// SIGTERM.
    fn terminate(&mut self);
    /// SIGKILL.
    fn kill(&mut self);
    /// Its pid, once started.
    fn pid(&self) -> Option<u32>;
    /// Its name.
    fn name(&self) -> &str;
}

impl<F: JobFn> ProcessControl for Process<F> {
    fn start(&mut self) -> Result<(), Error> {
        Process::start(self)
    }
    fn wait(&mut self) -> ExitCode {
        let _ = Process::join(self);
        Process::exit_code(self)
    }
    fn is_alive(&mut self) -> bool {
        Process::is_alive(self)
    }
    fn terminate(&mut self) {
        Process::terminate(self)
    }
    fn kill(&mut self) {
        Process::kill(self)
    }
    fn pid(&self) -> Option<u32> {
        Process::pid(self)
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Many processes, started, joined, signalled together (multitools' `ProcessList`).
///
/// ```
/// use spychro::{Process, ProcessList};
///
/// #[spychro::job]
/// fn exit_with(code: i32) { std::process::exit(code) }
///
/// let mut list = ProcessList::new();
/// for code in [0, 3, 7] {
///     list.add(Process::new(exit_with, code));
/// }
/// list.start()?;
/// assert_eq!(list.join()?, [Some(0), Some(3), Some(7)]);
/// assert!(!list.is_alive());
/// # Ok::<(), spychro::Error>(())
/// ```
#[derive(Default)]
pub struct ProcessList {
    processes: Vec<Box<dyn ProcessControl>>,
}

impl ProcessList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a process (not yet started).
    pub fn add(&mut self, process: impl ProcessControl + 'static) {
        self.processes.push(Box::new(process));
    }

    /// Starts every process; stops at the first that cannot start (the others keep running).
    pub fn start(&mut self) -> Result<(), Error> {
        self.processes.iter_mut().try_for_each(|p| p.start())
    }

    /// Waits for every process and returns their exit codes, in the order added.
    pub fn join(&mut self) -> Result<Vec<ExitCode>, Error> {
        Ok(self.processes.iter_mut().map(|p| p.wait()).collect())
    }

    /// Whether any process runs.
    pub fn is_alive(&mut self) -> bool {
        self.processes.iter_mut().any(|p| p.is_alive())
    }

    /// Sends SIGTERM to every process.
    pub fn terminate(&mut self) {
        self.processes.iter_mut().for_each(|p| p.terminate());
    }

    /// Sends SIGKILL to every process.
    pub fn kill(&mut self) {
        self.processes.iter_mut().for_each(|p| p.kill());
    }

    /// The pids of the started processes.
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.processes.iter().map(|p| p.pid()).collect()
    }

    /// The number of processes.
    pub fn len(&self) -> usize {
        self.processes.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }
}

/// The name and pid of the running process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurrentProcess {
    /// `MainProcess` in a program, the name given to a [`Process`], `Worker-PID` in a pool
    /// worker.
    pub name: String,
    /// The pid.
    pub pid: u32,
}

/// The name and pid of this process.
///
/// ```
/// assert_eq!(spychro::current_process().name, "MainProcess");
/// ```
pub fn current_process() -> CurrentProcess {
    let pid = std::process::id();
    let name = match crate::worker::process_name() {
        Some(name) => name.to_owned(),
        None if crate::worker::is_worker() => format!("Worker-{pid}"),
        None => "MainProcess".to_owned(),
    };
    CurrentProcess { name, pid }
}
