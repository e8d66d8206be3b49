//! [`Results`]: the outcomes of a job as an iterator, whichever way it runs.

use crate::engine::{Outcome, Run};
use crate::error::Error;
use crate::hooks::Hooks;
use crate::job_fn::JobFn;
use crate::single::Single;
use crate::threads::Threads;

/// The outputs of a job, in input order, as they become ready.
///
/// Returned by the `stream_*` methods of [`Job`](crate::Job). Each item is the job's output or
/// an error. By default the first error ends the iterator; after
/// [`keep_going`](crate::Job::keep_going), a failed item is an `Err(Error::Item)` and the
/// iterator goes on, and only a failure of the machinery ends it. Memory stays bounded however
/// long the input: items are read only as workers have room for them. Dropping it early stops
/// the job and its workers.
///
/// While a multi-processed stream lives, SIGINT (Ctrl-C) and SIGTERM stop its workers and come
/// out of the next call to `next` as [`Error::Interrupted`]; if your program may hold a stream
/// for a long time without reading it, drop it when you are done.
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
    keep_going: bool,
    /// For the in-process backends; the pool calls its own, as events arrive.
    hooks: Hooks<'h>,
    done: bool,
}

/// One variant per way of running; each has the same `next`.
enum Backend<'h, F: JobFn, It> {
    Single(Single<F, It>),
    Threads(Threads<F, It>),
    Processes(Box<Run<'h, F, It>>),
}

impl<'h, F: JobFn, It> Results<'h, F, It> {
    pub(crate) fn single(s: Single<F, It>, keep_going: bool, hooks: Hooks<'h>) -> Self {
        Results {
            backend: Backend::Single(s),
            keep_going,
            hooks,
            done: false,
        }
    }

    pub(crate) fn threads(t: Threads<F, It>, keep_going: bool, hooks: Hooks<'h>) -> Self {
        Results {
            backend: Backend::Threads(t),
            keep_going,
            hooks,
            done: false,
        }
    }

    pub(crate) fn processes(r: Run<'h, F, It>, keep_going: bool) -> Self {
        Results {
            backend: Backend::Processes(Box::new(r)),
            keep_going,
            hooks: Hooks::default(),
            done: false,
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
        if self.done {
            return None;
        }
        if let Backend::Processes(r) = &mut self.backend {
            let outcome = r.next_chunk();
            let failed = matches!(&outcome, Ok(Some(chunk)) if chunk.iter().any(Result::is_err));
            return self.settle(outcome, failed);
        }
        match self.next()? {
            Ok(out) => Some(Ok(vec![Ok(out)])),
            Err(Error::Item(failure)) => Some(Ok(vec![Err(failure)])),
            Err(e) => Some(Err(e)),
        }
    }
}

impl<F: JobFn, It: Iterator<Item = F::Item>> Results<'_, F, It> {
    /// Takes back a chunk from `next_chunk` that the caller emptied, to reuse its memory.
    pub(crate) fn recycle(&mut self, chunk: Vec<Outcome<F::Output>>) {
        if let Backend::Processes(r) = &mut self.backend {
            r.give_back(chunk);
        }
    }

    /// Every output in order; the first failure is the error. A pool decodes them straight
    /// into the vector it returns.
    pub(crate) fn collect_outputs(mut self) -> Result<Vec<F::Output>, Error> {
        match &mut self.backend {
            Backend::Processes(r) => r.collect_outputs(),
            _ => self.collect(),
        }
    }

    /// How many outcomes to expect, when a multi-processed input knows its length; for
    /// sizing the collection up front.
    pub(crate) fn expected_len(&self) -> Option<usize> {
        match &self.backend {
            Backend::Processes(r) => r.input_len(),
            _ => None,
        }
    }
}

impl<F: JobFn, It> Results<'_, F, It> {
    /// Ends the results where `outcome` says so (the end, a machinery error, or, unless
    /// keeping going, a failed item) and hands it on.
    fn settle<T>(
        &mut self,
        outcome: Result<Option<T>, Error>,
        failed: bool,
    ) -> Option<Result<T, Error>> {
        match outcome {
            Ok(Some(t)) => {
                if failed && !self.keep_going {
                    self.done = true;
                }
                Some(Ok(t))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<F, It> Iterator for Results<'_, F, It>
where
    F: JobFn,
    It: Iterator<Item = F::Item>,
{
    type Item = Result<F::Output, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let in_process = !matches!(self.backend, Backend::Processes(_));
        let outcome: Result<Option<Outcome<F::Output>>, Error> = match &mut self.backend {
            Backend::Single(s) => Ok(s.next(&mut self.hooks)),
            Backend::Threads(t) => Ok(t.next(&mut self.hooks)),
            Backend::Processes(r) => r.next(),
        };
        if in_process {
            if let Ok(Some(Err(failure))) = &outcome {
                self.hooks.failure(failure);
            }
            if let Ok(Some(_)) = &outcome {
                self.hooks.delivered();
            }
            if let Some(e) = self.hooks.broken.take() {
                self.done = true;
                return Some(Err(e));
            }
        }
        let failed = matches!(outcome, Ok(Some(Err(_))));
        self.settle(outcome, failed)
            .map(|r| r.and_then(|o| o.map_err(Error::Item)))
    }
}
