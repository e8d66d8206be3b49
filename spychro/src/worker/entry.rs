//! How a process becomes a worker: before `main` (a constructor), or as main's first line,
//! it looks for the variable the caller set, takes its socket and status page, serves, and
//! exits — the program's `main` never runs in a worker.

use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use super::current;
use crate::sys::spawn::{ENV_FD, ENV_FD_STDIN};
use crate::sys::status::StatusPage;

/// Exit code of a worker that hit a protocol error, or whose socket failed.
pub(crate) const EXIT_PROTOCOL: i32 = 102;

// SAFETY: runs before main. It reads one environment variable and returns at once unless this
// process was started as a worker; a worker never returns to the program's `main`.
#[ctor::ctor(unsafe)]
fn enter_before_main() {
    enter_if_worker();
}

/// Becomes a worker if this process was started as one, and never returns in that case.
pub(crate) fn enter_if_worker() {
    let Some(value) = std::env::var_os(ENV_FD) else {
        return;
    };
    // SAFETY: the variable is set only on worker processes, where this runs before `main`
    // (from a constructor) or as main's first statement, before the program starts threads.
    // Removing it keeps programs that the job itself starts from thinking they are workers.
    unsafe { std::env::remove_var(ENV_FD) };
    let (sock, status) = if value == ENV_FD_STDIN {
        current::set_worker();
        socket_from_stdin()
            .unwrap_or_else(|e| cannot_start(&format!("take its socket and status page: {e}")))
    } else {
        let fds: Option<(RawFd, RawFd)> = value
            .to_str()
            .and_then(|v| v.split_once(':'))
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        let (sock, status) = match fds {
            Some((a, b)) if a > 2 && b > 2 && a != b => (a, b),
            _ => {
                eprintln!("spychro: ignoring {ENV_FD}={value:?}: it does not name inherited fds");
                return;
            }
        };
        current::set_worker();
        // SAFETY: the caller passed these fds to us for our exclusive use; nothing else in
        // this process knows them.
        unsafe {
            (
                UnixStream::from(OwnedFd::from_raw_fd(sock)),
                OwnedFd::from_raw_fd(status),
            )
        }
    };
    let status = StatusPage::map(&status)
        .unwrap_or_else(|e| cannot_start(&format!("map its status page: {e}")));
    let code = match super::serve::serve(sock, status) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("spychro worker {}: {e}", std::process::id());
            EXIT_PROTOCOL
        }
    };
    super::link::end_descendants();
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Says what a worker could not do to start, and exits.
fn cannot_start(what: &str) -> ! {
    eprintln!("spychro worker {}: cannot {what}", std::process::id());
    std::process::exit(EXIT_PROTOCOL);
}

/// Takes the socket the caller gave as stdin (moving it to a close-on-exec descriptor and
/// reopening stdin on /dev/null, so the job never reads protocol bytes), then the status page
/// the caller sent over it.
fn socket_from_stdin() -> std::io::Result<(UnixStream, OwnedFd)> {
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
    let status = crate::sys::fdpass::receive_fd(sock.as_fd())?;
    Ok((UnixStream::from(sock), status))
}
