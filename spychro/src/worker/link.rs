//! The worker's end of its socket, shared by every thread of the worker: frames written whole
//! under a lock, the status page, and the watchdog that ends the worker the moment the
//! caller's end closes (even if the caller was killed with SIGKILL).
//!
//! A write that would block (the caller is busy in a handler and not reading) is recorded on
//! the status page, so that the time the item spends waiting for its caller does not count
//! against its timeout.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, OnceLock};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, send};

use crate::sys::status::{StatusPage, now_ms};

/// Exit code of a worker whose caller went away.
const EXIT_ORPHANED: i32 = 101;

/// What every thread of a worker shares.
pub(crate) struct Link {
    sock: UnixStream,
    write: Mutex<()>,
    pub(crate) status: StatusPage,
}

static LINK: OnceLock<Link> = OnceLock::new();

/// Whether the worker ends its descendants when it ends (the caller may say otherwise).
static KILL_DESCENDANTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// The link of this worker, once it serves.
pub(crate) fn get() -> Option<&'static Link> {
    LINK.get()
}

/// Makes `sock` and `status` this worker's link.
pub(crate) fn init(sock: UnixStream, status: StatusPage) -> &'static Link {
    LINK.get_or_init(|| Link {
        sock,
        write: Mutex::new(()),
        status,
    })
}

/// Whether the worker ends its descendants when it ends.
pub(crate) fn set_kill_descendants(kill: bool) {
    KILL_DESCENDANTS.store(kill, std::sync::atomic::Ordering::Relaxed);
}

/// Ends the processes this worker's jobs started (unless the caller said to leave them).
pub(crate) fn end_descendants() {
    if KILL_DESCENDANTS.load(std::sync::atomic::Ordering::Relaxed)
        && crate::sys::tree::has_children()
    {
        crate::sys::tree::kill_descendants(std::process::id(), true);
    }
}

impl Link {
    /// The socket, to read frames from.
    pub(crate) fn socket(&self) -> &UnixStream {
        &self.sock
    }

    /// Writes `frame` (whole frames) to the caller.
    pub(crate) fn send(&self, frame: &[u8]) -> io::Result<()> {
        let _guard = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut rest = frame;
        let mut blocked = false;
        let result = loop {
            if rest.is_empty() {
                break Ok(());
            }
            match send(
                self.sock.as_raw_fd(),
                rest,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    if !blocked {
                        blocked = true;
                        self.status.blocked(now_ms());
                    }
                    let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLOUT)];
                    match poll(&mut fds, PollTimeout::NONE) {
                        Ok(_) | Err(Errno::EINTR) => {}
                        Err(e) => break Err(e.into()),
                    }
                }
                Err(e) => break Err(e.into()),
            }
        };
        if blocked {
            self.status.unblocked(now_ms());
        }
        result
    }
}

/// Ends this process as soon as the caller's end of the socket closes, even while a job runs:
/// a caller that dies (even by SIGKILL) leaves no workers behind.
pub(crate) fn start_watchdog(link: &'static Link) {
    let spawned = std::thread::Builder::new()
        .name("spychro-watchdog".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let borrowed = link.sock.as_fd();
            // Only hang-up is asked for; POLLHUP and POLLERR come unasked. So any event at
            // all means the caller's end is gone. (nix does not know POLLRDHUP, so its
            // `revents()` cannot be trusted to report it: count events instead.)
            let rdhup = PollFlags::from_bits_retain(libc::POLLRDHUP);
            loop {
                let mut fds = [PollFd::new(borrowed, rdhup)];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(0) | Err(Errno::EINTR) => {}
                    // The descriptor itself is gone: a job closed it. The caller may well be
                    // there; the worker's own next read or write fails and says so.
                    Ok(_)
                        if fds[0]
                            .revents()
                            .is_some_and(|r| r.contains(PollFlags::POLLNVAL)) =>
                    {
                        return;
                    }
                    Ok(_) | Err(_) => orphaned(),
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("spychro worker: no watchdog thread ({e}); the worker may outlive its caller");
    }
}

/// Ends the process at once (and what it started), without running destructors or flushing:
/// the caller is gone and nothing this process still holds can reach it.
fn orphaned() -> ! {
    end_descendants();
    crate::sys::tree::exit_now(EXIT_ORPHANED)
}
