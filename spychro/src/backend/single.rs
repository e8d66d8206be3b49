//! Single-processed mode: the same job, in the caller's process and thread, one item after
//! another, with the same outcomes and error values as the pool.

use super::local::Produce;
use crate::call::ctx::{Ctx, Queue, Sink};
use crate::call::job_fn::JobFn;
use crate::call::panic::run_item;
use crate::engine::hooks::Hooks;
use crate::engine::job::Outcome;
use crate::error::{FailureKind, ItemError};
use crate::wire;

/// Runs item `index` in this process. Like a worker, it first serializes the item (so an item
/// that cannot cross a process boundary fails here too), and keeps those bytes to describe the
/// item if it fails.
pub(crate) fn run_here<F: JobFn>(
    index: u64,
    item: F::Item,
    args: &F::Args,
    sink: &dyn Sink<F::Message>,
    scratch: &mut Vec<u8>,
) -> Outcome<F::Output> {
    scratch.clear();
    let fail = |kind, item: Option<String>| {
        Err(Box::new(ItemError::new(
            F::NAME,
            index,
            item,
            std::process::id(),
            kind,
        )))
    };
    if let Err(message) = wire::push_value(scratch, &item) {
        return fail(FailureKind::SerializeItem { message }, F::describe(&item));
    }
    match run_item::<F>(item, args, &Ctx::new(index, sink)) {
        Ok(out) => Ok(out),
        Err(kind) => fail(kind, describe_record::<F>(scratch)),
    }
}

fn describe_record<F: JobFn>(encoded: &[u8]) -> Option<String> {
    crate::engine::intake::describe::<F>(Some(encoded))
}

/// The single-processed backend of [`Results`](crate::Results).
pub(crate) struct Single<F: JobFn, It> {
    items: It,
    args: F::Args,
    index: u64,
    scratch: Vec<u8>,
    queue: Queue,
}

impl<F: JobFn, It> Single<F, It> {
    pub(crate) fn new(items: It, args: F::Args) -> Self {
        Single {
            items,
            args,
            index: 0,
            scratch: Vec::new(),
            queue: Queue::new(),
        }
    }
}

impl<F: JobFn, It: Iterator<Item = F::Item>> Produce<F> for Single<F, It> {
    /// Runs the next item; what it sent reaches the handlers before its outcome returns.
    fn produce(&mut self, hooks: &mut Hooks<'_>) -> Option<Outcome<F::Output>> {
        let item = self.items.next()?;
        let index = self.index;
        self.index += 1;
        let out = run_here::<F>(index, item, &self.args, &self.queue, &mut self.scratch);
        for event in self.queue.drain() {
            hooks.event(event);
        }
        Some(out)
    }
}
