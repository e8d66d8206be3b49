//! The conductor: one turn of the loop that serves a pool's workers for any number of jobs —
//! send batches (`dispatch`), write, wait on every worker socket, process descriptor and
//! output pipe at once, take in what arrives (`intake`), replace workers that die (`loss`),
//! enforce deadlines (`deadlines`). A job run from the caller's thread (`run`) and a
//! persistent pool's thread (`pool`) both drive their jobs with [`Engine::step`].
//!
//! The loop never blocks on one worker: sockets are non-blocking, writes are queued, and every
//! wait is a `poll` whose timeout is the nearest deadline. See `engine/README.md` for the
//! protocol and its invariants.

use std::os::fd::{AsFd, BorrowedFd};

use nix::poll::{PollFd, PollFlags, poll};

use super::insights::Insights;
use super::job::{JobCore, JobIo};
use super::loss::Cause;
use super::worker::State;
use super::workers::{PoolOptions, Workers};
use crate::error::{Error, WorkerErrorKind};

/// The jobs an engine serves in one turn (the engine does not own them).
pub(crate) type Jobs<'j, 'a> = &'j mut [&'a mut dyn JobIo];

/// What a polled fd belongs to.
#[derive(Clone, Copy)]
enum Source {
    Socket(usize),
    Exited(usize),
    Stdout(usize),
    Stderr(usize),
    Signal,
    /// Something outside the engine (a pool's command queue) woke it.
    Wake,
}

/// A pool's workers and what the engine keeps about them between turns.
pub(crate) struct Engine {
    pub(crate) workers: Workers,
    /// Worker deaths in a row that no item explains.
    pub(super) unexplained: u32,
    /// Where dispatch looks for the next job to serve (round robin between jobs).
    pub(super) next_job: usize,
    /// The workers outlive jobs (a persistent pool): a worker that dies is replaced even
    /// when no job is running.
    pub(crate) persistent: bool,
}

impl Engine {
    /// Starts the workers (their handshakes complete in later turns).
    pub(crate) fn start(options: PoolOptions) -> Result<Engine, Error> {
        Ok(Engine {
            workers: Workers::start(options)?,
            unexplained: 0,
            next_job: 0,
            persistent: false,
        })
    }

    /// Whether every job is over (or stopped) and workers are not kept for later ones.
    pub(super) fn idle(&self, jobs: &[&mut dyn JobIo]) -> bool {
        !self.persistent && jobs.iter().all(|j| j.core().over() || j.stopped())
    }

    /// Whether any worker holds a batch.
    pub(crate) fn busy(&self) -> bool {
        self.workers.workers.iter().any(|w| !w.inflight.is_empty())
    }

    /// One turn: send batches, write, wait (at most until the nearest deadline, or until
    /// `wake` is readable), read, enforce deadlines. An `Err` is a failure of the machinery
    /// that ends every job (a signal, a poll that failed, a worker that cannot be started);
    /// what fails only some jobs is recorded in their cores.
    pub(crate) fn step(
        &mut self,
        jobs: Jobs<'_, '_>,
        wake: Option<BorrowedFd<'_>>,
    ) -> Result<(), Error> {
        self.adopt(jobs);
        self.dispatch(jobs)?;
        self.end_states(jobs);
        for i in 0..self.workers.workers.len() {
            let w = &mut self.workers.workers[i];
            if w.state != State::Gone
                && w.wants_write()
                && let Err(e) = w.flush()
            {
                self.lost(i, Cause::Io(e), jobs)?;
            }
        }
        // A job that is over (or stopped) now is the driver's to finish before anything else.
        if jobs.iter().any(|j| j.core().over() || j.stopped()) {
            return Ok(());
        }
        let starting = self
            .workers
            .workers
            .iter()
            .any(|w| w.state.handshake_deadline().is_some());
        if jobs.is_empty() && !self.busy() && !starting && wake.is_none() {
            return Ok(());
        }

        let timeout = self.poll_timeout(jobs);
        let workers = &self.workers.workers;
        let mut sources = Vec::with_capacity(4 * workers.len() + 2);
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(sources.capacity());
        fn add<'a>(
            fds: &mut Vec<PollFd<'a>>,
            sources: &mut Vec<Source>,
            fd: BorrowedFd<'a>,
            events: PollFlags,
            source: Source,
        ) {
            fds.push(PollFd::new(fd, events));
            sources.push(source);
        }
        // `fds` borrows the workers' descriptors until it is dropped below, before anything
        // changes the workers.
        if let Some(g) = &self.workers.signals {
            add(
                &mut fds,
                &mut sources,
                g.fd(),
                PollFlags::POLLIN,
                Source::Signal,
            );
        }
        if let Some(fd) = wake {
            add(&mut fds, &mut sources, fd, PollFlags::POLLIN, Source::Wake);
        }
        for (i, w) in workers.iter().enumerate() {
            if w.state == State::Gone {
                continue;
            }
            let mut events = PollFlags::POLLIN;
            if w.wants_write() {
                events |= PollFlags::POLLOUT;
            }
            add(
                &mut fds,
                &mut sources,
                w.sock.as_fd(),
                events,
                Source::Socket(i),
            );
            if let Some(fd) = w.exit_fd() {
                add(
                    &mut fds,
                    &mut sources,
                    fd,
                    PollFlags::POLLIN,
                    Source::Exited(i),
                );
            }
            if let Some(fd) = w.stdout.fd() {
                add(
                    &mut fds,
                    &mut sources,
                    fd,
                    PollFlags::POLLIN,
                    Source::Stdout(i),
                );
            }
            if let Some(fd) = w.stderr.fd() {
                add(
                    &mut fds,
                    &mut sources,
                    fd,
                    PollFlags::POLLIN,
                    Source::Stderr(i),
                );
            }
        }
        let interrupted = match poll(&mut fds, timeout) {
            Ok(_) => false,
            Err(nix::errno::Errno::EINTR) => true,
            Err(e) => return Err(Error::io("poll on worker sockets failed", e.into())),
        };
        let events: Vec<(Source, PollFlags)> = fds
            .iter()
            .zip(&sources)
            .filter_map(|(fd, &s)| {
                let ev = fd.revents().unwrap_or(PollFlags::empty());
                (!ev.is_empty()).then_some((s, ev))
            })
            .collect();
        drop(fds);
        // The process each slot held when it was polled: an event about a worker that an
        // earlier event replaced is about the old process, not its replacement (the old one's
        // pidfd and socket can both be ready in one poll).
        let polled: Vec<u32> = self.workers.workers.iter().map(|w| w.pid).collect();

        let signalled = interrupted || events.iter().any(|(s, _)| matches!(s, Source::Signal));
        if signalled && let Some(signal) = self.workers.signals.as_ref().and_then(|g| g.fired()) {
            return Err(Error::Interrupted { signal });
        }
        for (source, ev) in events {
            let slot = match source {
                Source::Socket(i) | Source::Exited(i) | Source::Stdout(i) | Source::Stderr(i) => {
                    Some(i)
                }
                Source::Signal | Source::Wake => None,
            };
            if slot.is_some_and(|i| self.workers.workers[i].pid != polled[i]) {
                continue;
            }
            match source {
                Source::Signal | Source::Wake => {}
                Source::Stdout(i) => self.workers.workers[i].stdout.pump(),
                Source::Stderr(i) => self.workers.workers[i].stderr.pump(),
                Source::Socket(i) => {
                    if self.workers.workers[i].state == State::Gone {
                        continue;
                    }
                    if ev.contains(PollFlags::POLLOUT)
                        && let Err(e) = self.workers.workers[i].flush()
                    {
                        self.lost(i, Cause::Io(e), jobs)?;
                        continue;
                    }
                    if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                        self.receive(i, jobs)?;
                    }
                }
                Source::Exited(i) => self.exited(i, jobs)?,
            }
        }
        self.check_handshakes(jobs)?;
        self.check_timeouts(jobs)?;
        self.check_deadlines(jobs);
        self.recycle(jobs)
    }

    /// Worker `i` broke the protocol (or did not answer in time): the jobs it held items of
    /// (all live jobs, if it held none) fail with `kind`, and it is replaced.
    pub(super) fn fault(
        &mut self,
        i: usize,
        kind: WorkerErrorKind,
        jobs: Jobs<'_, '_>,
    ) -> Result<(), Error> {
        let w = &self.workers.workers[i];
        let held: Vec<usize> = (0..jobs.len())
            .filter(|&j| w.holds(jobs[j].core().id))
            .collect();
        let affected: Vec<usize> = if held.is_empty() {
            (0..jobs.len())
                .filter(|&j| !jobs[j].core().over())
                .collect()
        } else {
            held
        };
        for &j in &affected {
            jobs[j]
                .core_mut()
                .fail_with(self.workers.worker_error(i, kind.duplicate()));
        }
        self.workers.workers[i].kill();
        self.workers.reap(i, std::time::Duration::ZERO);
        self.states_lost(i, jobs);
        // Its batches are abandoned with their jobs; batches of others go back to them.
        let batches: Vec<_> = self.workers.workers[i].inflight.drain(..).collect();
        for b in batches {
            if let Some(job) = jobs.iter_mut().find(|j| j.core().id == b.job) {
                let core = job.core_mut();
                core.in_flight -= 1;
                if !core.ended()
                    && let Some(rest) = b.slice(b.done, b.count)
                {
                    core.requeue.insert(rest.first, rest);
                }
            }
        }
        if self.persistent || jobs.iter().any(|j| !j.core().over()) {
            self.replace(i)?;
        }
        Ok(())
    }

    /// Asks the workers to end the per-worker states of the jobs whose items are done (each
    /// sends the exit value back; the job is complete once every one did).
    fn end_states(&mut self, jobs: Jobs<'_, '_>) {
        for job in jobs.iter_mut() {
            let core = job.core_mut();
            if !core.stateful || core.unload_sent || !core.items_done() || core.ended() {
                continue;
            }
            core.unload_sent = true;
            for w in &mut self.workers.workers {
                if w.state != State::Gone && w.load(core.id).is_some() {
                    crate::wire::push_job(w.queue(), crate::wire::TAG_UNLOAD, core.id);
                    core.unloading += 1;
                }
            }
        }
    }

    /// Worker `i` is gone: the states it held end without an exit value.
    pub(super) fn states_lost(&mut self, i: usize, jobs: Jobs<'_, '_>) {
        let w = &mut self.workers.workers[i];
        for (job, _) in w.loaded.drain(..) {
            if let Some(j) = find(jobs, job) {
                let core = jobs[j].core_mut();
                if core.unload_sent {
                    core.unloading = core.unloading.saturating_sub(1);
                }
            }
        }
    }

    /// Notes where the workers stood when each new job came, to count its insights from
    /// there.
    fn adopt(&self, jobs: Jobs<'_, '_>) {
        if jobs.iter().all(|j| j.core().tally.base.is_some()) {
            return;
        }
        let totals: Vec<_> = self.workers.totals().into_iter().map(|(t, _)| t).collect();
        for j in jobs.iter_mut() {
            let tally = &mut j.core_mut().tally;
            if tally.base.is_none() {
                tally.base = Some(totals.clone());
            }
        }
    }

    /// Job `job`'s insights now.
    pub(crate) fn job_insights(&self, job: &JobCore) -> Insights {
        job.tally.insights(job.started, &self.workers.totals())
    }

    /// Starts a replacement for worker `i`.
    pub(super) fn replace(&mut self, i: usize) -> Result<(), Error> {
        self.workers.respawn(i)
    }

    /// Asks every worker to exit, waits a moment for them, then kills the rest.
    pub(crate) fn shutdown(&mut self) {
        self.workers.shutdown();
    }

    /// Kills every worker at once.
    pub(crate) fn kill_all(&mut self) {
        self.workers.kill_all();
    }
}

/// The index in `jobs` of job `id`.
pub(super) fn find(jobs: &[&mut dyn JobIo], id: u32) -> Option<usize> {
    jobs.iter().position(|j| j.core().id == id)
}
