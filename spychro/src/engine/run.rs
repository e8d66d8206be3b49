//! One job over a pool of its own, driven from the caller's thread (`run_*`, `stream_*`): the
//! engine's turns are taken inside the caller's calls, and outcomes are handed back in input
//! order through one delivery routine ([`Run::drive`]) that `next`, `next_chunk` and
//! `collect_outputs` share.

use super::conductor::Engine;
use super::hooks::Hooks;
use super::insights::Insights;
use super::job::{Indexed, JobCore, JobIo, JobOptions, Outcome};
use super::local::{LocalJob, exact_len};
use super::outcomes::Outcomes;
use super::placed::Placed;
use super::workers::PoolOptions;
use crate::call::job_fn::JobFn;
use crate::error::Error;
use crate::sys::signals::{Inside, SignalMark};
use crate::wire;

/// A job running over a pool of worker processes of its own.
pub(crate) struct Run<'h, F: JobFn, It> {
    engine: Engine,
    job: LocalJob<'h, F, It>,
    /// The run is over: its workers are gone; only what was delivered to it remains.
    finished: bool,
    /// Its insights, taken as it ended.
    insights: Option<Insights>,
}

/// The set-up frame of job `F` with extra arguments `args`, under id `id`.
pub(crate) fn setup_frame<F: JobFn>(
    id: u32,
    args: &F::Args,
    options: &JobOptions,
    pool: &PoolOptions,
) -> Result<Vec<u8>, Error> {
    let args = wire::encode_value(args).map_err(|message| Error::Arguments {
        job: F::NAME,
        message,
    })?;
    let mut setup = Vec::new();
    let message = wire::Setup {
        job: id,
        name: F::NAME.to_owned(),
        signature: F::SIGNATURE,
        args,
        nested: pool.nested,
        log_level: wire::level_to_wire(options.log_level),
        timed: options.timeout.is_some(),
        process: None,
        kill_descendants: pool.kill_descendants,
    };
    wire::push_message(&mut setup, wire::TAG_SETUP, &message)
        .map_err(|e| Error::internal(format!("the job set-up could not be framed: {e}")))?;
    Ok(setup)
}

impl<'h, F: JobFn, It: Iterator<Item = F::Item>> Run<'h, F, It> {
    /// Starts the workers, each with the job's set-up and first batch queued. Items are read
    /// only as batches are sent. The options were checked by the builder.
    pub(crate) fn start(
        pool: PoolOptions,
        options: JobOptions,
        hooks: Hooks<'h>,
        items: It,
        args: &F::Args,
    ) -> Result<Self, Error> {
        let setup = setup_frame::<F>(0, args, &options, &pool)?;
        let engine = Engine::start(pool)?;
        let outcomes = Outcomes::new(options.keep_going, hooks);
        let job = LocalJob {
            core: JobCore::of::<F>(0, options, setup),
            input: items,
            outcomes,
        };
        let mut run = Run {
            engine,
            job,
            finished: false,
            insights: None,
        };
        // The first batches go out with the set-up, before the workers' hellos.
        run.engine.dispatch(&mut [&mut run.job])?;
        Ok(run)
    }

    /// The next outcome in input order, `Ok(None)` when every item is done.
    ///
    /// When not keeping going, after an item fails the outcomes before it that already arrived
    /// come first, then the failure, then the end: the workers are killed as soon as the
    /// failure is seen.
    pub(crate) fn next(&mut self) -> Result<Option<Outcome<F::Output>>, Error> {
        self.drive(|o, stopped| {
            o.pop_outcome()
                .or_else(|| stopped.then(|| o.take_failure().map(Err)).flatten())
        })
    }

    /// Delivers outcomes as they arrive rather than in input order
    /// ([`next_unordered`](Run::next_unordered)).
    pub(crate) fn set_unordered(&mut self) {
        self.job.outcomes.reorder.set_unordered(true);
    }

    /// The next outcome to arrive, with its index; `Ok(None)` when every item is done. When
    /// not keeping going, the failure that stops the job comes after what arrived before it.
    pub(crate) fn next_unordered(&mut self) -> Result<Option<Indexed<F::Output>>, Error> {
        self.drive(|o, stopped| {
            o.pop_arrived().or_else(|| {
                stopped
                    .then(|| o.take_failure().map(|f| (f.index(), Err(f))))
                    .flatten()
            })
        })
    }

    /// Like [`next`](Run::next), but hands over every outcome that is ready in order, as one
    /// run (at least one outcome), so that collecting a `Vec` costs no call per item.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<Vec<Outcome<F::Output>>>, Error> {
        self.drive(|o, stopped| {
            o.pop_chunk().or_else(|| {
                o.pop_outcome()
                    .or_else(|| stopped.then(|| o.take_failure().map(Err)).flatten())
                    .map(|o| vec![o])
            })
        })
    }

    /// Runs the job to the end and returns every output in input order; the first failure
    /// (an item's, or the machinery's) is the error. Outputs that arrive in order are decoded
    /// straight into the returned vector, which is sized up front when the input knows its
    /// length.
    pub(crate) fn collect_outputs(&mut self) -> Result<Vec<F::Output>, Error> {
        // Outputs are written in place, one slot per item: a failure cannot take a slot.
        if self.job.outcomes.keep_going {
            return Err(Error::internal(
                "collect_outputs is for runs that stop at a failure",
            ));
        }
        // Items already read (sent before this call) count too: places are input indices.
        let read = usize::try_from(self.job.core.next_index).unwrap_or(usize::MAX);
        let expected = self
            .input_len()
            .unwrap_or(0)
            .saturating_add(read)
            .min(1 << 24);
        let o = &mut self.job.outcomes;
        if o.direct.is_none() {
            o.direct = Some(Placed::with_capacity(expected));
        }
        o.drain_direct();
        if let Some(failure) =
            self.drive(|o, stopped| stopped.then(|| o.take_failure()).flatten())?
        {
            return Err(Error::Item(failure));
        }
        let outputs = self.job.outcomes.direct.take().map(Placed::into_vec);
        match outputs {
            Some(v) if v.len() as u64 == self.job.core.next_index => Ok(v),
            _ => Err(Error::internal(format!(
                "job `{}` ran {} items but collected a different number of outputs",
                F::NAME,
                self.job.core.next_index
            ))),
        }
    }

    /// While the run goes on, the mark to ask whether SIGINT/SIGTERM arrived (the next call
    /// into the run reports it); `None` once it has finished (a signal no longer concerns it).
    pub(crate) fn signal_mark(&self) -> Option<SignalMark> {
        if self.finished {
            return None;
        }
        self.engine.workers.signals.as_ref().map(|g| g.mark())
    }

    /// Takes back a chunk from [`next_chunk`](Run::next_chunk) that the consumer emptied.
    pub(crate) fn give_back(&mut self, chunk: Vec<Outcome<F::Output>>) {
        self.job.outcomes.reorder.recycle(chunk);
    }

    /// Items the input still holds, when it knows exactly.
    pub(crate) fn input_len(&self) -> Option<usize> {
        exact_len(&self.job.input)
    }

    /// The one delivery routine: runs the engine until `take` finds something to hand over,
    /// or the run ends (`Ok(None)`), or the machinery fails. `take` is given the outcomes and
    /// whether the run has stopped (then nothing more will arrive, and a failure that stopped
    /// it is due).
    ///
    /// SIGINT/SIGTERM is checked first on every call, so a stream with outputs already
    /// buffered still reports `Interrupted` at once.
    fn drive<T>(
        &mut self,
        mut take: impl FnMut(&mut Outcomes<F, Hooks<'h>>, bool) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        // Entered only before the loop blocks: a signal that arrives while the caller's own
        // code runs between calls takes its previous disposition.
        let mut inside = None;
        loop {
            if !self.finished {
                let signal = self.engine.workers.signals.as_ref().and_then(|g| g.fired());
                let failed = signal
                    .map(|signal| Error::Interrupted { signal })
                    .or_else(|| self.job.take_broken())
                    .or_else(|| self.job.core.error.take());
                if let Some(e) = failed {
                    self.stop();
                    return Err(e);
                }
            }
            if let Some(t) = take(&mut self.job.outcomes, self.finished) {
                return Ok(Some(t));
            }
            if self.finished {
                return Ok(None);
            }
            if self.job.stopped() {
                // A failure stops the job: its workers are killed at once; what arrived
                // before it is still delivered.
                self.stop();
                continue;
            }
            if self.job.core.complete() {
                self.report();
                self.engine.shutdown();
                self.finished = true;
                if let Some(e) = self.job.take_broken() {
                    return Err(e);
                }
                continue;
            }
            inside.get_or_insert_with(Inside::enter);
            if let Err(e) = self.engine.step(&mut [&mut self.job], None) {
                self.stop();
                return Err(e);
            }
        }
    }

    /// Ends the run now: every worker is killed.
    fn stop(&mut self) {
        self.report();
        self.engine.kill_all();
        self.finished = true;
    }

    /// The job's insights: now, or as it ended.
    pub(crate) fn insights(&self) -> Insights {
        match &self.insights {
            Some(i) => i.clone(),
            None => self.engine.job_insights(&self.job.core),
        }
    }

    /// The job ends: its insights go to the handlers (once).
    fn report(&mut self) {
        if self.insights.is_none() {
            let insights = self.engine.job_insights(&self.job.core);
            self.job.ended(&insights);
            self.insights = Some(insights);
        }
    }
}
