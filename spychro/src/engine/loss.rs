//! A worker that died or must die: which item it was running (crash attribution through the
//! status page, which survives the worker), whether that item fails or runs again (retries),
//! where the items it held but had not answered go (the requeue), and its replacement.

use std::time::Duration;

use super::batch::InFlight;
use super::handshake::death_before_handshake;
use super::intake::describe;
use super::run::Run;
use crate::call::job_fn::JobFn;
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
    /// Item `index` ran past the timeout.
    TimedOut { index: u64, elapsed: Duration },
}

impl<F: JobFn, It: Iterator<Item = F::Item>> Run<'_, F, It> {
    /// Worker `i` is dead or must die. Fails (or retries) the item it was running, sends the
    /// items it had not answered to other workers, and starts a replacement.
    pub(super) fn lost(&mut self, i: usize, cause: Cause) -> Result<(), Error> {
        let w = &mut self.pool.workers[i];
        let pid = w.pid;
        let was = w.state;
        let running = w.status.current();
        if let Cause::TimedOut { .. } = cause {
            w.kill();
        }
        let grace = match cause {
            Cause::TimedOut { .. } => Duration::ZERO,
            _ => Duration::from_millis(500),
        };
        let status = self.pool.reap(i, grace);
        let batches: Vec<InFlight> = self.pool.workers[i].inflight.drain(..).collect();
        if was.handshake_deadline().is_some() {
            return self.lost_starting(i, cause, status);
        }
        // Outcomes of several items could not be sent (the worker's socket broke after they
        // returned): each of them runs again alone, so that the one that breaks it is named.
        let suspects = running
            .filter(|r| r.phase == Phase::Sending && r.last > r.index)
            .map(|r| r.index..=r.last);
        let culprit = match &cause {
            Cause::TimedOut { index, .. } => Some(*index),
            _ if suspects.is_some() => None,
            _ => running
                .map(|r| r.index)
                .filter(|&k| batches.iter().any(|b| b.unanswered(k))),
        };
        for b in &batches {
            self.requeue_unanswered(b, culprit, suspects.clone());
        }
        match culprit {
            Some(k) => {
                let Some((batch, n)) = batches.iter().find_map(|b| Some((b, b.position(k)?)))
                else {
                    return Err(Error::internal(format!(
                        "item {k} was not held by worker {pid}"
                    )));
                };
                let attempts = {
                    let a = self.attempts.entry(k).or_insert(0);
                    *a += 1;
                    *a
                };
                if attempts <= self.options.retries {
                    if let Some(single) = batch.slice(n, n + 1) {
                        log::warn!(
                            "item {k} of job `{}` lost its worker {pid} ({status}); retrying it \
                             ({} of {})",
                            F::NAME,
                            attempts,
                            self.options.retries
                        );
                        self.requeue.insert(k, single);
                    }
                } else {
                    let phase = running.map_or(Phase::Running, |r| r.phase);
                    let kind = self.failure_kind(i, &cause, status, phase, attempts);
                    let item = describe::<F>(batch.item(n));
                    self.job
                        .fail(Box::new(ItemError::new(F::NAME, k, item, pid, kind)));
                }
                self.unexplained = 0;
            }
            None if suspects.is_some() => {
                log::warn!(
                    "worker {pid} of job `{}` ended with {status} while sending outcomes; \
                     running those items again one by one",
                    F::NAME
                );
            }
            None => {
                self.unexplained += 1;
                if self.unexplained > 2 * self.pool.workers.len() as u32 + 2 {
                    return Err(self.pool.worker_error(i, WorkerErrorKind::Died(status)));
                }
                log::warn!(
                    "worker {pid} of job `{}` ended with {status} outside any item; replacing it",
                    F::NAME
                );
            }
        }
        if self.job.stopped() {
            return Ok(());
        }
        self.replace(i)
    }

    /// Sends the unanswered items of `b` again: all but `culprit`, and each of `suspects` in a
    /// batch of its own.
    fn requeue_unanswered(
        &mut self,
        b: &InFlight,
        culprit: Option<u64>,
        suspects: Option<std::ops::RangeInclusive<u64>>,
    ) {
        let mut from = b.done;
        for n in b.done..b.count {
            let k = b.first + n as u64;
            let alone = suspects.as_ref().is_some_and(|s| s.contains(&k));
            if Some(k) != culprit && !alone {
                continue;
            }
            if let Some(piece) = b.slice(from, n) {
                self.requeue.insert(piece.first, piece);
            }
            if alone && let Some(single) = b.slice(n, n + 1) {
                self.requeue.insert(single.first, single);
            }
            from = n + 1;
        }
        if let Some(piece) = b.slice(from, b.count) {
            self.requeue.insert(piece.first, piece);
        }
    }

    /// Worker `i` died before its handshake ended. One that exits on its own will not start
    /// on a second try either (it is not a spychro worker); one killed from outside is
    /// started again, a few times in a row at most.
    fn lost_starting(&mut self, i: usize, cause: Cause, status: ExitStatus) -> Result<(), Error> {
        if let Cause::Io(e) = cause
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(self.pool.worker_error(i, WorkerErrorKind::Io(e)));
        }
        self.pool.failed_starts += 1;
        let starts = self.pool.failed_starts;
        let cap = self.pool.workers.len() as u32 + 2;
        match status {
            ExitStatus::Signal(_) if starts <= cap => {
                log::warn!(
                    "worker {} of job `{}` was killed by {status} before its handshake; \
                     starting another",
                    self.pool.workers[i].pid,
                    F::NAME
                );
                self.replace(i)
            }
            _ => Err(self
                .pool
                .worker_error(i, death_before_handshake(status, starts))),
        }
    }

    /// Starts a replacement for worker `i` and queues the job's set-up for it.
    pub(super) fn replace(&mut self, i: usize) -> Result<(), Error> {
        self.pool.respawn(i)?;
        self.pool.workers[i].queue().extend_from_slice(&self.setup);
        Ok(())
    }

    /// What to report for the item a lost worker was running.
    fn failure_kind(
        &self,
        i: usize,
        cause: &Cause,
        status: ExitStatus,
        phase: Phase,
        tries: u32,
    ) -> FailureKind {
        let tries = if tries > 1 {
            format!(" (tried {tries} times)")
        } else {
            String::new()
        };
        if let Cause::TimedOut { elapsed, .. } = cause {
            let limit = self.options.timeout.unwrap_or_default();
            let during = match phase {
                Phase::Item => " while its item was deserialized",
                Phase::Running => "",
                Phase::Output => {
                    " after the job returned, while its output was serialized or dropped"
                }
                Phase::Sending => " after the job returned, while its output was sent",
            };
            return FailureKind::TimedOut {
                limit,
                elapsed: *elapsed,
                message: format!(
                    "timed out after {elapsed:?} (limit {limit:?}){during}; its worker was \
                     killed and replaced{tries}"
                ),
            };
        }
        let w = &self.pool.workers[i];
        if let Some(limit) = self.pool.options.memory_limit
            && let Some(line) = w.stderr.oom_report()
        {
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
                "after the job returned, while its output was sent: the worker's socket was \
                 closed or broken (does the job close file descriptors it did not open?)"
            }
        };
        FailureKind::Crashed {
            status,
            message: format!("the worker process died with {status} {during}{tries}"),
        }
    }
}
