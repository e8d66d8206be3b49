//! The worker process: how it is entered before `main`, its handshake, the watchdog that ends
//! it when the caller goes away, and the loop that runs batches of items.

use std::any::Any;
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use serde::Serialize;

use crate::ctx::{Ctx, Sink};
use crate::error::FailureKind;
use crate::job_fn::JobFn;
use crate::registry::{self, JobEntry};
use crate::status::{StatusPage, now_ms};
use crate::wire::{self, WireError, WireFailure};

/// Names a worker's inherited fds, `SOCKET:STATUS`, or is [`ENV_FD_STDIN`]; set by the caller
/// on the worker's command.
pub(crate) const ENV_FD: &str = "SPYCHRO_WORKER_FD";
/// [`ENV_FD`]'s value when the socket is the worker's stdin and the status page comes over it.
pub(crate) const ENV_FD_STDIN: &str = "stdin";

/// Exit code of a worker whose caller went away.
const EXIT_ORPHANED: i32 = 101;
/// Exit code of a worker that hit a protocol error.
const EXIT_PROTOCOL: i32 = 102;

/// What every thread of a worker shares: the socket (writes serialized by a lock, each frame
/// written whole) and the status page.
struct Link {
    sock: UnixStream,
    write: Mutex<()>,
    status: StatusPage,
}

impl Link {
    fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        let _guard = self.write.lock().unwrap_or_else(|e| e.into_inner());
        (&self.sock).write_all(frame)
    }
}

static LINK: OnceLock<Link> = OnceLock::new();

/// Sends the job's `log` records to the caller, tagged with the item running.
struct WorkerLogger;

static LOGGER: WorkerLogger = WorkerLogger;

impl log::Log for WorkerLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let Some(link) = LINK.get() else { return };
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let log = wire::WireLog {
            level: record.level() as u8,
            target: record.target().to_owned(),
            message: record.args().to_string(),
            item: link.status.current().map(|(k, _)| k),
            time_ms,
        };
        let mut frame = Vec::new();
        if wire::push_message(&mut frame, wire::TAG_LOG, &log).is_ok() {
            // A caller that is gone ends this process through the watchdog.
            let _ = link.send(&frame);
        }
    }

    fn flush(&self) {}
}

/// Sends a job's [`Ctx`] messages and progress to the caller.
struct WorkerSink<M>(PhantomData<fn(M)>);

impl<M: Serialize> Sink<M> for WorkerSink<M> {
    fn message(&self, index: u64, message: M) {
        let Some(link) = LINK.get() else { return };
        let mut frame = Vec::new();
        let start = frame.len();
        frame.extend_from_slice(&[0, 0, 0, 0, wire::TAG_MESSAGE]);
        frame.extend_from_slice(&index.to_le_bytes());
        frame.extend_from_slice(&crate::ctx::encode_message(&message));
        let len = (frame.len() - start - 5) as u32;
        frame[start..start + 4].copy_from_slice(&len.to_le_bytes());
        let _ = link.send(&frame);
    }

    fn progress(&self, item: u64, fraction: f64) {
        let Some(link) = LINK.get() else { return };
        let mut frame = Vec::new();
        let p = wire::WireProgress { item, fraction };
        if wire::push_message(&mut frame, wire::TAG_PROGRESS, &p).is_ok() {
            let _ = link.send(&frame);
        }
    }
}

static IS_WORKER: AtomicBool = AtomicBool::new(false);
/// The name of this process when it was started as a [`Process`](crate::Process).
static PROCESS_NAME: OnceLock<String> = OnceLock::new();

/// This process's name if it was started as a `Process`.
pub(crate) fn process_name() -> Option<&'static str> {
    PROCESS_NAME.get().map(String::as_str)
}
static MAY_NEST: AtomicBool = AtomicBool::new(false);
/// Whether the caller times items out (so each item's start time must be recorded).
static TIMED: AtomicBool = AtomicBool::new(false);

/// Whether this process is a spychro worker.
pub(crate) fn is_worker() -> bool {
    IS_WORKER.load(Ordering::Relaxed)
}

/// Whether this worker's caller allows it to start pools of its own (non-daemon mode).
pub(crate) fn may_nest() -> bool {
    MAY_NEST.load(Ordering::Relaxed)
}

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
        IS_WORKER.store(true, Ordering::Relaxed);
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
        IS_WORKER.store(true, Ordering::Relaxed);
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
    let code = match serve(sock, status) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("spychro worker {}: {e}", std::process::id());
            EXIT_PROTOCOL
        }
    };
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
    let status = crate::spawn::receive_fd(sock.as_fd())?;
    Ok((UnixStream::from(sock), status))
}

fn serve(sock: UnixStream, status: StatusPage) -> Result<(), WireError> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    // Programs the job starts must not inherit the socket.
    fcntl(sock.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(std::io::Error::from)?;
    // Before `main`, std has not yet ignored SIGPIPE; a write to a vanished caller must be an
    // error here, not a silent death.
    // SAFETY: installing SIG_IGN has no handler code to be unsafe.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        );
    }
    let link: &'static Link = LINK.get_or_init(|| Link {
        sock,
        write: Mutex::new(()),
        status,
    });
    // The job's `log` records go to the caller; the level comes with the job.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Off);
    }

    let mut out = Vec::with_capacity(64 * 1024);
    wire::push_message(
        &mut out,
        wire::TAG_HELLO,
        &wire::Hello {
            protocol: wire::PROTOCOL_VERSION,
            pid: std::process::id(),
        },
    )?;
    link.send(&out)?;
    out.clear();
    // After the hello, off the start-up path: the caller's end closing stays visible.
    start_watchdog(link.sock.as_raw_fd());

    let mut reader = BufReader::with_capacity(256 * 1024, &link.sock);
    let mut body = Vec::new();
    let mut jobs: HashMap<u32, (&'static JobEntry, Box<dyn Any>)> = HashMap::new();
    while let Some(tag) = wire::read_frame(&mut reader, &mut body)? {
        match tag {
            wire::TAG_SETUP => {
                let setup: wire::Setup = wire::decode(&body, "setup")?;
                MAY_NEST.store(setup.nested, Ordering::Relaxed);
                TIMED.store(setup.timed, Ordering::Relaxed);
                log::set_max_level(level_filter(setup.log_level));
                if let Some(name) = setup.process.clone() {
                    let _ = PROCESS_NAME.set(name);
                }
                let result = registry::find(&setup.name, setup.signature)
                    .and_then(|entry| Ok((entry, (entry.load)(&setup.args)?)))
                    .map(|loaded| {
                        jobs.insert(setup.job, loaded);
                    });
                let done = wire::SetupDone {
                    job: setup.job,
                    result,
                };
                wire::push_message(&mut out, wire::TAG_SETUP_DONE, &done)?;
                link.send(&out)?;
                out.clear();
            }
            wire::TAG_BATCH => {
                let (header, items) = wire::parse_batch(&body)?;
                let Some((entry, state)) = jobs.get(&header.job) else {
                    return Err(WireError::Decode {
                        what: "batch",
                        message: format!("job id {} was never set up", header.job),
                    });
                };
                if let Some(name) = process_name() {
                    log::info!(target: "spychro::process", "{name}: child process calling run");
                }
                let mut sink = ResultsSink::new(link, &mut out, header.job, header.first);
                (entry.run_batch)(&**state, header.first, header.count, items, &mut sink)?;
                sink.flush()?;
                let failures = sink.failures;
                if let Some(name) = process_name() {
                    // A process runs its one item, then ends: 1 if it failed, as Python does.
                    let code = if failures > 0 { 1 } else { 0 };
                    log::info!(
                        target: "spychro::process",
                        "{name}: process exiting with exitcode {code}"
                    );
                    let _ = std::io::stdout().flush();
                    std::process::exit(code);
                }
            }
            wire::TAG_SHUTDOWN => return Ok(()),
            other => return Err(WireError::UnknownTag(other)),
        }
    }
    Ok(())
}

/// `log::LevelFilter` from its number (`Off` = 0 .. `Trace` = 5).
fn level_filter(n: u8) -> log::LevelFilter {
    use log::LevelFilter::*;
    [Off, Error, Warn, Info, Debug, Trace]
        .get(n as usize)
        .copied()
        .unwrap_or(Trace)
}

/// Ends this process as soon as the caller's end of the socket closes, even while a job runs:
/// a caller that dies (even by SIGKILL) leaves no workers behind.
fn start_watchdog(fd: RawFd) {
    let spawned = std::thread::Builder::new()
        .name("spychro-watchdog".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
            // SAFETY: the socket outlives this thread: the process exits before it is closed.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            // Only hang-up is asked for; POLLHUP and POLLERR come unasked. So any event at
            // all means the caller's end is gone. (nix does not know POLLRDHUP, so its
            // `revents()` cannot be trusted to report it: count events instead.)
            let rdhup = PollFlags::from_bits_retain(libc::POLLRDHUP);
            loop {
                let mut fds = [PollFd::new(borrowed, rdhup)];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(0) | Err(nix::errno::Errno::EINTR) => {}
                    Ok(_) | Err(_) => orphaned(),
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("spychro worker: no watchdog thread ({e}); the worker may outlive its caller");
    }
}

/// Ends the process at once, without running destructors or flushing: the caller is gone and
/// nothing this process still holds can reach it.
fn orphaned() -> ! {
    // SAFETY: _exit ends the process immediately; it is async-signal-safe and touches no Rust
    // state.
    unsafe { libc::_exit(EXIT_ORPHANED) }
}

/// Collects one batch's outcomes into results frames and sends them: when the batch ends,
/// when the frame grows large or old, and at once after a failure so the caller hears of it
/// early. It also keeps the status page up to date, item by item.
pub(crate) struct ResultsSink<'a> {
    link: &'a Link,
    out: &'a mut Vec<u8>,
    job: u32,
    next: u64,
    frame: Option<wire::ResultsStart>,
    started: Instant,
    /// When the current frame got its first outcome, in [`now_ms`] time.
    frame_ms: u64,
    now_ms: u64,
    /// Items of this batch that failed.
    failures: u32,
    /// Read the clock for every item (timeouts), or every [`CLOCK_EVERY`] items.
    timed: bool,
    items: u32,
}

/// Without timeouts, the clock (for the age of a results frame) is read this often.
const CLOCK_EVERY: u32 = 256;

/// A results frame is sent once it holds this many bytes...
const FLUSH_BYTES: usize = 128 * 1024;
/// ...or its first outcome is this old, so that a long batch loses little if its worker dies.
const FLUSH_MS: u64 = 10;

impl<'a> ResultsSink<'a> {
    /// A sink appending to `out`, which may still hold finished frames of earlier batches
    /// (written together, later).
    fn new(link: &'a Link, out: &'a mut Vec<u8>, job: u32, first: u64) -> Self {
        ResultsSink {
            link,
            out,
            job,
            next: first,
            frame: None,
            started: Instant::now(),
            frame_ms: 0,
            now_ms: now_ms(),
            failures: 0,
            timed: TIMED.load(Ordering::Relaxed),
            items: 0,
        }
    }

    /// The next item starts.
    #[inline(always)]
    fn begin_item(&mut self) {
        self.items = self.items.wrapping_add(1);
        if self.timed || self.items.is_multiple_of(CLOCK_EVERY) {
            self.now_ms = now_ms();
        }
        self.link.status.begin(self.next, self.now_ms);
    }

    #[inline(always)]
    fn frame(&mut self) -> &mut wire::ResultsStart {
        let (out, job, next) = (&mut *self.out, self.job, self.next);
        if self.frame.is_none() {
            self.frame_ms = self.now_ms;
        }
        self.frame
            .get_or_insert_with(|| wire::begin_results(out, job, next))
    }

    #[inline(always)]
    fn ok<T: Serialize>(&mut self, value: &T) -> Result<(), WireError> {
        self.link.status.end();
        self.frame();
        if let Err(message) = wire::push_value(self.out, value) {
            return self.failed(FailureKind::SerializeOutput { message });
        }
        self.advance()?;
        if self.out.len() >= FLUSH_BYTES || self.now_ms.saturating_sub(self.frame_ms) >= FLUSH_MS {
            self.flush()?;
        }
        Ok(())
    }

    #[cold]
    fn failed(&mut self, kind: FailureKind) -> Result<(), WireError> {
        self.link.status.end();
        self.failures += 1;
        self.frame().failed = true;
        let failure = WireFailure { kind };
        if let Err(message) = wire::push_value(self.out, &failure) {
            return Err(WireError::Decode {
                what: "failure",
                message,
            });
        }
        self.advance()?;
        // A failure ends its frame (the layout allows one, last).
        self.flush()
    }

    #[inline(always)]
    fn advance(&mut self) -> Result<(), WireError> {
        self.next += 1;
        if let Some(f) = self.frame.as_mut() {
            f.count += 1;
        }
        Ok(())
    }

    /// Ends the current results frame and sends everything pending.
    #[inline(never)]
    fn flush(&mut self) -> Result<(), WireError> {
        self.finish()?;
        if !self.out.is_empty() {
            self.link.send(self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Ends the current results frame without sending it yet.
    fn finish(&mut self) -> Result<(), WireError> {
        if let Some(frame) = self.frame.take() {
            let now = Instant::now();
            let busy = now.duration_since(self.started).as_nanos() as u64;
            self.started = now;
            wire::finish_results(self.out, frame, busy)?;
        }
        Ok(())
    }
}

/// Runs one batch of job `F`: decode each item, call the job, record the outcome.
pub(crate) fn run_batch<F: JobFn>(
    state: &dyn Any,
    _first: u64,
    count: u32,
    items: &[u8],
    sink: &mut ResultsSink<'_>,
) -> Result<(), WireError> {
    let Some(args) = state.downcast_ref::<F::Args>() else {
        return Err(WireError::Decode {
            what: "batch",
            message: format!(
                "job `{}` was loaded with arguments of another type",
                F::NAME
            ),
        });
    };
    let messages = WorkerSink::<F::Message>(PhantomData);
    let mut values = wire::Values::new(items);
    let framing = |message| WireError::Decode {
        what: "batch",
        message,
    };
    let capturing = crate::panic::Capturing::start();
    for _ in 0..count {
        sink.begin_item();
        let item = match values.next::<F::Item>().map_err(framing)? {
            Ok(item) => item,
            Err(message) => {
                sink.failed(FailureKind::DeserializeItem { message })?;
                continue;
            }
        };
        let ctx = Ctx::new(sink.next, &messages);
        match crate::panic::run_captured::<F>(item, args, &ctx, &capturing) {
            Ok(out) => sink.ok(&out)?,
            Err(kind) => sink.failed(kind)?,
        }
    }
    wire::read_all(&values, "batch")
}
