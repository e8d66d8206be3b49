//! [`Process`]: one job function run in a child process with its arguments, like Python's
//! `multiprocessing.Process`; [`ProcessList`] (`list`): many of them together; [`Task`]
//! (`task`): a process written as a type with its own state; [`current_process`] (`current`).
//!
//! A process starts the way a pool worker does — the same spawning, the same handshake
//! (`engine::handshake`, within `start_timeout`) — runs its one item, and exits: 0 when the
//! function returned, 1 when it panicked or returned `Err`. A thread of the caller watches
//! it: it re-emits the child's `log` records as they come, keeps its result, and sees the
//! child end from its process descriptor (so a forked copy holding the socket cannot delay
//! `join`).

mod current;
mod fork_server;
mod list;
mod task;
mod watch;

pub use current::{CurrentProcess, current_process};
pub use fork_server::ForkServer;
pub use list::{Joined, ProcessControl, ProcessList};
pub use task::{Task, TaskJob, TaskRunner};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::call::job_fn::JobFn;
use crate::engine::handshake;
use crate::engine::intake::decode_one;
use crate::engine::worker::Worker;
use crate::error::{Error, ExitStatus, FailureKind, ItemError, WorkerError};
use crate::job::NoExtraArgs;
use crate::sys::spawn::SpawnOptions;
use crate::wire;
use watch::{Ended, forward_log, watch};

static NEXT: AtomicUsize = AtomicUsize::new(1);

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
///
/// Exit codes follow Python's convention: `Some(0)` success, `Some(n > 0)` exit code `n`,
/// `Some(-s)` killed by signal `s`, `None` while it runs (or before it starts).
pub struct Process<F: JobFn> {
    name: String,
    daemon: bool,
    kill_descendants: bool,
    start_timeout: Duration,
    state: State<F>,
}

enum State<F: JobFn> {
    Ready {
        item: F::Item,
        args: F::Args,
    },
    Running(Box<Running>),
    /// Joined: its pid, its exit code; `taken`: its result was handed out.
    Done {
        pid: u32,
        code: Option<i32>,
        taken: bool,
    },
    Broken,
}

struct Running {
    pid: u32,
    ended: mpsc::Receiver<Ended>,
    /// Held while the child is signalled or reaped, so that a signal never reaches a reused
    /// pid; `true` once reaped.
    reaped: Arc<Mutex<bool>>,
}

impl<F: JobFn> Process<F>
where
    F::Args: NoExtraArgs<F>,
{
    /// A process that will run `job(item)`. It is named `Process-N` (counted per program)
    /// until [`name`](Process::name) says otherwise, and is daemonic.
    ///
    /// ```
    /// #[spychro::job]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let mut p = spychro::Process::new(square, 9);
    /// p.start()?;
    /// assert_eq!(p.join()?, 81);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn new(job: F, item: F::Item) -> Self {
        Self::with_args(job, item, F::Args::none())
    }
}

impl<F: JobFn> Process<F> {
    /// A process that will run `job(item, args...)`: one extra argument as the value itself,
    /// several as a tuple.
    ///
    /// ```
    /// #[spychro::job]
    /// fn scale(x: u64, by: u64) -> u64 { x * by }
    ///
    /// let mut p = spychro::Process::with_args(scale, 3, 5);
    /// p.start()?;
    /// assert_eq!(p.join()?, 15);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn with_args(job: F, item: F::Item, args: F::Args) -> Self {
        let _ = job;
        Process {
            name: format!("Process-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            daemon: true,
            kill_descendants: true,
            start_timeout: Duration::from_secs(30),
            state: State::Ready { item, args },
        }
    }

    /// Names the process; the child sees it in [`current_process`](crate::current_process).
    ///
    /// ```
    /// #[spychro::job]
    /// fn me(_: u8) -> String { spychro::current_process().name }
    ///
    /// let mut p = spychro::Process::new(me, 0).name("reporter");
    /// p.start()?;
    /// assert_eq!(p.join()?, "reporter");
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Daemonic (the default): killed when its handle is dropped, and it may not start
    /// processes or pools of its own. Not daemonic: dropping the handle waits for it, and it
    /// may start children. Either way the child ends when the caller's process ends: it
    /// watches its socket to the caller.
    ///
    /// ```
    /// #[spychro::job]
    /// fn id(x: u8) -> u8 { x }
    ///
    /// let mut p = spychro::Process::new(id, 4).daemon(false);
    /// p.start()?;
    /// assert_eq!(p.join()?, 4);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// How long the child may take to start and load its function (default 30 s) before
    /// [`start`](Process::start) fails with an error naming it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// #[spychro::job]
    /// fn id(x: u8) -> u8 { x }
    ///
    /// let mut p = spychro::Process::new(id, 1).start_timeout(Duration::from_secs(5));
    /// p.start()?;
    /// assert_eq!(p.join()?, 1);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// With `false`, processes the child starts are left running when it ends (by default
    /// they end with it: no process is left behind).
    ///
    /// ```
    /// #[spychro::job]
    /// fn id(x: u8) -> u8 { x }
    ///
    /// let mut p = spychro::Process::new(id, 1).kill_descendants(false);
    /// p.start()?;
    /// assert_eq!(p.join()?, 1);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn kill_descendants(mut self, kill: bool) -> Self {
        self.kill_descendants = kill;
        self
    }

    /// The process's name.
    ///
    /// ```
    /// #[spychro::job]
    /// fn id(x: u8) -> u8 { x }
    ///
    /// assert_eq!(spychro::Process::new(id, 1).name("p").get_name(), "p");
    /// ```
    pub fn get_name(&self) -> &str {
        &self.name
    }

    /// Starts the child, hands it its item, and returns once it has loaded the function (its
    /// handshake, within the start timeout).
    ///
    /// ```
    /// #[spychro::job]
    /// fn id(x: u8) -> u8 { x }
    ///
    /// let mut p = spychro::Process::new(id, 1);
    /// p.start()?;
    /// assert!(p.start().is_err(), "a process starts once");
    /// # let _ = p.join();
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn start(&mut self) -> Result<(), Error> {
        if crate::worker::current::is_worker() && !crate::worker::current::may_nest() {
            return Err(Error::NestedPool {
                pid: std::process::id(),
            });
        }
        let (item, args) = match std::mem::replace(&mut self.state, State::Broken) {
            State::Ready { item, args } => (item, args),
            other => {
                self.state = other;
                return Err(Error::Misuse(format!(
                    "process {} was already started; a process runs once: make a new one",
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
        let records = records.map_err(|message| {
            Error::from(ItemError::new(
                F::NAME,
                0,
                Some(self.name.clone()),
                std::process::id(),
                FailureKind::SerializeItem { message },
            ))
        })?;
        let args_bytes = args_bytes.map_err(|message| Error::Arguments {
            job: F::NAME,
            message,
        })?;
        let program = std::env::current_exe()
            .map_err(|e| Error::io("could not find this program's path", e))?;
        let fail = |pid, kind| -> Error {
            WorkerError::new(pid, program.clone(), kind)
                .of_process(&self.name)
                .into()
        };
        let mut worker = Worker::spawn(
            &SpawnOptions {
                program: &program,
                exec_self: true,
                memory_limit: None,
                capture_output: false,
                inherit: &fds,
            },
            self.start_timeout,
            self.kill_descendants,
            false,
        )
        .map_err(|kind| fail(None, kind))?;
        // The child has its copies of the channel ends now; ours close with the item.
        drop(item);
        drop(args);
        let pid = worker.pid;
        let setup = wire::Setup {
            job: 0,
            name: F::NAME.to_owned(),
            signature: F::SIGNATURE,
            args: args_bytes,
            nested: !self.daemon,
            log_level: wire::level_to_wire(log::max_level()),
            timed: false,
            process: Some(self.name.clone()),
            kill_descendants: self.kill_descendants,
        };
        wire::push_message(worker.queue(), wire::TAG_SETUP, &setup)
            .and_then(|()| wire::push_batch(worker.queue(), 0, 0, 1, &records))
            .map_err(|e| Error::internal(format!("could not frame the start of a process: {e}")))?;
        handshake::complete(&mut worker, F::NAME, |w, tag, body| {
            forward_log(w.pid, tag, body)
        })
        .map_err(|kind| fail(Some(pid), kind))?;
        let (tx, rx) = mpsc::channel();
        let reaped = Arc::new(Mutex::new(false));
        let watcher = {
            let reaped = Arc::clone(&reaped);
            let name = self.name.clone();
            std::thread::Builder::new()
                .name(format!("spychro-{name}"))
                .spawn(move || {
                    let ended = watch(worker, &name, &reaped);
                    let _ = tx.send(ended);
                })
        };
        if let Err(e) = watcher {
            return Err(Error::io(
                "could not start the process's watching thread",
                e,
            ));
        }
        log::debug!(target: "spychro::process", "{} started as pid {pid}", self.name);
        self.state = State::Running(Box::new(Running {
            pid,
            ended: rx,
            reaped,
        }));
        Ok(())
    }

    /// The child's pid, once started.
    ///
    /// ```
    /// #[spychro::job]
    /// fn id(x: u8) -> u8 { x }
    ///
    /// let mut p = spychro::Process::new(id, 1);
    /// assert_eq!(p.pid(), None);
    /// p.start()?;
    /// assert!(p.pid().is_some());
    /// # p.join()?;
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        match &self.state {
            State::Running(r) => Some(r.pid),
            State::Done { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    /// Whether the child is running (started, and not ended).
    ///
    /// ```
    /// #[spychro::job]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(ms)); ms }
    ///
    /// let mut p = spychro::Process::new(nap, 200);
    /// assert!(!p.is_alive());
    /// p.start()?;
    /// assert!(p.is_alive());
    /// p.join()?;
    /// assert!(!p.is_alive());
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        match &self.state {
            State::Running(r) => r.status().is_none(),
            _ => false,
        }
    }

    /// The exit code, in Python's convention (see [`Process`]); `None` while it runs.
    ///
    /// ```
    /// #[spychro::job]
    /// fn exit_with(code: i32) { std::process::exit(code) }
    ///
    /// let mut p = spychro::Process::new(exit_with, 3);
    /// p.start()?;
    /// let _ = p.join();
    /// assert_eq!(p.exit_code(), Some(3));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn exit_code(&self) -> Option<i32> {
        match &self.state {
            State::Running(r) => r.status().and_then(python_code),
            State::Done { code, .. } => *code,
            _ => None,
        }
    }

    /// Asks the child to stop (SIGTERM).
    ///
    /// ```
    /// #[spychro::job]
    /// fn nap(s: u64) { std::thread::sleep(std::time::Duration::from_secs(s)) }
    ///
    /// let mut p = spychro::Process::new(nap, 60);
    /// p.start()?;
    /// p.terminate();
    /// assert!(p.join().is_err());
    /// assert_eq!(p.exit_code(), Some(-15));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
    }

    /// Kills the child (SIGKILL).
    ///
    /// ```
    /// #[spychro::job]
    /// fn nap(s: u64) { std::thread::sleep(std::time::Duration::from_secs(s)) }
    ///
    /// let mut p = spychro::Process::new(nap, 60);
    /// p.start()?;
    /// p.kill();
    /// assert!(p.join().is_err());
    /// assert_eq!(p.exit_code(), Some(-9));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
    }

    fn signal(&mut self, sig: i32) {
        if let State::Running(r) = &self.state {
            let reaped = r.reaped.lock().unwrap_or_else(|e| e.into_inner());
            if !*reaped {
                // The child is not reaped (the lock keeps it so): its pid is not reused.
                crate::sys::tree::signal(r.pid as i32, sig);
            }
        }
    }

    /// Waits for the child to end and returns what the function returned; a panic, an `Err`,
    /// a crash, a signal or an exit before returning is an error naming the process.
    ///
    /// ```
    /// #[spychro::job]
    /// fn fail(_: u8) -> u8 { panic!("no") }
    ///
    /// let mut p = spychro::Process::new(fail, 0);
    /// p.start()?;
    /// let err = p.join().unwrap_err();
    /// assert_eq!(err.item().unwrap().message(), "no");
    /// assert_eq!(p.exit_code(), Some(1));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn join(&mut self) -> Result<F::Output, Error> {
        match self.join_until(None)? {
            Some(out) => Ok(out),
            None => Err(Error::internal(
                "a process join without a deadline timed out",
            )),
        }
    }

    /// Like [`join`](Process::join), waiting at most `timeout`: `Ok(None)` if the child is
    /// still running then.
    ///
    /// ```
    /// # use std::time::Duration;
    /// #[spychro::job]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    ///
    /// let mut p = spychro::Process::new(nap, 300);
    /// p.start()?;
    /// assert_eq!(p.join_timeout(Duration::from_millis(10))?, None);
    /// assert_eq!(p.join_timeout(Duration::from_secs(20))?, Some(300));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<F::Output>, Error> {
        self.join_until(Some(Instant::now() + timeout))
    }

    fn join_until(&mut self, deadline: Option<Instant>) -> Result<Option<F::Output>, Error> {
        let r = match &mut self.state {
            State::Running(r) => r,
            State::Done { taken: true, .. } => {
                return Err(Error::Misuse(format!(
                    "process {} was joined already: its result was returned by an earlier \
                     join or join_timeout",
                    self.name
                )));
            }
            _ => {
                return Err(Error::Misuse(format!(
                    "process {} is not running: start it first",
                    self.name
                )));
            }
        };
        let ended = match deadline {
            None => r.ended.recv().ok(),
            Some(d) => match r
                .ended
                .recv_timeout(d.saturating_duration_since(Instant::now()))
            {
                Ok(ended) => Some(ended),
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(None),
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            },
        };
        let pid = r.pid;
        let Some(Ended { outcome, status }) = ended else {
            self.state = State::Done {
                pid,
                code: None,
                taken: true,
            };
            return Err(Error::internal("the process's watching thread ended early"));
        };
        self.state = State::Done {
            pid,
            code: python_code(status),
            taken: true,
        };
        log::debug!(target: "spychro::process", "{} ended with {status}", self.name);
        let body = outcome?;
        let name = self.name.clone();
        match decode_one::<F>(pid, &body, Some(name.clone())) {
            Ok(Ok(out)) => Ok(Some(out)),
            Ok(Err(failure)) => Err(Error::Item(failure)),
            Err(e) => Err(Error::internal(format!(
                "process {name} sent a result that could not be read: {e}"
            ))),
        }
    }
}

impl Running {
    /// How the child ended, if it has (without reaping it).
    fn status(&self) -> Option<ExitStatus> {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if *reaped {
            return Some(ExitStatus::Unknown);
        }
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(nix::unistd::Pid::from_raw(self.pid as i32)), flags) {
            Ok(WaitStatus::Exited(_, code)) => Some(ExitStatus::Code(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => Some(ExitStatus::Signal(sig as i32)),
            Ok(_) => None,
            Err(_) => Some(ExitStatus::Unknown),
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

/// An exit status in Python's convention.
pub(crate) fn python_code(status: ExitStatus) -> Option<i32> {
    match status {
        ExitStatus::Code(c) => Some(c),
        ExitStatus::Signal(s) => Some(-s),
        ExitStatus::Unknown => None,
    }
}
