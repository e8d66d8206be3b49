//! One job's state on the caller's side, apart from the workers: what has arrived (in order,
//! in the reorder buffer, or in place in the caller's vector), which failure stops the job,
//! the batch sizer and the caller's handlers. The frame handlers borrow it beside a worker.

use super::hooks::Hooks;
use super::placed::Placed;
use super::reorder::Reorder;
use super::sizer::Sizer;
use crate::call::job_fn::JobFn;
use crate::error::ItemError;

/// One item's outcome.
pub(crate) type Outcome<O> = Result<O, Box<ItemError>>;

/// The caller's side of one job.
pub(crate) struct JobState<'h, F: JobFn> {
    /// The job's id in its pool.
    pub(crate) id: u32,
    pub(crate) sizer: Sizer,
    pub(crate) reorder: Reorder<Outcome<F::Output>>,
    pub(crate) keep_going: bool,
    /// The failure that stops the job (when not keeping going); nothing more is dispatched
    /// once it is set.
    failed: Option<Box<ItemError>>,
    /// The failure was handed to the caller: nothing follows it.
    failure_delivered: bool,
    pub(crate) hooks: Hooks<'h>,
    /// Buffers of answered batches, to encode the next batches into.
    pub(crate) spare_items: Vec<Vec<u8>>,
    /// Where outputs go when the caller collects them all and stops at the first failure
    /// ([`Run::collect_outputs`](super::run::Run::collect_outputs)): outputs that arrive in
    /// order are decoded straight into it, with no outcome wrapped and no second pass.
    pub(crate) direct: Option<Placed<F::Output>>,
}

impl<'h, F: JobFn> JobState<'h, F> {
    pub(crate) fn new(
        id: u32,
        chunk_size: Option<usize>,
        keep_going: bool,
        hooks: Hooks<'h>,
    ) -> Self {
        JobState {
            id,
            sizer: Sizer::new(chunk_size),
            reorder: Reorder::new(),
            keep_going,
            failed: None,
            failure_delivered: false,
            hooks,
            spare_items: Vec::new(),
            direct: None,
        }
    }

    /// An item failed: the handlers hear of it, then it is an outcome (keep going) or a
    /// candidate to stop the job.
    pub(crate) fn fail(&mut self, failure: Box<ItemError>) {
        self.hooks.failure(&failure);
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
    /// stops the job, then the failure, then nothing.
    pub(crate) fn pop_outcome(&mut self) -> Option<Outcome<F::Output>> {
        if self.failure_delivered {
            return None;
        }
        let limit = self.failed.as_ref().map(|f| f.index());
        if limit.is_none_or(|at| self.reorder.next_index() < at)
            && let Some(o) = self.reorder.pop()
        {
            self.hooks.delivered();
            return Some(o);
        }
        None
    }

    /// The failure that stopped the job, once the run has stopped; it is the last outcome.
    pub(crate) fn take_failure(&mut self) -> Option<Box<ItemError>> {
        let f = self.failed.take()?;
        self.failure_delivered = true;
        self.hooks.delivered();
        Some(f)
    }

    /// Every outcome that is here in order, as one chunk (the very vector they were decoded
    /// into), while no failure stops the job.
    pub(crate) fn pop_chunk(&mut self) -> Option<Vec<Outcome<F::Output>>> {
        if self.failed.is_some() || self.failure_delivered {
            return None;
        }
        let chunk = self.reorder.pop_chunk()?;
        self.hooks.delivered_many(chunk.len());
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
                self.hooks.delivered_many(n);
            }
            if self.failed.is_some() {
                return;
            }
            let Some(mut chunk) = self.reorder.pop_chunk() else {
                return;
            };
            self.hooks.delivered_many(chunk.len());
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
}
