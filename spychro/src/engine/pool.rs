//! A set of worker processes, each behind a non-blocking socket with its own send and receive
//! buffers, its status page and its forwarded output. The pool owns the processes: whatever
//! happens, dropping it kills and reaps every worker that is still there.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::outbox::Outbox;
use super::output::{Forward, Stream};
use crate::error::{Error, ExitStatus, WorkerError, WorkerErrorKind};
use crate::spawn::{SpawnOptions, spawn_worker};
use crate::status::StatusPage;
use crate::wire::{self, FrameBuf, WireError};

/// A descriptor that becomes readable when process `pid` ends, where the kernel has them.
fn pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; a
    // descriptor it returns is ours alone to own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// How to start the workers.
#[derive(Clone, Debug)]
pub(crate) struct PoolOptions {
    pub(crate) processes: usize,
    /// The program shown in messages and given as `argv[0]`.
    pub(crate) program: PathBuf,
    /// Execute this process's own binary through `/proc/self/exe`.
    pub(crate) exec_self: bool,
    pub(crate) start_timeout: Duration,
    pub(crate) memory_limit: Option<u64>,
    pub(crate) capture_output: bool,
    /// Workers may start pools of their own (non-daemon mode).
    pub(crate) nested: bool,
}

/// Where a worker is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Started; its handshake has not arrived.
    Starting { deadline: Instant },
    /// Handshake done; the run's job is being loaded.
    Loading { deadline: Instant },
    /// Ready for batches.
    Ready,
    /// Its socket closed or it was killed.
    Gone,
}

/// A batch sent to a worker and not yet fully answered.
pub(crate) struct InFlight {
    pub(crate) first: u64,
    pub(crate) count: u32,
    /// Outcomes received so far.
    pub(crate) done: u32,
    /// The items, encoded back to back, kept to describe a failed item or send it again.
    pub(crate) items: Arc<Vec<u8>>,
}

impl InFlight {
    /// The items `first + from .. first + to` as a batch of their own.
    pub(crate) fn slice(&self, from: u32, to: u32) -> Option<InFlight> {
        if from >= to {
            return None;
        }
        let mut values = wire::Values::new(&self.items);
        let mut start = 0;
        for n in 0..to {
            if n == from {
                start = values.position();
            }
            values.skip().ok()?;
        }
        Some(InFlight {
            first: self.first + from as u64,
            count: to - from,
            done: 0,
            items: Arc::new(self.items[start..values.position()].to_vec()),
        })
    }

    /// The encoded item `first + n`.
    pub(crate) fn item(&self, n: u32) -> Option<&[u8]> {
        let mut values = wire::Values::new(&self.items);
        for _ in 0..n {
            values.skip().ok()?;
        }
        values.skip().ok()
    }
}

/// Batches with at least this many bytes of items are sent from the batch's own buffer; below
/// it, copying them costs less than a separate piece of a gathered write.
const SHARE_FROM: usize = 16 * 1024;

/// One worker process.
pub(crate) struct Worker {
    pub(crate) pid: u32,
    child: Option<Child>,
    pub(crate) sock: UnixStream,
    pub(crate) status: StatusPage,
    pub(crate) stdout: Forward,
    pub(crate) stderr: Forward,
    pub(crate) rx: FrameBuf,
    tx: Outbox,
    pub(crate) state: State,
    pub(crate) inflight: VecDeque<InFlight>,
    /// Items sent to this worker in its life (for recycling).
    pub(crate) assigned: u64,
}

impl Worker {
    /// Queues bytes (whole frames) to send.
    pub(crate) fn queue(&mut self) -> &mut Vec<u8> {
        self.tx.bytes()
    }

    /// Queues a batch frame: its header, and its items, shared with the batch in flight or,
    /// when they are few bytes, copied (so that small batches go out together in one write).
    pub(crate) fn queue_batch(&mut self, job: u32, batch: &InFlight) -> Result<(), WireError> {
        let tx = self.tx.bytes();
        wire::push_batch_header(tx, job, batch.first, batch.count, batch.items.len())?;
        if batch.items.len() < SHARE_FROM {
            tx.extend_from_slice(&batch.items);
        } else {
            self.tx.share(Arc::clone(&batch.items));
        }
        Ok(())
    }

    /// Whether bytes are waiting to be sent.
    pub(crate) fn wants_write(&self) -> bool {
        !self.tx.is_empty()
    }

    /// Sends what the socket takes without blocking.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.tx.send(&self.sock)
    }

    /// Kills the process (SIGKILL) if it is still ours, without waiting for it.
    pub(crate) fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
        }
        self.state = State::Gone;
    }

    /// Waits until the process ends (its pidfd is readable), it writes output, or the
    /// deadline passes; a millisecond at most without a pidfd. Returns whether the pidfd
    /// said the process ended.
    fn wait_exit(&self, exited: Option<&OwnedFd>, deadline: Instant) -> bool {
        let Some(exited) = exited else {
            std::thread::sleep(Duration::from_millis(1));
            return false;
        };
        let mut fds = vec![PollFd::new(exited.as_fd(), PollFlags::POLLIN)];
        for fd in [self.stdout.fd(), self.stderr.fd()].into_iter().flatten() {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().clamp(1, u16::MAX as u128) as u16;
        let _ = poll(&mut fds, PollTimeout::from(ms));
        fds[0].revents().is_some_and(|r| !r.is_empty())
    }

    /// Waits for the process to end (killing it if it does not within `grace`), forwards what
    /// it had written, and returns how it ended (`Unknown` when it was already reaped).
    pub(crate) fn reap(&mut self, grace: Duration) -> ExitStatus {
        self.state = State::Gone;
        let Some(mut child) = self.child.take() else {
            return ExitStatus::Unknown;
        };
        let deadline = Instant::now() + grace;
        // Woken the moment the process ends, where the kernel gives pidfds (Linux 5.3+).
        let mut exited = (grace > Duration::ZERO)
            .then(|| pidfd(child.id()))
            .flatten();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break ExitStatus::from_std(status),
                Ok(None) if Instant::now() < deadline => {
                    // A worker blocked on a full output pipe cannot exit: keep draining.
                    self.stdout.pump();
                    self.stderr.pump();
                    if self.wait_exit(exited.as_ref(), deadline) {
                        // Ended, yet not waitable (a tracer sees it first): poll by sleeping
                        // from now on rather than spin on a pidfd that stays readable.
                        exited = None;
                    }
                }
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    break child
                        .wait()
                        .map(ExitStatus::from_std)
                        .unwrap_or(ExitStatus::Unknown);
                }
            }
        };
        // The pipes may stay open in processes the job started; take what is there now.
        self.stdout.pump();
        self.stderr.pump();
        self.stdout.finish();
        self.stderr.finish();
        status
    }

    /// The batch holding item `index`, and the item's position in it.
    pub(crate) fn find(&self, index: u64) -> Option<(&InFlight, u32)> {
        self.inflight.iter().find_map(|b| {
            let n = index.checked_sub(b.first)?;
            (n < b.count as u64).then_some((b, n as u32))
        })
    }
}

/// The worker processes of one pool.
pub(crate) struct Pool {
    pub(crate) options: PoolOptions,
    pub(crate) workers: Vec<Worker>,
}

impl Pool {
    /// Starts every worker. The handshakes complete later, in the run's event loop.
    pub(crate) fn start(options: PoolOptions) -> Result<Pool, Error> {
        if crate::worker::is_worker() && !crate::worker::may_nest() {
            return Err(Error::NestedPool {
                pid: std::process::id(),
            });
        }
        let mut pool = Pool {
            workers: Vec::with_capacity(options.processes),
            options,
        };
        for _ in 0..pool.options.processes {
            let w = pool.spawn_one()?;
            pool.workers.push(w);
        }
        Ok(pool)
    }

    fn spawn_one(&self) -> Result<Worker, Error> {
        let o = &self.options;
        let spawned = spawn_worker(&SpawnOptions {
            program: &o.program,
            exec_self: o.exec_self,
            memory_limit: o.memory_limit,
            capture_output: o.capture_output,
            inherit: &[],
        })
        .map_err(|e| WorkerError {
            pid: None,
            program: o.program.clone(),
            kind: WorkerErrorKind::Spawn(e),
        })?;
        let mut child = spawned.child;
        let pid = child.id();
        let io_err = |e| Error::io("could not set up a worker's pipes", e);
        spawned.sock.set_nonblocking(true).map_err(io_err)?;
        let stdout = Forward::new(child.stdout.take().map(Into::into), Stream::Stdout, pid)
            .map_err(io_err)?;
        let stderr = Forward::new(child.stderr.take().map(Into::into), Stream::Stderr, pid)
            .map_err(io_err)?;
        Ok(Worker {
            pid,
            child: Some(child),
            sock: spawned.sock,
            status: spawned.status,
            stdout,
            stderr,
            rx: FrameBuf::default(),
            tx: Outbox::default(),
            state: State::Starting {
                deadline: Instant::now() + self.options.start_timeout,
            },
            inflight: VecDeque::new(),
            assigned: 0,
        })
    }

    /// Replaces worker `i` (already reaped) with a fresh one.
    pub(crate) fn respawn(&mut self, i: usize) -> Result<(), Error> {
        let fresh = self.spawn_one()?;
        let mut old = std::mem::replace(&mut self.workers[i], fresh);
        old.reap(Duration::ZERO);
        Ok(())
    }

    /// A [`WorkerError`] about worker `i`.
    pub(crate) fn worker_error(&self, i: usize, kind: WorkerErrorKind) -> Error {
        WorkerError {
            pid: Some(self.workers[i].pid),
            program: self.options.program.clone(),
            kind,
        }
        .into()
    }

    /// Asks worker `i` to exit and waits for it (killing it after a grace period).
    pub(crate) fn retire(&mut self, i: usize) {
        let w = &mut self.workers[i];
        if w.state == State::Gone {
            return;
        }
        wire::push_empty(w.queue(), wire::TAG_SHUTDOWN);
        let _ = w.sock.set_nonblocking(false);
        let _ = w.sock.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = w.flush();
        w.reap(Duration::from_secs(2));
    }

    /// Asks every worker to exit, waits a moment for them (2 s in all), then kills and reaps
    /// the rest.
    pub(crate) fn shutdown(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for w in &mut self.workers {
            if w.state != State::Gone {
                wire::push_empty(w.queue(), wire::TAG_SHUTDOWN);
                let _ = w.sock.set_nonblocking(false);
                let _ = w.sock.set_write_timeout(Some(Duration::from_millis(500)));
                let _ = w.flush();
            }
        }
        for w in &mut self.workers {
            if w.state != State::Gone {
                w.reap(deadline.saturating_duration_since(Instant::now()));
            }
        }
    }

    /// Kills every worker at once and reaps them.
    pub(crate) fn kill_all(&mut self) {
        for w in &mut self.workers {
            w.kill();
        }
        for w in &mut self.workers {
            w.reap(Duration::ZERO);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.kill_all();
    }
}
