//! The conductor: one job over a pool, driven from the caller's thread. It reads items lazily
//! and sends them in batches (`dispatch`), polls every worker socket, process descriptor and
//! output pipe, takes in what arrives (`intake`), replaces workers that die (`loss`), enforces
//! deadlines (`deadlines`), and hands outcomes back in input order through one delivery
//! routine ([`Run::drive`]) that `next`, `next_chunk` and `collect_outputs` share.
//!
//! The loop never blocks on one worker: sockets are non-blocking, writes are queued, and every
//! wait is a `poll` whose timeout is the nearest deadline. See `engine/README.md` for the
//! protocol and its invariants.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, poll};

use super::batch::InFlight;
use super::hooks::Hooks;
use super::job::{JobState, Outcome};
use super::placed::Placed;
use super::pool::{Pool, PoolOptions};
use super::worker::State;
use crate::call::job_fn::JobFn;
use crate::error::Error;
use crate::sys::signals::Inside;
use crate::wire;

/// How to run the job.
#[derive(Clone, Debug)]
pub(crate) struct RunOptions {
    pub(crate) chunk_size: Option<usize>,
    /// Keep the items between the consumer and the newest dispatched item bounded (streams);
    /// unbounded when the caller collects everything anyway.
    pub(crate) bounded: bool,
    /// Failed items are outcomes like any other; the job goes on.
    pub(crate) keep_going: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) retries: u32,
    pub(crate) max_items_per_worker: Option<u64>,
    /// The most verbose level of worker logs to send.
    pub(crate) log_level: log::LevelFilter,
}

/// What a polled fd belongs to.
#[derive(Clone, Copy)]
enum Source {
    Socket(usize),
    Exited(usize),
    Stdout(usize),
    Stderr(usize),
    Signal,
}

/// A job running over a pool of worker processes.
pub(crate) struct Run<'h, F: JobFn, It> {
    pub(super) pool: Pool,
    pub(super) input: It,
    pub(super) input_done: bool,
    /// The index the next item read from the input gets.
    pub(super) next_index: u64,
    /// Items to send again (their worker died before answering), by first index.
    pub(super) requeue: BTreeMap<u64, InFlight>,
    /// Runs of each item that lost its worker.
    pub(super) attempts: HashMap<u64, u32>,
    /// Worker deaths in a row that no item explains.
    pub(super) unexplained: u32,
    /// The set-up frame, sent to every new worker.
    pub(super) setup: Vec<u8>,
    pub(super) options: RunOptions,
    pub(super) started: Instant,
    pub(super) job: JobState<'h, F>,
    /// The run is over: its workers are gone; only what was delivered to it remains.
    finished: bool,
}

impl<'h, F: JobFn, It: Iterator<Item = F::Item>> Run<'h, F, It> {
    /// Starts the workers and queues the job's set-up for each. Items are read only as
    /// batches are sent. The options were checked by the builder.
    pub(crate) fn start(
        pool: PoolOptions,
        options: RunOptions,
        hooks: Hooks<'h>,
        items: It,
        args: &F::Args,
    ) -> Result<Self, Error> {
        let args = wire::encode_value(args).map_err(|message| Error::Arguments {
            job: F::NAME,
            message,
        })?;
        let mut setup = Vec::new();
        let message = wire::Setup {
            job: 0,
            name: F::NAME.to_owned(),
            signature: F::SIGNATURE,
            args,
            nested: pool.nested,
            log_level: wire::level_to_wire(options.log_level),
            timed: options.timeout.is_some(),
            process: None,
            kill_descendants: pool.kill_descendants,
        };
        wire::push_message(&mut setup, wire::TAG_SETUP, &message)
            .map_err(|e| Error::internal(format!("the job set-up could not be framed: {e}")))?;
        let mut pool = Pool::start(pool)?;
        for w in &mut pool.workers {
            // Queued now; the worker reads it right after sending its handshake.
            w.queue().extend_from_slice(&setup);
        }
        Ok(Run {
            pool,
            input: items,
            input_done: false,
            next_index: 0,
            requeue: BTreeMap::new(),
            attempts: HashMap::new(),
            unexplained: 0,
            setup,
            job: JobState::new(0, options.chunk_size, options.keep_going, hooks),
            options,
            started: Instant::now(),
            finished: false,
        })
    }

    /// The next outcome in input order, `Ok(None)` when every item is done.
    ///
    /// When not keeping going, after an item fails the outcomes before it that already arrived
    /// come first, then the failure, then the end: the workers are killed as soon as the
    /// failure is seen.
    pub(crate) fn next(&mut self) -> Result<Option<Outcome<F::Output>>, Error> {
        self.drive(|job, stopped| {
            job.pop_outcome()
                .or_else(|| stopped.then(|| job.take_failure().map(Err)).flatten())
        })
    }

    /// Like [`next`](Run::next), but hands over every outcome that is ready in order, as one
    /// run (at least one outcome), so that collecting a `Vec` costs no call per item.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<Vec<Outcome<F::Output>>>, Error> {
        self.drive(|job, stopped| {
            job.pop_chunk().or_else(|| {
                job.pop_outcome()
                    .or_else(|| stopped.then(|| job.take_failure().map(Err)).flatten())
                    .map(|o| vec![o])
            })
        })
    }

    /// Runs the job to the end and returns every output in input order; the first failure
    /// (an item's, or the machinery's) is the error. Outputs that arrive in order are decoded
    /// straight into the returned vector, which is sized up front when the input knows its
    /// length.
    pub(crate) fn collect_outputs(&mut self) -> Result<Vec<F::Output>, Error> {
        // Outputs are written in place, one slot per item: a failure cannot take a slot.
        if self.job.keep_going {
            return Err(Error::internal(
                "collect_outputs is for runs that stop at a failure",
            ));
        }
        let expected = self.remaining().unwrap_or(0).min(1 << 24);
        self.job.direct = Some(Placed::with_capacity(expected));
        self.job.drain_direct();
        if let Some(failure) =
            self.drive(|job, stopped| stopped.then(|| job.take_failure()).flatten())?
        {
            return Err(Error::Item(failure));
        }
        let outputs = self.job.direct.take().map(Placed::into_vec);
        match outputs {
            Some(v) if v.len() as u64 == self.next_index => Ok(v),
            _ => Err(Error::internal(format!(
                "job `{}` ran {} items but collected a different number of outputs",
                F::NAME,
                self.next_index
            ))),
        }
    }

    /// Takes back a chunk from [`next_chunk`](Run::next_chunk) that the consumer emptied.
    pub(crate) fn give_back(&mut self, chunk: Vec<Outcome<F::Output>>) {
        self.job.reorder.recycle(chunk);
    }

    /// Items the input still holds, when it knows exactly.
    pub(crate) fn input_len(&self) -> Option<usize> {
        self.remaining()
    }

    /// The one delivery routine: runs the loop until `take` finds something to hand over,
    /// or the run ends (`Ok(None)`), or the machinery fails. `take` is given the job and
    /// whether the run has stopped (then nothing more will arrive, and a failure that stopped
    /// it is due).
    ///
    /// SIGINT/SIGTERM is checked first on every call, so a stream with outputs already
    /// buffered still reports `Interrupted` at once.
    fn drive<T>(
        &mut self,
        mut take: impl FnMut(&mut JobState<'h, F>, bool) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        // Entered only before the loop blocks: a signal that arrives while the caller's own
        // code runs between calls takes its previous disposition.
        let mut inside = None;
        loop {
            if !self.finished {
                let signal = self.pool.signals.as_ref().and_then(|g| g.fired());
                let broken = self.job.hooks.broken.take();
                if let Some(e) = signal
                    .map(|signal| Error::Interrupted { signal })
                    .or(broken)
                {
                    self.stop();
                    return Err(e);
                }
            }
            if let Some(t) = take(&mut self.job, self.finished) {
                return Ok(Some(t));
            }
            if self.finished {
                return Ok(None);
            }
            if self.job.stopped() {
                // A failure stops the job: its workers are killed at once; what arrived
                // before it is still delivered.
                self.stop();
                continue;
            }
            if self.complete() {
                self.pool.shutdown();
                self.finished = true;
                continue;
            }
            inside.get_or_insert_with(Inside::enter);
            if let Err(e) = self.step() {
                self.stop();
                return Err(e);
            }
        }
    }

    /// Ends the run now: every worker is killed.
    fn stop(&mut self) {
        self.pool.kill_all();
        self.finished = true;
    }

    /// Every item was read, sent and answered.
    fn complete(&self) -> bool {
        self.input_done
            && self.requeue.is_empty()
            && self.pool.workers.iter().all(|w| w.inflight.is_empty())
    }

    /// One turn of the loop: send batches, write, wait, read, enforce deadlines.
    fn step(&mut self) -> Result<(), Error> {
        self.dispatch()?;
        for i in 0..self.pool.workers.len() {
            let w = &mut self.pool.workers[i];
            if w.state != State::Gone
                && w.wants_write()
                && let Err(e) = w.flush()
            {
                self.lost(i, super::loss::Cause::Io(e))?;
            }
        }
        if self.complete() || self.job.stopped() {
            return Ok(());
        }

        let timeout = self.poll_timeout();
        let mut sources = Vec::with_capacity(4 * self.pool.workers.len() + 1);
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(sources.capacity());
        fn add<'a>(
            fds: &mut Vec<PollFd<'a>>,
            sources: &mut Vec<Source>,
            fd: BorrowedFd<'a>,
            events: PollFlags,
            source: Source,
        ) {
            fds.push(PollFd::new(fd, events));
            sources.push(source);
        }
        // `fds` borrows the pool's descriptors until it is dropped below, before anything
        // changes the pool.
        if let Some(g) = &self.pool.signals {
            add(
                &mut fds,
                &mut sources,
                g.fd(),
                PollFlags::POLLIN,
                Source::Signal,
            );
        }
        for (i, w) in self.pool.workers.iter().enumerate() {
            if w.state == State::Gone {
                continue;
            }
            let mut events = PollFlags::POLLIN;
            if w.wants_write() {
                events |= PollFlags::POLLOUT;
            }
            add(
                &mut fds,
                &mut sources,
                w.sock.as_fd(),
                events,
                Source::Socket(i),
            );
            if let Some(fd) = w.exit_fd() {
                add(
                    &mut fds,
                    &mut sources,
                    fd,
                    PollFlags::POLLIN,
                    Source::Exited(i),
                );
            }
            if let Some(fd) = w.stdout.fd() {
                add(
                    &mut fds,
                    &mut sources,
                    fd,
                    PollFlags::POLLIN,
                    Source::Stdout(i),
                );
            }
            if let Some(fd) = w.stderr.fd() {
                add(
                    &mut fds,
                    &mut sources,
                    fd,
                    PollFlags::POLLIN,
                    Source::Stderr(i),
                );
            }
        }
        let interrupted = match poll(&mut fds, timeout) {
            Ok(_) => false,
            Err(nix::errno::Errno::EINTR) => true,
            Err(e) => return Err(Error::io("poll on worker sockets failed", e.into())),
        };
        let events: Vec<(Source, PollFlags)> = fds
            .iter()
            .zip(&sources)
            .filter_map(|(fd, &s)| {
                let ev = fd.revents().unwrap_or(PollFlags::empty());
                (!ev.is_empty()).then_some((s, ev))
            })
            .collect();
        drop(fds);

        let signalled = interrupted || events.iter().any(|(s, _)| matches!(s, Source::Signal));
        if signalled && let Some(signal) = self.pool.signals.as_ref().and_then(|g| g.fired()) {
            return Err(Error::Interrupted { signal });
        }
        for (source, ev) in events {
            if self.job.stopped() {
                break;
            }
            match source {
                Source::Signal => {}
                Source::Stdout(i) => self.pool.workers[i].stdout.pump(),
                Source::Stderr(i) => self.pool.workers[i].stderr.pump(),
                Source::Socket(i) => {
                    if self.pool.workers[i].state == State::Gone {
                        continue;
                    }
                    if ev.contains(PollFlags::POLLOUT)
                        && let Err(e) = self.pool.workers[i].flush()
                    {
                        self.lost(i, super::loss::Cause::Io(e))?;
                        continue;
                    }
                    if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                        self.receive(i)?;
                    }
                }
                Source::Exited(i) => self.exited(i)?,
            }
        }
        self.check_handshakes()?;
        self.check_timeouts()?;
        self.check_deadline()?;
        self.recycle()
    }
}
