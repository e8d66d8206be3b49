//! A worker that died or must die: which item it was running (crash attribution through the
//! status page, which survives the worker), whether that item fails or runs again (retries),
//! where the items it held but had not answered go (back to their jobs' requeues), and its
//! replacement.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::batch::{InFlight, ItemBytes, OwnedItem};
use super::conductor::{Engine, Jobs, find};
use super::handshake::death_before_handshake;
use super::job::JobCore;
use super::worker::State;
use crate::error::{Error, ExitStatus, FailureKind, ItemError, WorkerErrorKind};
use crate::sys::status::Phase;

/// Why a worker was lost.
pub(crate) enum Cause {
    /// Its socket closed.
    Closed,
    /// Its process ended (its pidfd said so).
    Exited,
    /// Its socket failed.
    Io(std::io::Error),
    /// Item `index` of job `job` ran past its timeout.
    TimedOut {
        job: u32,
        index: u64,
        elapsed: Duration,
    },
}

impl Engine {
    /// Worker `i` is dead or must die. Fails (or retries) the item it was running, sends the
    /// items it had not answered back to their jobs, and starts a replacement.
    pub(super) fn lost(&mut self, i: usize, cause: Cause, jobs: Jobs<'_, '_>) -> Result<(), Error> {
        // SIGINT/SIGTERM: the handler counts the signal, then kills every worker, then wakes
        // the loop. A loop woken by a worker's death first (its thread was not the one the
        // signal interrupted) must not blame the item the worker ran: every job ends with
        // `Interrupted`.
        if let Some(signal) = self.workers.signals.as_ref().and_then(|g| g.fired()) {
            return Err(Error::Interrupted { signal });
        }
        if self.workers.workers[i].state == State::Retiring {
            // It left as asked, after its share of items.
            self.workers.reap(i, Duration::from_secs(2));
            self.states_lost(i, jobs);
            return self.replace(i);
        }
        let w = &mut self.workers.workers[i];
        let pid = w.pid;
        let was = w.state;
        if let Cause::TimedOut { .. } = cause {
            w.kill();
        }
        let grace = match cause {
            Cause::TimedOut { .. } => Duration::ZERO,
            _ => Duration::from_millis(500),
        };
        let status = self.workers.reap(i, grace);
        // Read once the worker is gone, when its page is final: a job that closes the
        // worker's socket is seen as a death at once, while the worker still runs on to the
        // send that fails (and marks its page so).
        let running = self.workers.workers[i].status.current();
        let oom = self.workers.workers[i]
            .stderr
            .oom_report()
            .map(str::to_owned);
        let batches: Vec<InFlight> = self.workers.workers[i].inflight.drain(..).collect();
        for b in &batches {
            if let Some(j) = find(jobs, b.job) {
                jobs[j].core_mut().in_flight -= 1;
            }
        }
        if was.handshake_deadline().is_some() {
            for b in batches {
                requeue(jobs, b, None, None);
            }
            return self.lost_starting(i, cause, status, jobs);
        }
        // Outcomes of several items could not be sent (the worker's socket broke after they
        // returned): each of them runs again alone, so that the one that breaks it is named.
        let suspects = running
            .filter(|r| r.phase == Phase::Sending && r.last > r.index)
            .map(|r| (r.job, r.index..=r.last));
        let culprit: Option<(u32, u64)> = match &cause {
            Cause::TimedOut { job, index, .. } => Some((*job, *index)),
            _ if suspects.is_some() => None,
            _ => running
                .map(|r| (r.job, r.index))
                .filter(|&(job, k)| batches.iter().any(|b| b.job == job && b.unanswered(k))),
        };
        let mut blamed = None;
        for b in batches {
            let mine = |(job, _): &(u32, u64)| *job == b.job;
            let culprit_here = culprit.filter(mine).map(|(_, k)| k);
            if let Some(k) = culprit_here
                && let Some(n) = b.position(k)
            {
                blamed = Some((
                    b.job,
                    k,
                    b.item(n).map(ItemBytes::to_owned),
                    b.slice(n, n + 1),
                ));
            }
            let alone = suspects
                .as_ref()
                .filter(|(job, _)| *job == b.job)
                .map(|(_, r)| r.clone());
            requeue(jobs, b, culprit_here, alone);
        }
        match (culprit, blamed) {
            (Some(_), Some((job, k, encoded, single))) => {
                self.unexplained = 0;
                if let Some(j) = find(jobs, job) {
                    let job = &mut *jobs[j];
                    let attempts = {
                        let a = job.core_mut().attempts.entry(k).or_insert(0);
                        *a += 1;
                        *a
                    };
                    let retries = job.core().options.retries;
                    if attempts <= retries {
                        log::warn!(
                            "item {k} of job `{}` lost its worker {pid} ({status}); retrying \
                             it ({attempts} of {retries})",
                            job.core().name
                        );
                        if let Some(single) = single {
                            job.core_mut().requeue.insert(k, single);
                        }
                    } else if !job.core().ended() {
                        let phase = running.map_or(Phase::Running, |r| r.phase);
                        let kind = failure_kind(
                            job.core(),
                            &cause,
                            status,
                            phase,
                            attempts,
                            self.workers.options.memory_limit,
                            oom.as_deref(),
                        );
                        let item = job.describe(encoded.as_ref().map(OwnedItem::as_bytes));
                        let name = job.core().name;
                        job.fail(Box::new(ItemError::new(name, k, item, pid, kind)));
                    }
                }
            }
            (Some((_, k)), None) => {
                return Err(Error::internal(format!(
                    "item {k} was not held by worker {pid}"
                )));
            }
            (None, _) if suspects.is_some() => {
                log::warn!(
                    "worker {pid} ended with {status} while sending outcomes; running those \
                     items again one by one"
                );
            }
            (None, _) => {
                self.unexplained += 1;
                if self.unexplained > 2 * self.workers.workers.len() as u32 + 2 {
                    return Err(self.workers.worker_error(i, WorkerErrorKind::Died(status)));
                }
                log::warn!("worker {pid} ended with {status} outside any item; replacing it");
            }
        }
        if self.idle(jobs) {
            return Ok(());
        }
        self.replace(i)
    }

    /// Worker `i` died before its hello. One that exits on its own will not start on a second
    /// try either (it is not a spychro worker); one killed from outside is started again, a
    /// few times in a row at most.
    fn lost_starting(
        &mut self,
        i: usize,
        cause: Cause,
        status: ExitStatus,
        jobs: Jobs<'_, '_>,
    ) -> Result<(), Error> {
        if let Cause::Io(e) = cause
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(self.workers.worker_error(i, WorkerErrorKind::Io(e)));
        }
        self.workers.failed_starts += 1;
        let starts = self.workers.failed_starts;
        let cap = self.workers.workers.len() as u32 + 2;
        match status {
            ExitStatus::Signal(_) if starts <= cap => {
                log::warn!(
                    "worker {} was killed by {status} before its handshake; starting another",
                    self.workers.workers[i].pid,
                );
                if self.idle(jobs) {
                    return Ok(());
                }
                self.replace(i)
            }
            _ => Err(self
                .workers
                .worker_error(i, death_before_handshake(status, starts))),
        }
    }
}

/// Sends the unanswered items of `b` back to its job (if the job is still on): all but
/// `culprit`, and each of `alone` in a batch of its own.
fn requeue(
    jobs: Jobs<'_, '_>,
    b: InFlight,
    culprit: Option<u64>,
    alone: Option<RangeInclusive<u64>>,
) {
    let Some(j) = find(jobs, b.job) else { return };
    let core = jobs[j].core_mut();
    if core.ended() {
        return;
    }
    let mut from = b.done;
    for n in b.done..b.count {
        let k = b.first + n as u64;
        let single = alone.as_ref().is_some_and(|s| s.contains(&k));
        if Some(k) != culprit && !single {
            continue;
        }
        if let Some(piece) = b.slice(from, n) {
            core.requeue.insert(piece.first, piece);
        }
        if single && let Some(mut one) = b.slice(n, n + 1) {
            one.alone = true;
            core.requeue.insert(one.first, one);
        }
        from = n + 1;
    }
    if let Some(piece) = b.slice(from, b.count) {
        core.requeue.insert(piece.first, piece);
    }
}

/// What to report for the item a lost worker was running.
fn failure_kind(
    job: &JobCore,
    cause: &Cause,
    status: ExitStatus,
    phase: Phase,
    tries: u32,
    memory_limit: Option<u64>,
    oom: Option<&str>,
) -> FailureKind {
    let tries = if tries > 1 {
        format!(" (tried {tries} times)")
    } else {
        String::new()
    };
    if let Cause::TimedOut { elapsed, .. } = cause {
        let limit = job.options.timeout.unwrap_or_default();
        let during = match phase {
            Phase::Item => " while its item was deserialized",
            Phase::Running => "",
            Phase::Output => " after the job returned, while its output was serialized or dropped",
            Phase::Sending => " after the job returned, while its output was sent",
        };
        return FailureKind::TimedOut {
            limit,
            elapsed: *elapsed,
            message: format!(
                "timed out after {elapsed:?} (limit {limit:?}){during}; its worker was killed \
                 and replaced{tries}"
            ),
        };
    }
    if let (Some(limit), Some(line)) = (memory_limit, oom) {
        return FailureKind::OutOfMemory {
            limit,
            message: format!("{line}{tries}"),
        };
    }
    let during = match phase {
        Phase::Item => "while deserializing it",
        Phase::Running => "while running it",
        Phase::Output => "after the job returned, while its output was serialized or dropped",
        Phase::Sending => {
            "after the job returned, while its output was sent: the worker's socket was closed \
             or broken (does the job close file descriptors it did not open?)"
        }
    };
    FailureKind::Crashed {
        status,
        message: format!("the worker process died with {status} {during}{tries}"),
    }
}
