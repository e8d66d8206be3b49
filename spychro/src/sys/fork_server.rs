//! The caller's side of a fork server: starting one, the process-wide one that spawns use
//! while it is installed, and asking it for a worker.
//!
//! A fork server is this program started once more (like a worker, through `/proc/self/exe`)
//! that, instead of serving jobs, waits before `main` for requests and answers each with a
//! copy of itself: `clone(CLONE_PARENT)`, so that the copy is the *caller's* child, exactly as
//! an executed worker is (the caller waits for it, kills it, reads how it ended; the watchdog's
//! parent is the caller). The copy then becomes a worker with the descriptors the request
//! carried. It skips `execve`, the loader's relocations and the page faults of a fresh image:
//! most of a worker's start-up (see `zygote.rs` for the server's side).
//!
//! The protocol, over a `SOCK_SEQPACKET` pair (each message whole):
//! - hello, server → caller, once: [`HELLO_MAGIC`] (u32), [`VERSION`] (u16), its pid (u32);
//! - request, caller → server: [`REQUEST_MAGIC`] (u32), [`VERSION`] (u16), 0 (u16), the
//!   memory limit (u64, 0 for none), then the caller's environment as `KEY=VALUE\0` entries;
//!   with five descriptors: the worker's socket, its status page, the caller's working
//!   directory (`O_PATH`), and what the worker's stdout and stderr are to be;
//! - reply, server → caller: an i64, the new process's pid, or minus the errno of a failed
//!   clone.
//!
//! What a copy takes from the caller at each request: environment, working directory,
//! stdout/stderr, memory limit. What it has from when the server started: user and group,
//! resource limits, umask, ignored signals, scheduling priority, namespaces and cgroup, the
//! binary itself.
//!
//! Hand-written rather than a crate's: no crate forks with `CLONE_PARENT` and passes
//! descriptors to the copy.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, sendmsg, setsockopt, socketpair,
    sockopt,
};
use nix::sys::time::TimeVal;

/// Set (to `stdin`) on the fork server's command: its socket is its stdin.
pub(crate) const ENV_SERVER: &str = "SPYCHRO_FORK_SERVER";
/// Starts the server's hello.
pub(crate) const HELLO_MAGIC: u32 = 0x5346_5348; // "HSFS"
/// Starts a request.
pub(crate) const REQUEST_MAGIC: u32 = 0x5346_5352; // "RSFS"
/// The version of this protocol; a server of another version is not used.
pub(crate) const VERSION: u16 = 1;
/// Bytes of a request before the environment.
pub(crate) const REQUEST_HEAD: usize = 16;
/// The most a request may hold; above it (a huge environment) workers are executed instead.
pub(crate) const REQUEST_MAX: usize = 160 * 1024;
/// Descriptors in a request.
pub(crate) const REQUEST_FDS: usize = 5;
/// How long the caller waits for a reply before it gives up on the server.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The caller's link to a running fork server.
pub(crate) struct ServerLink {
    /// Held for a whole request and its reply.
    sock: Mutex<Option<OwnedFd>>,
    pid: u32,
    /// The process that started it: a fork of that process (which has a copy of this link)
    /// must not use it, as the copies it would get are not its children.
    owner: u32,
    /// It failed a request (timed out, closed): it is not asked again.
    broken: AtomicBool,
}

/// The server spawns use while one is installed.
static INSTALLED: Mutex<Option<Arc<ServerLink>>> = Mutex::new(None);

fn installed_slot() -> MutexGuard<'static, Option<Arc<ServerLink>>> {
    INSTALLED.lock().unwrap_or_else(|p| p.into_inner())
}

/// The installed server, if there is one that still works and this process started it.
pub(crate) fn installed() -> Option<Arc<ServerLink>> {
    installed_slot()
        .as_ref()
        .filter(|s| !s.broken.load(Ordering::Relaxed) && s.is_ours())
        .cloned()
}

/// Installs `link` unless a server is installed already (then returns its pid).
pub(crate) fn install(link: &Arc<ServerLink>) -> Result<(), u32> {
    let mut slot = installed_slot();
    if let Some(other) = slot.as_ref().filter(|s| s.is_ours()) {
        return Err(other.pid);
    }
    *slot = Some(Arc::clone(link));
    Ok(())
}

/// Uninstalls `link` if it is the installed server.
pub(crate) fn uninstall(link: &Arc<ServerLink>) {
    let mut slot = installed_slot();
    if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, link)) {
        *slot = None;
    }
}

/// How a server failed to start.
pub(crate) enum StartError {
    /// The process could not be created.
    Spawn(io::Error),
    /// It ended, or its socket failed, before its hello.
    NoHello(Child, io::Error),
}

/// Starts a fork server (this program, again) and waits up to `timeout` for its hello.
pub(crate) fn start(program: &Path, timeout: Duration) -> Result<(Child, ServerLink), StartError> {
    let (ours, theirs): (OwnedFd, OwnedFd) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| StartError::Spawn(e.into()))?;
    let mut cmd = Command::new("/proc/self/exe");
    // The loader binds every symbol of the server at start-up, once, rather than each copy
    // binding those it calls (copies take the caller's environment, without the variable).
    cmd.arg0(program)
        .process_group(0)
        .env(ENV_SERVER, "stdin")
        .env("LD_BIND_NOW", "1")
        .stdin(Stdio::from(theirs));
    let child = cmd.spawn().map_err(StartError::Spawn)?;
    match hello(&ours, timeout) {
        Ok(pid) => Ok((
            child,
            ServerLink {
                sock: Mutex::new(Some(ours)),
                pid,
                owner: std::process::id(),
                broken: AtomicBool::new(false),
            },
        )),
        Err(e) => Err(StartError::NoHello(child, e)),
    }
}

/// Reads the server's hello; returns the pid it gives.
fn hello(sock: &OwnedFd, timeout: Duration) -> io::Result<u32> {
    set_timeouts(sock, timeout)?;
    let mut buf = [0u8; 16];
    let n = recv(sock.as_fd(), &mut buf)?;
    let magic = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let version = u16::from_le_bytes([buf[4], buf[5]]);
    if n != 10 || magic != HELLO_MAGIC || version != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the fork server's hello was not one of this version ({n} bytes)"),
        ));
    }
    let pid = u32::from_le_bytes([buf[6], buf[7], buf[8], buf[9]]);
    set_timeouts(sock, REPLY_TIMEOUT)?;
    Ok(pid)
}

fn set_timeouts(sock: &OwnedFd, timeout: Duration) -> io::Result<()> {
    let tv = TimeVal::new(
        timeout.as_secs() as libc::time_t,
        timeout.subsec_micros() as libc::suseconds_t,
    );
    setsockopt(sock, sockopt::ReceiveTimeout, &tv)?;
    setsockopt(sock, sockopt::SendTimeout, &tv)?;
    Ok(())
}

/// Receives one message into `buf`, retrying on EINTR; 0 bytes is the end of the stream.
fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::sys::socket::recv(sock.as_raw_fd(), buf, MsgFlags::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            other => return Ok(other?),
        }
    }
}

/// The descriptors a worker gets from a fork server.
pub(crate) struct WorkerFds<'a> {
    pub(crate) sock: BorrowedFd<'a>,
    pub(crate) status: BorrowedFd<'a>,
    pub(crate) stdout: BorrowedFd<'a>,
    pub(crate) stderr: BorrowedFd<'a>,
}

/// Why a request got no worker.
pub(crate) enum ForkError {
    /// The server could not be used (it is marked broken, or the request could not be made):
    /// start the worker the usual way.
    Unusable,
    /// The server tried and the kernel refused (the errno of its clone): the usual way would
    /// fail alike.
    Refused(io::Error),
}

impl ServerLink {
    /// The server's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether this process started the server (not a fork of the process that did).
    pub(crate) fn is_ours(&self) -> bool {
        self.owner == std::process::id()
    }

    /// Asks the server for a worker for each of `fds`, all requests first and then their
    /// replies; returns each new process's pid (or why there is none), in order. Each is this
    /// process's child, in a process group of its own.
    pub(crate) fn fork_workers(
        &self,
        fds: &[WorkerFds<'_>],
        memory_limit: Option<u64>,
    ) -> Vec<Result<u32, ForkError>> {
        let unusable = || (0..fds.len()).map(|_| Err(ForkError::Unusable)).collect();
        let Some((request, cwd)) = request(memory_limit) else {
            return unusable();
        };
        let guard = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sock) = guard.as_ref() else {
            return unusable();
        };
        // Requests sent; a failed send leaves the rest unsent.
        let mut sent = 0;
        for f in fds {
            let raw: [RawFd; REQUEST_FDS] = [
                f.sock.as_raw_fd(),
                f.status.as_raw_fd(),
                cwd.as_raw_fd(),
                f.stdout.as_raw_fd(),
                f.stderr.as_raw_fd(),
            ];
            let cmsg = [ControlMessage::ScmRights(&raw)];
            match sendmsg::<()>(
                sock.as_raw_fd(),
                &[IoSlice::new(&request)],
                &cmsg,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(n) if n == request.len() => sent += 1,
                _ => break,
            }
        }
        let mut out: Vec<Result<u32, ForkError>> = Vec::with_capacity(fds.len());
        for _ in 0..sent {
            let mut reply = [0u8; 8];
            let answer = match recv(sock.as_fd(), &mut reply) {
                Ok(8) => i64::from_le_bytes(reply),
                // No reply, or not one of ours.
                _ => 0,
            };
            out.push(match answer {
                pid if pid > 0 && pid <= i64::from(i32::MAX) && is_our_child(pid as u32) => {
                    let pid = pid as u32;
                    // The copy puts itself in a group of its own as its first step; so does its
                    // parent here, so that the group exists before this returns (a signal to
                    // the group must reach it). It fails only once the copy did it.
                    // SAFETY: setpgid takes two pids and touches no memory of ours.
                    unsafe { libc::setpgid(pid as libc::pid_t, pid as libc::pid_t) };
                    Ok(pid)
                }
                errno if (-4095..0).contains(&errno) => Err(ForkError::Refused(
                    io::Error::from_raw_os_error(-errno as i32),
                )),
                _ => break,
            });
        }
        if out.len() < fds.len() {
            // It was killed, is stopped, or answered nonsense: it is not asked again.
            self.broken.store(true, Ordering::Relaxed);
            out.extend((out.len()..fds.len()).map(|_| Err(ForkError::Unusable)));
        }
        out
    }

    /// Ends the link: the server sees the end of its socket and exits. Waits for a request
    /// under way.
    pub(crate) fn close(&self) {
        self.broken.store(true, Ordering::Relaxed);
        let mut guard = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sock) = guard.take()
            && self.is_ours()
        {
            // Shut down, not only closed: a copy of the descriptor elsewhere cannot keep the
            // server waiting. (A fork of the process that started it only closes its copy.)
            let _ = nix::sys::socket::shutdown(sock.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        }
    }
}

/// Whether `pid` is this process's child (not reaped), as a reply says it is.
fn is_our_child(pid: u32) -> bool {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(
        waitid(Id::Pid(nix::unistd::Pid::from_raw(pid as i32)), flags),
        Err(nix::errno::Errno::ECHILD)
    )
}

/// A request's bytes (without the descriptors) and the working directory to send with it;
/// `None` where the environment is too large for one request or the directory cannot be
/// opened.
fn request(memory_limit: Option<u64>) -> Option<(Vec<u8>, OwnedFd)> {
    use std::os::unix::ffi::OsStrExt;
    let mut request = Vec::with_capacity(4096);
    request.extend_from_slice(&REQUEST_MAGIC.to_le_bytes());
    request.extend_from_slice(&VERSION.to_le_bytes());
    request.extend_from_slice(&0u16.to_le_bytes());
    request.extend_from_slice(&memory_limit.unwrap_or(0).to_le_bytes());
    for (key, value) in std::env::vars_os() {
        request.extend_from_slice(key.as_bytes());
        request.push(b'=');
        request.extend_from_slice(value.as_bytes());
        request.push(0);
    }
    if request.len() > REQUEST_MAX {
        return None;
    }
    use nix::fcntl::OFlag;
    let cwd = nix::fcntl::open(
        ".",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    Some((request, cwd))
}

/// A descriptor of this process's, borrowed for a request (stdout or stderr).
pub(crate) fn std_fd(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: 1 and 2 are the process's stdout and stderr; a request only passes them to the
    // kernel, which fails cleanly (EBADF) where one is closed.
    unsafe { BorrowedFd::borrow_raw(fd) }
}
