//! Every wait has a deadline: a worker's handshake (`start_timeout`), an item's time
//! (`timeout`, measured from the status page, less the time its worker waited for the caller
//! to read what the item sent), and the whole job's (`deadline`). The poll loop sleeps until
//! the nearest one.

use std::time::{Duration, Instant};

use nix::poll::PollTimeout;

use super::loss::Cause;
use super::run::Run;
use super::worker::State;
use crate::call::job_fn::JobFn;
use crate::error::{Error, WorkerErrorKind};
use crate::sys::status::now_ms;

impl<F: JobFn, It: Iterator<Item = F::Item>> Run<'_, F, It> {
    /// Fails the run if a worker's handshake is late.
    pub(super) fn check_handshakes(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        for i in 0..self.pool.workers.len() {
            let w = &self.pool.workers[i];
            if let Some(deadline) = w.state.handshake_deadline()
                && now >= deadline
            {
                let waited = w.start_timeout;
                return Err(self
                    .pool
                    .worker_error(i, WorkerErrorKind::HandshakeTimeout(waited)));
            }
        }
        Ok(())
    }

    /// Kills the worker of every item that ran past the timeout.
    pub(super) fn check_timeouts(&mut self) -> Result<(), Error> {
        let Some(limit) = self.options.timeout else {
            return Ok(());
        };
        let now = now_ms();
        for i in 0..self.pool.workers.len() {
            let w = &self.pool.workers[i];
            if w.state != State::Ready {
                continue;
            }
            if let Some(running) = w.status.current()
                && w.find(running.index).is_some()
            {
                let elapsed = Duration::from_millis(running.working_ms(now));
                if elapsed >= limit {
                    let index = running.index;
                    self.lost(i, Cause::TimedOut { index, elapsed })?;
                    if self.job.stopped() {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Fails the run once it is past its deadline.
    pub(super) fn check_deadline(&mut self) -> Result<(), Error> {
        match self.options.deadline {
            Some(limit) if self.started.elapsed() >= limit => Err(Error::DeadlineExceeded {
                limit,
                completed: self.job.reorder.next_index(),
            }),
            _ => Ok(()),
        }
    }

    /// How long the next poll may wait: until the nearest handshake deadline, item timeout or
    /// job deadline.
    pub(super) fn poll_timeout(&self) -> PollTimeout {
        let now = Instant::now();
        let mut wait: Option<Duration> = None;
        let mut at_most = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        for w in &self.pool.workers {
            if let Some(deadline) = w.state.handshake_deadline() {
                at_most(deadline.saturating_duration_since(now));
            }
        }
        if let Some(limit) = self.options.timeout {
            let now_ms = now_ms();
            for w in &self.pool.workers {
                if w.state != State::Ready || w.inflight.is_empty() {
                    continue;
                }
                let left = match w.status.current() {
                    Some(running) => {
                        limit.saturating_sub(Duration::from_millis(running.working_ms(now_ms)))
                    }
                    // The next item may start at any moment: it cannot time out sooner.
                    None => limit,
                };
                // The shared clock ticks in milliseconds: wake just after the limit.
                at_most(left + Duration::from_millis(2));
            }
        }
        if let Some(limit) = self.options.deadline {
            at_most(limit.saturating_sub(self.started.elapsed()));
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
