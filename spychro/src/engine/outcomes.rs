//! A job's outcomes on the caller's side: what has arrived (in the reorder buffer, or in place
//! in the caller's vector), which failure stops the job, the caller's handlers, and how a
//! results frame is decoded into them.

use super::handlers::Handlers;
use super::job::{Indexed, Outcome, PlainOutputs};
use super::placed::{Placed, Writer};
use super::reorder::Reorder;
use crate::call::job_fn::JobFn;
use crate::error::{FailureKind, ItemError, WireError};
use crate::wire::{self, ResultsHeader};

/// The outcomes of one job of `F`, and the handlers `H` that hear of them.
pub(crate) struct Outcomes<F: JobFn, H> {
    pub(crate) reorder: Reorder<Outcome<F::Output>>,
    pub(crate) keep_going: bool,
    /// The failure that stops the job (when not keeping going).
    failed: Option<Box<ItemError>>,
    /// The failure was handed to the caller: nothing follows it.
    failure_delivered: bool,
    pub(crate) handlers: H,
    /// Where outputs go when the caller collects them all and stops at the first failure:
    /// outputs that arrive in order are decoded straight into it, with no outcome wrapped and
    /// no second pass.
    pub(crate) direct: Option<Placed<F::Output>>,
}

impl<F: JobFn, H: Handlers> Outcomes<F, H> {
    pub(crate) fn new(keep_going: bool, handlers: H) -> Self {
        Outcomes {
            reorder: Reorder::new(),
            keep_going,
            failed: None,
            failure_delivered: false,
            handlers,
            direct: None,
        }
    }

    /// An item failed: the handlers hear of it, then it is an outcome (keep going) or a
    /// candidate to stop the job.
    pub(crate) fn fail(&mut self, failure: Box<ItemError>) {
        self.handlers.failure(&failure);
        if self.keep_going {
            self.reorder.insert(failure.index(), vec![Err(failure)]);
        } else {
            self.stop_at(failure);
        }
    }

    /// The one place that decides which failure stops the job: among the failures seen
    /// before the job stops, the lowest index wins. (Which items fail first in time, when
    /// several would, depends on the workers' timing.)
    pub(crate) fn stop_at(&mut self, failure: Box<ItemError>) {
        if self
            .failed
            .as_ref()
            .is_none_or(|f| f.index() > failure.index())
        {
            self.failed = Some(failure);
        }
    }

    /// Whether a failure stops the job.
    pub(crate) fn stopped(&self) -> bool {
        self.failed.is_some()
    }

    /// The next outcome in input order, if it is here: outcomes before the failure that
    /// stops the job, then nothing (see [`take_failure`](Outcomes::take_failure)).
    pub(crate) fn pop_outcome(&mut self) -> Option<Outcome<F::Output>> {
        if self.failure_delivered {
            return None;
        }
        let limit = self.failed.as_ref().map(|f| f.index());
        if limit.is_none_or(|at| self.reorder.next_index() < at)
            && let Some(o) = self.reorder.pop()
        {
            self.handlers.delivered(1);
            return Some(o);
        }
        None
    }

    /// Unordered: the next outcome to have arrived, with its index.
    pub(crate) fn pop_arrived(&mut self) -> Option<Indexed<F::Output>> {
        if self.failure_delivered {
            return None;
        }
        let o = self.reorder.pop_arrived()?;
        self.handlers.delivered(1);
        Some(o)
    }

    /// The failure that stopped the job, once the run has stopped; it is the last outcome.
    pub(crate) fn take_failure(&mut self) -> Option<Box<ItemError>> {
        let f = self.failed.take()?;
        self.failure_delivered = true;
        self.handlers.delivered(1);
        Some(f)
    }

    /// Every outcome that is here in order, as one chunk (the very vector they were decoded
    /// into), while no failure stops the job.
    pub(crate) fn pop_chunk(&mut self) -> Option<Vec<Outcome<F::Output>>> {
        if self.failed.is_some() || self.failure_delivered {
            return None;
        }
        let chunk = self.reorder.pop_chunk()?;
        self.handlers.delivered(chunk.len());
        Some(chunk)
    }

    /// With a direct sink: counts the outputs it now holds in order as delivered, and moves
    /// over the chunks that waited in the reorder buffer (those that did not fit in place)
    /// once their turn comes.
    pub(crate) fn drain_direct(&mut self) {
        loop {
            let Some(placed) = &mut self.direct else {
                return;
            };
            let in_order = placed.len() as u64;
            if in_order > self.reorder.next_index() {
                let n = (in_order - self.reorder.next_index()) as usize;
                self.reorder.skip(n);
                self.handlers.delivered(n);
            }
            if self.failed.is_some() {
                return;
            }
            let Some(mut chunk) = self.reorder.pop_chunk() else {
                return;
            };
            self.handlers.delivered(chunk.len());
            let mut stop = None;
            for outcome in chunk.drain(..) {
                match outcome {
                    Ok(out) => placed.push(out),
                    // Failures do not wait in order when stopping at the first one; should
                    // one, it stops the run like any other.
                    Err(failure) => {
                        stop = Some(failure);
                        break;
                    }
                }
            }
            self.reorder.recycle(chunk);
            if let Some(failure) = stop {
                self.stop_at(failure);
            }
        }
    }

    /// Decodes a results frame from worker `pid` (checked against the batch it answers,
    /// whose first item is `batch_first` and whose items are `item(n)`): outputs go in place
    /// or to the reorder buffer; a failed item is reported (and, unless keeping going, stops
    /// the job).
    pub(crate) fn take_results(
        &mut self,
        pid: u32,
        h: &ResultsHeader,
        rest: &[u8],
        plain: Option<PlainOutputs>,
        describe: impl Fn(u64) -> Option<String>,
    ) -> Result<(), WireError> {
        let bad = |message: String| WireError::Decode {
            what: "results",
            message,
        };
        // Collected: in place in the caller's vector, if it fits there.
        let writer = match (&mut self.direct, usize::try_from(h.first)) {
            (Some(placed), Ok(at)) if !self.keep_going => {
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
            None => Target::Chunk(self.reorder.buffer(h.count as usize)),
        };
        let mut values = wire::Values::new(rest);
        // Outputs, then the failure that ended the frame, if one did.
        let end = h.first + h.count as u64;
        let outputs_end = end - u64::from(h.failed);
        let mut index = h.first;
        let mut failure = None;
        while index < end {
            let wanted = outputs_end.saturating_sub(index) as usize;
            let (decoded, stopped) = match (&mut target, plain) {
                (Target::Direct(w), Some(p)) => {
                    // SAFETY: as in `take_plain`; the frame's outputs start at `p.first` and
                    // `p.size` is the size of `F::Output`, a plain type.
                    unsafe { w.copy_plain(p.first, wanted) };
                    (wanted, None)
                }
                (Target::Chunk(chunk), Some(p)) => take_plain(p, wanted, &mut Chunk(chunk)),
                (Target::Direct(w), None) => values.decode_into(wanted, w).map_err(bad)?,
                (Target::Chunk(chunk), None) => {
                    values.decode_into(wanted, &mut Chunk(chunk)).map_err(bad)?
                }
            };
            index += decoded as u64;
            if index == end {
                break;
            }
            let kind = match stopped {
                Some(message) => FailureKind::DeserializeOutput { message },
                None => wire::read_failure(&mut values)?.into_kind(),
            };
            let f = Box::new(ItemError::new(F::NAME, index, describe(index), pid, kind));
            index += 1;
            self.handlers.failure(&f);
            match &mut target {
                Target::Chunk(chunk) if self.keep_going => chunk.push(Err(f)),
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
            self.reorder.insert(h.first, chunk);
        }
        self.drain_direct();
        if let Some(f) = failure {
            self.stop_at(f);
        }
        Ok(())
    }
}

/// Copies the `wanted` outputs of a plain job from its worker's region into `sink`; they are
/// the first outputs of the frame, so they start at `p.first`.
fn take_plain<O>(
    p: PlainOutputs,
    wanted: usize,
    sink: &mut impl wire::Sink<O>,
) -> (usize, Option<String>) {
    for n in 0..wanted {
        // SAFETY: `O` is the plain output type of the job whose sizes gave `p.size` (only
        // plain types have one), and the frame's outputs lie within the region (see
        // `Engine::receive_results`), which stays mapped while its worker is held.
        sink.push(unsafe { crate::call::plain::read::<O>(p.first, n, p.size) });
    }
    (wanted, None)
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
