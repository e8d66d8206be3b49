//! Single-processed mode: the same job, in the caller's process and thread, one item after
//! another, with the same outcomes and error values as the pool.

use std::time::Instant;

use super::local::{Produce, Tally, exit_here, init_here};
use crate::call::ctx::{Ctx, Queue, Sink};
use crate::call::job_fn::JobFn;
use crate::call::panic::{Capturing, catch, run_captured};
use crate::engine::hooks::Hooks;
use crate::engine::job::{Indexed, Outcome};
use crate::error::{Error, FailureKind, ItemError};
use crate::wire;

/// Buffers an item and its output are encoded into, reused from item to item.
#[derive(Default)]
pub(crate) struct Scratch {
    item: Vec<u8>,
    output: Vec<u8>,
}

/// Runs item `index` in this process exactly as a worker would see it: the item is serialized
/// and deserialized again before the call, and the output after it, so that an item or output
/// that does not cross a process boundary unchanged fails here too, and the job gets (and
/// returns) the very values it would in a worker. The item's bytes describe it if it fails.
pub(crate) fn run_here<F: JobFn>(
    index: u64,
    item: F::Item,
    args: &F::Args,
    state: &mut F::State,
    sink: &dyn Sink<F::Message>,
    scratch: &mut Scratch,
) -> Outcome<F::Output> {
    let fail = |kind, item: Option<String>| {
        Err(Box::new(ItemError::new(
            F::NAME,
            index,
            item,
            std::process::id(),
            kind,
        )))
    };
    scratch.item.clear();
    if let Err(message) = wire::push_value(&mut scratch.item, &item) {
        return fail(FailureKind::SerializeItem { message }, F::describe(&item));
    }
    drop(item);
    let described = |bytes: &[u8]| {
        crate::engine::intake::describe::<F>(Some(crate::engine::batch::ItemBytes::Encoded(bytes)))
    };
    let capturing = Capturing::start();
    let item = match catch(|| wire::decode_value::<F::Item>(&scratch.item)) {
        Ok(Ok(item)) => item,
        Ok(Err(message)) => {
            return fail(FailureKind::DeserializeItem { message }, None);
        }
        Err(kind) => {
            let message = format!("its Deserialize implementation {kind}");
            return fail(FailureKind::DeserializeItem { message }, None);
        }
    };
    let out = match run_captured::<F>(item, args, state, &Ctx::new(index, sink), &capturing) {
        Ok(out) => out,
        Err(kind) => return fail(kind, described(&scratch.item)),
    };
    scratch.output.clear();
    let output = &mut scratch.output;
    let mut serialized = None;
    let caught = catch(|| {
        serialized = Some(wire::push_value(output, &out));
        drop(out);
    });
    let kind = match (caught, serialized) {
        (Ok(()), Some(Ok(()))) => None,
        (Ok(()), Some(Err(message))) => Some(FailureKind::SerializeOutput { message }),
        (Err(kind), None) => Some(FailureKind::SerializeOutput {
            message: format!("its Serialize implementation {kind}"),
        }),
        (Err(kind), Some(_)) => Some(kind),
        (Ok(()), None) => None,
    };
    if let Some(kind) = kind {
        return fail(kind, described(&scratch.item));
    }
    match catch(|| wire::decode_value::<F::Output>(&scratch.output)) {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(message)) => fail(
            FailureKind::DeserializeOutput { message },
            described(&scratch.item),
        ),
        Err(kind) => fail(
            FailureKind::DeserializeOutput {
                message: format!("its Deserialize implementation {kind}"),
            },
            described(&scratch.item),
        ),
    }
}

/// The single-processed backend of [`Results`](crate::Results).
pub(crate) struct Single<F: JobFn, It> {
    items: It,
    args: F::Args,
    index: u64,
    scratch: Scratch,
    queue: Queue,
    /// The job's state in this thread, built before the first item.
    state: Option<F::State>,
    tally: Tally,
}

impl<F: JobFn, It> Single<F, It> {
    pub(crate) fn new(items: It, args: F::Args) -> Self {
        Single {
            items,
            args,
            index: 0,
            scratch: Scratch::default(),
            queue: Queue::new(),
            state: None,
            tally: Tally::default(),
        }
    }
}

impl<F: JobFn, It: Iterator<Item = F::Item>> Produce<F> for Single<F, It> {
    /// Runs the next item; what it sent reaches the handlers before its outcome returns.
    fn produce(&mut self, hooks: &mut Hooks<'_>) -> Result<Option<Indexed<F::Output>>, Error> {
        let Some(item) = self.items.next() else {
            if let Some(state) = self.state.take() {
                exit_here::<F>(state, hooks);
            }
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        let state = match &mut self.state {
            Some(state) => state,
            empty => empty.insert(init_here::<F>(&self.args)?),
        };
        let since = Instant::now();
        let out = run_here::<F>(
            index,
            item,
            &self.args,
            state,
            &self.queue,
            &mut self.scratch,
        );
        self.tally.add(since);
        for event in self.queue.drain() {
            hooks.event(event);
        }
        Ok(Some((index, out)))
    }

    fn tallies(&self) -> Vec<Tally> {
        vec![self.tally]
    }
}
