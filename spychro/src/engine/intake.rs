//! What comes in from workers: reads a worker's socket and routes each frame — the handshake,
//! a job's set-up answer, results (checked against the batch they answer, then decoded by the
//! job's typed side), and what items send on the way (logs, messages, progress), to the job
//! whose batch the worker is running.

use std::sync::Arc;

use super::batch::ItemBytes;
use super::conductor::{Engine, Jobs, find};
use super::handshake::{self, Step};
use super::hooks::{WorkerLog, reemit};
use super::job::{Outcome, PlainOutputs};
use super::loss::Cause;
use super::outcomes::Outcomes;
use super::worker::{Load, State};
use crate::call::job_fn::JobFn;
use crate::error::{Error, WireError, WorkerErrorKind};
use crate::wire;

/// Keeps at most this many spare item buffers per job.
const SPARE_BUFFERS: usize = 4;

impl Engine {
    /// Reads what worker `i` sent and handles each whole frame.
    pub(super) fn receive(&mut self, i: usize, jobs: Jobs<'_, '_>) -> Result<(), Error> {
        let w = &mut self.workers.workers[i];
        let open = match w.rx.fill(&mut &w.sock) {
            Ok(open) => open,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            Err(e) => return self.lost(i, Cause::Io(e), jobs),
        };
        // The frames borrow the receive buffer while their handler borrows the rest of the
        // engine: lend the buffer out (no frame handler replaces the worker) and put it back.
        let mut rx = std::mem::take(&mut self.workers.workers[i].rx);
        let handled = self.handle_frames(i, &mut rx, jobs);
        self.workers.workers[i].rx = rx;
        if let Err(kind) = handled {
            return self.fault(i, kind, jobs);
        }
        if !open && self.workers.workers[i].state != State::Gone {
            return self.lost(i, Cause::Closed, jobs);
        }
        Ok(())
    }

    /// Worker `i`'s process ended (its pidfd said so): take what it sent before it did, then
    /// treat it as lost — whoever still holds its socket (a forked copy) cannot delay this.
    pub(super) fn exited(&mut self, i: usize, jobs: Jobs<'_, '_>) -> Result<(), Error> {
        if self.workers.workers[i].state == State::Gone {
            return Ok(());
        }
        self.receive(i, jobs)?;
        if self.workers.workers[i].state != State::Gone {
            return self.lost(i, Cause::Exited, jobs);
        }
        Ok(())
    }

    /// Handles every whole frame in `rx`, which came from worker `i`. An `Err` is a protocol
    /// violation by that worker.
    fn handle_frames(
        &mut self,
        i: usize,
        rx: &mut wire::FrameBuf,
        jobs: Jobs<'_, '_>,
    ) -> Result<(), WorkerErrorKind> {
        while let Some((tag, body)) = rx.next_frame().map_err(WorkerErrorKind::Wire)? {
            self.handle_frame(i, tag, body, jobs)?;
            if self.workers.workers[i].state == State::Gone {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Handles one frame from worker `i`.
    fn handle_frame(
        &mut self,
        i: usize,
        tag: u8,
        body: &[u8],
        jobs: Jobs<'_, '_>,
    ) -> Result<(), WorkerErrorKind> {
        let w = &mut self.workers.workers[i];
        if let Step::Done = handshake::on_frame(w, tag, body)? {
            self.workers.failed_starts = 0;
            return Ok(());
        }
        let bad = |message: String| {
            WorkerErrorKind::Wire(WireError::Decode {
                what: "incoming",
                message,
            })
        };
        if !matches!(w.state, State::Ready | State::Retiring) {
            return Err(bad(format!(
                "message tag {tag} is not expected while the worker is {:?}",
                w.state
            )));
        }
        // What an item sends goes to the job of the batch the worker is running.
        let running = w.inflight.front().map(|b| b.job);
        let pid = w.pid;
        match tag {
            wire::TAG_SETUP_DONE => {
                let done: wire::SetupDone =
                    wire::decode(body, "setup done").map_err(WorkerErrorKind::Wire)?;
                let failure = match done.result {
                    Ok(()) => {
                        w.set_load(done.job, Load::Ready);
                        return Ok(());
                    }
                    Err(failure) => failure,
                };
                if let Some(j) = find(jobs, done.job) {
                    let name = jobs[j].core().name;
                    let error = match failure {
                        wire::SetupFailure::Refused(reason) => self.workers.worker_error(
                            i,
                            WorkerErrorKind::Refused {
                                job: name.to_owned(),
                                reason,
                            },
                        ),
                        wire::SetupFailure::State(message) => Error::WorkerState {
                            job: name,
                            pid,
                            message,
                        },
                    };
                    jobs[j].core_mut().fail_with(error);
                }
                Ok(())
            }
            wire::TAG_UNLOADED => {
                let unloaded: wire::Unloaded<Result<Vec<u8>, String>> =
                    wire::decode(body, "unloaded").map_err(WorkerErrorKind::Wire)?;
                w.loaded.retain(|(j, _)| *j != unloaded.job);
                if let Some(j) = find(jobs, unloaded.job) {
                    let job = &mut *jobs[j];
                    job.core_mut().unloading = job.core().unloading.saturating_sub(1);
                    match unloaded.exit {
                        Ok(bytes) => job.worker_exit(pid, &bytes),
                        Err(why) => log::warn!(
                            "the per-worker state of job `{}` in worker {pid} ended without an \
                             exit value: {why}",
                            job.core().name
                        ),
                    }
                }
                Ok(())
            }
            wire::TAG_RESULTS => {
                self.unexplained = 0;
                self.receive_results(i, body, jobs)
                    .map_err(WorkerErrorKind::Wire)
            }
            wire::TAG_SKIPPED => {
                let (job, first, count) =
                    wire::parse_skipped(body).map_err(WorkerErrorKind::Wire)?;
                self.answered(i, job, first, count, jobs)
                    .map_err(WorkerErrorKind::Wire)
            }
            wire::TAG_LOG => {
                let log: wire::WireLog =
                    wire::decode(body, "log").map_err(WorkerErrorKind::Wire)?;
                let record = WorkerLog::from_wire(pid, log);
                match running.and_then(|id| find(jobs, id)) {
                    Some(j) => jobs[j].log(record),
                    None => reemit(&record),
                }
                Ok(())
            }
            wire::TAG_MESSAGE => {
                let mut c = wire::Cursor::new(body, "message");
                let item = c.u64().map_err(WorkerErrorKind::Wire)?;
                let message = c.bytes(c.remaining()).map_err(WorkerErrorKind::Wire)?;
                if let Some(j) = running.and_then(|id| find(jobs, id)) {
                    jobs[j].message(pid, item, message);
                }
                Ok(())
            }
            wire::TAG_PROGRESS => {
                let p: wire::WireProgress =
                    wire::decode(body, "progress").map_err(WorkerErrorKind::Wire)?;
                if let Some(j) = running.and_then(|id| find(jobs, id)) {
                    jobs[j].progress(pid, p.item, p.fraction);
                }
                Ok(())
            }
            tag => Err(bad(format!("message tag {tag} is not expected"))),
        }
    }

    /// A results frame from worker `i`: checked against the batch it answers (the front of the
    /// worker's queue), handed to that batch's job, and the batch retired once answered.
    fn receive_results(
        &mut self,
        i: usize,
        body: &[u8],
        jobs: Jobs<'_, '_>,
    ) -> Result<(), WireError> {
        let (h, rest) = wire::parse_results(body)?;
        let w = &mut self.workers.workers[i];
        w.busy_ns += h.busy_ns;
        let bad = |message: String| WireError::Decode {
            what: "results",
            message,
        };
        let Some(batch) = w.inflight.front_mut() else {
            return Err(bad("results arrived with no batch in flight".into()));
        };
        let expected = batch.first + batch.done as u64;
        if h.job != batch.job || h.first != expected || h.count > batch.count - batch.done {
            return Err(bad(format!(
                "results for job {} items {}+{} do not match the batch in flight (job {}, next \
                 item {expected}, {} left)",
                h.job,
                h.first,
                h.count,
                batch.job,
                batch.count - batch.done
            )));
        }
        // A plain batch's outputs are in the worker's region, from where its slot says.
        let plain = match (batch.plain, batch.slot, w.status.region()) {
            (None, ..) => None,
            (Some(sizes), Some(slot), Some((region, _))) => {
                let size = sizes.output as usize;
                let at = slot.outputs_at + (h.first - batch.first) as usize * size;
                // SAFETY: the slot lies within the region (the worker checked the same
                // bounds), and so do the outputs of the frame, which answers items of it.
                let first = unsafe { region.add(at).cast_const() };
                Some(PlainOutputs { first, size })
            }
            _ => {
                return Err(bad(
                    "a plain batch has no slot in its worker's region".into()
                ));
            }
        };
        if let Some(j) = find(jobs, h.job) {
            let job = &mut *jobs[j];
            // A job that ended (failed, cancelled) drops what still comes for it.
            if !job.core().ended() {
                job.take_results(w.pid, batch, &h, rest, plain)?;
                job.core_mut().tally.add(i, h.count, h.busy_ns);
                if !job.stopped() {
                    job.core_mut().sizer.observe(h.count, h.busy_ns);
                }
            }
        }
        self.answered(i, h.job, h.first, h.count, jobs)
    }

    /// Items `first..first + count` of job `job`, at the front of worker `i`'s queue, were
    /// answered (or skipped): the batch is retired once all of its items are.
    fn answered(
        &mut self,
        i: usize,
        job: u32,
        first: u64,
        count: u32,
        jobs: Jobs<'_, '_>,
    ) -> Result<(), WireError> {
        let w = &mut self.workers.workers[i];
        let Some(batch) = w.inflight.front_mut() else {
            return Err(WireError::Decode {
                what: "skipped",
                message: "items were skipped with no batch in flight".into(),
            });
        };
        let expected = batch.first + batch.done as u64;
        if job != batch.job || first != expected || count > batch.count - batch.done {
            return Err(WireError::Decode {
                what: "skipped",
                message: format!(
                    "items {first}+{count} of job {job} do not match the batch in flight"
                ),
            });
        }
        batch.done += count;
        w.done += u64::from(count);
        w.answered_at = std::time::Instant::now();
        if batch.done == batch.count
            && let Some(answered) = w.inflight.pop_front()
        {
            if let Some(slot) = &answered.slot {
                w.slots.free(slot);
            }
            let Some(j) = find(jobs, job) else {
                return Ok(());
            };
            let core = jobs[j].core_mut();
            core.in_flight -= 1;
            if core.spare_items.len() < SPARE_BUFFERS
                && let Ok(items) = Arc::try_unwrap(answered.items)
            {
                core.spare_items.push(items);
            }
        }
        Ok(())
    }
}

/// Describes an item of job `F` from its bytes, for error messages. User code runs here
/// (the item's `Deserialize` and `Debug`): a panic in it only loses the description.
pub(crate) fn describe<F: JobFn>(item: Option<ItemBytes<'_>>) -> Option<String> {
    let item = item?;
    let capturing = crate::call::panic::Capturing::start();
    let described = crate::call::panic::catch(|| {
        let item: F::Item = match item {
            ItemBytes::Encoded(bytes) => wire::decode_value(bytes).ok()?,
            ItemBytes::Plain(bytes) => {
                let size = F::plain_sizes().0.filter(|&n| n == bytes.len())?;
                // SAFETY: only plain types have a plain size, and `bytes` holds exactly one
                // value of it.
                unsafe { crate::call::plain::read(bytes.as_ptr(), 0, size) }
            }
        };
        F::describe(&item)
    });
    drop(capturing);
    described.ok().flatten()
}

/// Decodes the results frame of a single item (a [`Process`](crate::Process)'s, run by
/// worker `pid` and described as `item`) the way a pool's are: its output, or its failure.
pub(crate) fn decode_one<F: JobFn>(
    pid: u32,
    body: &[u8],
    item: Option<String>,
) -> Result<Outcome<F::Output>, WireError> {
    let (h, rest) = wire::parse_results(body)?;
    if h.first != 0 || h.count != 1 {
        return Err(WireError::Decode {
            what: "results",
            message: format!(
                "a process answered items {}+{}, not its one item",
                h.first, h.count
            ),
        });
    }
    let mut outcomes = Outcomes::<F, ()>::new(false, ());
    outcomes.take_results(pid, &h, rest, None, |_| item.clone())?;
    match outcomes.pop_outcome() {
        Some(outcome) => Ok(outcome),
        None => outcomes
            .take_failure()
            .map(Err)
            .ok_or_else(|| WireError::Decode {
                what: "results",
                message: "a process answered without an outcome".into(),
            }),
    }
}
