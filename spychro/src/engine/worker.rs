//! One worker process as the caller sees it: its non-blocking socket with send and receive
//! buffers, its status page, its forwarded output, its process descriptor, where it is in its
//! life, and the batches it holds. Used by pools and by [`Process`](crate::Process) alike.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::batch::InFlight;
use super::insights::Life;
use super::outbox::Outbox;
use super::output::{Forward, Stream};
use super::slots::Slots;
use crate::call::plain::PlainSizes;
use crate::error::{ExitStatus, WireError, WorkerErrorKind};
use crate::sys::spawn::{SpawnOptions, Spawned, WorkerChild, spawn_worker, spawn_workers};
use crate::sys::status::StatusPage;
use crate::sys::{pidfd, tree};
use crate::wire::{self, FrameBuf};

/// Where a worker is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Started; its hello has not arrived. Set-ups and batches may be queued already: it reads
    /// them right after saying hello.
    Starting { deadline: Instant },
    /// Its hello arrived: it runs what it is sent.
    Ready,
    /// Asked to leave (it ran its share of items): it ends its jobs' states, sends their exit
    /// values, and exits; then it is replaced.
    Retiring,
    /// Its socket closed or it was killed.
    Gone,
}

impl State {
    /// Whether the handshake is still under way (and by when it must be done).
    pub(crate) fn handshake_deadline(self) -> Option<Instant> {
        match self {
            State::Starting { deadline } => Some(deadline),
            _ => None,
        }
    }
}

/// Where a job's set-up is in one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Load {
    /// Sent; its answer must come by the deadline. Batches may follow it at once.
    Sent { deadline: Instant },
    /// Loaded.
    Ready,
}

/// Batches with at least this many bytes of items are sent from the batch's own buffer; below
/// it, copying them costs less than a separate piece of a gathered write.
const SHARE_FROM: usize = 16 * 1024;

/// One worker process.
pub(crate) struct Worker {
    pub(crate) pid: u32,
    child: Option<WorkerChild>,
    /// Readable once the process has ended (where the kernel has pidfds).
    exited: Option<OwnedFd>,
    pub(crate) sock: UnixStream,
    /// Shared with whoever unmaps it once the worker is gone (see `Workers::drop`).
    pub(crate) status: Arc<StatusPage>,
    /// Where plain batches go in its region.
    pub(crate) slots: Slots,
    pub(crate) stdout: Forward,
    pub(crate) stderr: Forward,
    pub(crate) rx: FrameBuf,
    tx: Outbox,
    pub(crate) state: State,
    pub(crate) inflight: VecDeque<InFlight>,
    /// Items sent to this worker in its life (for recycling).
    pub(crate) assigned: u64,
    /// Items it answered in its life.
    pub(crate) done: u64,
    /// Time it spent on them, as it reported.
    pub(crate) busy_ns: u64,
    /// When it last answered an item (or was handed work while it had none).
    pub(crate) answered_at: Instant,
    /// When it started, said hello, ended.
    pub(crate) life: Life,
    /// The jobs whose set-up it was sent, and where each is.
    pub(crate) loaded: Vec<(u32, Load)>,
    /// End the processes it started with it.
    kill_descendants: bool,
    /// How long its handshake may take.
    pub(crate) start_timeout: Duration,
}

impl Worker {
    /// Starts a worker process; its handshake must complete within `start_timeout`.
    pub(crate) fn spawn(
        options: &SpawnOptions<'_>,
        start_timeout: Duration,
        kill_descendants: bool,
        custom_program: bool,
    ) -> Result<Worker, WorkerErrorKind> {
        let spawned = spawn_worker(options).map_err(|error| WorkerErrorKind::Spawn {
            error,
            custom_program,
        })?;
        Worker::started(spawned, start_timeout, kill_descendants)
    }

    /// Starts `n` worker processes at once (see [`spawn_workers`]), as [`Worker::spawn`]
    /// does each.
    pub(crate) fn spawn_many(
        options: &SpawnOptions<'_>,
        n: usize,
        start_timeout: Duration,
        kill_descendants: bool,
        custom_program: bool,
    ) -> Vec<Result<Worker, WorkerErrorKind>> {
        spawn_workers(options, n)
            .into_iter()
            .map(|spawned| {
                let spawned = spawned.map_err(|error| WorkerErrorKind::Spawn {
                    error,
                    custom_program,
                })?;
                Worker::started(spawned, start_timeout, kill_descendants)
            })
            .collect()
    }

    /// The caller's side of a worker just started.
    fn started(
        spawned: Spawned,
        start_timeout: Duration,
        kill_descendants: bool,
    ) -> Result<Worker, WorkerErrorKind> {
        let mut child = spawned.child;
        let pid = child.id();
        let setup = (|| -> io::Result<_> {
            spawned.sock.set_nonblocking(true)?;
            let stdout = Forward::new(spawned.stdout, Stream::Stdout, pid)?;
            let stderr = Forward::new(spawned.stderr, Stream::Stderr, pid)?;
            Ok((stdout, stderr))
        })();
        let (stdout, stderr) = match setup {
            Ok(forwards) => forwards,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(WorkerErrorKind::Io(e));
            }
        };
        Ok(Worker {
            pid,
            exited: pidfd::open(pid),
            child: Some(child),
            sock: spawned.sock,
            slots: Slots::new(spawned.status.region().map_or(0, |(_, len)| len)),
            status: Arc::new(spawned.status),
            stdout,
            stderr,
            rx: FrameBuf::default(),
            tx: Outbox::default(),
            state: State::Starting {
                deadline: Instant::now() + start_timeout,
            },
            inflight: VecDeque::new(),
            assigned: 0,
            done: 0,
            busy_ns: 0,
            answered_at: Instant::now(),
            life: Life::new(),
            loaded: Vec::new(),
            kill_descendants,
            start_timeout,
        })
    }

    /// Where job `job`'s set-up is in this worker, if it was sent.
    pub(crate) fn load(&self, job: u32) -> Option<Load> {
        self.loaded.iter().find(|(j, _)| *j == job).map(|&(_, l)| l)
    }

    /// Records where job `job`'s set-up is.
    pub(crate) fn set_load(&mut self, job: u32, load: Load) {
        match self.loaded.iter_mut().find(|(j, _)| *j == job) {
            Some(entry) => entry.1 = load,
            None => self.loaded.push((job, load)),
        }
    }

    /// Whether it holds a batch of job `job`.
    pub(crate) fn holds(&self, job: u32) -> bool {
        self.inflight.iter().any(|b| b.job == job)
    }

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

    /// Queues a plain job's batch (of `sizes`): its items are copied into a slot of the
    /// region, which the batch then holds, and the frame says where.
    pub(crate) fn queue_plain_batch(
        &mut self,
        job: u32,
        batch: &mut InFlight,
        sizes: PlainSizes,
    ) -> Result<(), String> {
        let Some((region, _)) = self.status.region() else {
            return Err("the worker has no region for plain batches".into());
        };
        let count = batch.count as usize;
        let items = count * sizes.item as usize;
        if batch.items.len() != items {
            return Err(format!(
                "{} items of {} bytes are in {} bytes",
                count,
                sizes.item,
                batch.items.len()
            ));
        }
        let slot = self
            .slots
            .take(count, sizes.item as usize, sizes.output as usize)
            .ok_or("the batch does not fit the worker's region")?;
        if let Some((from, to)) = self.slots.resident_for(&slot) {
            self.status.populate_region(from, to);
        }
        // SAFETY: the slot lies within the region (`Slots` was made with its length), and
        // the worker reads it only once this frame reaches it; no other batch holds it.
        unsafe {
            std::ptr::copy_nonoverlapping(batch.items.as_ptr(), region.add(slot.items_at), items)
        };
        batch.slot = Some(slot);
        let at = |n: usize| u32::try_from(n).map_err(|_| "the region is too large".to_owned());
        wire::push_plain_batch(
            self.tx.bytes(),
            &wire::PlainBatch {
                job,
                first: batch.first,
                count: batch.count,
                items_at: at(slot.items_at)?,
                outputs_at: at(slot.outputs_at)?,
                item_size: sizes.item,
                output_size: sizes.output,
            },
        );
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

    /// The descriptor that becomes readable when the process ends, while it is ours.
    pub(crate) fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        self.child
            .as_ref()
            .and(self.exited.as_ref())
            .map(|fd| fd.as_fd())
    }

    /// Kills the process (SIGKILL), and what it started, if it is still ours, without
    /// waiting for it.
    pub(crate) fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if self.kill_descendants {
                // While it is alive, its orphaned descendants are its children (it is their
                // subreaper): find them before it goes.
                tree::kill_descendants(self.pid, false);
            }
            let _ = child.kill();
        }
        self.state = State::Gone;
        self.life.end();
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

    /// Waits for the process to end (killing it if it does not within `grace`), ends what it
    /// left behind in its process group, forwards what it had written, and returns how it
    /// ended (`Unknown` when it was already reaped).
    pub(crate) fn reap(&mut self, grace: Duration) -> ExitStatus {
        self.state = State::Gone;
        self.life.end();
        let Some(mut child) = self.child.take() else {
            return ExitStatus::Unknown;
        };
        let deadline = Instant::now() + grace;
        // Woken the moment the process ends, where the kernel gives pidfds (Linux 5.3+).
        let mut exited = if grace > Duration::ZERO {
            self.exited.take()
        } else {
            None
        };
        loop {
            if has_exited(self.pid) {
                break;
            }
            if Instant::now() < deadline {
                // A worker blocked on a full output pipe cannot exit: keep draining.
                self.stdout.pump();
                self.stderr.pump();
                if self.wait_exit(exited.as_ref(), deadline) {
                    // Ended, yet not waitable (a tracer sees it first): poll by sleeping
                    // from now on rather than spin on a pidfd that stays readable.
                    exited = None;
                }
                continue;
            }
            if self.kill_descendants {
                tree::kill_descendants(self.pid, false);
            }
            let _ = child.kill();
            break;
        }
        if self.kill_descendants {
            // What it started and left in its group (a crash leaves them running), ended
            // while its pid (the group's id) is still held by the unreaped process.
            tree::signal(-(self.pid as i32), libc::SIGKILL);
        }
        let status = child
            .wait()
            .map(ExitStatus::from_std)
            .unwrap_or(ExitStatus::Unknown);
        // The pipes may stay open in processes the job started; take what is there now.
        self.stdout.pump();
        self.stderr.pump();
        self.stdout.finish();
        self.stderr.finish();
        status
    }

    /// Waits, without a limit, until the process has ended (without reaping it: see
    /// [`reap`](Worker::reap)).
    pub(crate) fn wait_ended(&self) {
        use nix::sys::wait::{Id, WaitPidFlag, waitid};
        if self.child.is_none() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        while let Err(nix::errno::Errno::EINTR) =
            waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
        {}
    }
}

/// Whether our child `pid` has ended, without reaping it (its pid stays ours).
fn has_exited(pid: u32) -> bool {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(nix::unistd::Pid::from_raw(pid as i32)), flags) {
        Ok(WaitStatus::StillAlive) => false,
        Err(nix::errno::Errno::EINTR) => false,
        Ok(_) | Err(_) => true,
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill();
            self.reap(Duration::ZERO);
        }
    }
}
