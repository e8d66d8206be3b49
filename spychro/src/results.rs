//! [`Results`]: the outcomes of a job as an iterator, whichever way it runs.

use std::collections::VecDeque;

use crate::backend::Backend;
use crate::call::job_fn::JobFn;
use crate::engine::insights::Insights;
use crate::engine::job::Outcome;
use crate::error::Error;
use crate::sys::signals::{self, SignalMark};

/// The outputs of a job, in input order, as they become ready.
///
/// Returned by the `stream_*` methods of [`Job`](crate::Job). Each item is the job's output or
/// an error. By default the first error ends the iterator; after
/// [`keep_going`](crate::Job::keep_going), a failed item is an `Err(Error::Item)` and the
/// iterator goes on, and only a failure of the machinery ends it. Memory stays bounded however
/// long the input: items are read only as workers have room for them. Dropping it early stops
/// the job and its workers.
///
/// While a multi-processed stream lives, SIGINT (Ctrl-C) and SIGTERM kill its workers at once,
/// whatever your thread is doing, and the next call to `next` returns
/// [`Error::Interrupted`] (even if outputs were already waiting). A signal that arrives while
/// your thread is not inside `next` also takes its previous disposition: a program that does
/// not handle Ctrl-C ends, as it would without spychro.
///
/// A failed item comes out as `Err(Error::Item(..))` (use [`Error::item`] for the
/// [`ItemError`](crate::ItemError)), not as a bare `ItemError` as in a `keep_going` `run_*`:
/// a stream must also be able to report a failure of the machinery between two outputs.
///
/// ```
/// #[spychro::job]
/// fn square(x: u64) -> u64 { x * x }
///
/// let mut total = 0;
/// for out in spychro::Job::new(square, 0..1000u64).processes(2).stream_multi_processed()? {
///     total += out?;
/// }
/// assert_eq!(total, (0..1000u64).map(|x| x * x).sum::<u64>());
/// # Ok::<(), spychro::Error>(())
/// ```
pub struct Results<'h, F: JobFn, It> {
    backend: Backend<'h, F, It>,
    done: bool,
    /// Outcomes taken from a pool in one run and handed out one by one, so that a stream
    /// costs no call into the engine per item.
    /// (The run's own vector, handed back to the pool once emptied, so that its memory
    /// serves the next run.)
    ready: VecDeque<Outcome<F::Output>>,
    /// The index of the first of `ready`.
    ready_index: u64,
    /// While `ready` holds outcomes of a run still going on: where the signals stood, so
    /// that one that arrives since comes before them.
    signals: Option<SignalMark>,
}

impl<'h, F: JobFn, It> Results<'h, F, It> {
    pub(crate) fn new(backend: Backend<'h, F, It>) -> Self {
        Results {
            backend,
            done: false,
            ready: VecDeque::new(),
            ready_index: 0,
            signals: None,
        }
    }
}

impl<F, It> Results<'_, F, It>
where
    F: JobFn,
    It: Iterator<Item = F::Item>,
{
    /// The next outcomes in order, as a run of at least one; `None` at the end. A failure of
    /// the machinery is the `Err`, after which the results end.
    pub(crate) fn next_chunk(&mut self) -> Option<Result<Vec<Outcome<F::Output>>, Error>> {
        if !self.ready.is_empty() {
            self.ready_index += self.ready.len() as u64;
            return Some(Ok(Vec::from(std::mem::take(&mut self.ready))));
        }
        if self.done {
            return None;
        }
        let next = self.backend.next_chunk().transpose();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }

    /// Takes back a chunk from `next_chunk` that the caller emptied, to reuse its memory.
    pub(crate) fn recycle(&mut self, chunk: Vec<Outcome<F::Output>>) {
        self.backend.give_back(chunk);
    }

    /// Every output in order; the first failure is the error. A pool decodes them straight
    /// into the vector it returns.
    pub(crate) fn collect_outputs(mut self) -> Result<Vec<F::Output>, Error> {
        let mut first = Vec::new();
        for o in std::mem::take(&mut self.ready) {
            first.push(o.map_err(Error::Item)?);
        }
        let mut rest = self.backend.collect_outputs()?;
        if first.is_empty() {
            return Ok(rest);
        }
        first.append(&mut rest);
        Ok(first)
    }

    /// How many outcomes to expect, when a multi-processed input knows its length; for
    /// sizing the collection up front.
    pub(crate) fn expected_len(&self) -> Option<usize> {
        self.backend.input_len()
    }
}

impl<'h, F, It> Results<'h, F, It>
where
    F: JobFn,
    It: Iterator<Item = F::Item>,
{
    /// How the job's workers spent their time so far: per worker, items run, time busy, idle
    /// and starting, restarts (per thread in single-processed and multi-threaded runs). Once
    /// the outputs have ended, the figures as the job ended.
    ///
    /// ```
    /// #[spychro::job]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let mut results = spychro::Job::new(square, 0..1000u64)
    ///     .processes(2)
    ///     .stream_multi_processed()?;
    /// let _first_hundred: Vec<u64> = results.by_ref().take(100).collect::<Result<_, _>>()?;
    /// assert!(results.insights().items() >= 100);
    /// assert_eq!(results.by_ref().count(), 900);
    /// let insights = results.insights();
    /// assert_eq!(insights.items(), 1000);
    /// assert_eq!(insights.workers.len(), 2);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn insights(&self) -> Insights {
        self.backend.insights()
    }

    /// The outputs in the order their items finish, each with its index, instead of in input
    /// order (Python's `imap_unordered`, `as_completed`): a slow item holds back nothing
    /// behind it. Multi-processed and multi-threaded runs hand each output over as soon as
    /// its item is done; a single-processed run finishes items in input order anyway.
    /// Outputs already waiting in order when this is called come first.
    ///
    /// Failures and the end are as in input order: without `keep_going`, the failure that
    /// stops the job comes after the outputs that arrived before it, and ends the outputs.
    ///
    /// ```
    /// #[spychro::job]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(ms)); ms }
    ///
    /// let first = spychro::Job::new(nap, [400u64, 1, 1])
    ///     .processes(2)
    ///     .stream_multi_processed()?
    ///     .unordered()
    ///     .next()
    ///     .expect("an output")?;
    /// assert_ne!(first.0, 0, "the slow item did not come first");
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn unordered(mut self) -> UnorderedResults<'h, F, It> {
        self.backend.set_unordered();
        UnorderedResults(self)
    }

    /// The next of the outcomes taken in one run, if any are left (and no signal waits to be
    /// reported: it comes first).
    fn next_ready(&mut self) -> Option<Outcome<F::Output>> {
        if self.ready.is_empty() || (!self.done && self.signals.is_some_and(signals::arrived_since))
        {
            return None;
        }
        self.ready_index += 1;
        self.ready.pop_front()
    }
}

/// The outputs of a job as its items finish, each with its index; see
/// [`Results::unordered`].
pub struct UnorderedResults<'h, F: JobFn, It>(Results<'h, F, It>);

impl<F, It> UnorderedResults<'_, F, It>
where
    F: JobFn,
    It: Iterator<Item = F::Item>,
{
    /// How the job's workers spent their time so far; see [`Results::insights`].
    ///
    /// ```
    /// #[spychro::job]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let mut results = spychro::Job::new(square, 0..100u64).stream_multi_threaded()?.unordered();
    /// assert_eq!(results.by_ref().count(), 100);
    /// assert_eq!(results.insights().items(), 100);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn insights(&self) -> Insights {
        self.0.insights()
    }
}

impl<F, It> Iterator for UnorderedResults<'_, F, It>
where
    F: JobFn,
    It: Iterator<Item = F::Item>,
{
    type Item = Result<(u64, F::Output), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let index = self.0.ready_index;
        if let Some(o) = self.0.next_ready() {
            return Some(o.map(|o| (index, o)).map_err(Error::Item));
        }
        if self.0.done {
            return None;
        }
        let next = self.0.backend.next_unordered().transpose();
        self.0.done = !matches!(next, Some(Ok(_)));
        next.map(|r| r.and_then(|(i, o)| o.map(|o| (i, o)).map_err(Error::Item)))
    }
}

impl<F, It> Iterator for Results<'_, F, It>
where
    F: JobFn,
    It: Iterator<Item = F::Item>,
{
    type Item = Result<F::Output, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(o) = self.next_ready() {
            return Some(o.map_err(Error::Item));
        }
        if self.done {
            return None;
        }
        if self.backend.chunked() {
            // A pool's outcomes arrive in runs: take the run, hand it out one by one. (A run
            // holds no failure that stops the job: that comes alone, last.)
            match self.backend.next_chunk() {
                Ok(Some(chunk)) => {
                    let emptied = std::mem::replace(&mut self.ready, VecDeque::from(chunk));
                    if emptied.capacity() > 0 {
                        self.backend.give_back(Vec::from(emptied));
                    }
                    self.signals = self.backend.signal_mark();
                    return self
                        .next_ready()
                        .map(|o| o.map_err(Error::Item))
                        .or_else(|| {
                            self.done = true;
                            Some(Err(Error::internal("a pool handed over an empty run")))
                        });
                }
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    // Whatever was taken before the machinery failed goes with it.
                    self.done = true;
                    self.ready = VecDeque::new();
                    return Some(Err(e));
                }
            }
        }
        let next = self.backend.next().transpose();
        // A failed item ends the outcomes only when the job stops at it: the backend says so
        // by ending them.
        self.done = !matches!(next, Some(Ok(_)));
        self.ready_index += 1;
        next.map(|r| r.and_then(|o| o.map_err(Error::Item)))
    }
}
