//! Batches out: which worker gets the next batch (breadth-first, a few in flight per worker),
//! of which job (round robin between the jobs that have work, so that jobs sharing a pool
//! share its workers fairly), how big it is (each job's sizer), what goes in it (items to send
//! again first, then new items read lazily from the job's input), and when a worker has run
//! its share of items and is replaced (`max_items_per_worker`).

use std::time::{Duration, Instant};

use super::batch::InFlight;
use super::conductor::{Engine, Jobs};
use super::job::JobIo;
use super::sizer::MAX_BYTES;
use super::slots::Slots;
use super::worker::{Load, State};
use crate::call::plain::PlainSizes;
use crate::error::Error;

/// Batches in flight per worker before every worker is up; once they are, small batches go
/// deeper (see `Sizer::depth`), so that one-item messages do not wake a sleeping worker each
/// time.
const PIPELINE: usize = 2;

/// A worker that holds work and has answered nothing for three times as long as its oldest
/// batch should take (and at least this long) is busy with an item slower than the others: it
/// gets no more batches to queue behind that item (workers that answer get them instead) until
/// it answers.
const STALLED: Duration = Duration::from_millis(8);

impl Engine {
    /// Replaces the workers that ran their share of items.
    pub(super) fn recycle(&mut self, jobs: Jobs<'_, '_>) -> Result<(), Error> {
        let Some(max) = self.workers.options.max_items_per_worker else {
            return Ok(());
        };
        if self.idle(jobs) {
            return Ok(());
        }
        for i in 0..self.workers.workers.len() {
            let w = &self.workers.workers[i];
            if w.state == State::Ready && w.assigned >= max && w.inflight.is_empty() {
                // It says goodbye (the exit values of its jobs' states, then its end) through
                // the loop like any other frame; its end is then no loss.
                let w = &mut self.workers.workers[i];
                crate::wire::push_empty(w.queue(), crate::wire::TAG_SHUTDOWN);
                w.state = State::Retiring;
            }
        }
        Ok(())
    }

    /// Sends batches breadth-first: every worker gets one before any gets a second, and while
    /// some workers are still starting, each that is up holds one batch.
    pub(super) fn dispatch(&mut self, jobs: Jobs<'_, '_>) -> Result<(), Error> {
        if jobs.is_empty() {
            return Ok(());
        }
        let workers = &self.workers.workers;
        let live = workers
            .iter()
            .filter(|w| w.state != State::Gone)
            .count()
            .max(1);
        let starting = workers
            .iter()
            .any(|w| w.state.handshake_deadline().is_some());
        // How deep each job may fill a worker.
        let depths: Vec<usize> = jobs
            .iter()
            .map(|j| {
                if starting {
                    return 1;
                }
                let c = j.core();
                let first = c.sizer.next(j.remaining(), live);
                c.sizer.depth(first).max(PIPELINE)
            })
            .collect();
        let deepest = depths.iter().copied().max().unwrap_or(1);
        // A worker that has not said hello yet gets a batch only while none has: the first
        // one then starts work without a round trip, and the others do not hold items that a
        // worker already up could run while they start.
        let ready = workers.iter().any(|w| w.state == State::Ready);
        let early = workers.iter().position(|w| w.state != State::Gone);
        let now = Instant::now();
        let stalled: Vec<bool> = workers
            .iter()
            .map(|w| {
                let Some(front) = w.inflight.front() else {
                    return false;
                };
                let expected = jobs
                    .iter()
                    .find(|j| j.core().id == front.job)
                    .and_then(|j| j.core().sizer.expected(front.count - front.done));
                expected.is_some_and(|e| {
                    now.saturating_duration_since(w.answered_at) > (3 * e).max(STALLED)
                })
            })
            .collect();
        for level in 0..deepest {
            for i in 0..self.workers.workers.len() {
                let w = &self.workers.workers[i];
                if matches!(w.state, State::Gone | State::Retiring) || w.inflight.len() != level {
                    continue;
                }
                if w.state != State::Ready && (ready || Some(i) != early) {
                    continue;
                }
                if level > 0 && stalled.get(i) == Some(&true) {
                    continue;
                }
                if w.inflight.iter().any(|b| b.alone) {
                    continue;
                }
                let mut size_cap = usize::MAX;
                if let Some(max) = self.workers.options.max_items_per_worker {
                    let quota = max.saturating_sub(w.assigned);
                    if quota == 0 {
                        continue;
                    }
                    size_cap = quota as usize;
                }
                // The next job, in turn, that has work for this level.
                let n = jobs.len();
                for k in 0..n {
                    let j = (self.next_job + k) % n;
                    if level >= depths[j] {
                        continue;
                    }
                    // A plain job's batch must fit the worker's region.
                    let room = match jobs[j].core().plain {
                        Some(sizes) => plain_cap(&self.workers.workers[i].slots, sizes, size_cap),
                        None => size_cap,
                    };
                    let caps = Caps {
                        size: size_cap,
                        room,
                    };
                    let Some(batch) = next_batch(&mut *jobs[j], live, depths[j], caps, level == 0)
                    else {
                        continue;
                    };
                    self.next_job = (j + 1) % n;
                    self.send(i, &mut *jobs[j], batch)?;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Queues `batch` of `job` to worker `i`, after the job's set-up if the worker does not
    /// have it yet.
    fn send(&mut self, i: usize, job: &mut dyn JobIo, mut batch: InFlight) -> Result<(), Error> {
        let start_timeout = self.workers.options.start_timeout;
        let w = &mut self.workers.workers[i];
        let core = job.core_mut();
        if w.load(core.id).is_none() {
            w.queue().extend_from_slice(&core.setup);
            w.set_load(
                core.id,
                Load::Sent {
                    deadline: Instant::now() + start_timeout,
                },
            );
        }
        if w.inflight.is_empty() {
            w.answered_at = Instant::now();
        }
        let queued = match batch.plain {
            Some(sizes) => w.queue_plain_batch(core.id, &mut batch, sizes),
            None => w.queue_batch(core.id, &batch).map_err(|e| e.to_string()),
        };
        if let Err(e) = queued {
            return Err(Error::internal(format!("a batch could not be queued: {e}")));
        }
        w.assigned += batch.count as u64;
        w.inflight.push_back(batch);
        core.in_flight += 1;
        Ok(())
    }
}

/// A plain job's batches of fewer items than this are serialized (see `next_batch`).
const PLAIN_FROM: usize = 16;

/// How many items of a plain job of `sizes` the next batch to a worker whose region has
/// `slots` may hold: what its largest free run holds, and no more than a quarter of the
/// region, so that several batches can wait there.
fn plain_cap(slots: &Slots, sizes: PlainSizes, cap: usize) -> usize {
    let per_item = sizes.item.max(sizes.output) as usize;
    let quarter = match per_item {
        0 => cap,
        per => (slots.region_len() / 4 / per).max(1),
    };
    slots.room(per_item, cap.min(quarter))
}

/// How large the next batch to a worker may be.
#[derive(Clone, Copy)]
struct Caps {
    /// Items, whatever their kind.
    size: usize,
    /// Items of a plain job sent through the region: what its free room holds.
    room: usize,
}

/// The next batch of `job`, of the size its sizer says (at most `caps.size`; a plain one at
/// most `caps.room`): items to send again first, then new items (fewer if they pass
/// [`MAX_BYTES`]), serialized, or raw for a plain job's batch of [`PLAIN_FROM`] items or more.
/// `None` when the job has nothing to send now (over, stopped, waiting for its stream's
/// consumer, or at the end of its input), or when what comes next must run alone and the
/// worker (`idle` false) has other batches, or is plain and finds no room.
fn next_batch(
    job: &mut dyn JobIo,
    live: usize,
    depth: usize,
    caps: Caps,
    idle: bool,
) -> Option<InFlight> {
    if job.stopped() || job.core().error.is_some() || job.core().cancelled {
        return None;
    }
    let remaining = job.remaining();
    let delivered = job.delivered();
    let core = job.core_mut();
    let mut size = core.sizer.next(remaining, live).min(caps.size).max(1);
    if let Some((_, batch)) = core.requeue.pop_first() {
        if batch.plain.is_some() {
            size = size.min(caps.room);
        }
        if (batch.alone && !idle) || size == 0 {
            // It waits for a worker with nothing else, or with room for it.
            core.requeue.insert(batch.first, batch);
            return None;
        }
        if batch.count as usize <= size {
            return Some(batch);
        }
        let head = batch.slice(0, size as u32);
        if let Some(rest) = batch.slice(size as u32, batch.count) {
            core.requeue.insert(rest.first, rest);
        }
        return head;
    }
    if core.input_done {
        return None;
    }
    if core.options.bounded {
        let ahead = core.next_index - delivered;
        if ahead >= (3 * depth * live * size) as u64 {
            job.starved();
            return None;
        }
    }
    let first = core.next_index;
    let id = core.id;
    let mut items = core.spare_items.pop().unwrap_or_default();
    items.clear();
    // A plain job's small batches are serialized like any other: below PLAIN_FROM items, a
    // slot in the region costs more than encoding the items does. So is one that finds too
    // little room in the region.
    if core.plain.is_some() && size > caps.room {
        size = if caps.room >= PLAIN_FROM {
            caps.room
        } else {
            size.min(PLAIN_FROM - 1)
        };
    }
    let plain = core.plain.filter(|_| size >= PLAIN_FROM);
    let count = job.read_items(size, MAX_BYTES, &mut items, plain.is_some());
    let core = job.core_mut();
    core.sizer.built(count, items.len());
    (count > 0).then(|| InFlight::new(id, first, count, items, plain))
}
