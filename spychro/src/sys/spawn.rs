//! Starting a worker process: the caller's own binary (or another), re-executed with one end
//! of a private socketpair and its status page: given as stdin and sent over the socket
//! (posix_spawn), or inherited between fork and exec; an environment variable says which. Or,
//! while a fork server is installed, copied from it with the same two ends (`fork_server.rs`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use super::fdpass::{receive_fd, send_fd};
use super::fork_server::{self, ForkError, WorkerFds, std_fd};
use super::status::StatusPage;

/// Names a worker's inherited fds, `SOCKET:STATUS`, or is [`ENV_FD_STDIN`]; set by the caller
/// on the worker's command, read (and removed) by the worker before `main`.
pub(crate) const ENV_FD: &str = "SPYCHRO_WORKER_FD";
/// [`ENV_FD`]'s value when the socket is the worker's stdin and the status page comes over it.
pub(crate) const ENV_FD_STDIN: &str = "stdin";

/// How to start a worker.
pub(crate) struct SpawnOptions<'a> {
    /// Shown in messages and given as `argv[0]`.
    pub(crate) program: &'a Path,
    /// Execute this process's own binary through `/proc/self/exe` (right even if the file on
    /// disk was replaced since this process started) instead of `program`.
    pub(crate) exec_self: bool,
    /// A limit on the worker's address space (`RLIMIT_AS`), in bytes.
    pub(crate) memory_limit: Option<u64>,
    /// Pipe the worker's stdout and stderr to the caller instead of sharing the caller's.
    pub(crate) capture_output: bool,
    /// More descriptors the worker inherits (channel ends given to a process).
    pub(crate) inherit: &'a [RawFd],
}

/// A started worker process and the caller's ends of what it shares with it.
pub(crate) struct Spawned {
    pub(crate) child: WorkerChild,
    pub(crate) sock: UnixStream,
    pub(crate) status: StatusPage,
    /// The read ends of its stdout and stderr, when they are captured.
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
}

/// A worker process that is this process's child: executed (a `std` child) or copied from a
/// fork server (known by its pid alone). Killing it is sound until it is reaped: its pid
/// stays ours until then.
pub(crate) struct WorkerChild {
    pid: u32,
    executed: Option<Child>,
    reaped: bool,
}

impl WorkerChild {
    fn executed(child: Child) -> WorkerChild {
        WorkerChild {
            pid: child.id(),
            executed: Some(child),
            reaped: false,
        }
    }

    /// Its pid.
    pub(crate) fn id(&self) -> u32 {
        self.pid
    }

    /// Sends it SIGKILL, unless it was reaped.
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        if let Some(child) = self.executed.as_mut() {
            return child.kill();
        }
        if self.reaped {
            return Ok(());
        }
        // SAFETY: kill takes a pid and a signal; the pid is our unreaped child's.
        if unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for it to end and reaps it.
    pub(crate) fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        if let Some(child) = self.executed.as_mut() {
            return child.wait();
        }
        if self.reaped {
            return Err(io::Error::other("the worker was reaped already"));
        }
        let mut status = 0;
        loop {
            // SAFETY: waitpid writes the status into a local.
            let r = unsafe { libc::waitpid(self.pid as libc::pid_t, &mut status, 0) };
            if r == self.pid as libc::pid_t {
                self.reaped = true;
                return Ok(std::process::ExitStatus::from_raw(status));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Starts a worker.
///
/// The worker gets its own process group, so that a terminal's Ctrl-C reaches only the caller,
/// which then tears the pool down itself. Its stdin reads as empty (`/dev/null`).
pub(crate) fn spawn_worker(opts: &SpawnOptions<'_>) -> io::Result<Spawned> {
    spawn_workers(opts, 1)
        .pop()
        .unwrap_or_else(|| Err(io::Error::other("no worker was started")))
}

/// Starts `n` workers (see [`spawn_worker`]); one result each.
///
/// While a fork server is installed, workers of this binary without descriptors for channels
/// are copied from it (their requests sent together, so the server copies the next while the
/// first comes up), a memory limit set by the copy itself; where the server cannot be used,
/// they are executed.
pub(crate) fn spawn_workers(opts: &SpawnOptions<'_>, n: usize) -> Vec<io::Result<Spawned>> {
    if opts.exec_self
        && opts.inherit.is_empty()
        && let Some(server) = fork_server::installed()
    {
        return from_server(&server, opts, n);
    }
    (0..n).map(|_| spawn_executed(opts)).collect()
}

/// What every worker shares with the caller, however it starts: a private socket pair (ours,
/// theirs) and its status page (with the region after it) and the page's descriptor.
fn link_and_page() -> io::Result<(OwnedFd, OwnedFd, StatusPage, OwnedFd)> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    let (status, status_fd) = StatusPage::create_with_region()?;
    Ok((ours, theirs, status, status_fd))
}

/// A worker's ends, made before asking a fork server for it.
struct Ends {
    ours: OwnedFd,
    theirs: OwnedFd,
    status: StatusPage,
    status_fd: OwnedFd,
    /// The read ends of its stdout and stderr, when they are captured.
    read: Option<(OwnedFd, OwnedFd)>,
    /// What its stdout and stderr are: the pipes' write ends, or this process's own
    /// (duplicated), or `/dev/null` where one of those is closed.
    give: (OwnedFd, OwnedFd),
}

impl Ends {
    fn new(capture_output: bool) -> io::Result<Ends> {
        let (ours, theirs, status, status_fd) = link_and_page()?;
        let (read, give) = if capture_output {
            let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            (Some((out_r, err_r)), (out_w, err_w))
        } else {
            (None, (for_copy(1)?, for_copy(2)?))
        };
        Ok(Ends {
            ours,
            theirs,
            status,
            status_fd,
            read,
            give,
        })
    }

    /// What the server passes to the copy.
    fn for_server(&self) -> WorkerFds<'_> {
        WorkerFds {
            sock: self.theirs.as_fd(),
            status: self.status_fd.as_fd(),
            stdout: self.give.0.as_fd(),
            stderr: self.give.1.as_fd(),
        }
    }

    /// The caller's ends of worker `pid`; the worker's ends close here.
    fn into_spawned(self, pid: u32) -> Spawned {
        let (stdout, stderr) = match self.read {
            Some((out_r, err_r)) => (Some(out_r), Some(err_r)),
            None => (None, None),
        };
        Spawned {
            child: WorkerChild {
                pid,
                executed: None,
                reaped: false,
            },
            sock: UnixStream::from(self.ours),
            status: self.status,
            stdout,
            stderr,
        }
    }
}

/// This process's stdout or stderr (`fd`), duplicated for a copy, if it is open and survives
/// an exec (what an executed worker would inherit); otherwise `/dev/null`. Closed, its number
/// may since have gone to one of this process's own descriptors (all close-on-exec), which a
/// copy must not get.
fn for_copy(fd: RawFd) -> io::Result<OwnedFd> {
    use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
    let std = fork_server::std_fd(fd);
    let inheritable = fcntl(std, FcntlArg::F_GETFD)
        .is_ok_and(|flags| !FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
    if inheritable && let Ok(copy) = fcntl(std, FcntlArg::F_DUPFD_CLOEXEC(3)) {
        // SAFETY: fcntl just made `copy` in this process for us alone.
        return Ok(unsafe { OwnedFd::from_raw_fd(copy) });
    }
    Ok(nix::fcntl::open(
        "/dev/null",
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?)
}

/// Asks the fork server for `n` workers; executes those it could not give.
fn from_server(
    server: &fork_server::ServerLink,
    opts: &SpawnOptions<'_>,
    n: usize,
) -> Vec<io::Result<Spawned>> {
    // A few at a time: each holds ~7 descriptors until its copy is made.
    let mut all = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let now = left.min(REQUESTS_AT_ONCE);
        all.extend(from_server_at_once(server, opts, now));
        left -= now;
    }
    all
}

/// Workers asked of a fork server together.
const REQUESTS_AT_ONCE: usize = 16;

/// Asks the fork server for `n` workers at once (see [`from_server`]).
fn from_server_at_once(
    server: &fork_server::ServerLink,
    opts: &SpawnOptions<'_>,
    n: usize,
) -> Vec<io::Result<Spawned>> {
    let ends: Vec<io::Result<Ends>> = (0..n).map(|_| Ends::new(opts.capture_output)).collect();
    let fds: Vec<WorkerFds<'_>> = ends.iter().flatten().map(Ends::for_server).collect();
    let mut answers = server.fork_workers(&fds, opts.memory_limit).into_iter();
    drop(fds);
    ends.into_iter()
        .map(|ends| {
            let ends = ends?;
            match answers.next() {
                Some(Ok(pid)) => Ok(ends.into_spawned(pid)),
                Some(Err(ForkError::Refused(e))) => Err(e),
                // Fresh ends for the executed worker: a copy the server may still have made
                // with these sees them close, and exits.
                Some(Err(ForkError::Unusable)) | None => spawn_executed(opts),
            }
        })
        .collect()
}

/// Starts a worker by executing its program.
fn spawn_executed(opts: &SpawnOptions<'_>) -> io::Result<Spawned> {
    // Every fd is close-on-exec. Where nothing must happen between fork and exec, the worker
    // is started with posix_spawn (no copy of this process's page tables: a few times faster
    // than fork, and independent of the caller's size), gets its socket as stdin (it moves
    // it elsewhere and reopens stdin on /dev/null at once) and receives its status page over
    // the socket. Otherwise (a memory limit, descriptors for channels) the fds it needs are
    // made inheritable in the child between fork and exec, so no other process ever holds
    // them.
    let (ours, theirs, status, status_fd) = link_and_page()?;
    let mut cmd = if opts.exec_self {
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0(opts.program);
        cmd
    } else {
        Command::new(opts.program)
    };
    cmd.process_group(0);
    if opts.capture_output {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    // Only this binary is known to take its socket from stdin: another program (an older
    // build, a wrapper script) gets the inherited descriptors it has always had.
    let spawned_plainly = opts.exec_self && opts.memory_limit.is_none() && opts.inherit.is_empty();
    if spawned_plainly {
        cmd.env(ENV_FD, ENV_FD_STDIN).stdin(Stdio::from(theirs));
        let mut child = cmd.spawn()?;
        if let Err(e) = send_fd(&ours, status_fd.as_fd()) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        return Ok(executed(child, ours, status));
    }
    let inherit = [theirs.as_raw_fd(), status_fd.as_raw_fd()];
    cmd.env(ENV_FD, format!("{}:{}", inherit[0], inherit[1]))
        .stdin(Stdio::null());
    let memory_limit = opts.memory_limit;
    let extra: Vec<RawFd> = opts.inherit.to_vec();
    // SAFETY: the closure runs in the child between fork and exec and calls only fcntl and
    // setrlimit, which are async-signal-safe; it touches no memory shared with other threads.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in inherit.iter().chain(&extra) {
                clear_cloexec(fd)?;
            }
            if let Some(bytes) = memory_limit {
                use nix::sys::resource::{Resource, setrlimit};
                setrlimit(Resource::RLIMIT_AS, bytes, bytes)?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(theirs);
    drop(status_fd);
    Ok(executed(child, ours, status))
}

/// The ends of an executed worker.
fn executed(mut child: Child, ours: OwnedFd, status: StatusPage) -> Spawned {
    let stdout = child.stdout.take().map(OwnedFd::from);
    let stderr = child.stderr.take().map(OwnedFd::from);
    Spawned {
        child: WorkerChild::executed(child),
        sock: UnixStream::from(ours),
        status,
        stdout,
        stderr,
    }
}

/// In a worker: the socket and the status page the caller gave it, as [`ENV_FD`] says;
/// `None` in a process that was not started as a worker; an `InvalidInput` error when the
/// variable is set but names no descriptors. The variable is removed, so that
/// programs the job starts do not think they are workers.
///
/// Call it only before the program starts threads (before `main`, or as its first line):
/// it changes the environment.
pub(crate) fn take_worker_ends() -> Option<io::Result<(UnixStream, OwnedFd)>> {
    let value = std::env::var_os(ENV_FD)?;
    // SAFETY: the variable is set only on worker processes, where this runs before `main`
    // (from a constructor) or as main's first statement, before the program starts threads.
    unsafe { std::env::remove_var(ENV_FD) };
    if let Err(e) = open_stdout_and_stderr() {
        return Some(Err(e));
    }
    if value == ENV_FD_STDIN {
        return Some(socket_from_stdin());
    }
    let fds: Option<(RawFd, RawFd)> = value
        .to_str()
        .and_then(|v| v.split_once(':'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    match fds {
        Some((sock, status)) if sock > 2 && status > 2 && sock != status => {
            // SAFETY: the caller passed these fds to us for our exclusive use; nothing else
            // in this process knows them.
            let ends = unsafe {
                (
                    UnixStream::from(OwnedFd::from_raw_fd(sock)),
                    OwnedFd::from_raw_fd(status),
                )
            };
            Some(Ok(ends))
        }
        _ => Some(Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{ENV_FD}={value:?} does not name inherited descriptors"),
        ))),
    }
}

/// Opens `/dev/null` as stdout or stderr where the caller had closed its own: otherwise the
/// worker's next descriptor (its status page) would take the number, and the job's prints
/// would land in it. (Rust does this for a program's `main`; a worker starts before it.)
fn open_stdout_and_stderr() -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
    for fd in [1, 2] {
        if fcntl(std_fd(fd), FcntlArg::F_GETFD).is_err() {
            // The lowest free number: `fd` itself (0 is open: the socket, or /dev/null).
            let null = open("/dev/null", OFlag::O_WRONLY, nix::sys::stat::Mode::empty())?;
            if null.as_raw_fd() == fd {
                // Stays open for the worker's life, as its stdout or stderr.
                let _ = std::os::fd::IntoRawFd::into_raw_fd(null);
            }
        }
    }
    Ok(())
}

/// Takes the socket the caller gave as stdin (moving it to a close-on-exec descriptor and
/// reopening stdin on /dev/null, so the job never reads protocol bytes), then the status page
/// the caller sent over it.
fn socket_from_stdin() -> io::Result<(UnixStream, OwnedFd)> {
    let sock = socket_off_stdin()?;
    let status = receive_fd(sock.as_fd())?;
    Ok((UnixStream::from(sock), status))
}

/// Moves the socket the caller gave as stdin to a close-on-exec descriptor, and reopens stdin
/// on /dev/null.
pub(crate) fn socket_off_stdin() -> io::Result<OwnedFd> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
    use nix::sys::stat::Mode;
    let stdin = std::io::stdin();
    let sock = fcntl(stdin.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: fcntl just made `sock` in this process for us alone.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    let null = open(
        "/dev/null",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // Atomically replaces fd 0 (the new one is not close-on-exec: the job's own children read
    // /dev/null too).
    nix::unistd::dup2_stdin(&null)?;
    Ok(sock)
}

/// Clears FD_CLOEXEC on `fd`.
fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    // SAFETY: `fd` is open in the child: the parent keeps it open until spawn returns.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty()))?;
    Ok(())
}
