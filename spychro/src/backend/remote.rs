//! A job that runs somewhere this crate's lower layers do not know — on a cluster's hosts —
//! behind the same calls as the local backends, so that [`Results`](crate::Results) (and every
//! `run_*` built on it) serves it unchanged. The layer that runs it implements [`Remote`].

use crate::engine::insights::Insights;
use crate::engine::job::{Indexed, Outcome};
use crate::error::Error;

/// The outcomes of a job run elsewhere, with the same contract as the other backends: in
/// input order (or as items finish, after [`set_unordered`](Remote::set_unordered)); after a
/// failure that stops the job, or an error, the outcomes end.
pub(crate) trait Remote<O> {
    /// The next outcome in input order; `Ok(None)` at the end.
    fn next(&mut self) -> Result<Option<Outcome<O>>, Error>;

    /// Delivers outcomes as items finish from now on.
    fn set_unordered(&mut self);

    /// After [`set_unordered`](Remote::set_unordered): the next outcome as items finish, with
    /// its index; `Ok(None)` at the end.
    fn next_unordered(&mut self) -> Result<Option<Indexed<O>>, Error>;

    /// How the job's workers spent their time, as far as the caller can know.
    fn insights(&self) -> Insights;
}
