//! Starting a worker process: the caller's own binary (or another), re-executed with one end
//! of a private socketpair inherited and named by an environment variable.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use crate::worker::ENV_FD;

/// A started worker process and the caller's end of its socket.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) sock: UnixStream,
}

/// Starts `program` as a worker (or, with `exec_self`, this process's own binary under the
/// name `program`).
///
/// The worker gets its own process group, so that a terminal's Ctrl-C reaches only the caller,
/// which then tears the pool down itself. Its stdin is closed; stdout and stderr are inherited.
pub(crate) fn spawn_worker(program: &Path, exec_self: bool) -> io::Result<Spawned> {
    // Both ends are close-on-exec; only the worker's end is made inheritable, in the child,
    // between fork and exec, so no other process ever holds either end.
    let (ours, theirs): (OwnedFd, OwnedFd) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    let fd = theirs.as_raw_fd();
    let mut cmd = if exec_self {
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0(program);
        cmd
    } else {
        Command::new(program)
    };
    cmd.env(ENV_FD, fd.to_string())
        .stdin(Stdio::null())
        .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and calls only fcntl, which
    // is async-signal-safe; it touches no memory shared with other threads.
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc_fcntl_clear_cloexec(fd);
            if flags < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(theirs);
    Ok(Spawned {
        child,
        sock: UnixStream::from(ours),
    })
}

/// Clears FD_CLOEXEC on `fd`; returns a negative value on failure, like fcntl.
fn libc_fcntl_clear_cloexec(fd: i32) -> i32 {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    // SAFETY: `fd` is open in the child: it is the worker's end of the socketpair, which the
    // parent keeps open until spawn returns.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    match fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty())) {
        Ok(_) => 0,
        Err(_) => -1,
    }
}
