//! One batch of a plain job in a worker (see `call/plain.rs`): items are read from the
//! worker's region and outputs written back there, with no serialization; the results frames
//! carry only the failures. The status page and the failure rules are those of `batch.rs`.

use super::batch::{CLOCK_EVERY, ResultsSink};
use super::logger::WorkerSink;
use crate::call::ctx::Ctx;
use crate::call::job_fn::JobFn;
use crate::call::panic::{Capturing, run_captured};
use crate::call::plain::{self, PlainSizes};
use crate::error::WireError;
use crate::sys::status::now_ms;
use crate::wire::PlainBatch;

/// Runs one plain batch of job `F`.
pub(crate) fn run_plain_batch<F: JobFn>(
    args: &dyn std::any::Any,
    state: &mut dyn std::any::Any,
    batch: &PlainBatch,
    sink: &mut ResultsSink<'_>,
) -> Result<(), WireError> {
    let bad = |message: String| WireError::Decode {
        what: "plain batch",
        message,
    };
    let sizes = PlainSizes::of(F::plain_sizes().0, F::plain_sizes().1);
    let wanted = PlainSizes {
        item: batch.item_size,
        output: batch.output_size,
    };
    if sizes != Some(wanted) {
        return Err(bad(format!(
            "job `{}` has plain sizes {sizes:?} here, the caller sent {wanted:?}",
            F::NAME
        )));
    }
    let Some((region, len)) = sink.link().status.region() else {
        return Err(bad("this worker has no region for plain batches".into()));
    };
    if !batch.fits(len) {
        return Err(bad(format!(
            "the batch {batch:?} does not fit the region of {len} bytes"
        )));
    }
    let (Some(args), Some(state)) = (
        args.downcast_ref::<F::Args>(),
        state.downcast_mut::<F::State>(),
    ) else {
        return Err(bad(format!(
            "job `{}` was loaded with arguments or a state of another type",
            F::NAME
        )));
    };
    let (item_size, output_size) = (batch.item_size as usize, batch.output_size as usize);
    // SAFETY: both offsets are within the region (`fits`), which stays mapped while the
    // link lives.
    let (items, outputs) = unsafe {
        (
            region.add(batch.items_at as usize).cast_const(),
            region.add(batch.outputs_at as usize),
        )
    };
    let messages = WorkerSink::<F::Message>::new();
    let capturing = Capturing::start();
    let status = &sink.link().status;
    let timed = sink.timed();
    let first = sink.next();
    let mut now = sink.now_ms();
    let mut generation = status.cancel_generation();
    let mut n = 0u32;
    // Items run in stretches with their counts in registers; the sink hears of each stretch
    // at its end (at most CLOCK_EVERY items, or where an item fails). The status page names
    // each item from its start until its output is written; between two items of a stretch
    // nothing but this loop runs, so the page moves straight from one to the next.
    while n < batch.count {
        let stretch_end = batch.count.min(n + CLOCK_EVERY);
        let from = n;
        let mut failure = None;
        // The start time the page holds (none yet in this stretch).
        let mut started = None;
        while n < stretch_end {
            let g = status.cancel_generation();
            if g != generation {
                generation = g;
                if status.is_cancelled(batch.job) {
                    status.end();
                    sink.ok_plain(n - from, now)?;
                    return sink.skip(batch.count - n);
                }
            }
            if timed {
                now = now_ms();
            }
            let index = first + u64::from(n);
            if started == Some(now) {
                status.next_running(index);
            } else {
                status.begin_running(index, now);
                started = Some(now);
            }
            // SAFETY: `F::Item` is plain and `item_size` bytes long (its sizes were checked
            // above, and only plain types have them), and item `n` of the batch lies within
            // the region (`fits`). The caller wrote it before sending the batch and does not
            // touch it until the batch is answered.
            let item: F::Item = unsafe { plain::read(items, n as usize, item_size) };
            let ctx = Ctx::new(index, &messages);
            match run_captured::<F>(item, args, state, &ctx, &capturing) {
                Ok(out) => {
                    // SAFETY: as for the item: `F::Output` is plain, of `output_size` bytes,
                    // and output `n` lies within the region and ends before item `n + 1`
                    // starts (`engine/slots.rs`); the caller reads it only once the results
                    // frame that answers it arrives.
                    unsafe { plain::write(outputs, n as usize, output_size, out) };
                    n += 1;
                }
                Err(kind) => {
                    failure = Some(kind);
                    break;
                }
            }
        }
        if !timed {
            now = now_ms();
        }
        match failure {
            None => {
                status.end();
                sink.ok_plain(n - from, now)?;
            }
            Some(kind) => {
                sink.ok_plain(n - from, now)?;
                // It ends the item (and the frame) itself.
                sink.failed(kind)?;
                n += 1;
            }
        }
    }
    Ok(())
}
