//! Multi-threaded mode: the job on a rayon thread pool inside the caller's process, reading
//! the input in bounded chunks and keeping input order.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use std::time::Instant;

use super::local::{Produce, Tally, exit_here, init_here};
use super::single::{Scratch, run_here};
use crate::call::ctx::Channel;
use crate::call::job_fn::JobFn;
use crate::engine::hooks::Hooks;
use crate::engine::job::Outcome;
use crate::error::Error;

/// Items read from the input per parallel round.
const CHUNK: usize = 64 * 1024;

/// The multi-threaded backend of [`Results`](crate::Results).
pub(crate) struct Threads<F: JobFn, It> {
    items: It,
    args: F::Args,
    pool: rayon::ThreadPool,
    next_index: u64,
    ready: VecDeque<Outcome<F::Output>>,
    failed: bool,
    keep_going: bool,
    /// Items stop being started once this passes (the job's deadline).
    deadline: Option<Instant>,
    /// Each thread's state (built before the thread's first item) and tally.
    states: Vec<Mutex<(Option<F::State>, Tally)>>,
    /// A state that could not be built: the run ends with this.
    init_failed: Mutex<Option<Error>>,
    /// `Self::round`, taken where the `Send` bounds hold, so that using a `Threads` needs none.
    round: fn(&mut Self, &mut Hooks<'_>),
}

impl<F: JobFn, It: Iterator<Item = F::Item>> Produce<F> for Threads<F, It> {
    fn produce(&mut self, hooks: &mut Hooks<'_>) -> Result<Option<Outcome<F::Output>>, Error> {
        if self.ready.is_empty() && !self.failed {
            (self.round)(self, hooks);
            let failed_init = self
                .init_failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(e) = failed_init {
                self.failed = true;
                return Err(e);
            }
            if self.ready.is_empty() {
                // The input is exhausted: the threads' states end.
                self.failed = true;
                for slot in &self.states {
                    let state = slot.lock().unwrap_or_else(|e| e.into_inner()).0.take();
                    if let Some(state) = state {
                        exit_here::<F>(state, hooks);
                    }
                }
            }
        }
        Ok(self.ready.pop_front())
    }

    fn tallies(&self) -> Vec<Tally> {
        self.states
            .iter()
            .map(|slot| slot.lock().unwrap_or_else(|e| e.into_inner()).1)
            .collect()
    }
}

impl<F, It> Threads<F, It>
where
    F: JobFn,
    F::Item: Send,
    F::Output: Send,
    F::Args: Sync,
    F::State: Send,
    It: Iterator<Item = F::Item>,
{
    pub(crate) fn new(
        items: It,
        args: F::Args,
        threads: usize,
        keep_going: bool,
        deadline: Option<Instant>,
    ) -> Result<Self, Error> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("spychro-{i}"))
            .build()
            .map_err(|e| Error::io("could not start the threads", std::io::Error::other(e)))?;
        Ok(Threads {
            items,
            args,
            pool,
            next_index: 0,
            ready: VecDeque::new(),
            failed: false,
            keep_going,
            deadline,
            states: (0..threads)
                .map(|_| Mutex::new((None, Tally::default())))
                .collect(),
            init_failed: Mutex::new(None),
            round: Self::round,
        })
    }

    /// Runs the next chunk in parallel. After the first failure the remaining items of the
    /// chunk are skipped, and the outcomes up to the lowest failed index are kept.
    fn round(&mut self, hooks: &mut Hooks<'_>) {
        let first = self.next_index;
        let chunk: Vec<F::Item> = self.items.by_ref().take(CHUNK).collect();
        self.next_index += chunk.len() as u64;
        let stop = AtomicBool::new(false);
        let keep_going = self.keep_going;
        let deadline = self.deadline;
        let args = &self.args;
        let states = &self.states;
        let init_failed = &self.init_failed;
        let pool = &self.pool;
        let (tx, rx) = std::sync::mpsc::channel();
        // The items run on the pool while this thread hands what they send to the handlers.
        let outcomes: Vec<Option<Outcome<F::Output>>> = std::thread::scope(|scope| {
            let running = scope.spawn(move || {
                pool.install(|| {
                    chunk
                        .into_par_iter()
                        .enumerate()
                        .map_init(
                            || (Scratch::default(), Channel(tx.clone())),
                            |(scratch, sink), (i, item)| {
                                if stop.load(Ordering::Relaxed)
                                    || deadline.is_some_and(|d| Instant::now() >= d)
                                {
                                    return None;
                                }
                                let slot = rayon::current_thread_index()
                                    .and_then(|t| states.get(t))
                                    .unwrap_or(&states[0]);
                                let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
                                let (state, tally) = &mut *guard;
                                if state.is_none() {
                                    match init_here::<F>(args) {
                                        Ok(s) => *state = Some(s),
                                        Err(e) => {
                                            stop.store(true, Ordering::Relaxed);
                                            init_failed
                                                .lock()
                                                .unwrap_or_else(|e| e.into_inner())
                                                .get_or_insert(e);
                                            return None;
                                        }
                                    }
                                }
                                let state = state.as_mut()?;
                                let since = Instant::now();
                                let out = run_here::<F>(
                                    first + i as u64,
                                    item,
                                    args,
                                    state,
                                    sink,
                                    scratch,
                                );
                                tally.add(since);
                                if out.is_err() && !keep_going {
                                    stop.store(true, Ordering::Relaxed);
                                }
                                Some(out)
                            },
                        )
                        .collect()
                })
            });
            for event in rx {
                hooks.event(event);
            }
            match running.join() {
                Ok(outcomes) => outcomes,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        // Once an item was skipped, later successes are not delivered: the stream stays a
        // gap-free prefix followed by the lowest failure.
        let mut gap = false;
        for outcome in outcomes {
            match outcome {
                Some(Ok(out)) if !gap => self.ready.push_back(Ok(out)),
                Some(Ok(_)) => {}
                Some(Err(e)) if keep_going => self.ready.push_back(Err(e)),
                Some(Err(e)) => {
                    self.ready.push_back(Err(e));
                    self.failed = true;
                    return;
                }
                None => gap = true,
            }
        }
    }
}
