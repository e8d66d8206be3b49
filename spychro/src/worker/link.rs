//! The worker's end of its socket, shared by every thread of the worker: frames written whole
//! under a lock, the status page, and the watchdog that ends the worker the moment the
//! caller's end closes (even if the caller was killed with SIGKILL).
//!
//! A write that would block (the caller is busy in a handler and not reading) is recorded on
//! the status page, so that the time the item spends waiting for its caller does not count
//! against its timeout.
//!
//! Results may be held back for a moment (`held`): whatever is written goes after them, and
//! the watchdog thread sends them when their timer fires.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, OnceLock};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv, send};

use super::held::{HOLD, HOLD_BYTES, Held, HoldTimer};
use crate::sys::status::{StatusPage, now_ms};

/// Exit code of a worker whose caller went away.
const EXIT_ORPHANED: i32 = 101;

/// What every thread of a worker shares.
pub(crate) struct Link {
    sock: UnixStream,
    /// Taken to write; holds the results held back.
    write: Mutex<Held>,
    /// Fires when held results are due (none: results are never held).
    timer: Option<HoldTimer>,
    pub(crate) status: StatusPage,
}

/// A write that failed, and the items of the results held before it.
pub(crate) struct SendFailure {
    pub(crate) error: io::Error,
    /// The first item the held results answered, if any were held.
    pub(crate) held_first: Option<u64>,
    /// The item after the last one they answered.
    pub(crate) held_next: u64,
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
        write: Mutex::new(Held::default()),
        timer: HoldTimer::new(),
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

    /// Whether bytes from the caller wait in the socket, not read yet.
    pub(crate) fn has_input(&self) -> bool {
        let mut byte = [0u8; 1];
        let peek = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        matches!(recv(self.sock.as_raw_fd(), &mut byte, peek), Ok(n) if n > 0)
    }

    /// Writes `frame` (whole frames) to the caller, after any results held back.
    pub(crate) fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.send_results(frame).map_err(|f| f.error)
    }

    /// [`send`](Link::send), saying on failure which held results were not sent either.
    pub(crate) fn send_results(&self, frame: &[u8]) -> Result<(), SendFailure> {
        let mut held = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let failed = |held: &Held, error| SendFailure {
            error,
            held_first: held.first,
            held_next: held.next,
        };
        if !held.out.is_empty() {
            if let Err(e) = self.write_all(&held.out) {
                return Err(failed(&held, e));
            }
            held.clear();
        }
        self.write_all(frame).map_err(|e| failed(&held, e))
    }

    /// Holds `out` (whole results frames answering items `first..next`) to be sent with what
    /// is written next, or by the timer within [`HOLD`]; takes it and returns true, or
    /// returns false (and leaves it) when it is to be sent now: too much is held already, or
    /// there is no timer.
    pub(crate) fn hold(&self, out: &mut Vec<u8>, first: Option<u64>, next: u64) -> bool {
        let Some(timer) = &self.timer else {
            return false;
        };
        let mut held = self.write.lock().unwrap_or_else(|e| e.into_inner());
        if held.out.len() + out.len() > HOLD_BYTES {
            return false;
        }
        if held.out.is_empty() && !timer.arm(HOLD) {
            return false;
        }
        held.take(out, first, next, now_ms());
        true
    }

    /// The timer fired: sends the held results if they are due (without blocking: what the
    /// socket does not take now stays held, first in line), or sets the timer again for when
    /// they will be.
    fn send_held(&self) {
        let Some(timer) = &self.timer else {
            return;
        };
        timer.clear();
        let mut held = self.write.lock().unwrap_or_else(|e| e.into_inner());
        if held.out.is_empty() {
            return;
        }
        let hold_ms = HOLD.as_millis() as u64;
        let age = now_ms().saturating_sub(held.since_ms);
        if age < hold_ms {
            timer.arm(std::time::Duration::from_millis(hold_ms - age));
            return;
        }
        let (sent, result) = self.send_some(&held.out);
        match result {
            Ok(()) => held.clear(),
            Err(Errno::EAGAIN) => {
                // The caller is not reading: try again later; what was sent is gone.
                held.out.drain(..sent);
                timer.arm(HOLD);
            }
            // Broken: kept, so that the worker's next write fails and names these items.
            Err(_) => {
                held.out.drain(..sent);
            }
        }
    }

    /// Sends as much of `bytes` as the socket takes without waiting: how many bytes went,
    /// and `Ok` if all did, or the error that stopped it (`EAGAIN`: the socket is full).
    fn send_some(&self, bytes: &[u8]) -> (usize, Result<(), Errno>) {
        let mut sent = 0;
        while sent < bytes.len() {
            match send(
                self.sock.as_raw_fd(),
                &bytes[sent..],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => sent += n,
                Err(Errno::EINTR) => {}
                Err(e) => return (sent, Err(e)),
            }
        }
        (sent, Ok(()))
    }

    /// Writes all of `bytes`, waiting while the socket is full.
    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        let mut blocked = false;
        let result = loop {
            let (sent, result) = self.send_some(rest);
            rest = &rest[sent..];
            match result {
                Ok(()) => break Ok(()),
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
            // `revents()` gives `None` for it.)
            let rdhup = PollFlags::from_bits_retain(libc::POLLRDHUP);
            let caller = nix::unistd::getppid();
            loop {
                let mut fds = vec![PollFd::new(borrowed, rdhup)];
                if let Some(timer) = &link.timer {
                    fds.push(PollFd::new(timer.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(0) | Err(Errno::EINTR) => continue,
                    Ok(_) => {}
                    Err(_) => orphaned(),
                }
                match fds[0].revents() {
                    Some(r) if r.is_empty() => {}
                    // The descriptor itself is gone: a job closed it. The caller may well be
                    // there; the worker's own next read or write fails and says so. Should
                    // the job run on regardless, the caller is watched as a process instead.
                    Some(r) if r.contains(PollFlags::POLLNVAL) => watch_parent(caller),
                    _ => orphaned(),
                }
                if fds
                    .get(1)
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
                {
                    link.send_held();
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("spychro worker: no watchdog thread ({e}); the worker may outlive its caller");
    }
}

/// Ends the process once it is no longer `caller`'s child (the caller died and it was
/// re-parented), looking every 100 ms: for a worker whose socket a job closed.
fn watch_parent(caller: nix::unistd::Pid) -> ! {
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if nix::unistd::getppid() != caller {
            orphaned();
        }
    }
}

/// Ends the process at once (and what it started), without running destructors or flushing:
/// the caller is gone and nothing this process still holds can reach it.
fn orphaned() -> ! {
    end_descendants();
    crate::sys::tree::exit_now(EXIT_ORPHANED)
}
