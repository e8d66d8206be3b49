//! Batches out: which worker gets the next batch (breadth-first, a few in flight per worker),
//! how big it is (the sizer), what goes in it (items to send again first, then new items read
//! lazily from the input and serialized), and when a worker has run its share of items and is
//! replaced (`max_items_per_worker`).

use std::sync::Arc;

use super::batch::InFlight;
use super::run::Run;
use super::sizer::MAX_BYTES;
use super::worker::State;
use crate::call::job_fn::JobFn;
use crate::error::{Error, FailureKind, ItemError};
use crate::wire;

/// Batches in flight per worker before every worker is up; once they are, small batches go
/// deeper (see `Sizer::depth`), so that one-item messages do not wake a sleeping worker each
/// time.
const PIPELINE: usize = 2;

impl<F: JobFn, It: Iterator<Item = F::Item>> Run<'_, F, It> {
    /// Replaces the workers that ran their share of items.
    pub(super) fn recycle(&mut self) -> Result<(), Error> {
        let Some(max) = self.options.max_items_per_worker else {
            return Ok(());
        };
        for i in 0..self.pool.workers.len() {
            let w = &self.pool.workers[i];
            if w.state == State::Ready && w.assigned >= max && w.inflight.is_empty() {
                self.pool.retire(i);
                self.replace(i)?;
            }
        }
        Ok(())
    }

    /// Sends batches breadth-first: every ready worker gets one before any gets a second,
    /// and while some workers are still starting, the ready ones hold one batch each.
    pub(super) fn dispatch(&mut self) -> Result<(), Error> {
        if self.job.stopped() {
            return Ok(());
        }
        let workers = &self.pool.workers;
        let live = workers.iter().filter(|w| w.state != State::Gone).count();
        let starting = workers
            .iter()
            .any(|w| matches!(w.state, State::Starting { .. } | State::Loading { .. }));
        let first_size = self.job.sizer.next(self.remaining(), live);
        let depth = if starting {
            1
        } else {
            self.job.sizer.depth(first_size).max(PIPELINE)
        };
        for level in 0..depth {
            for i in 0..self.pool.workers.len() {
                let w = &self.pool.workers[i];
                if w.state != State::Ready || w.inflight.len() != level {
                    continue;
                }
                let mut size = self.job.sizer.next(self.remaining(), live);
                if let Some(max) = self.options.max_items_per_worker {
                    let quota = max.saturating_sub(w.assigned);
                    if quota == 0 {
                        continue;
                    }
                    size = size.min(quota as usize);
                }
                if self.options.bounded && self.requeue.is_empty() {
                    let ahead = self.next_index - self.job.reorder.next_index();
                    if ahead >= (3 * depth * live * size) as u64 {
                        return Ok(());
                    }
                }
                let Some(batch) = self.next_batch(size) else {
                    return Ok(());
                };
                let w = &mut self.pool.workers[i];
                if let Err(e) = w.queue_batch(self.job.id, &batch) {
                    return Err(Error::internal(format!("a batch could not be framed: {e}")));
                }
                w.assigned += batch.count as u64;
                w.inflight.push_back(batch);
                if self.job.stopped() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Items left, when the iterator knows exactly.
    pub(super) fn remaining(&self) -> Option<usize> {
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
        let mut items = self.job.spare_items.pop().unwrap_or_default();
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
                self.job.fail(Box::new(ItemError::new(
                    F::NAME,
                    index,
                    F::describe(&item),
                    std::process::id(),
                    FailureKind::SerializeItem { message },
                )));
                // The batch ends before the failed item; in keep-going mode the next batch
                // starts after it.
                failed = true;
                break;
            }
            count += 1;
        }
        // The failed item, if one ended the batch, is used up too.
        self.next_index = first + u64::from(count) + u64::from(failed);
        self.job.sizer.built(count, items.len());
        (count > 0).then_some(InFlight {
            first,
            count,
            done: 0,
            items: Arc::new(items),
        })
    }
}
