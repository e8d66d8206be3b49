//! The worker processes of one pool ([`Workers`]): started together, replaced one by one, asked
//! to leave, or killed. They are owned here: whatever happens, dropping them kills and reaps
//! every worker that is still there. While they live, SIGINT and SIGTERM kill them at once
//! (`sys::signals`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::insights::{Insights, Totals};
use super::worker::{State, Worker};
use crate::error::{Error, WorkerError, WorkerErrorKind};
use crate::sys::spawn::SpawnOptions;
use crate::sys::{fork_server, signals};
use crate::wire;

/// How to start the workers.
#[derive(Clone, Debug)]
pub(crate) struct PoolOptions {
    pub(crate) processes: usize,
    /// The program shown in messages and given as `argv[0]`.
    pub(crate) program: PathBuf,
    /// Execute this process's own binary through `/proc/self/exe`.
    pub(crate) exec_self: bool,
    pub(crate) start_timeout: Duration,
    pub(crate) memory_limit: Option<u64>,
    pub(crate) capture_output: bool,
    /// Workers may start pools of their own (non-daemon mode).
    pub(crate) nested: bool,
    /// End the processes a worker's jobs start when the worker ends.
    pub(crate) kill_descendants: bool,
    /// Replace a worker once it has run this many items (leaks).
    pub(crate) max_items_per_worker: Option<u64>,
}

/// The worker processes of one pool (a run's, or a persistent [`Pool`](crate::Pool)'s).
pub(crate) struct Workers {
    pub(crate) options: PoolOptions,
    pub(crate) workers: Vec<Worker>,
    /// Wakes the run on SIGINT/SIGTERM; the workers are registered with it.
    pub(crate) signals: Option<signals::Guard>,
    /// Workers in a row that were killed before their handshake.
    pub(crate) failed_starts: u32,
    /// Per slot, the figures of the processes it had that are gone (for insights).
    pub(crate) past: Vec<Totals>,
    /// When the pool started.
    pub(crate) started: Instant,
}

impl Workers {
    /// Starts every worker. The handshakes complete later, in the run's event loop.
    pub(crate) fn start(options: PoolOptions) -> Result<Workers, Error> {
        if crate::worker::current::is_worker() && !crate::worker::current::may_nest() {
            return Err(Error::NestedPool {
                pid: std::process::id(),
            });
        }
        let mut pool = Workers {
            workers: Vec::with_capacity(options.processes),
            // Before any worker exists, so that a signal can never find workers and no
            // handler.
            signals: signals::Guard::new().ok(),
            past: vec![Totals::default(); options.processes],
            options,
            failed_starts: 0,
            started: Instant::now(),
        };
        let mut first_error = None;
        for spawned in spawn_many(&pool.options) {
            match spawned {
                Ok(w) => {
                    if let Some(g) = &pool.signals {
                        g.watch(w.pid);
                    }
                    pool.workers.push(w);
                }
                // The workers that did start are killed and reaped as `pool` drops.
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(pool),
        }
    }

    fn spawn_one(&self) -> Result<Worker, Error> {
        let worker = spawn(&self.options)?;
        if let Some(g) = &self.signals {
            g.watch(worker.pid);
        }
        Ok(worker)
    }

    /// Replaces worker `i` (already reaped, or about to be killed) with a fresh one.
    pub(crate) fn respawn(&mut self, i: usize) -> Result<(), Error> {
        let fresh = self.spawn_one()?;
        let mut old = std::mem::replace(&mut self.workers[i], fresh);
        self.forget(&old);
        old.kill();
        old.reap(Duration::ZERO);
        let now = Instant::now();
        let past = &mut self.past[i];
        past.items += old.done;
        past.busy_ns += old.busy_ns;
        past.up += old.life.up(now);
        past.starting += old.life.starting(now);
        past.restarts += 1;
        Ok(())
    }

    /// Each slot's figures since the pool started (its past processes' and its current
    /// one's), with the pid in it now.
    pub(crate) fn totals(&self) -> Vec<(Totals, u32)> {
        let now = Instant::now();
        self.workers
            .iter()
            .zip(&self.past)
            .map(|(w, past)| {
                let t = Totals {
                    items: past.items + w.done,
                    busy_ns: past.busy_ns + w.busy_ns,
                    up: past.up + w.life.up(now),
                    starting: past.starting + w.life.starting(now),
                    restarts: past.restarts,
                };
                (t, w.pid)
            })
            .collect()
    }

    /// The pool's insights since it started.
    pub(crate) fn insights(&self) -> Insights {
        Insights {
            elapsed: self.started.elapsed(),
            workers: self
                .totals()
                .iter()
                .enumerate()
                .map(|(slot, (t, pid))| t.insights(slot, *pid))
                .collect(),
        }
    }

    /// A [`WorkerError`] about worker `i`.
    pub(crate) fn worker_error(&self, i: usize, kind: WorkerErrorKind) -> Error {
        WorkerError::new(
            Some(self.workers[i].pid),
            self.options.program.clone(),
            kind,
        )
        .into()
    }

    /// Stops killing `w` on a signal: it is about to be reaped.
    fn forget(&self, w: &Worker) {
        if let Some(g) = &self.signals {
            g.unwatch(w.pid);
        }
    }

    /// Reaps worker `i` (killing it if it has not ended within `grace`) and returns how it
    /// ended.
    pub(crate) fn reap(&mut self, i: usize, grace: Duration) -> crate::error::ExitStatus {
        if let Some(g) = &self.signals {
            g.unwatch(self.workers[i].pid);
        }
        self.workers[i].reap(grace)
    }

    /// Asks every worker to exit, waits a moment for them (2 s in all), then kills and reaps
    /// the rest. A worker still starting (it has not said hello, so no job's code has run in
    /// it) is killed at once rather than waited for.
    pub(crate) fn shutdown(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for w in &mut self.workers {
            if w.state.handshake_deadline().is_some() && w.inflight.is_empty() {
                w.kill();
            } else if w.state != State::Gone {
                wire::push_empty(w.queue(), wire::TAG_SHUTDOWN);
                let _ = w.sock.set_nonblocking(false);
                let _ = w.sock.set_write_timeout(Some(Duration::from_millis(500)));
                let _ = w.flush();
            }
        }
        for i in 0..self.workers.len() {
            if self.workers[i].state != State::Gone {
                self.reap(i, deadline.saturating_duration_since(Instant::now()));
            }
        }
    }

    /// Kills every worker at once and reaps them.
    pub(crate) fn kill_all(&mut self) {
        for w in &mut self.workers {
            w.kill();
        }
        for i in 0..self.workers.len() {
            self.reap(i, Duration::ZERO);
        }
    }
}

/// Regions whose batches used this much memory in all are unmapped by a thread of their own.
const UNMAP_APART: usize = 1 << 20;

/// At most this many threads start a pool's workers together...
const SPAWN_THREADS: usize = 8;
/// ...each starting at least this many: a thread costs about what starting a worker does,
/// and two workers started from two threads on two cores came up later than one after the
/// other (the start workload: 2.05 against 1.86 ms, medians of 40), while eight from two
/// threads came up sooner (7.16 against 7.65 ms).
const SPAWNS_PER_THREAD: usize = 4;

/// How `o` starts a worker.
fn spawn_options(o: &PoolOptions) -> SpawnOptions<'_> {
    SpawnOptions {
        program: &o.program,
        exec_self: o.exec_self,
        memory_limit: o.memory_limit,
        capture_output: o.capture_output,
        inherit: &[],
    }
}

/// Starts a worker as `o` says.
fn spawn(o: &PoolOptions) -> Result<Worker, Error> {
    let worker = Worker::spawn(
        &spawn_options(o),
        o.start_timeout,
        o.kill_descendants,
        !o.exec_self,
    )
    .map_err(|kind| WorkerError::new(None, o.program.clone(), kind))?;
    Ok(worker)
}

/// Starts a pool's workers, from several threads where there are cores for them: starting one
/// blocks its thread until the new process has replaced itself with the worker program (about
/// 0.2 ms here), and those waits need not add up.
fn spawn_many(o: &PoolOptions) -> Vec<Result<Worker, Error>> {
    let n = o.processes;
    if o.exec_self && fork_server::installed().is_some() {
        // Copies from a fork server: its requests go together from this thread.
        return Worker::spawn_many(
            &spawn_options(o),
            n,
            o.start_timeout,
            o.kill_descendants,
            false,
        )
        .into_iter()
        .map(|w| w.map_err(|kind| WorkerError::new(None, o.program.clone(), kind).into()))
        .collect();
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let threads = (n / SPAWNS_PER_THREAD).min(cores).min(SPAWN_THREADS);
    if threads <= 1 {
        return (0..n).map(|_| spawn(o)).collect();
    }
    let share = |t: usize| n / threads + usize::from(t < n % threads);
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .filter_map(|t| {
                let count = share(t);
                std::thread::Builder::new()
                    .name("spychro-spawn".into())
                    .spawn_scoped(scope, move || (0..count).map(|_| spawn(o)).collect())
                    .ok()
                    .map(|h| (count, h))
            })
            .collect();
        // This thread starts its own share, and any share a helper thread could not take.
        let taken: usize = helpers.iter().map(|(count, _)| count).sum();
        let mut all: Vec<Result<Worker, Error>> = (0..n - taken).map(|_| spawn(o)).collect();
        for (count, h) in helpers {
            match h.join() {
                Ok(started) => all.extend::<Vec<_>>(started),
                // A helper cannot panic short of a bug; start its share here instead.
                Err(_) => all.extend((0..count).map(|_| spawn(o))),
            }
        }
        all
    })
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.kill_all();
        // Every worker is reaped. Unmapping their pages gives back the memory of their
        // regions, which takes a while (~0.2 ms for a worker whose batches used 1 MiB of it,
        // here): a thread of its own does it then, so the run returns without waiting.
        let touched: usize = self.workers.iter().map(|w| w.slots.touched()).sum();
        let pages: Vec<_> = self.workers.iter().map(|w| Arc::clone(&w.status)).collect();
        self.workers.clear();
        if touched >= UNMAP_APART {
            let _ = std::thread::Builder::new()
                .name("spychro-unmap".into())
                .spawn(move || drop(pages));
        }
    }
}
