//! SIGINT and SIGTERM while a pool runs: the signal wakes the run's poll loop through a pipe,
//! the run tears its workers down and returns `Interrupted`, and the handlers that were there
//! before are put back when the last run ends.
//!
//! A handler the program installed itself (ctrlc and the like) still runs: ours calls it after
//! waking the runs. A signal the program ignores stays ignored.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

const SIGNALS: [Signal; 2] = [Signal::SIGINT, Signal::SIGTERM];
/// Pipes of the runs in progress (write ends), woken by the handler.
const SLOTS: usize = 64;
static WAKE: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];
/// The previous handlers to chain to, as addresses (0: none), and whether they take siginfo.
static CHAIN: [AtomicUsize; 2] = [const { AtomicUsize::new(0) }; 2];
static CHAIN_INFO: [AtomicUsize; 2] = [const { AtomicUsize::new(0) }; 2];

struct Installed {
    runs: usize,
    previous: Vec<(Signal, SigAction)>,
}

static INSTALLED: Mutex<Installed> = Mutex::new(Installed {
    runs: 0,
    previous: Vec::new(),
});

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let saved = nix::errno::Errno::last_raw();
    let byte = sig as u8;
    for slot in &WAKE {
        let fd = slot.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: write(2) is async-signal-safe; the fd is a pipe owned by a live Guard
            // (a stale fd write fails harmlessly with EBADF).
            unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        }
    }
    let which = if sig == libc::SIGINT { 0 } else { 1 };
    let f = CHAIN[which].load(Ordering::Relaxed);
    if f != 0 {
        if CHAIN_INFO[which].load(Ordering::Relaxed) != 0 {
            // SAFETY: the address came from the program's own SA_SIGINFO handler.
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(f) };
            handler(sig, info, ctx);
        } else {
            // SAFETY: the address came from the program's own plain handler.
            let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(f) };
            handler(sig);
        }
    }
    nix::errno::Errno::set_raw(saved);
}

/// A run's registration: while it lives, SIGINT and SIGTERM make its fd readable.
pub(crate) struct Guard {
    slot: usize,
    read: OwnedFd,
    _write: OwnedFd,
}

impl Guard {
    pub(crate) fn new() -> io::Result<Guard> {
        use nix::fcntl::OFlag;
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        let slot = WAKE
            .iter()
            .position(|s| {
                s.compare_exchange(-1, write.as_raw_fd(), Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            })
            .ok_or_else(|| io::Error::other("more than 64 pools are running at once"))?;
        if installed.runs == 0 {
            let ours = SigAction::new(
                SigHandler::SigAction(on_signal),
                SaFlags::SA_RESTART | SaFlags::SA_SIGINFO,
                SigSet::empty(),
            );
            for (i, sig) in SIGNALS.into_iter().enumerate() {
                // SAFETY: `on_signal` only calls async-signal-safe functions (write, and the
                // program's own handler, which already had to be).
                let old = unsafe { sigaction(sig, &ours) }?;
                match old.handler() {
                    SigHandler::SigIgn => {
                        // The program ignores this signal: keep it that way.
                        // SAFETY: restoring what was there.
                        unsafe { sigaction(sig, &old) }?;
                        continue;
                    }
                    SigHandler::Handler(f) => {
                        CHAIN[i].store(f as usize, Ordering::Relaxed);
                        CHAIN_INFO[i].store(0, Ordering::Relaxed);
                    }
                    SigHandler::SigAction(f) => {
                        CHAIN[i].store(f as usize, Ordering::Relaxed);
                        CHAIN_INFO[i].store(1, Ordering::Relaxed);
                    }
                    _ => CHAIN[i].store(0, Ordering::Relaxed),
                }
                installed.previous.push((sig, old));
            }
        }
        installed.runs += 1;
        Ok(Guard {
            slot,
            read,
            _write: write,
        })
    }

    /// The fd to poll for readability.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The signal that arrived, if one did (and drains the pipe).
    pub(crate) fn fired(&self) -> Option<i32> {
        let mut buf = [0u8; 16];
        let mut last = None;
        while let Ok(n @ 1..) = nix::unistd::read(&self.read, &mut buf) {
            last = Some(buf[n - 1] as i32);
        }
        last
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        WAKE[self.slot].store(-1, Ordering::Release);
        installed.runs -= 1;
        if installed.runs == 0 {
            for (sig, old) in installed.previous.drain(..) {
                // SAFETY: puts back the action that was installed before the first run.
                let _ = unsafe { sigaction(sig, &old) };
            }
            for c in &CHAIN {
                c.store(0, Ordering::Relaxed);
            }
        }
    }
}
