//! What comes in from workers: reads a worker's socket, routes each frame (handshake, results,
//! logs, messages, progress), and decodes results frames — outputs in place in the caller's
//! vector when they can go there, else into a chunk for the reorder buffer; a failed item to
//! the job's failure decision (`JobState::fail` / `stop_at`).

use std::sync::Arc;

use super::handshake::{self, Step};
use super::hooks::WorkerLog;
use super::job::{JobState, Outcome};
use super::loss::Cause;
use super::placed::Writer;
use super::run::Run;
use super::worker::{State, Worker};
use crate::call::job_fn::JobFn;
use crate::error::{Error, FailureKind, ItemError, WireError, WorkerErrorKind};
use crate::wire;

/// Keeps at most this many spare item buffers (per pipeline slot of a worker, twice).
const SPARE_BUFFERS: usize = 4;

impl<F: JobFn, It: Iterator<Item = F::Item>> Run<'_, F, It> {
    /// Reads what worker `i` sent and handles each whole frame.
    pub(super) fn receive(&mut self, i: usize) -> Result<(), Error> {
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
        if !open && !self.job.stopped() {
            return self.lost(i, Cause::Closed);
        }
        Ok(())
    }

    /// Worker `i`'s process ended (its pidfd said so): take what it sent before it did, then
    /// treat it as lost — whoever still holds its socket (a forked copy) cannot delay this.
    pub(super) fn exited(&mut self, i: usize) -> Result<(), Error> {
        if self.pool.workers[i].state == State::Gone {
            return Ok(());
        }
        self.receive(i)?;
        if self.pool.workers[i].state != State::Gone && !self.job.stopped() {
            return self.lost(i, Cause::Exited);
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
            if let Some(e) = self.job.hooks.broken.take() {
                return Err(e);
            }
            if self.job.stopped() {
                return Ok(());
            }
        }
    }

    /// Handles one frame from worker `i`. An `Err` is a protocol violation by that worker.
    fn handle_frame(&mut self, i: usize, tag: u8, body: &[u8]) -> Result<(), WorkerErrorKind> {
        let w = &mut self.pool.workers[i];
        if let Step::Done = handshake::on_frame(w, tag, body, F::NAME)? {
            if w.state == State::Ready {
                self.pool.failed_starts = 0;
            }
            return Ok(());
        }
        match (tag, w.state) {
            (wire::TAG_RESULTS, State::Ready) => {
                let (w, job) = (&mut self.pool.workers[i], &mut self.job);
                self.unexplained = 0;
                receive_results(w, job, body).map_err(WorkerErrorKind::Wire)
            }
            (wire::TAG_LOG, _) => {
                let log: wire::WireLog =
                    wire::decode(body, "log").map_err(WorkerErrorKind::Wire)?;
                let record = WorkerLog::from_wire(w.pid, log);
                self.job.hooks.log(record);
                Ok(())
            }
            (wire::TAG_MESSAGE, State::Ready) => {
                let mut c = wire::Cursor::new(body, "message");
                let item = c.u64().map_err(WorkerErrorKind::Wire)?;
                let message = c.bytes(c.remaining()).map_err(WorkerErrorKind::Wire)?;
                let pid = w.pid;
                self.job.hooks.message(pid, item, message);
                Ok(())
            }
            (wire::TAG_PROGRESS, State::Ready) => {
                let p: wire::WireProgress =
                    wire::decode(body, "progress").map_err(WorkerErrorKind::Wire)?;
                let pid = w.pid;
                self.job.hooks.progress(pid, p.item, p.fraction);
                Ok(())
            }
            (tag, state) => Err(WorkerErrorKind::Wire(WireError::Decode {
                what: "incoming",
                message: format!("message tag {tag} is not expected while the worker is {state:?}"),
            })),
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

/// Outputs decoded into a reorder chunk.
struct Chunk<'a, O>(&'a mut Vec<Outcome<O>>);

impl<O> wire::Sink<O> for Chunk<'_, O> {
    #[inline(always)]
    fn push(&mut self, value: O) {
        self.0.push(Ok(value));
    }
}

/// Decodes a results frame from worker `w` for `job`: outputs go in place or to the reorder
/// buffer; a failed item is reported (and, unless keeping going, stops the job).
fn receive_results<F: JobFn>(
    w: &mut Worker,
    job: &mut JobState<'_, F>,
    body: &[u8],
) -> Result<(), WireError> {
    let (h, rest) = wire::parse_results(body)?;
    let bad = |message: String| WireError::Decode {
        what: "results",
        message,
    };
    let Some(batch) = w.inflight.front_mut() else {
        return Err(bad("results arrived with no batch in flight".into()));
    };
    let expected = batch.first + batch.done as u64;
    if h.job != job.id || h.first != expected || h.count > batch.count - batch.done {
        return Err(bad(format!(
            "results for job {} items {}+{} do not match the batch in flight (job {}, next \
             item {expected}, {} left)",
            h.job,
            h.first,
            h.count,
            job.id,
            batch.count - batch.done
        )));
    }
    // Collected: in place in the caller's vector, if it fits there.
    let writer = match (&mut job.direct, usize::try_from(h.first)) {
        (Some(placed), Ok(at)) if !job.keep_going => {
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
        None => Target::Chunk(job.reorder.buffer(h.count as usize)),
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
            None => wire::read_failure(&mut values)?.into_kind(),
        };
        let item = describe::<F>(batch.item((index - batch.first) as u32));
        let f = Box::new(ItemError::new(F::NAME, index, item, w.pid, kind));
        index += 1;
        job.hooks.failure(&f);
        match &mut target {
            Target::Chunk(chunk) if job.keep_going => chunk.push(Err(f)),
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
        job.reorder.insert(h.first, chunk);
    }
    job.drain_direct();
    if let Some(f) = failure {
        job.stop_at(f);
        return Ok(());
    }
    batch.done += h.count;
    if batch.done == batch.count
        && let Some(answered) = w.inflight.pop_front()
        && job.spare_items.len() < SPARE_BUFFERS
        && let Ok(items) = Arc::try_unwrap(answered.items)
    {
        job.spare_items.push(items);
    }
    job.sizer.observe(h.count, h.busy_ns);
    Ok(())
}

/// Decodes the results frame of a single item (a [`Process`](crate::Process)'s): its output,
/// or its failure (its own, or its output's decoding).
pub(crate) fn decode_one<F: JobFn>(
    body: &[u8],
) -> Result<Result<F::Output, FailureKind>, WireError> {
    let (h, rest) = wire::parse_results(body)?;
    if h.count != 1 {
        return Err(WireError::Decode {
            what: "results",
            message: format!("a process answered {} items, not 1", h.count),
        });
    }
    let mut values = wire::Values::new(rest);
    let outcome = if h.failed {
        Err(wire::read_failure(&mut values)?.into_kind())
    } else {
        match values.next::<F::Output>() {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(message)) => Err(FailureKind::DeserializeOutput { message }),
            Err(message) => {
                return Err(WireError::Decode {
                    what: "results",
                    message,
                });
            }
        }
    };
    wire::read_all(&values, "results")?;
    Ok(outcome)
}

/// Describes an item from its encoding, for error messages. User code runs here (the item's
/// `Deserialize` and `Debug`): a panic in it only loses the description.
pub(crate) fn describe<F: JobFn>(encoded: Option<&[u8]>) -> Option<String> {
    let encoded = encoded?;
    let capturing = crate::call::panic::Capturing::start();
    let described = crate::call::panic::catch(|| {
        let item: F::Item = wire::decode_value(encoded).ok()?;
        F::describe(&item)
    });
    drop(capturing);
    described.ok().flatten()
}
