//! A job whose input and outcomes live on the caller's thread (`run_*` and `stream_*`): the
//! items are read from the caller's iterator as batches are built, and outcomes reach the
//! caller's handlers at once.

use super::batch::{InFlight, ItemBytes};
use super::handlers::Handlers;
use super::hooks::{Hooks, WorkerLog};
use super::insights::Insights;
use super::intake::describe;
use super::job::{JobCore, JobIo, PlainOutputs};
use super::outcomes::Outcomes;
use crate::call::job_fn::JobFn;
use crate::call::plain;
use crate::error::{Error, FailureKind, ItemError, WireError};
use crate::wire::{self, ResultsHeader};

/// A job of `F` over the caller's iterator `It`.
pub(crate) struct LocalJob<'h, F: JobFn, It> {
    pub(crate) core: JobCore,
    pub(crate) input: It,
    pub(crate) outcomes: Outcomes<F, Hooks<'h>>,
}

impl<F: JobFn, It: Iterator<Item = F::Item>> JobIo for LocalJob<'_, F, It> {
    fn core(&self) -> &JobCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut JobCore {
        &mut self.core
    }

    fn read_items(&mut self, size: usize, max_bytes: usize, items: &mut Vec<u8>, raw: bool) -> u32 {
        read_items::<F>(
            &mut self.core,
            &mut self.input,
            size,
            max_bytes,
            items,
            raw,
            |f| self.outcomes.fail(f),
        )
    }

    fn remaining(&self) -> Option<usize> {
        exact_len(&self.input)
    }

    fn delivered(&self) -> u64 {
        self.outcomes.reorder.next_index()
    }

    fn take_results(
        &mut self,
        pid: u32,
        batch: &InFlight,
        header: &ResultsHeader,
        outcomes: &[u8],
        plain: Option<PlainOutputs>,
    ) -> Result<(), WireError> {
        self.outcomes
            .take_results(pid, header, outcomes, plain, |index| {
                describe::<F>(batch.item((index - batch.first) as u32))
            })
    }

    fn fail(&mut self, failure: Box<ItemError>) {
        self.outcomes.fail(failure);
    }

    fn stopped(&self) -> bool {
        self.outcomes.stopped()
    }

    fn log(&mut self, record: WorkerLog) {
        Handlers::log(&mut self.outcomes.handlers, record);
    }

    fn message(&mut self, pid: u32, item: u64, message: &[u8]) {
        Handlers::message(&mut self.outcomes.handlers, pid, item, message);
    }

    fn progress(&mut self, pid: u32, item: u64, fraction: f64) {
        Handlers::progress(&mut self.outcomes.handlers, pid, item, fraction);
    }

    fn describe(&self, item: Option<ItemBytes<'_>>) -> Option<String> {
        describe::<F>(item)
    }

    fn take_broken(&mut self) -> Option<Error> {
        Handlers::take_broken(&mut self.outcomes.handlers)
    }

    fn worker_exit(&mut self, pid: u32, exit: &[u8]) {
        Handlers::worker_exit(&mut self.outcomes.handlers, pid, exit);
    }

    fn ended(&mut self, insights: &Insights) {
        Handlers::insights(&mut self.outcomes.handlers, insights);
    }
}

/// How many items `input` still holds, when it knows exactly.
pub(crate) fn exact_len(input: &impl Iterator) -> Option<usize> {
    match input.size_hint() {
        (lo, Some(hi)) if lo == hi => Some(lo),
        _ => None,
    }
}

/// Reads up to `size` items of job `F` from `input` into `items` (see
/// [`JobIo::read_items`]), raw if `raw` and the job is plain; an item that cannot be
/// serialized is handed to `fail`.
pub(crate) fn read_items<F: JobFn>(
    core: &mut JobCore,
    input: &mut impl Iterator<Item = F::Item>,
    size: usize,
    max_bytes: usize,
    items: &mut Vec<u8>,
    raw: bool,
    mut fail: impl FnMut(Box<ItemError>),
) -> u32 {
    if let Some(sizes) = core.plain.filter(|_| raw) {
        return read_plain::<F>(core, input, size, max_bytes, items, sizes.item as usize);
    }
    let first = core.next_index;
    let mut count = 0u32;
    let mut failed = false;
    while (count as usize) < size && items.len() < max_bytes {
        let Some(item) = input.next() else {
            core.input_done = true;
            break;
        };
        let index = first + u64::from(count);
        if let Err(message) = wire::push_value(items, &item) {
            fail(Box::new(ItemError::new(
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
    core.next_index = first + u64::from(count) + u64::from(failed);
    count
}

/// [`read_items`] for a plain job: the items' raw bytes, back to back.
fn read_plain<F: JobFn>(
    core: &mut JobCore,
    input: &mut impl Iterator<Item = F::Item>,
    size: usize,
    max_bytes: usize,
    items: &mut Vec<u8>,
    item_size: usize,
) -> u32 {
    let size = match item_size {
        0 => size,
        n => size.min((max_bytes / n).max(1)),
    };
    items.reserve(size * item_size);
    let base = items.len();
    let mut count = 0usize;
    while count < size {
        let Some(item) = input.next() else {
            core.input_done = true;
            break;
        };
        // SAFETY: `F::Item` is plain (the core's sizes come from `F::plain_sizes`, which has
        // one only for plain types) and `item_size` bytes long; the `reserve` above made room
        // for `size` of them after `base`.
        unsafe { plain::write(items.as_mut_ptr().add(base), count, item_size, item) };
        count += 1;
    }
    // SAFETY: the `count` items after `base` were written just now.
    unsafe { items.set_len(base + count * item_size) };
    core.next_index += count as u64;
    count as u32
}
