//! Multi-threaded mode: the job on a rayon thread pool inside the caller's process. The input
//! is read lazily on the caller's thread and handed out in pieces (contiguous runs of items,
//! sized like the engine's batches from the time items take); each piece runs on one thread
//! and sends its outcomes back as it goes (at once after an item that took a while), so
//! outputs stream out — in input order, or as they finish — while later pieces run.
//!
//! Hand-written on `rayon::ThreadPool::spawn` rather than a parallel iterator: a parallel
//! iterator hands back nothing of a chunk until all of it is done, and a stream (ordered or
//! not) must see each outcome as it comes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::local::{Produce, Tally, exit_here, init_here};
use super::single::{Scratch, run_here};
use crate::call::ctx::{Event, Sink, encode_message};
use crate::call::job_fn::JobFn;
use crate::engine::hooks::Hooks;
use crate::engine::job::{Indexed, Outcome};
use crate::engine::reorder::Reorder;
use crate::engine::sizer::Sizer;
use crate::error::{Error, ItemError};

/// A piece sends what it has after an item once this long has passed since it last sent.
const FLUSH_AFTER: Duration = Duration::from_millis(1);
/// Items in flight per thread, in pieces: enough that no thread waits for the next piece.
const PIECES_AHEAD: usize = 4;

/// What the threads send to the caller's thread.
enum Msg<O> {
    /// A message or progress of an item, before its outcome.
    Event(Event),
    /// The outcomes of items `first..` (`None`: skipped, the job having stopped or run past
    /// its deadline), and the time they took.
    Done {
        first: u64,
        outcomes: Vec<Option<Outcome<O>>>,
        busy_ns: u64,
    },
}

impl<F: JobFn, It> Drop for Threads<F, It> {
    /// Pieces still queued skip their items: nobody takes their outcomes any more.
    fn drop(&mut self) {
        self.common.stop.store(true, Ordering::Relaxed);
    }
}

/// What every piece of a job shares.
struct Common<F: JobFn> {
    args: F::Args,
    /// Each thread's state (built before the thread's first item) and tally.
    slots: Vec<Mutex<(Option<F::State>, Tally)>>,
    /// No more items start: a failure stops the job, a state could not be built.
    stop: AtomicBool,
    /// A state that could not be built: the run ends with this.
    init_failed: Mutex<Option<Error>>,
    /// Items stop being started once this passes (the job's deadline).
    deadline: Option<Instant>,
    keep_going: bool,
}

/// The multi-threaded backend of [`Results`](crate::Results).
pub(crate) struct Threads<F: JobFn, It> {
    items: It,
    common: Arc<Common<F>>,
    pool: rayon::ThreadPool,
    tx: Sender<Msg<F::Output>>,
    rx: Receiver<Msg<F::Output>>,
    threads: usize,
    sizer: Sizer,
    /// The index the next item read gets.
    next_index: u64,
    /// Outcomes handed to the caller (in order), or taken from `arrived` (unordered).
    delivered: u64,
    input_done: bool,
    /// Items handed to the threads and not answered.
    in_flight: u64,
    /// Ordered delivery: outcomes by index.
    ordered: Reorder<Option<Outcome<F::Output>>>,
    /// Unordered delivery: outcomes as they arrived.
    arrived: VecDeque<Indexed<F::Output>>,
    unordered: bool,
    /// The failure that stops the job (when not keeping going): the lowest seen.
    failed: Option<Box<ItemError>>,
    /// Nothing more is delivered: the stream ends once the threads are done.
    over: bool,
    states_ended: bool,
    /// `Self::feed`, taken where the `Send` bounds hold, so that using a `Threads` needs none.
    feed: fn(&mut Self),
}

impl<F: JobFn, It: Iterator<Item = F::Item>> Produce<F> for Threads<F, It> {
    fn produce(&mut self, hooks: &mut Hooks<'_>) -> Result<Option<Indexed<F::Output>>, Error> {
        self.next_any(hooks)
    }

    fn set_unordered(&mut self) {
        self.unordered = true;
    }

    fn tallies(&self) -> Vec<Tally> {
        self.common
            .slots
            .iter()
            .map(|slot| slot.lock().unwrap_or_else(|e| e.into_inner()).1)
            .collect()
    }
}

impl<F, It> Threads<F, It>
where
    F: JobFn,
    F::Item: Send + 'static,
    F::Output: Send + 'static,
    F::Args: Send + Sync + 'static,
    F::State: Send + 'static,
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
        let (tx, rx) = channel();
        Ok(Threads {
            items,
            common: Arc::new(Common {
                args,
                slots: (0..threads)
                    .map(|_| Mutex::new((None, Tally::default())))
                    .collect(),
                stop: AtomicBool::new(false),
                init_failed: Mutex::new(None),
                deadline,
                keep_going,
            }),
            pool,
            tx,
            rx,
            threads,
            sizer: Sizer::new(None),
            next_index: 0,
            delivered: 0,
            input_done: false,
            in_flight: 0,
            ordered: Reorder::new(),
            arrived: VecDeque::new(),
            unordered: false,
            failed: None,
            over: false,
            states_ended: false,
            feed: Self::feed,
        })
    }

    /// Hands pieces to the threads while fewer than [`PIECES_AHEAD`] per thread are in
    /// flight and the caller is not too far behind.
    fn feed(&mut self) {
        loop {
            let size = self.sizer.next(None, self.threads).max(1);
            let window = (self.threads * size * PIECES_AHEAD) as u64;
            let ahead = self.next_index - self.delivered;
            let stopped = self.common.stop.load(Ordering::Relaxed)
                || self.common.deadline.is_some_and(|d| Instant::now() >= d);
            if self.input_done || stopped || self.in_flight >= window || ahead >= 2 * window {
                if stopped {
                    self.input_done = true;
                }
                return;
            }
            let piece: Vec<F::Item> = self.items.by_ref().take(size).collect();
            if piece.len() < size {
                self.input_done = true;
            }
            if piece.is_empty() {
                return;
            }
            let first = self.next_index;
            self.next_index += piece.len() as u64;
            self.in_flight += piece.len() as u64;
            let common = Arc::clone(&self.common);
            let tx = self.tx.clone();
            self.pool
                .spawn(move || run_piece::<F>(&common, first, piece, &tx));
        }
    }
}

impl<F: JobFn, It: Iterator<Item = F::Item>> Threads<F, It> {
    /// The next outcome with its index — in input order, or as they finish — or `None` at
    /// the end (where the threads' states end).
    fn next_any(&mut self, hooks: &mut Hooks<'_>) -> Result<Option<Indexed<F::Output>>, Error> {
        loop {
            let failed_init = self
                .common
                .init_failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(e) = failed_init {
                self.over = true;
                self.input_done = true;
                return Err(e);
            }
            if let Some(o) = self.pop() {
                self.delivered += 1;
                return Ok(Some(o));
            }
            if !self.over {
                (self.feed)(self);
            }
            if self.in_flight == 0 && (self.over || self.input_done) {
                // Everything that ran has answered: the failure that stopped the job is the
                // last outcome, then the states end.
                if let Some(f) = self.failed.take() {
                    self.over = true;
                    return Ok(Some((f.index(), Err(f))));
                }
                self.over = true;
                self.end_states(hooks);
                return Ok(None);
            }
            let Ok(msg) = self.rx.recv() else {
                return Err(Error::internal("the threads' channel closed"));
            };
            self.take(msg, hooks);
            while let Ok(msg) = self.rx.try_recv() {
                self.take(msg, hooks);
            }
        }
    }

    /// Takes in what a thread sent.
    fn take(&mut self, msg: Msg<F::Output>, hooks: &mut Hooks<'_>) {
        let (first, outcomes, busy_ns) = match msg {
            Msg::Event(event) => return hooks.event(event),
            Msg::Done {
                first,
                outcomes,
                busy_ns,
            } => (first, outcomes, busy_ns),
        };
        self.in_flight -= outcomes.len() as u64;
        let ran = outcomes.iter().filter(|o| o.is_some()).count() as u32;
        self.sizer.observe(ran, busy_ns);
        let keep_going = self.common.keep_going;
        let mut chunk = Vec::with_capacity(outcomes.len());
        for (index, outcome) in (first..).zip(outcomes) {
            let outcome = match outcome {
                Some(Err(f)) if !keep_going => {
                    // The lowest failure stops the job; its place is a gap.
                    if self.failed.as_ref().is_none_or(|g| g.index() > f.index()) {
                        self.failed = Some(f);
                    }
                    None
                }
                other => other,
            };
            if self.unordered {
                if let Some(o) = outcome
                    && self.failed.is_none()
                {
                    self.arrived.push_back((index, o));
                }
            } else {
                chunk.push(outcome);
            }
        }
        if !self.unordered {
            self.ordered.insert(first, chunk);
        }
    }

    /// The next outcome due, if it is here. In order, a gap (an item skipped or failed while
    /// stopping) ends the outcomes: what follows it is not delivered.
    fn pop(&mut self) -> Option<Indexed<F::Output>> {
        if self.over {
            return None;
        }
        if self.unordered {
            return self.arrived.pop_front();
        }
        let index = self.ordered.next_index();
        match self.ordered.pop()? {
            Some(o) => Some((index, o)),
            None => {
                self.over = true;
                None
            }
        }
    }

    /// Ends each thread's state (once), on this thread: their exit values reach the handlers.
    fn end_states(&mut self, hooks: &mut Hooks<'_>) {
        if std::mem::replace(&mut self.states_ended, true) {
            return;
        }
        for slot in &self.common.slots {
            let state = slot.lock().unwrap_or_else(|e| e.into_inner()).0.take();
            if let Some(state) = state {
                exit_here::<F>(state, hooks);
            }
        }
    }
}

/// Sends what a job's items send to the caller's thread.
struct ThreadSink<O>(Sender<Msg<O>>);

impl<M: serde::Serialize, O> Sink<M> for ThreadSink<O> {
    fn message(&self, index: u64, message: M) {
        let _ = self
            .0
            .send(Msg::Event(Event::Message(index, encode_message(&message))));
    }
    fn progress(&self, index: u64, fraction: f64) {
        let _ = self.0.send(Msg::Event(Event::Progress(index, fraction)));
    }
}

/// Runs items `first..` on this thread with its state, sending their outcomes back as it
/// goes. Items that may not start (the job stopped, its deadline passed, the state could not
/// be built) are answered as skipped.
fn run_piece<F: JobFn>(
    common: &Common<F>,
    first: u64,
    items: Vec<F::Item>,
    tx: &Sender<Msg<F::Output>>,
) {
    let slot = rayon::current_thread_index()
        .and_then(|t| common.slots.get(t))
        .unwrap_or(&common.slots[0]);
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    let (state, tally) = &mut *guard;
    let sink = ThreadSink(tx.clone());
    let mut scratch = Scratch::default();
    let mut outcomes = Vec::with_capacity(items.len());
    let mut sent_up_to = first;
    let mut busy_ns = 0u64;
    let mut last_sent = Instant::now();
    for (index, item) in (first..).zip(items) {
        let may_start = !common.stop.load(Ordering::Relaxed)
            && common.deadline.is_none_or(|d| Instant::now() < d);
        let outcome = if !may_start {
            None
        } else if let Some(state) = state_for::<F>(common, state) {
            let since = Instant::now();
            let out = run_here::<F>(index, item, &common.args, state, &sink, &mut scratch);
            let took = since.elapsed();
            tally.items += 1;
            tally.busy += took;
            busy_ns += took.as_nanos() as u64;
            if out.is_err() && !common.keep_going {
                common.stop.store(true, Ordering::Relaxed);
            }
            Some(out)
        } else {
            None
        };
        outcomes.push(outcome);
        if last_sent.elapsed() >= FLUSH_AFTER {
            let done = Msg::Done {
                first: sent_up_to,
                outcomes: std::mem::take(&mut outcomes),
                busy_ns: std::mem::take(&mut busy_ns),
            };
            sent_up_to = index + 1;
            last_sent = Instant::now();
            let _ = tx.send(done);
        }
    }
    if !outcomes.is_empty() {
        let _ = tx.send(Msg::Done {
            first: sent_up_to,
            outcomes,
            busy_ns,
        });
    }
}

/// This thread's state of job `F`, built on first use; `None` (and the job stops) if it
/// cannot be built.
fn state_for<'s, F: JobFn>(
    common: &Common<F>,
    state: &'s mut Option<F::State>,
) -> Option<&'s mut F::State> {
    if state.is_none() {
        match init_here::<F>(&common.args) {
            Ok(s) => *state = Some(s),
            Err(e) => {
                common.stop.store(true, Ordering::Relaxed);
                common
                    .init_failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(e);
                return None;
            }
        }
    }
    state.as_mut()
}
