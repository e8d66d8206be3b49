//! One batch of items in a worker: decode each item, call the job, encode each outcome into
//! results frames, and keep the status page up to date item by item.
//!
//! The status page names an item from the moment its bytes are decoded until its output is
//! serialized and dropped, so that a crash, a hang or a timeout anywhere in that span (the
//! item's `Deserialize`, the job, the output's `Serialize` or `Drop`) is the item's. A panic
//! in any of them is caught and is that item's failure; the worker goes on.

use std::time::Instant;

use serde::Serialize;

use super::link::Link;
use super::logger::WorkerSink;
use crate::call::ctx::Ctx;
use crate::call::job_fn::JobFn;
use crate::call::panic::{Capturing, catch, run_captured};
use crate::error::{FailureKind, WireError};
use crate::sys::status::{Phase, now_ms};
use crate::wire::{self, WireFailure};

/// Finished results frames not sent yet, kept across batches (small batches' frames go out
/// together), and the first item they answer.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) out: Vec<u8>,
    /// The first item whose outcome is in `out` and not yet sent.
    first_unsent: Option<u64>,
}

impl Pending {
    /// Sends everything pending; `next` is the item after the last one that ran. If the
    /// socket fails (a job closed or broke it), the status page names the items whose outcomes
    /// could not be sent, so that the caller can find the one that broke it (see `engine/loss`)
    /// when this worker dies of it.
    pub(crate) fn send(&mut self, link: &Link, next: u64) -> Result<(), WireError> {
        if let Err(failure) = link.send_results(&self.out) {
            // The results held before these were not sent either.
            if let Some(first) = failure.held_first.or(self.first_unsent) {
                let held_next = failure.held_first.map_or(0, |_| failure.held_next);
                let next = next.max(held_next);
                link.status
                    .unsent(first, next.saturating_sub(1).max(first), now_ms());
            }
            return Err(failure.error.into());
        }
        self.out.clear();
        self.first_unsent = None;
        Ok(())
    }

    /// Hands everything pending (whole frames; `next` is the item after the last one that
    /// ran) to the link to hold for a moment (see `held`); false if it is to be sent now.
    fn hold(&mut self, link: &Link, next: u64) -> bool {
        if self.out.is_empty() {
            return true;
        }
        if !link.hold(&mut self.out, self.first_unsent, next) {
            return false;
        }
        self.first_unsent = None;
        true
    }
}

/// Collects one batch's outcomes into results frames and sends them: when the batch ends,
/// when the frame grows large or old, and at once after a failure so the caller hears of it
/// early.
pub(crate) struct ResultsSink<'a> {
    link: &'a Link,
    pending: &'a mut Pending,
    job: u32,
    next: u64,
    frame: Option<wire::ResultsStart>,
    started: Instant,
    /// When the batch started.
    batch_started: Instant,
    /// When the current frame got its first outcome, in [`now_ms`] time.
    frame_ms: u64,
    now_ms: u64,
    /// Items of this batch that failed.
    pub(crate) failures: u32,
    /// Read the clock for every item (timeouts), or every [`CLOCK_EVERY`] items.
    timed: bool,
    items: u32,
    /// The status page's cancel generation last seen.
    cancel_generation: u64,
}

/// Only the results of a batch shorter than this are held (see `held`): after a longer one,
/// another batch's results would seldom join them before the timer sent them, and the
/// caller would hear of them later for nothing.
const HOLD_BELOW: std::time::Duration = std::time::Duration::from_micros(200);

/// Without timeouts, the clock (for the age of a results frame) is read this often.
pub(crate) const CLOCK_EVERY: u32 = 256;

/// A results frame is sent once it holds this many bytes...
const FLUSH_BYTES: usize = 128 * 1024;
/// ...or its first outcome is this old, so that a long batch loses little if its worker dies.
const FLUSH_MS: u64 = 10;

impl<'a> ResultsSink<'a> {
    /// A sink for the batch of job `job` starting at item `first`.
    pub(crate) fn new(
        link: &'a Link,
        pending: &'a mut Pending,
        job: u32,
        first: u64,
        timed: bool,
    ) -> Self {
        ResultsSink {
            link,
            pending,
            job,
            next: first,
            frame: None,
            started: Instant::now(),
            batch_started: Instant::now(),
            frame_ms: 0,
            now_ms: now_ms(),
            failures: 0,
            timed,
            items: 0,
            cancel_generation: link.status.cancel_generation(),
        }
    }

    /// Whether the caller cancelled this batch's job (checked before each item: one load
    /// unless a job was cancelled since the last check).
    #[inline(always)]
    pub(crate) fn cancelled(&mut self) -> bool {
        let generation = self.link.status.cancel_generation();
        if generation == self.cancel_generation {
            return false;
        }
        self.cancel_generation = generation;
        self.link.status.is_cancelled(self.job)
    }

    /// The batch stops here: its last `count` items are answered as skipped.
    #[cold]
    pub(crate) fn skip(&mut self, count: u32) -> Result<(), WireError> {
        self.finish()?;
        if count > 0 {
            wire::push_skipped(&mut self.pending.out, self.job, self.next, count);
            self.next += u64::from(count);
        }
        self.flush()
    }

    /// The worker's link.
    pub(crate) fn link(&self) -> &'a Link {
        self.link
    }

    /// The item the next outcome is for.
    pub(crate) fn next(&self) -> u64 {
        self.next
    }

    /// The next item starts.
    #[inline(always)]
    fn begin_item(&mut self) {
        self.items = self.items.wrapping_add(1);
        if self.timed || self.items.is_multiple_of(CLOCK_EVERY) {
            self.now_ms = now_ms();
        }
        self.link.status.begin(self.next, self.now_ms);
    }

    #[inline(always)]
    fn frame(&mut self) -> &mut wire::ResultsStart {
        let (pending, job, next) = (&mut *self.pending, self.job, self.next);
        if self.frame.is_none() {
            self.frame_ms = self.now_ms;
            pending.first_unsent.get_or_insert(next);
        }
        self.frame
            .get_or_insert_with(|| wire::begin_results(&mut pending.out, job, next))
    }

    /// The item returned `value`: serialize it into the frame and drop it, both under the
    /// item's name on the status page.
    #[inline(always)]
    fn ok<T: Serialize>(&mut self, value: T) -> Result<(), WireError> {
        self.link.status.phase(Phase::Output);
        self.frame();
        let out = &mut self.pending.out;
        let at = out.len();
        let mut serialized = None;
        let caught = catch(|| {
            serialized = Some(wire::push_value(out, &value));
            drop(value);
        });
        let failure = match (caught, serialized) {
            (Ok(()), Some(Ok(()))) => None,
            (Ok(()), Some(Err(message))) => Some(FailureKind::SerializeOutput { message }),
            (Err(kind), None) => Some(FailureKind::SerializeOutput {
                message: format!("its Serialize implementation {kind}"),
            }),
            (Err(kind), Some(_)) => Some(dropping_failed(kind)),
            (Ok(()), None) => None,
        };
        if let Some(kind) = failure {
            self.pending.out.truncate(at);
            return self.failed(kind);
        }
        self.link.status.end();
        self.advance();
        if self.pending.out.len() >= FLUSH_BYTES
            || self.now_ms.saturating_sub(self.frame_ms) >= FLUSH_MS
        {
            self.flush()?;
        }
        Ok(())
    }

    /// The next `count` items (a plain job's) wrote their outputs to the region: they count
    /// in the frame, which carries no bytes for them. `now_ms` is the clock read last.
    #[inline]
    pub(crate) fn ok_plain(&mut self, count: u32, now_ms: u64) -> Result<(), WireError> {
        self.now_ms = now_ms;
        if count == 0 {
            return Ok(());
        }
        self.frame().count += count;
        self.next += u64::from(count);
        self.items = self.items.wrapping_add(count);
        if self.now_ms.saturating_sub(self.frame_ms) >= FLUSH_MS {
            self.flush()?;
        }
        Ok(())
    }

    /// Whether items are timed (the clock is read for each).
    pub(crate) fn timed(&self) -> bool {
        self.timed
    }

    /// The clock as last read.
    pub(crate) fn now_ms(&self) -> u64 {
        self.now_ms
    }

    #[cold]
    pub(crate) fn failed(&mut self, kind: FailureKind) -> Result<(), WireError> {
        self.failures += 1;
        self.frame().failed = true;
        if let Err(message) = wire::push_value(&mut self.pending.out, &WireFailure::from_kind(kind))
        {
            return Err(WireError::Decode {
                what: "failure",
                message,
            });
        }
        self.link.status.end();
        self.advance();
        // A failure ends its frame (the layout allows one, last).
        self.flush()
    }

    #[inline(always)]
    fn advance(&mut self) {
        self.next += 1;
        if let Some(f) = self.frame.as_mut() {
            f.count += 1;
        }
    }

    /// Ends the current results frame and sends everything pending.
    #[inline(never)]
    pub(crate) fn flush(&mut self) -> Result<(), WireError> {
        self.finish()?;
        self.pending.send(self.link, self.next)
    }

    /// The batch is over: ends its results frame and sends everything pending, or, for a
    /// batch that took less than [`HOLD_BELOW`] when `more` says the next batch is already
    /// here (asked only then), lets the link hold it for a moment so that it goes out with the
    /// next batch's results.
    pub(crate) fn end_batch(&mut self, more: impl FnOnce() -> bool) -> Result<(), WireError> {
        self.finish()?;
        let short = self.batch_started.elapsed() < HOLD_BELOW;
        if short && more() && self.pending.hold(self.link, self.next) {
            return Ok(());
        }
        self.pending.send(self.link, self.next)
    }

    /// Ends the current results frame without sending it yet.
    fn finish(&mut self) -> Result<(), WireError> {
        if let Some(frame) = self.frame.take() {
            let now = Instant::now();
            let busy = now.duration_since(self.started).as_nanos() as u64;
            self.started = now;
            wire::finish_results(&mut self.pending.out, frame, busy)?;
        }
        Ok(())
    }
}

/// The failure of an item whose output's `Drop` panicked.
#[cold]
fn dropping_failed(kind: FailureKind) -> FailureKind {
    match kind {
        FailureKind::Panicked {
            message,
            location,
            backtrace,
        } => FailureKind::Panicked {
            message: format!("dropping the job's output panicked: {message}"),
            location,
            backtrace,
        },
        other => other,
    }
}

/// Runs one batch of job `F`: decode each item, call the job, record the outcome.
pub(crate) fn run_batch<F: JobFn>(
    args: &dyn std::any::Any,
    state: &mut dyn std::any::Any,
    count: u32,
    items: &[u8],
    sink: &mut ResultsSink<'_>,
) -> Result<(), WireError> {
    let (Some(args), Some(state)) = (
        args.downcast_ref::<F::Args>(),
        state.downcast_mut::<F::State>(),
    ) else {
        return Err(WireError::Decode {
            what: "batch",
            message: format!(
                "job `{}` was loaded with arguments or a state of another type",
                F::NAME
            ),
        });
    };
    let messages = WorkerSink::<F::Message>::new();
    let mut values = wire::Values::new(items);
    let framing = |message| WireError::Decode {
        what: "batch",
        message,
    };
    let capturing = Capturing::start();
    for done in 0..count {
        if sink.cancelled() {
            return sink.skip(count - done);
        }
        sink.begin_item();
        let start = values.position();
        let item = match catch(|| values.next::<F::Item>()) {
            Ok(Ok(Ok(item))) => item,
            Ok(Ok(Err(message))) => {
                sink.failed(FailureKind::DeserializeItem { message })?;
                continue;
            }
            Ok(Err(message)) => return Err(framing(message)),
            Err(kind) => {
                // Its `Deserialize` panicked somewhere inside the value: step over it whole.
                values.resume_after(start).map_err(framing)?;
                sink.failed(FailureKind::DeserializeItem {
                    message: format!("its Deserialize implementation {kind}"),
                })?;
                continue;
            }
        };
        sink.link.status.phase(Phase::Running);
        let ctx = Ctx::new(sink.next, &messages);
        match run_captured::<F>(item, args, state, &ctx, &capturing) {
            Ok(out) => sink.ok(out)?,
            Err(kind) => sink.failed(kind)?,
        }
    }
    wire::read_all(&values, "batch")
}
