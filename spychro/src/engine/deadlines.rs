//! Every wait has a deadline: a worker's hello and each job's set-up in it
//! (`start_timeout`), an item's time (its job's `timeout`, measured from the status page, less
//! the time its worker waited for the caller to read what the item sent), and a job's
//! (`deadline`). The poll loop sleeps until the nearest one.

use std::time::{Duration, Instant};

use nix::poll::PollTimeout;

use super::conductor::{Engine, Jobs, find};
use super::loss::Cause;
use super::worker::{Load, State};
use crate::error::{Error, WorkerErrorKind};
use crate::sys::status::now_ms;

impl Engine {
    /// A worker whose hello, or a job's set-up in it, is late fails the run (or the job).
    pub(super) fn check_handshakes(&mut self, jobs: Jobs<'_, '_>) -> Result<(), Error> {
        let now = Instant::now();
        for i in 0..self.workers.workers.len() {
            let w = &self.workers.workers[i];
            let waited = w.start_timeout;
            if let Some(deadline) = w.state.handshake_deadline()
                && now >= deadline
            {
                return Err(self
                    .workers
                    .worker_error(i, WorkerErrorKind::HandshakeTimeout(waited)));
            }
            let late = w.loaded.iter().find_map(|&(job, load)| match load {
                Load::Sent { deadline } if now >= deadline && w.state == State::Ready => Some(job),
                _ => None,
            });
            if let Some(job) = late
                && find(jobs, job).is_some()
            {
                self.fault(i, WorkerErrorKind::HandshakeTimeout(waited), jobs)?;
            }
        }
        Ok(())
    }

    /// Kills the worker of every item that ran past its job's timeout.
    pub(super) fn check_timeouts(&mut self, jobs: Jobs<'_, '_>) -> Result<(), Error> {
        let now = now_ms();
        for i in 0..self.workers.workers.len() {
            let w = &self.workers.workers[i];
            if w.state != State::Ready {
                continue;
            }
            let Some(running) = w.status.current() else {
                continue;
            };
            let Some(limit) = find(jobs, running.job).and_then(|j| jobs[j].core().options.timeout)
            else {
                continue;
            };
            if !w
                .inflight
                .iter()
                .any(|b| b.job == running.job && b.unanswered(running.index))
            {
                continue;
            }
            let elapsed = Duration::from_millis(running.working_ms(now));
            if elapsed >= limit {
                let cause = Cause::TimedOut {
                    job: running.job,
                    index: running.index,
                    elapsed,
                };
                self.lost(i, cause, jobs)?;
            }
        }
        Ok(())
    }

    /// A job past its deadline fails with `DeadlineExceeded`.
    pub(super) fn check_deadlines(&mut self, jobs: Jobs<'_, '_>) {
        for job in jobs.iter_mut() {
            let core = job.core();
            if let Some(limit) = core.options.deadline
                && !core.over()
                && core.started.elapsed() >= limit
            {
                let completed = job.delivered();
                job.core_mut()
                    .fail_with(Error::DeadlineExceeded { limit, completed });
            }
        }
    }

    /// How long the next poll may wait: until the nearest handshake deadline, item timeout or
    /// job deadline.
    pub(super) fn poll_timeout(&self, jobs: &[&mut dyn super::job::JobIo]) -> PollTimeout {
        let now = Instant::now();
        let mut wait: Option<Duration> = None;
        let mut at_most = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        let now_ms = now_ms();
        for w in &self.workers.workers {
            if let Some(deadline) = w.state.handshake_deadline() {
                at_most(deadline.saturating_duration_since(now));
            }
            for &(_, load) in &w.loaded {
                if let Load::Sent { deadline } = load {
                    at_most(deadline.saturating_duration_since(now));
                }
            }
            if w.state != State::Ready || w.inflight.is_empty() {
                continue;
            }
            // The item running now, or the next one, which may start at any moment.
            let (job, worked) = match w.status.current() {
                Some(r) => (r.job, Duration::from_millis(r.working_ms(now_ms))),
                None => (w.inflight[0].job, Duration::ZERO),
            };
            let limit = find(jobs, job).and_then(|j| jobs[j].core().options.timeout);
            if let Some(limit) = limit {
                // The shared clock ticks in milliseconds: wake just after the limit.
                at_most(limit.saturating_sub(worked) + Duration::from_millis(2));
            }
        }
        for job in jobs.iter() {
            let core = job.core();
            if let Some(limit) = core.options.deadline
                && !core.over()
            {
                at_most(limit.saturating_sub(core.started.elapsed()));
            }
        }
        match wait {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms = d.as_millis().clamp(1, u16::MAX as u128) as u16;
                PollTimeout::from(ms)
            }
        }
    }
}
