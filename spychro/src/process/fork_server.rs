//! [`ForkServer`]: workers copied from a process started ahead of time, instead of executed
//! one by one (the mechanism: `sys/fork_server.rs` and `sys/zygote.rs`).

use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ExitStatus, WorkerError, WorkerErrorKind};
use crate::sys::fork_server::{self, ServerLink, StartError};
use crate::sys::pidfd;

/// How long the server may take to say hello.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it may take to exit once told to, before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A fork server: this program, started once more ahead of time, from which every worker
/// process is then copied instead of executed — the way Python's `forkserver` start method
/// works.
///
/// Starting a worker by executing the program costs about a millisecond (the kernel's
/// `execve`, the dynamic loader, the page faults of a fresh image); a copy of a process that
/// already did all that comes up in a fraction of it. While a `ForkServer` lives, every pool,
/// job and [`Process`](crate::Process) this process starts (from any thread) gets its workers
/// from it, except a `Process` given channel ends and a job with its own
/// [`worker_program`](crate::Job::worker_program), which are executed as before. Dropping it
/// stops the server; workers already started are not affected.
///
/// A copy is this process's child (not the server's), in a process group of its own, exactly
/// as an executed worker: crash attribution, kills, exit codes and the watchdog that ends it
/// with its caller are unchanged. It takes from the caller, at each start, its environment,
/// working directory, stdout and stderr, and the worker's memory limit. It has, from when the
/// server started, the user and group, resource limits, umask, ignored signals, CPU
/// affinity, priority, namespaces and cgroup, and the program itself (a rebuilt binary on
/// disk is not picked up until the server is started again). Where a copy differs from an
/// executed worker:
///
/// - it inherits no descriptor of the caller's beyond stdout and stderr (an executed worker
///   inherits those not marked close-on-exec, which Rust marks on all it opens);
/// - the program's constructors (code before `main`: spychro's worker entry and any of the
///   program's own) ran once, in the server; what they computed is shared by every copy;
/// - copies share the server's memory layout, stack canary and hash-map seeds (each
///   executed worker draws its own), and `pthread_atfork` handlers do not run in them;
/// - `/proc/<pid>/environ`, which shows a process's environment as it was at its start,
///   shows the server's.
///
/// The server does nothing but wait between starts; it holds nothing of the caller's open
/// (its stdout and stderr point at `/dev/null`, its directory is `/`); it ends when dropped,
/// or when this process ends, however it ends. If it cannot be reached (it was killed, or
/// stopped), workers are executed as usual. It needs glibc on Linux, x86-64 or AArch64, and a
/// program with one thread before `main` (where it cannot work, `start` says why).
///
/// ```
/// #[spychro::job]
/// fn plus_one(x: u64) -> u64 { x + 1 }
///
/// let server = spychro::ForkServer::start()?;
/// // Every job here starts its workers from the server.
/// for _ in 0..3 {
///     let out = spychro::Job::new(plus_one, 0..4u64).run_multi_processed()?;
///     assert_eq!(out, vec![1, 2, 3, 4]);
/// }
/// drop(server);
/// # Ok::<(), spychro::Error>(())
/// ```
pub struct ForkServer {
    link: Arc<ServerLink>,
    child: Option<Child>,
}

impl ForkServer {
    /// Starts the server (this program, executed once more) and waits for it to be ready;
    /// from then until it is dropped, workers are started from it.
    ///
    /// Fails with [`Error::Misuse`] while another `ForkServer` of this process lives, and
    /// with [`Error::Worker`] if the server could not start.
    ///
    /// ```
    /// let server = spychro::ForkServer::start()?;
    /// assert!(spychro::ForkServer::start().is_err()); // one at a time
    /// assert_ne!(server.pid(), std::process::id());
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn start() -> Result<ForkServer, Error> {
        if let Some(running) = fork_server::installed() {
            return Err(already(running.pid()));
        }
        let program = std::env::current_exe()
            .map_err(|e| Error::io("could not find this program's path", e))?;
        let fail = |pid: Option<u32>, kind| -> Error {
            WorkerError::new(pid, program.clone(), kind).into()
        };
        let (child, link) = match fork_server::start(&program, START_TIMEOUT) {
            Ok(started) => started,
            Err(StartError::Spawn(error)) => {
                return Err(fail(
                    None,
                    WorkerErrorKind::Spawn {
                        error,
                        custom_program: false,
                    },
                ));
            }
            Err(StartError::NoHello(mut child, error)) => {
                let pid = child.id();
                let _ = child.kill();
                let status = child.wait().map(ExitStatus::from_std);
                let kind = match status {
                    // It ended on its own: it says why on stderr.
                    Ok(status) if error.kind() != std::io::ErrorKind::WouldBlock => {
                        WorkerErrorKind::DiedBeforeHandshake(status)
                    }
                    _ => WorkerErrorKind::HandshakeTimeout(START_TIMEOUT),
                };
                return Err(fail(Some(pid), kind));
            }
        };
        let link = Arc::new(link);
        let server = ForkServer {
            link: Arc::clone(&link),
            child: Some(child),
        };
        // Another thread may have installed one meanwhile: this one is then stopped (by
        // drop) and the call fails as above.
        fork_server::install(&link).map_err(already)?;
        Ok(server)
    }

    /// The server's pid.
    ///
    /// ```
    /// let server = spychro::ForkServer::start()?;
    /// assert!(server.pid() > 0);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.link.pid()
    }
}

fn already(pid: u32) -> Error {
    Error::Misuse(format!(
        "a fork server (pid {pid}) already serves this process; use it, or drop it before \
         starting another"
    ))
}

impl std::fmt::Debug for ForkServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForkServer")
            .field("pid", &self.pid())
            .finish()
    }
}

impl Drop for ForkServer {
    fn drop(&mut self) {
        fork_server::uninstall(&self.link);
        self.link.close();
        let Some(mut child) = self.child.take() else {
            return;
        };
        if !self.link.is_ours() {
            // A fork of the process that started the server: the server is not ours to end.
            return;
        }
        // It exits as soon as it sees its socket end; it is killed if it does not.
        let deadline = Instant::now() + STOP_GRACE;
        let exited = pidfd::open(child.id());
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => break,
                Ok(None) => match &exited {
                    Some(fd) => pidfd::wait_readable(fd, deadline),
                    // No pidfds (Linux before 5.3): look again shortly.
                    None => std::thread::sleep(Duration::from_micros(200)),
                },
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
