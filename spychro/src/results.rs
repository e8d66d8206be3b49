//! [`Results`]: the outcomes of a job as an iterator, whichever way it runs.

use crate::engine::{Outcome, Run};
use crate::error::Error;
use crate::job_fn::JobFn;
use crate::single::Single;
use crate::threads::Threads;

/// The outputs of a job, in input order, as they become ready.
///
/// Returned by the `stream_*` methods of [`Job`](crate::Job). Each item is the job's output or
/// the error that stopped the job; after an error the iterator ends. Memory stays bounded
/// however long the input: items are read only as workers have room for them. Dropping it
/// early stops the job and its workers.
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
pub struct Results<F: JobFn, It> {
    backend: Backend<F, It>,
    done: bool,
}

/// One variant per way of running; each has the same `next`.
enum Backend<F: JobFn, It> {
    Single(Single<F, It>),
    Threads(Threads<F, It>),
    Processes(Box<Run<F, It>>),
}

impl<F: JobFn, It> Results<F, It> {
    pub(crate) fn single(s: Single<F, It>) -> Self {
        Results {
            backend: Backend::Single(s),
            done: false,
        }
    }

    pub(crate) fn threads(t: Threads<F, It>) -> Self {
        Results {
            backend: Backend::Threads(t),
            done: false,
        }
    }

    pub(crate) fn processes(r: Run<F, It>) -> Self {
        Results {
            backend: Backend::Processes(Box::new(r)),
            done: false,
        }
    }
}

impl<F, It> Iterator for Results<F, It>
where
    F: JobFn,
    It: Iterator<Item = F::Item>,
{
    type Item = Result<F::Output, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let outcome: Result<Option<Outcome<F::Output>>, Error> = match &mut self.backend {
            Backend::Single(s) => Ok(s.next()),
            Backend::Threads(t) => Ok(t.next()),
            Backend::Processes(r) => r.next(),
        };
        match outcome {
            Ok(Some(Ok(out))) => Some(Ok(out)),
            Ok(Some(Err(failure))) => {
                self.done = true;
                Some(Err(Error::Item(failure)))
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
