//! The jobs a worker holds, keyed by the id the caller gave each: the registry entry, the
//! loaded extra arguments, and the job's settings. A worker may hold several jobs at once (a
//! persistent pool serves many); what acts process-wide (the log level, whether the job may
//! start pools) is switched to a batch's job as the batch starts.

use std::any::Any;
use std::collections::HashMap;

use super::current;
use super::registry::{self, JobEntry};
use crate::wire::{self, Setup, SetupFailure};

/// A job's settings in this worker.
pub(crate) struct Settings {
    /// The job may start pools of its own (non-daemon mode).
    pub(crate) nested: bool,
    /// The most verbose `log` level to send.
    pub(crate) log_level: log::LevelFilter,
    /// The caller times items out: record each item's start time.
    pub(crate) timed: bool,
    /// The job runs as a `Process`: one batch, then exit.
    pub(crate) process: bool,
}

/// A loaded job.
pub(crate) struct Loaded {
    pub(crate) entry: &'static JobEntry,
    /// The job's extra arguments, decoded.
    pub(crate) args: Box<dyn Any>,
    /// The job's per-worker state (`()` for a job without one).
    pub(crate) state: Box<dyn Any>,
    pub(crate) settings: Settings,
}

/// The jobs of this worker, by id.
#[derive(Default)]
pub(crate) struct Jobs {
    loaded: HashMap<u32, Loaded>,
    /// Jobs that were refused or unloaded: their batches are answered as skipped.
    dropped: std::collections::HashSet<u32>,
}

impl Jobs {
    /// Loads a job as `setup` says; the error says why it cannot be.
    pub(crate) fn load(&mut self, setup: Setup) -> Result<(), SetupFailure> {
        let job = setup.job;
        let loaded = self.try_load(setup);
        if loaded.is_err() {
            self.dropped.insert(job);
        }
        loaded
    }

    fn try_load(&mut self, setup: Setup) -> Result<(), SetupFailure> {
        let entry = registry::find(&setup.name, setup.signature).map_err(SetupFailure::Refused)?;
        let args = (entry.load)(&setup.args).map_err(SetupFailure::Refused)?;
        let state = (entry.init)(&*args).map_err(SetupFailure::State)?;
        if let Some(name) = setup.process.clone() {
            current::set_process_name(name);
        }
        super::link::set_kill_descendants(setup.kill_descendants);
        let settings = Settings {
            nested: setup.nested,
            log_level: wire::filter_from_wire(setup.log_level),
            timed: setup.timed,
            process: setup.process.is_some(),
        };
        self.loaded.insert(
            setup.job,
            Loaded {
                entry,
                args,
                state,
                settings,
            },
        );
        Ok(())
    }

    /// Drops job `job` (it is over): its state goes, and its batches still to come are
    /// answered as skipped.
    /// Returns the exit value of its state (encoded, or why there is none) when it has one.
    pub(crate) fn unload(&mut self, job: u32) -> Option<Result<Vec<u8>, String>> {
        self.dropped.insert(job);
        let loaded = self.loaded.remove(&job)?;
        loaded
            .entry
            .stateful
            .then(|| (loaded.entry.exit)(loaded.state))
    }

    /// The jobs whose state has an exit value to send.
    pub(crate) fn stateful(&self) -> Vec<u32> {
        let mut jobs: Vec<u32> = self
            .loaded
            .iter()
            .filter(|(_, l)| l.entry.stateful)
            .map(|(&id, _)| id)
            .collect();
        jobs.sort_unstable();
        jobs
    }

    /// Whether job `job` was refused or unloaded.
    pub(crate) fn dropped(&self, job: u32) -> bool {
        self.dropped.contains(&job)
    }

    /// Job `job`, with its settings made the process's for the batch that starts.
    pub(crate) fn enter(&mut self, job: u32) -> Option<&mut Loaded> {
        let loaded = self.loaded.get_mut(&job)?;
        current::set_may_nest(loaded.settings.nested);
        log::set_max_level(loaded.settings.log_level);
        Some(loaded)
    }
}
