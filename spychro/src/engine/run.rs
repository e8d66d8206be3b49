//! One job over a pool: reads items lazily, sends them in adaptive batches (two in flight per
//! worker), polls every worker socket from the caller's thread, and hands back outcomes in
//! input order.
//!
//! The loop never blocks on one worker: sockets are non-blocking, writes are queued, and every
//! wait is a `poll` whose timeout is the nearest deadline. A worker that dies or breaks the
//! protocol becomes an error at once.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::pool::{InFlight, Pool, PoolOptions, State, Worker};
use super::reorder::Reorder;
use super::sizer::{MAX_BYTES, Sizer};
use crate::error::{Error, FailureKind, ItemError, WorkerErrorKind};
use crate::job_fn::JobFn;
use crate::wire::{self, Cursor, WireError};

/// Batches in flight per worker: one running, one waiting in its socket.
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
}

/// The job's state apart from the pool, so that frame handlers can borrow it beside a worker.
struct Progress<F: JobFn> {
    job: u32,
    sizer: Sizer,
    reorder: Reorder<Outcome<F::Output>>,
    /// The first item failure seen; nothing more is dispatched once it is set.
    failed: Option<Box<ItemError>>,
}

impl<F: JobFn> Progress<F> {
    /// Records an item failure; the lowest index seen wins, so that the error does not depend
    /// on which worker answered first when several items fail.
    fn fail(&mut self, failure: Box<ItemError>) {
        if self.failed.as_ref().is_none_or(|f| f.index > failure.index) {
            self.failed = Some(failure);
        }
    }
}

/// A job running over a pool of worker processes.
pub(crate) struct Run<F: JobFn, It> {
    pool: Pool,
    input: It,
    input_done: bool,
    next_index: u64,
    bounded: bool,
    progress: Progress<F>,
    finished: bool,
}

impl<F: JobFn, It: Iterator<Item = F::Item>> Run<F, It> {
    /// Starts the workers and sends them the job. Items are read only as batches are sent.
    pub(crate) fn start(
        pool: PoolOptions,
        options: RunOptions,
        items: It,
        args: &F::Args,
    ) -> Result<Self, Error> {
        if options.chunk_size == Some(0) {
            return Err(Error::Config("chunk_size must be at least 1".into()));
        }
        if pool.processes == 0 {
            return Err(Error::Config("processes must be at least 1".into()));
        }
        let args = wire::encode_value(args).map_err(|e| {
            Error::Config(format!(
                "the extra arguments of job `{}` could not be serialized: {e}",
                F::NAME
            ))
        })?;
        let setup = wire::Setup {
            job: 0,
            name: F::NAME.to_owned(),
            signature: F::SIGNATURE,
            args,
        };
        let mut pool = Pool::start(pool)?;
        for w in &mut pool.workers {
            // Queued now; the worker reads it right after sending its handshake.
            wire::push_message(w.queue(), wire::TAG_SETUP, &setup).map_err(|e| {
                Error::Config(format!("the job set-up message could not be built: {e}"))
            })?;
        }
        Ok(Run {
            pool,
            input: items,
            input_done: false,
            next_index: 0,
            bounded: options.bounded,
            progress: Progress {
                job: 0,
                sizer: Sizer::new(options.chunk_size),
                reorder: Reorder::new(),
                failed: None,
            },
            finished: false,
        })
    }

    /// The next outcome in input order, `Ok(None)` when every item is done.
    ///
    /// After an item fails, the outcomes before it that already arrived come first, then the
    /// failure, then the end: the workers are killed as soon as the failure is seen.
    pub(crate) fn next(&mut self) -> Result<Option<Outcome<F::Output>>, Error> {
        loop {
            let p = &mut self.progress;
            if let Some(failed) = &p.failed {
                if p.reorder.next_index() < failed.index
                    && let Some(o) = p.reorder.pop()
                {
                    return Ok(Some(o));
                }
                self.finished = true;
                return Ok(p.failed.take().map(Err));
            }
            if let Some(o) = p.reorder.pop() {
                return Ok(Some(o));
            }
            if self.finished {
                return Ok(None);
            }
            if self.input_done && self.pool.workers.iter().all(|w| w.inflight.is_empty()) {
                self.pool.shutdown();
                self.finished = true;
                continue;
            }
            if let Err(e) = self.step() {
                self.pool.kill_all();
                match e {
                    Error::Item(failure) => self.progress.fail(failure),
                    e => {
                        self.finished = true;
                        return Err(e);
                    }
                }
            }
        }
    }

    /// One turn of the loop: send batches, write, wait, read.
    fn step(&mut self) -> Result<(), Error> {
        self.dispatch()?;
        for i in 0..self.pool.workers.len() {
            let w = &mut self.pool.workers[i];
            if w.state != State::Gone
                && w.wants_write()
                && let Err(e) = w.flush()
            {
                return Err(self.gone(i, Some(e)));
            }
        }
        if self.input_done && self.pool.workers.iter().all(|w| w.inflight.is_empty()) {
            return Ok(());
        }

        let now = Instant::now();
        let mut deadline: Option<Instant> = None;
        let mut fds = Vec::with_capacity(self.pool.workers.len());
        let mut which = Vec::with_capacity(self.pool.workers.len());
        for (i, w) in self.pool.workers.iter().enumerate() {
            match w.state {
                State::Gone => continue,
                State::Starting { deadline: d } | State::Loading { deadline: d } => {
                    deadline = Some(deadline.map_or(d, |x| x.min(d)));
                }
                State::Ready => {}
            }
            let mut events = PollFlags::POLLIN;
            if w.wants_write() {
                events |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(w.sock.as_fd(), events));
            which.push(i);
        }
        if fds.is_empty() {
            return Err(Error::Config("every worker process is gone".into()));
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms = d.saturating_duration_since(now).as_millis().min(60_000) as u16;
                PollTimeout::from(ms.max(1))
            }
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::io("poll on worker sockets failed", e.into())),
        }
        let ready: Vec<(usize, PollFlags)> = fds
            .iter()
            .zip(&which)
            .filter_map(|(fd, &i)| {
                let ev = fd.revents().unwrap_or(PollFlags::empty());
                (!ev.is_empty()).then_some((i, ev))
            })
            .collect();
        drop(fds);

        for (i, ev) in ready {
            // A failure seen earlier in this turn killed the pool: nothing more to hear.
            if self.progress.failed.is_some() {
                break;
            }
            if self.pool.workers[i].state == State::Gone {
                continue;
            }
            if ev.contains(PollFlags::POLLOUT) {
                let w = &mut self.pool.workers[i];
                if let Err(e) = w.flush() {
                    return Err(self.gone(i, Some(e)));
                }
            }
            if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                self.receive(i)?;
            }
        }
        self.check_deadlines()
    }

    /// Reads what worker `i` sent and handles each whole frame.
    fn receive(&mut self, i: usize) -> Result<(), Error> {
        let w = &mut self.pool.workers[i];
        let open = match w.rx.fill(&mut &w.sock) {
            Ok(open) => open,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            Err(e) => return Err(self.gone(i, Some(e))),
        };
        loop {
            let w = &mut self.pool.workers[i];
            let frame = match w.rx.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    return Err(self.pool.worker_error(i, WorkerErrorKind::Wire(e)));
                }
            };
            let (tag, body) = frame;
            // The body borrows the worker's receive buffer; the handler gets the rest of the
            // worker separately.
            let body: Vec<u8> = body.to_vec();
            if let Err(kind) = handle_frame(&mut self.progress, w, tag, &body) {
                return Err(self.pool.worker_error(i, kind));
            }
            if self.progress.failed.is_some() {
                self.pool.kill_all();
                return Ok(());
            }
        }
        if !open {
            return Err(self.gone(i, None));
        }
        Ok(())
    }

    /// Worker `i` closed its socket or could not be written to: it is dead or dying. When it
    /// held items, the one it was running fails as a crash (and the run stops); otherwise the
    /// returned error ends the run.
    fn gone(&mut self, i: usize, io: Option<std::io::Error>) -> Error {
        let w = &mut self.pool.workers[i];
        let pid = w.pid;
        let state = w.state;
        let status = w.reap(Duration::from_millis(500));
        if let (Some(index), Some(batch)) = (w.current_item(), w.inflight.front()) {
            let last = batch.first + batch.count as u64 - 1;
            let message = if index == last {
                format!("the worker process died with {status} while running this item")
            } else {
                format!(
                    "the worker process died with {status} while running items \
                     {index}..={last}; this is the first of them"
                )
            };
            let item = describe::<F>(&batch.records, (index - batch.first) as usize);
            return ItemError {
                job: F::NAME,
                index,
                item,
                pid,
                kind: FailureKind::Crashed { status, message },
            }
            .into();
        }
        let kind = match (state, io) {
            (State::Starting { .. }, _) => WorkerErrorKind::DiedBeforeHandshake(status),
            (_, Some(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => WorkerErrorKind::Io(e),
            _ => WorkerErrorKind::Died(status),
        };
        self.pool.worker_error(i, kind)
    }

    fn check_deadlines(&mut self) -> Result<(), Error> {
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

    /// Sends batches breadth-first: every ready worker gets one before any gets a second,
    /// and while some workers are still starting, the ready ones hold one batch each.
    fn dispatch(&mut self) -> Result<(), Error> {
        if self.input_done || self.progress.failed.is_some() {
            return Ok(());
        }
        let workers = &self.pool.workers;
        let live = workers.iter().filter(|w| w.state != State::Gone).count();
        let starting = workers
            .iter()
            .any(|w| matches!(w.state, State::Starting { .. } | State::Loading { .. }));
        let depth = if starting { 1 } else { PIPELINE };
        for level in 0..depth {
            for i in 0..self.pool.workers.len() {
                let w = &self.pool.workers[i];
                if w.state != State::Ready || w.inflight.len() != level {
                    continue;
                }
                let size = self.progress.sizer.next(self.remaining(), live);
                if self.bounded {
                    let ahead = self.next_index - self.progress.reorder.next_index();
                    if ahead >= (3 * PIPELINE * live * size) as u64 {
                        return Ok(());
                    }
                }
                let Some(batch) = self.next_batch(size) else {
                    return Ok(());
                };
                let w = &mut self.pool.workers[i];
                if let Err(e) = wire::push_batch(
                    w.queue(),
                    self.progress.job,
                    batch.first,
                    batch.count,
                    &batch.records,
                ) {
                    return Err(Error::Config(format!("a batch could not be framed: {e}")));
                }
                w.inflight.push_back(batch);
                if self.progress.failed.is_some() {
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

    /// Reads up to `size` items (fewer if they pass [`MAX_BYTES`]) and serializes them.
    fn next_batch(&mut self, size: usize) -> Option<InFlight> {
        let first = self.next_index;
        let mut records = Vec::new();
        let mut count = 0u32;
        while (count as usize) < size && records.len() < MAX_BYTES {
            let Some(item) = self.input.next() else {
                self.input_done = true;
                break;
            };
            let index = self.next_index;
            self.next_index += 1;
            if let Err(message) = wire::push_record(&mut records, &item) {
                self.progress.fail(Box::new(ItemError {
                    job: F::NAME,
                    index,
                    item: F::describe(&item),
                    pid: std::process::id(),
                    kind: FailureKind::SerializeItem { message },
                }));
                break;
            }
            count += 1;
        }
        (count > 0).then_some(InFlight {
            first,
            count,
            done: 0,
            records,
        })
    }
}

/// Handles one frame from worker `w`. An `Err` is a protocol violation by that worker.
fn handle_frame<F: JobFn>(
    p: &mut Progress<F>,
    w: &mut Worker,
    tag: u8,
    body: &[u8],
) -> Result<(), WorkerErrorKind> {
    let wire_err = WorkerErrorKind::Wire;
    match (tag, w.state) {
        (wire::TAG_HELLO, State::Starting { deadline }) => {
            let hello: wire::Hello = wire::decode(body, "hello").map_err(wire_err)?;
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
            let done: wire::SetupDone = wire::decode(body, "setup done").map_err(wire_err)?;
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
        (wire::TAG_RESULTS, State::Ready) => receive_results(p, w, body).map_err(wire_err),
        (tag, state) => Err(WorkerErrorKind::Wire(WireError::Decode {
            what: "incoming",
            message: format!("message tag {tag} is not expected while the worker is {state:?}"),
        })),
    }
}

fn receive_results<F: JobFn>(
    p: &mut Progress<F>,
    w: &mut Worker,
    body: &[u8],
) -> Result<(), WireError> {
    let (h, mut c) = wire::parse_results(body)?;
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
            "results for job {} items {}+{} do not match the batch in flight (job {}, next \
             item {expected}, {} left)",
            h.job,
            h.first,
            h.count,
            p.job,
            batch.count - batch.done
        )));
    }
    let mut outcomes = Vec::with_capacity(h.count as usize);
    for j in 0..h.count {
        let index = h.first + j as u64;
        let kind = match wire::next_outcome(&mut c)? {
            Ok(bytes) => match wire::decode_value::<F::Output>(bytes) {
                Ok(out) => {
                    outcomes.push(Ok(out));
                    continue;
                }
                Err(message) => FailureKind::DeserializeOutput { message },
            },
            Err(failure) => failure.kind,
        };
        let failure = Box::new(ItemError {
            job: F::NAME,
            index,
            item: describe::<F>(&batch.records, (index - batch.first) as usize),
            pid: w.pid,
            kind,
        });
        // Stop: the outcomes before it still count; everything after is abandoned.
        p.reorder.insert(h.first, outcomes);
        p.fail(failure);
        return Ok(());
    }
    if !c.is_empty() {
        return Err(bad("results carry bytes after their last outcome".into()));
    }
    p.reorder.insert(h.first, outcomes);
    batch.done += h.count;
    if batch.done == batch.count {
        w.inflight.pop_front();
    }
    p.sizer.observe(h.count, h.busy_ns);
    Ok(())
}

/// Describes item `n` of a batch from its record, for error messages.
fn describe<F: JobFn>(records: &[u8], n: usize) -> Option<String> {
    let mut c = Cursor::new(records, "batch");
    for _ in 0..n {
        c.record().ok()?;
    }
    let item: F::Item = wire::decode_value(c.record().ok()?).ok()?;
    F::describe(&item)
}
