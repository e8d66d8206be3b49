//! SIGINT and SIGTERM while pools run.
//!
//! The rule (README, "When things go wrong"): while a pool has workers, spychro's handler
//! kills every worker at once (SIGKILL to each worker's process group, from the handler
//! itself, whatever the caller's thread is doing), and wakes every run's poll loop through a
//! pipe. Then:
//!
//! - if a thread is inside a blocking spychro call (`run_*`, a stream's `next`, a pool job's
//!   `wait`), that call returns [`Interrupted`](crate::Error::Interrupted), and the signal is
//!   not otherwise acted on (the program decides what to do with the error);
//! - otherwise the signal's previous disposition applies: a program that never handled
//!   SIGINT ends as it would without spychro (the default action is put back and the signal
//!   raised again), and the next spychro call on an interrupted run returns `Interrupted`.
//!
//! A handler the program installed itself (ctrlc and the like) still runs, in both cases,
//! after the workers are killed. A signal the program ignores stays ignored: no handler is
//! installed for it. The handlers that were there before are put back when the last run ends.
//!
//! Two races are closed by construction: the previous handler is read and stored before ours
//! is installed (so a signal in between cannot skip it or call it with the wrong arguments),
//! and the wake pipes are never closed (a slot's pipe is made once and reused by later runs),
//! so a handler on another thread can never write into a descriptor number that was reused.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// Runs that can be woken at once.
const SLOTS: usize = 64;
/// Pipes (read and write ends) of the slots, made on first use and never closed.
static READ: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];
static WRITE: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];
static ACTIVE: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];

/// Worker processes (group leaders) to kill the moment a signal arrives; 0 is a free place.
const PIDS: usize = 4096;
static WORKERS: [AtomicI32; PIDS] = [const { AtomicI32::new(0) }; PIDS];

/// Threads inside a blocking spychro call (see the module docs).
static INSIDE: AtomicUsize = AtomicUsize::new(0);
/// Signals caught so far, and the last one.
static FIRED: AtomicU64 = AtomicU64::new(0);
static LAST: AtomicI32 = AtomicI32::new(0);

/// The previous handlers, by signal (0: SIGINT, 1: SIGTERM), as addresses (0: none), whether
/// they take siginfo, and whether the previous disposition was the default action.
static CHAIN: [AtomicUsize; 2] = [const { AtomicUsize::new(0) }; 2];
static CHAIN_INFO: [AtomicBool; 2] = [const { AtomicBool::new(false) }; 2];
static WAS_DEFAULT: [AtomicBool; 2] = [const { AtomicBool::new(false) }; 2];

struct Installed {
    runs: usize,
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

// SAFETY: `libc::sigaction` is plain data (a handler address, flags and a mask).
unsafe impl Send for Installed {}

static INSTALLED: Mutex<Installed> = Mutex::new(Installed {
    runs: 0,
    previous: Vec::new(),
});

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // Everything here is async-signal-safe: atomics, kill, write, sigaction, raise.
    let saved = nix::errno::Errno::last_raw();
    LAST.store(sig, Ordering::Relaxed);
    FIRED.fetch_add(1, Ordering::AcqRel);
    for slot in &WORKERS {
        let pid = slot.load(Ordering::Acquire);
        if pid > 0 {
            // SAFETY: kill(2) touches no memory. The pid is a worker the pool has not reaped
            // (it unregisters a worker before waiting for it), so the number is not reused.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }
    let byte = sig as u8;
    for i in 0..SLOTS {
        let fd = WRITE[i].load(Ordering::Acquire);
        if fd >= 0 && ACTIVE[i].load(Ordering::Acquire) {
            // SAFETY: write(2) on a pipe this module made and never closes.
            unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        }
    }
    let which = usize::from(sig != libc::SIGINT);
    let f = CHAIN[which].load(Ordering::Acquire);
    if f != 0 {
        if CHAIN_INFO[which].load(Ordering::Acquire) {
            // SAFETY: the address was stored from the program's own SA_SIGINFO handler before
            // ours was installed.
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(f) };
            handler(sig, info, ctx);
        } else {
            // SAFETY: the address was stored from the program's own plain handler.
            let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(f) };
            handler(sig);
        }
    } else if INSIDE.load(Ordering::Acquire) == 0 && WAS_DEFAULT[which].load(Ordering::Acquire) {
        // Nobody will report it: act as the program would have without spychro.
        // SAFETY: sigaction and raise are async-signal-safe; the zeroed struct is SIG_DFL with
        // no flags and an empty mask. The signal is blocked while this handler runs, so it is
        // delivered (with the default action) as the handler returns.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
            libc::raise(sig);
        }
    }
    nix::errno::Errno::set_raw(saved);
}

/// A run's registration: while it lives, SIGINT and SIGTERM make its fd readable, kill the
/// workers it [watches](Guard::watch), and are reported by [`fired`](Guard::fired).
pub(crate) struct Guard {
    slot: usize,
    /// [`FIRED`] when the run started.
    since: u64,
}

impl Guard {
    pub(crate) fn new() -> io::Result<Guard> {
        let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (0..SLOTS)
            .find(|&i| {
                ACTIVE[i]
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            })
            .ok_or_else(|| io::Error::other("more than 64 pools are running at once"))?;
        if let Err(e) = ready_pipe(slot) {
            ACTIVE[slot].store(false, Ordering::Release);
            return Err(e);
        }
        if installed.runs == 0 {
            install(&mut installed)?;
        }
        installed.runs += 1;
        let guard = Guard {
            slot,
            since: FIRED.load(Ordering::Acquire),
        };
        // Bytes a signal wrote for an earlier run of this slot are not for this one.
        drain(slot);
        Ok(guard)
    }

    /// The fd to poll for readability.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        let fd = READ[self.slot].load(Ordering::Acquire);
        // SAFETY: the slot's pipe was made in `new` and is never closed.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
    }

    /// The signal that arrived since this run started, if one did (and drains the pipe).
    /// Costs one atomic load when none did.
    #[inline]
    pub(crate) fn fired(&self) -> Option<i32> {
        if FIRED.load(Ordering::Acquire) == self.since {
            return None;
        }
        drain(self.slot);
        Some(LAST.load(Ordering::Acquire))
    }

    /// A mark that [`arrived_since`] compares with: whether a signal arrived since this
    /// run started can then be asked without the guard at hand.
    pub(crate) fn mark(&self) -> SignalMark {
        SignalMark(self.since)
    }

    /// Kills `pid`'s process group at once when a signal arrives, until [`unwatch`]ed.
    ///
    /// [`unwatch`]: Guard::unwatch
    pub(crate) fn watch(&self, pid: u32) {
        let Ok(pid) = i32::try_from(pid) else { return };
        // A full table only delays the kill until the run sees the signal. Slots are read
        // before they are swapped: a locked instruction on each of 4096 would cost ~50 µs.
        let _ = WORKERS.iter().find(|s| {
            s.load(Ordering::Relaxed) == 0
                && s.compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
        });
    }

    /// Stops watching `pid`; call it before the process is reaped (after, its number may be
    /// reused).
    pub(crate) fn unwatch(&self, pid: u32) {
        let Ok(pid) = i32::try_from(pid) else { return };
        // Read first, as in `watch`: a pid unwatched already is looked for through the table.
        for s in &WORKERS {
            if s.load(Ordering::Relaxed) == pid
                && s.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
    }
}

/// Where the signals stood when a [`Guard`] started (see [`Guard::mark`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SignalMark(u64);

/// Whether SIGINT/SIGTERM arrived since `mark` (leaving it for [`Guard::fired`] to take).
/// One atomic load.
#[inline(always)]
pub(crate) fn arrived_since(mark: SignalMark) -> bool {
    FIRED.load(Ordering::Acquire) != mark.0
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        ACTIVE[self.slot].store(false, Ordering::Release);
        installed.runs -= 1;
        if installed.runs == 0 {
            for (sig, old) in installed.previous.drain(..) {
                // SAFETY: puts back the action that was installed before the first run. The
                // chain addresses stay as they are: a handler still running on another
                // thread may read them.
                unsafe { libc::sigaction(sig, &old, std::ptr::null_mut()) };
            }
        }
    }
}

/// While one lives, this thread is inside a blocking spychro call: a signal is reported to
/// it as `Interrupted` instead of taking its previous disposition.
pub(crate) struct Inside(());

impl Inside {
    pub(crate) fn enter() -> Inside {
        INSIDE.fetch_add(1, Ordering::AcqRel);
        Inside(())
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Ignores SIGPIPE in this process (before `main`, std has not done it yet): a write to a
/// peer that is gone must be an error, not a silent death.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN runs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Reads each signal's current action, stores what ours must chain to, then installs ours
/// (in that order: a signal in between finds the chain already set).
fn install(installed: &mut Installed) -> io::Result<()> {
    for (which, sig) in SIGNALS.into_iter().enumerate() {
        // SAFETY: a zeroed sigaction is a valid out-parameter; a null new action only reads.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `old` is ours to write.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let handler = old.sa_sigaction;
        if handler == libc::SIG_IGN {
            // The program ignores this signal: keep it that way.
            continue;
        }
        let is_default = handler == libc::SIG_DFL;
        CHAIN[which].store(if is_default { 0 } else { handler }, Ordering::Release);
        CHAIN_INFO[which].store(old.sa_flags & libc::SA_SIGINFO != 0, Ordering::Release);
        WAS_DEFAULT[which].store(is_default, Ordering::Release);
        // SAFETY: a zeroed sigaction with our handler, SA_SIGINFO | SA_RESTART and an empty
        // mask; `on_signal` only calls async-signal-safe functions (and the program's own
        // handler, which already had to be).
        let rc = unsafe {
            let mut ours: libc::sigaction = std::mem::zeroed();
            ours.sa_sigaction = on_signal as *const () as usize;
            ours.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut ours.sa_mask);
            libc::sigaction(sig, &ours, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        installed.previous.push((sig, old));
    }
    Ok(())
}

/// Makes slot `i`'s pipe if it has none yet (non-blocking, close-on-exec, never closed).
fn ready_pipe(i: usize) -> io::Result<()> {
    if READ[i].load(Ordering::Acquire) >= 0 {
        return Ok(());
    }
    use nix::fcntl::OFlag;
    use std::os::fd::IntoRawFd;
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    READ[i].store(read.into_raw_fd(), Ordering::Release);
    WRITE[i].store(write.into_raw_fd(), Ordering::Release);
    Ok(())
}

/// Empties slot `i`'s pipe.
fn drain(i: usize) {
    let fd = READ[i].load(Ordering::Acquire);
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 64];
    // SAFETY: read(2) into a buffer of ours on a non-blocking pipe this module owns.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}
