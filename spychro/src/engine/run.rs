//! One job over a pool: reads items lazily, sends them in adaptive batches (two in flight per
//! worker), polls every worker socket and output pipe from the caller's thread, and hands back
//! outcomes in input order.
//!
//! The loop never blocks on one worker: sockets are non-blocking, writes are queued, and every
//! wait is a `poll` whose timeout is the nearest deadline (handshake, item timeout, job
//! deadline). A worker that dies is replaced: the item its status page says it was running
//! fails (or is retried), and the items it held but had not answered are sent again.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::placed::{Placed, Writer};
use super::pool::{InFlight, Pool, PoolOptions, State};
use super::reorder::Reorder;
use super::sizer::{MAX_BYTES, Sizer};
use crate::error::{Error, ExitStatus, FailureKind, ItemError, ItemErrorData, WorkerErrorKind};
use crate::hooks::{Hooks, WorkerLog};
use crate::job_fn::JobFn;
use crate::signals;
use crate::status::now_ms;
use crate::wire::{self, WireError};

/// Batches in flight per worker before every worker is up; once they are, small batches go
/// deeper (see `Sizer::depth`), so that one-item messages do not wake a sleeping worker each
/// time.
const PIPELINE: usize = 2;

/// One item's outcome.
pub(crate) type Outcome<O> = Result<O, Box<ItemError>>;

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

/// Why a worker was lost.
enum Cause {
    /// Its socket closed.
    Closed,
    /// Its socket failed.
    Io(std::io::Error),
    /// Item `index` ran past the timeout.
    TimedOut { index: u64, elapsed: Duration },
}

/// The job's state apart from the pool, so that frame handlers can borrow it beside a worker.
struct Progress<'h, F: JobFn> {
    job: u32,
    sizer: Sizer,
    reorder: Reorder<Outcome<F::Output>>,
    keep_going: bool,
    /// The first item failure seen (when not keeping going); nothing more is dispatched once
    /// it is set.
    failed: Option<Box<ItemError>>,
    hooks: Hooks<'h>,
    /// Worker deaths in a row that no item explains.
    unexplained: u32,
    /// Buffers of answered batches, to encode the next batches into.
    spare_items: Vec<Vec<u8>>,
    /// Where outputs go when the caller collects them all and stops at the first failure
    /// ([`Run::collect_outputs`]): outputs that arrive in order are decoded straight into it,
    /// with no outcome wrapped and no second pass.
    direct: Option<Placed<F::Output>>,
}

impl<F: JobFn> Progress<'_, F> {
    /// Reports a failed item: to the handler, then as an outcome (keep going) or as the run's
    /// failure. Among failures seen before the run stops, the lowest index wins; which items
    /// fail first in time, when several would, depends on the workers' timing.
    fn fail(&mut self, failure: Box<ItemError>) {
        self.hooks.failure(&failure);
        if self.keep_going {
            self.reorder.insert(failure.index(), vec![Err(failure)]);
        } else if self
            .failed
            .as_ref()
            .is_none_or(|f| f.index() > failure.index())
        {
            self.failed = Some(failure);
        }
    }

    fn stopped(&self) -> bool {
        self.failed.is_some()
    }

    /// With a direct sink: counts the outputs it now holds in order as delivered, and moves
    /// over the chunks that waited in the reorder buffer (those that did not fit in place)
    /// once their turn comes.
    fn drain_direct(&mut self) {
        let Some(placed) = &mut self.direct else {
            return;
        };
        loop {
            let in_order = placed.len() as u64;
            if in_order > self.reorder.next_index() {
                let n = (in_order - self.reorder.next_index()) as usize;
                self.reorder.skip(n);
                self.hooks.delivered_many(n);
            }
            if self.failed.is_some() {
                return;
            }
            let Some(mut chunk) = self.reorder.pop_chunk() else {
                return;
            };
            self.hooks.delivered_many(chunk.len());
            for outcome in chunk.drain(..) {
                match outcome {
                    Ok(out) => placed.push(out),
                    // Failures do not wait in order when stopping at the first one; should
                    // one, it stops the run like any other.
                    Err(failure) => {
                        if self
                            .failed
                            .as_ref()
                            .is_none_or(|f| f.index() > failure.index())
                        {
                            self.failed = Some(failure);
                        }
                        break;
                    }
                }
            }
            self.reorder.recycle(chunk);
        }
    }
}

/// Where one results frame's outcomes go.
enum Target<'a, O> {
    /// In place, into the caller's collection.
    Direct(Writer<'a, O>),
    /// A chunk for the reorder buffer.
    Chunk(Vec<Outcome<O>>),
}

impl<O> Target<'_, O> {
    /// The chunk to hand to the reorder buffer, if any; a writer records what it wrote as
    /// it is dropped here.
    fn into_chunk(self) -> Option<Vec<Outcome<O>>> {
        match self {
            Target::Direct(_) => None,
            Target::Chunk(chunk) => Some(chunk),
        }
    }
}

/// What a polled fd belongs to.
#[derive(Clone, Copy)]
enum Source {
    Socket(usize),
    Stdout(usize),
    Stderr(usize),
    Signal,
}

/// A job running over a pool of worker processes.
pub(crate) struct Run<'h, F: JobFn, It> {
    pool: Pool,
    input: It,
    input_done: bool,
    next_index: u64,
    /// Items to send again (their worker died before answering), by first index.
    requeue: BTreeMap<u64, InFlight>,
    attempts: HashMap<u64, u32>,
    /// The set-up frame, sent to every new worker.
    setup: Vec<u8>,
    options: RunOptions,
    started: Instant,
    signals: Option<signals::Guard>,
    progress: Progress<'h, F>,
    finished: bool,
}

impl<'h, F: JobFn, It: Iterator<Item = F::Item>> Run<'h, F, It> {
    /// Starts the workers and sends them the job. Items are read only as batches are sent.
    pub(crate) fn start(
        pool: PoolOptions,
        options: RunOptions,
        hooks: Hooks<'h>,
        items: It,
        args: &F::Args,
    ) -> Result<Self, Error> {
        if options.chunk_size == Some(0) {
            return Err(Error::Config("chunk_size must be at least 1".into()));
        }
        if pool.processes == 0 {
            return Err(Error::Config("processes must be at least 1".into()));
        }
        if options.max_items_per_worker == Some(0) {
            return Err(Error::Config(
                "max_items_per_worker must be at least 1".into(),
            ));
        }
        let args = wire::encode_value(args).map_err(|e| {
            Error::Config(format!(
                "the extra arguments of job `{}` could not be serialized: {e}",
                F::NAME
            ))
        })?;
        let mut setup = Vec::new();
        let message = wire::Setup {
            job: 0,
            name: F::NAME.to_owned(),
            signature: F::SIGNATURE,
            args,
            nested: pool.nested,
            log_level: options.log_level as u8,
            timed: options.timeout.is_some(),
            process: None,
        };
        wire::push_message(&mut setup, wire::TAG_SETUP, &message).map_err(|e| {
            Error::Config(format!("the job set-up message could not be built: {e}"))
        })?;
        // Before any worker exists, so that a signal can never find workers and no handler.
        let signals = signals::Guard::new().ok();
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
            setup,
            progress: Progress {
                job: 0,
                sizer: Sizer::new(options.chunk_size),
                reorder: Reorder::new(),
                keep_going: options.keep_going,
                failed: None,
                hooks,
                unexplained: 0,
                spare_items: Vec::new(),
                direct: None,
            },
            options,
            started: Instant::now(),
            signals,
            finished: false,
        })
    }

    /// The next outcome in input order, `Ok(None)` when every item is done.
    ///
    /// When not keeping going, after an item fails the outcomes before it that already arrived
    /// come first, then the failure, then the end: the workers are killed as soon as the
    /// failure is seen.
    pub(crate) fn next(&mut self) -> Result<Option<Outcome<F::Output>>, Error> {
        loop {
            let p = &mut self.progress;
            if let Some(e) = p.hooks.broken.take() {
                self.pool.kill_all();
                self.finished = true;
                return Err(e);
            }
            if let Some(failed) = &p.failed {
                if p.reorder.next_index() < failed.index()
                    && let Some(o) = p.reorder.pop()
                {
                    p.hooks.delivered();
                    return Ok(Some(o));
                }
                self.pool.kill_all();
                self.finished = true;
                p.hooks.delivered();
                return Ok(p.failed.take().map(Err));
            }
            if let Some(o) = p.reorder.pop() {
                p.hooks.delivered();
                return Ok(Some(o));
            }
            if self.finished {
                return Ok(None);
            }
            if self.complete() {
                self.pool.shutdown();
                self.finished = true;
                continue;
            }
            if let Err(e) = self.step() {
                self.pool.kill_all();
                self.finished = true;
                return Err(e);
            }
        }
    }

    /// Runs the job to the end and returns every output in input order; the first failure
    /// (an item's, or the machinery's) is the error. Outputs that arrive in order are decoded
    /// straight into the returned vector, which is sized up front when the input knows its
    /// length.
    pub(crate) fn collect_outputs(&mut self) -> Result<Vec<F::Output>, Error> {
        // Outputs are written in place, one slot per item: a failure cannot take a slot.
        debug_assert!(
            !self.progress.keep_going,
            "collect_outputs stops at a failure"
        );
        let expected = self.remaining().unwrap_or(0).min(1 << 24);
        let p = &mut self.progress;
        p.direct = Some(Placed::with_capacity(expected));
        p.drain_direct();
        let end = loop {
            let p = &mut self.progress;
            if let Some(e) = p.hooks.broken.take() {
                break Err(e);
            }
            if let Some(failure) = p.failed.take() {
                p.hooks.delivered();
                break Err(Error::Item(failure));
            }
            if self.finished || self.complete() {
                self.pool.shutdown();
                break Ok(());
            }
            if let Err(e) = self.step() {
                break Err(e);
            }
        };
        self.finished = true;
        let outputs = self.progress.direct.take().map(Placed::into_vec);
        match end {
            Ok(()) => match outputs {
                Some(v) if v.len() as u64 == self.next_index => Ok(v),
                _ => Err(Error::Config(format!(
                    "internal error: job `{}` ran {} items but collected a different number \
                     of outputs",
                    F::NAME,
                    self.next_index
                ))),
            },
            Err(e) => {
                self.pool.kill_all();
                Err(e)
            }
        }
    }

    /// Takes back a chunk from [`next_chunk`](Run::next_chunk) that the consumer emptied.
    pub(crate) fn give_back(&mut self, chunk: Vec<Outcome<F::Output>>) {
        self.progress.reorder.recycle(chunk);
    }

    /// Items the input still holds, when it knows exactly.
    pub(crate) fn input_len(&self) -> Option<usize> {
        self.remaining()
    }

    /// Like [`next`](Run::next), but hands over every outcome that is ready in order, as one
    /// run (at least one outcome), so that collecting a `Vec` costs no call per item.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<Vec<Outcome<F::Output>>>, Error> {
        loop {
            let p = &mut self.progress;
            let fast = p.failed.is_none() && p.hooks.broken.is_none();
            if fast && let Some(chunk) = p.reorder.pop_chunk() {
                // The very vector the outcomes were decoded into: no copy.
                p.hooks.delivered_many(chunk.len());
                return Ok(Some(chunk));
            }
            if !fast || self.finished || self.complete() {
                // A failure, a broken handler or the end: one outcome at a time, as `next`
                // orders them.
                return Ok(self.next()?.map(|o| vec![o]));
            }
            if let Err(e) = self.step() {
                self.pool.kill_all();
                self.finished = true;
                return Err(e);
            }
        }
    }

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
                self.lost(i, Cause::Io(e))?;
            }
        }
        if self.complete() || self.progress.stopped() {
            return Ok(());
        }

        let timeout = self.poll_timeout();
        let mut sources = Vec::with_capacity(3 * self.pool.workers.len() + 1);
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
        if let Some(g) = &self.signals {
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
        if signalled && let Some(signal) = self.signals.as_ref().and_then(|g| g.fired()) {
            self.pool.kill_all();
            return Err(Error::Interrupted { signal });
        }
        for (source, ev) in events {
            if self.progress.stopped() {
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
                        self.lost(i, Cause::Io(e))?;
                        continue;
                    }
                    if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                        self.receive(i)?;
                    }
                }
            }
        }
        self.check_handshakes()?;
        self.check_timeouts()?;
        self.check_deadline()?;
        self.recycle()
    }

    /// How long the next poll may wait: until the nearest handshake deadline, item timeout or
    /// job deadline.
    fn poll_timeout(&self) -> PollTimeout {
        let now = Instant::now();
        let mut wait: Option<Duration> = None;
        let mut at_most = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        for w in &self.pool.workers {
            if let State::Starting { deadline } | State::Loading { deadline } = w.state {
                at_most(deadline.saturating_duration_since(now));
            }
        }
        if let Some(limit) = self.options.timeout {
            let now_ms = now_ms();
            for w in &self.pool.workers {
                if w.state != State::Ready || w.inflight.is_empty() {
                    continue;
                }
                let left = match w.status.current() {
                    Some((_, started)) => {
                        let elapsed = Duration::from_millis(now_ms.saturating_sub(started));
                        limit.saturating_sub(elapsed)
                    }
                    // The next item may start at any moment: it cannot time out sooner.
                    None => limit,
                };
                // The shared clock ticks in milliseconds: wake just after the limit.
                at_most(left + Duration::from_millis(2));
            }
        }
        if let Some(limit) = self.options.deadline {
            at_most(limit.saturating_sub(self.started.elapsed()));
        }
        match wait {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms = d.as_millis().clamp(1, u16::MAX as u128) as u16;
                PollTimeout::from(ms)
            }
        }
    }

    /// Reads what worker `i` sent and handles each whole frame.
    fn receive(&mut self, i: usize) -> Result<(), Error> {
        let w = &mut self.pool.workers[i];
        let open = match w.rx.fill(&mut &w.sock) {
            Ok(open) => open,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            Err(e) => return self.lost(i, Cause::Io(e)),
        };
        // The frames borrow the receive buffer while their handler borrows the rest of the
        // run: lend the buffer out (no frame handler replaces the worker) and put it back.
        let mut rx = std::mem::take(&mut self.pool.workers[i].rx);
        let handled = self.handle_frames(i, &mut rx);
        self.pool.workers[i].rx = rx;
        handled?;
        if !open && !self.progress.stopped() {
            return self.lost(i, Cause::Closed);
        }
        Ok(())
    }

    /// Handles every whole frame in `rx`, which came from worker `i`.
    fn handle_frames(&mut self, i: usize, rx: &mut wire::FrameBuf) -> Result<(), Error> {
        loop {
            let (tag, body) = match rx.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.pool.worker_error(i, WorkerErrorKind::Wire(e))),
            };
            if let Err(kind) = self.handle_frame(i, tag, body) {
                return Err(self.pool.worker_error(i, kind));
            }
            if let Some(e) = self.progress.hooks.broken.take() {
                return Err(e);
            }
            if self.progress.stopped() {
                return Ok(());
            }
        }
    }

    /// Handles one frame from worker `i`. An `Err` is a protocol violation by that worker.
    fn handle_frame(&mut self, i: usize, tag: u8, body: &[u8]) -> Result<(), WorkerErrorKind> {
        let w = &mut self.pool.workers[i];
        match (tag, w.state) {
            (wire::TAG_HELLO, State::Starting { deadline }) => {
                let hello: wire::Hello =
                    wire::decode(body, "hello").map_err(WorkerErrorKind::Wire)?;
                if hello.protocol != wire::PROTOCOL_VERSION {
                    return Err(WorkerErrorKind::ProtocolMismatch {
                        ours: wire::PROTOCOL_VERSION,
                        theirs: hello.protocol,
                    });
                }
                w.state = State::Loading { deadline };
                Ok(())
            }
            (wire::TAG_SETUP_DONE, State::Loading { .. }) => {
                let done: wire::SetupDone =
                    wire::decode(body, "setup done").map_err(WorkerErrorKind::Wire)?;
                match done.result {
                    Ok(()) => {
                        w.state = State::Ready;
                        Ok(())
                    }
                    Err(reason) => Err(WorkerErrorKind::Refused {
                        job: F::NAME.to_owned(),
                        reason,
                    }),
                }
            }
            (wire::TAG_RESULTS, State::Ready) => {
                self.receive_results(i, body).map_err(WorkerErrorKind::Wire)
            }
            (wire::TAG_LOG, _) => {
                let log: wire::WireLog =
                    wire::decode(body, "log").map_err(WorkerErrorKind::Wire)?;
                let record = WorkerLog::from_wire(w.pid, log);
                self.progress.hooks.log(record);
                Ok(())
            }
            (wire::TAG_MESSAGE, State::Ready) => {
                let mut c = wire::Cursor::new(body, "message");
                let item = c.u64().map_err(WorkerErrorKind::Wire)?;
                let message = c.bytes(c.remaining()).map_err(WorkerErrorKind::Wire)?;
                let pid = w.pid;
                self.progress.hooks.message(pid, item, message);
                Ok(())
            }
            (wire::TAG_PROGRESS, State::Ready) => {
                let p: wire::WireProgress =
                    wire::decode(body, "progress").map_err(WorkerErrorKind::Wire)?;
                let pid = w.pid;
                self.progress.hooks.progress(pid, p.item, p.fraction);
                Ok(())
            }
            (tag, state) => Err(WorkerErrorKind::Wire(WireError::Decode {
                what: "incoming",
                message: format!("message tag {tag} is not expected while the worker is {state:?}"),
            })),
        }
    }

    fn receive_results(&mut self, i: usize, body: &[u8]) -> Result<(), WireError> {
        let (h, rest) = wire::parse_results(body)?;
        let p = &mut self.progress;
        let w = &mut self.pool.workers[i];
        let bad = |message: String| WireError::Decode {
            what: "results",
            message,
        };
        let Some(batch) = w.inflight.front_mut() else {
            return Err(bad("results arrived with no batch in flight".into()));
        };
        let expected = batch.first + batch.done as u64;
        if h.job != p.job || h.first != expected || h.count > batch.count - batch.done {
            return Err(bad(format!(
                "results for job {} items {}+{} do not match the batch in flight (job {}, \
                 next item {expected}, {} left)",
                h.job,
                h.first,
                h.count,
                p.job,
                batch.count - batch.done
            )));
        }
        p.unexplained = 0;
        // Collected: in place in the caller's vector, if it fits there.
        let writer = match (&mut p.direct, usize::try_from(h.first)) {
            (Some(placed), Ok(at)) if !p.keep_going => {
                if at < placed.len() {
                    return Err(bad(format!(
                        "results for items {}+{} arrived twice",
                        h.first, h.count
                    )));
                }
                placed.writer(at, h.count as usize)
            }
            _ => None,
        };
        let mut target = match writer.map(Target::Direct) {
            Some(direct) => direct,
            None => Target::Chunk(p.reorder.buffer(h.count as usize)),
        };
        let mut values = wire::Values::new(rest);
        // Outputs, then the failure that ended the frame, if one did.
        let end = h.first + h.count as u64;
        let outputs_end = end - u64::from(h.failed);
        let mut index = h.first;
        let mut failure = None;
        while index < end {
            let wanted = outputs_end.saturating_sub(index) as usize;
            let (decoded, stopped) = match &mut target {
                Target::Direct(w) => values.decode_into(wanted, w),
                Target::Chunk(chunk) => values.decode_into(wanted, &mut Chunk(chunk)),
            }
            .map_err(bad)?;
            index += decoded as u64;
            if index == end {
                break;
            }
            let kind = match stopped {
                Some(message) => FailureKind::DeserializeOutput { message },
                None => wire::read_failure(&mut values)?.kind,
            };
            let f = Box::new(ItemError::from(ItemErrorData {
                job: F::NAME,
                index,
                item: describe::<F>(batch.item((index - batch.first) as u32)),
                pid: w.pid,
                kind,
            }));
            index += 1;
            p.hooks.failure(&f);
            match &mut target {
                Target::Chunk(chunk) if p.keep_going => chunk.push(Err(f)),
                // Stop: the outcomes before it still count; everything after is abandoned.
                _ => {
                    failure = Some(f);
                    break;
                }
            }
        }
        if failure.is_none() {
            wire::read_all(&values, "results")?;
        }
        if let Some(chunk) = target.into_chunk() {
            p.reorder.insert(h.first, chunk);
        }
        p.drain_direct();
        if let Some(f) = failure {
            if p.failed.as_ref().is_none_or(|g| g.index() > f.index()) {
                p.failed = Some(f);
            }
            return Ok(());
        }
        batch.done += h.count;
        if batch.done == batch.count
            && let Some(answered) = w.inflight.pop_front()
            && p.spare_items.len() < 2 * PIPELINE
            && let Ok(items) = Arc::try_unwrap(answered.items)
        {
            p.spare_items.push(items);
        }
        p.sizer.observe(h.count, h.busy_ns);
        Ok(())
    }

    /// Worker `i` is dead or must die. Fails (or retries) the item it was running, sends the
    /// items it had not answered to other workers, and starts a replacement.
    fn lost(&mut self, i: usize, cause: Cause) -> Result<(), Error> {
        let w = &mut self.pool.workers[i];
        let pid = w.pid;
        let was = w.state;
        let running = w.status.current().map(|(k, _)| k);
        let status = match cause {
            Cause::TimedOut { .. } => {
                w.kill();
                w.reap(Duration::ZERO)
            }
            Cause::Closed | Cause::Io(_) => w.reap(Duration::from_millis(500)),
        };
        let batches: Vec<InFlight> = w.inflight.drain(..).collect();
        if let State::Starting { .. } | State::Loading { .. } = was {
            // A worker that cannot start will not start on a second try either.
            let kind = match cause {
                Cause::Io(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    WorkerErrorKind::Io(e)
                }
                _ => WorkerErrorKind::DiedBeforeHandshake(status),
            };
            return Err(self.pool.worker_error(i, kind));
        }
        let unanswered = |k: u64| {
            batches
                .iter()
                .any(|b| k >= b.first + b.done as u64 && k < b.first + b.count as u64)
        };
        let culprit = match &cause {
            Cause::TimedOut { index, .. } => Some(*index),
            _ => running.filter(|&k| unanswered(k)),
        };
        for b in &batches {
            let split = culprit
                .and_then(|k| k.checked_sub(b.first))
                .filter(|&n| n < b.count as u64)
                .map(|n| n as u32);
            let pieces = match split {
                Some(n) => [b.slice(b.done, n), b.slice(n + 1, b.count)],
                None => [b.slice(b.done, b.count), None],
            };
            for piece in pieces.into_iter().flatten() {
                self.requeue.insert(piece.first, piece);
            }
        }
        match culprit {
            Some(k) => {
                let Some((batch, n)) = batches.iter().find_map(|b| {
                    let n = k.checked_sub(b.first)?;
                    (n < b.count as u64).then_some((b, n as u32))
                }) else {
                    return Err(Error::Config(format!(
                        "internal error: item {k} was not held by worker {pid}"
                    )));
                };
                let attempts = {
                    let a = self.attempts.entry(k).or_insert(0);
                    *a += 1;
                    *a
                };
                if attempts <= self.options.retries {
                    if let Some(single) = batch.slice(n, n + 1) {
                        log::warn!(
                            "item {k} of job `{}` lost its worker {pid} ({status}); retrying it \
                             ({} of {})",
                            F::NAME,
                            attempts,
                            self.options.retries
                        );
                        self.requeue.insert(k, single);
                    }
                } else {
                    let kind = self.failure_kind(i, &cause, status, attempts);
                    let item = describe::<F>(batch.item(n));
                    self.progress.fail(Box::new(ItemError::from(ItemErrorData {
                        job: F::NAME,
                        index: k,
                        item,
                        pid,
                        kind,
                    })));
                }
                self.progress.unexplained = 0;
            }
            None => {
                self.progress.unexplained += 1;
                if self.progress.unexplained > 2 * self.pool.workers.len() as u32 + 2 {
                    return Err(self.pool.worker_error(i, WorkerErrorKind::Died(status)));
                }
                log::warn!(
                    "worker {pid} of job `{}` ended with {status} outside any item; replacing it",
                    F::NAME
                );
            }
        }
        if self.progress.stopped() {
            self.pool.kill_all();
            return Ok(());
        }
        self.pool.respawn(i)?;
        self.pool.workers[i].queue().extend_from_slice(&self.setup);
        Ok(())
    }

    /// What to report for the item a lost worker was running.
    fn failure_kind(&self, i: usize, cause: &Cause, status: ExitStatus, tries: u32) -> FailureKind {
        let tries = if tries > 1 {
            format!(" (tried {tries} times)")
        } else {
            String::new()
        };
        if let Cause::TimedOut { elapsed, .. } = cause {
            let limit = self.options.timeout.unwrap_or_default();
            return FailureKind::TimedOut {
                limit,
                elapsed: *elapsed,
                message: format!(
                    "timed out after {elapsed:?} (limit {limit:?}); its worker was killed and \
                     replaced{tries}"
                ),
            };
        }
        let w = &self.pool.workers[i];
        if let Some(limit) = self.pool.options.memory_limit
            && let Some(line) = w.stderr.oom_report()
        {
            return FailureKind::OutOfMemory {
                limit,
                message: format!("{line}{tries}"),
            };
        }
        FailureKind::Crashed {
            status,
            message: format!("the worker process died with {status} while running it{tries}"),
        }
    }

    fn check_handshakes(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        for i in 0..self.pool.workers.len() {
            if let State::Starting { deadline } | State::Loading { deadline } =
                self.pool.workers[i].state
                && now >= deadline
            {
                let waited = self.pool.options.start_timeout;
                return Err(self
                    .pool
                    .worker_error(i, WorkerErrorKind::HandshakeTimeout(waited)));
            }
        }
        Ok(())
    }

    /// Kills the worker of every item that ran past the timeout.
    fn check_timeouts(&mut self) -> Result<(), Error> {
        let Some(limit) = self.options.timeout else {
            return Ok(());
        };
        let now = now_ms();
        for i in 0..self.pool.workers.len() {
            let w = &self.pool.workers[i];
            if w.state != State::Ready {
                continue;
            }
            if let Some((index, started)) = w.status.current()
                && w.find(index).is_some()
            {
                let elapsed = Duration::from_millis(now.saturating_sub(started));
                if elapsed >= limit {
                    self.lost(i, Cause::TimedOut { index, elapsed })?;
                    if self.progress.stopped() {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    fn check_deadline(&mut self) -> Result<(), Error> {
        match self.options.deadline {
            Some(limit) if self.started.elapsed() >= limit => {
                self.pool.kill_all();
                Err(Error::DeadlineExceeded {
                    limit,
                    completed: self.progress.reorder.next_index(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Replaces the workers that ran their share of items.
    fn recycle(&mut self) -> Result<(), Error> {
        let Some(max) = self.options.max_items_per_worker else {
            return Ok(());
        };
        for i in 0..self.pool.workers.len() {
            let w = &self.pool.workers[i];
            if w.state == State::Ready && w.assigned >= max && w.inflight.is_empty() {
                self.pool.retire(i);
                self.pool.respawn(i)?;
                self.pool.workers[i].queue().extend_from_slice(&self.setup);
            }
        }
        Ok(())
    }

    /// Sends batches breadth-first: every ready worker gets one before any gets a second,
    /// and while some workers are still starting, the ready ones hold one batch each.
    fn dispatch(&mut self) -> Result<(), Error> {
        if self.progress.stopped() {
            return Ok(());
        }
        let workers = &self.pool.workers;
        let live = workers.iter().filter(|w| w.state != State::Gone).count();
        let starting = workers
            .iter()
            .any(|w| matches!(w.state, State::Starting { .. } | State::Loading { .. }));
        let first_size = self.progress.sizer.next(self.remaining(), live);
        let depth = if starting {
            1
        } else {
            self.progress.sizer.depth(first_size).max(PIPELINE)
        };
        for level in 0..depth {
            for i in 0..self.pool.workers.len() {
                let w = &self.pool.workers[i];
                if w.state != State::Ready || w.inflight.len() != level {
                    continue;
                }
                let mut size = self.progress.sizer.next(self.remaining(), live);
                if let Some(max) = self.options.max_items_per_worker {
                    let quota = max.saturating_sub(w.assigned);
                    if quota == 0 {
                        continue;
                    }
                    size = size.min(quota as usize);
                }
                if self.options.bounded && self.requeue.is_empty() {
                    let ahead = self.next_index - self.progress.reorder.next_index();
                    if ahead >= (3 * depth * live * size) as u64 {
                        return Ok(());
                    }
                }
                let Some(batch) = self.next_batch(size) else {
                    return Ok(());
                };
                let w = &mut self.pool.workers[i];
                if let Err(e) = w.queue_batch(self.progress.job, &batch) {
                    return Err(Error::Config(format!("a batch could not be framed: {e}")));
                }
                w.assigned += batch.count as u64;
                w.inflight.push_back(batch);
                if self.progress.stopped() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Items left, when the iterator knows exactly.
    fn remaining(&self) -> Option<usize> {
        match self.input.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo),
            _ => None,
        }
    }

    /// The next batch of at most `size` items: items to send again first, then new items
    /// (fewer if they pass [`MAX_BYTES`]), serialized.
    fn next_batch(&mut self, size: usize) -> Option<InFlight> {
        if let Some((_, batch)) = self.requeue.pop_first() {
            if batch.count as usize <= size {
                return Some(batch);
            }
            let head = batch.slice(0, size as u32);
            if let Some(rest) = batch.slice(size as u32, batch.count) {
                self.requeue.insert(rest.first, rest);
            }
            return head;
        }
        if self.input_done {
            return None;
        }
        let first = self.next_index;
        let mut items = self.progress.spare_items.pop().unwrap_or_default();
        items.clear();
        let mut count = 0u32;
        let mut failed = false;
        while (count as usize) < size && items.len() < MAX_BYTES {
            let Some(item) = self.input.next() else {
                self.input_done = true;
                break;
            };
            let index = first + u64::from(count);
            if let Err(message) = wire::push_value(&mut items, &item) {
                self.progress.fail(Box::new(ItemError::from(ItemErrorData {
                    job: F::NAME,
                    index,
                    item: F::describe(&item),
                    pid: std::process::id(),
                    kind: FailureKind::SerializeItem { message },
                })));
                // The batch ends before the failed item; in keep-going mode the next batch
                // starts after it.
                failed = true;
                break;
            }
            count += 1;
        }
        // The failed item, if one ended the batch, is used up too.
        self.next_index = first + u64::from(count) + u64::from(failed);
        self.progress.sizer.built(count, items.len());
        (count > 0).then_some(InFlight {
            first,
            count,
            done: 0,
            items: Arc::new(items),
        })
    }
}

/// Outputs decoded into a reorder chunk.
struct Chunk<'a, O>(&'a mut Vec<Outcome<O>>);

impl<O> wire::Sink<O> for Chunk<'_, O> {
    #[inline(always)]
    fn push(&mut self, value: O) {
        self.0.push(Ok(value));
    }
}

/// Describes an item from its encoding, for error messages.
fn describe<F: JobFn>(encoded: Option<&[u8]>) -> Option<String> {
    let item: F::Item = wire::decode_value(encoded?).ok()?;
    F::describe(&item)
}
