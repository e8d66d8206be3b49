//! The ways a job runs, behind one set of calls (crossbeam-channel's flavors are the model):
//! in this thread (`single`), on threads (`threads`), or in worker processes (the engine's
//! [`Run`]), or elsewhere (`remote`: a layer above runs it, such as a cluster's hosts).
//! [`Results`](crate::Results) forwards to whichever it holds.

pub(crate) mod local;
pub(crate) mod remote;
pub(crate) mod single;
pub(crate) mod threads;

use local::Local;
use remote::Remote;
use single::Single;
use threads::Threads;

use crate::call::job_fn::JobFn;
use crate::engine::insights::Insights;
use crate::engine::job::{Indexed, Outcome};
use crate::engine::run::Run;
use crate::error::Error;
use crate::sys::signals::SignalMark;

/// One variant per way of running; each answers the same calls.
pub(crate) enum Backend<'h, F: JobFn, It> {
    Single(Box<Local<'h, Single<F, It>>>),
    Threads(Box<Local<'h, Threads<F, It>>>),
    Processes(Box<Run<'h, F, It>>),
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Remote(Box<dyn Remote<F::Output> + 'h>),
}

impl<F: JobFn, It: Iterator<Item = F::Item>> Backend<'_, F, It> {
    /// The next outcome in input order; `Ok(None)` at the end. After a failure that stops the
    /// job (or an error), the outcomes end.
    pub(crate) fn next(&mut self) -> Result<Option<Outcome<F::Output>>, Error> {
        match self {
            Backend::Single(b) => Ok(b.next::<F>()?.map(|(_, o)| o)),
            Backend::Threads(b) => Ok(b.next::<F>()?.map(|(_, o)| o)),
            Backend::Processes(r) => r.next(),
            Backend::Remote(r) => r.next(),
        }
    }

    /// Delivers outcomes as items finish ([`next_unordered`](Backend::next_unordered)).
    pub(crate) fn set_unordered(&mut self) {
        match self {
            Backend::Single(b) => b.set_unordered::<F>(),
            Backend::Threads(b) => b.set_unordered::<F>(),
            Backend::Processes(r) => r.set_unordered(),
            Backend::Remote(r) => r.set_unordered(),
        }
    }

    /// After [`set_unordered`](Backend::set_unordered): the next outcome as items finish, with
    /// its index; `Ok(None)` at the end.
    pub(crate) fn next_unordered(&mut self) -> Result<Option<Indexed<F::Output>>, Error> {
        match self {
            Backend::Single(b) => b.next::<F>(),
            Backend::Threads(b) => b.next::<F>(),
            Backend::Processes(r) => r.next_unordered(),
            Backend::Remote(r) => r.next_unordered(),
        }
    }

    /// The next outcomes in order, as a run of at least one; `Ok(None)` at the end.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<Vec<Outcome<F::Output>>>, Error> {
        match self {
            Backend::Processes(r) => r.next_chunk(),
            other => Ok(other.next()?.map(|o| vec![o])),
        }
    }

    /// Whether outcomes are best taken a run at a time ([`next_chunk`](Backend::next_chunk)):
    /// a pool's are, as they arrive in runs; the others come one by one anyway.
    pub(crate) fn chunked(&self) -> bool {
        matches!(self, Backend::Processes(_))
    }

    /// While a pool's run goes on, the mark to ask whether a signal arrived that the next
    /// call will report.
    pub(crate) fn signal_mark(&self) -> Option<SignalMark> {
        match self {
            Backend::Processes(r) => r.signal_mark(),
            _ => None,
        }
    }

    /// Takes back a chunk from [`next_chunk`](Backend::next_chunk) that the caller emptied.
    pub(crate) fn give_back(&mut self, chunk: Vec<Outcome<F::Output>>) {
        if let Backend::Processes(r) = self {
            r.give_back(chunk);
        }
    }

    /// Every output in order; the first failure is the error.
    pub(crate) fn collect_outputs(&mut self) -> Result<Vec<F::Output>, Error> {
        match self {
            Backend::Single(b) => b.collect_outputs::<F>(),
            Backend::Threads(b) => b.collect_outputs::<F>(),
            Backend::Processes(r) => r.collect_outputs(),
            Backend::Remote(r) => {
                let mut outputs = Vec::new();
                while let Some(outcome) = r.next()? {
                    outputs.push(outcome.map_err(Error::Item)?);
                }
                Ok(outputs)
            }
        }
    }

    /// How the job's workers (threads) spent their time so far (as it ended, once it has).
    pub(crate) fn insights(&self) -> Insights {
        match self {
            Backend::Single(b) => b.insights::<F>(),
            Backend::Threads(b) => b.insights::<F>(),
            Backend::Processes(r) => r.insights(),
            Backend::Remote(r) => r.insights(),
        }
    }

    /// How many outcomes to expect, when the input knows; for sizing a collection.
    pub(crate) fn input_len(&self) -> Option<usize> {
        match self {
            Backend::Processes(r) => r.input_len(),
            _ => None,
        }
    }
}
