//! What a job's outcomes and events are handed to, as they arrive: the caller's handlers
//! themselves ([`Hooks`], when the job runs on the caller's thread), or a queue that the
//! caller's thread replays into them later (a job in a pool, whose engine has a thread of its
//! own).

use super::hooks::{Hooks, WorkerLog};
use super::insights::Insights;
use crate::error::{Error, ItemError};

/// Receives a job's failures, messages, logs, progress and deliveries.
pub(crate) trait Handlers {
    /// An item failed.
    fn failure(&mut self, failure: &ItemError);
    /// Item `item` of worker `pid` sent an (encoded) message.
    fn message(&mut self, pid: u32, item: u64, message: &[u8]);
    /// A worker logged.
    fn log(&mut self, record: WorkerLog);
    /// An item reported progress.
    fn progress(&mut self, pid: u32, item: u64, fraction: f64);
    /// `n` outcomes were handed over in order.
    fn delivered(&mut self, n: usize);
    /// Worker `pid` ended the job's per-worker state, with this exit value (encoded).
    fn worker_exit(&mut self, pid: u32, exit: &[u8]);
    /// The job ended; this is how its workers spent their time.
    fn insights(&mut self, insights: &Insights);
    /// A handler panicked: the job must end with this.
    fn take_broken(&mut self) -> Option<Error>;
}

impl Handlers for Hooks<'_> {
    fn failure(&mut self, failure: &ItemError) {
        Hooks::failure(self, failure);
    }
    fn message(&mut self, pid: u32, item: u64, message: &[u8]) {
        Hooks::message(self, pid, Some(item), message);
    }
    fn log(&mut self, record: WorkerLog) {
        Hooks::log(self, record);
    }
    fn progress(&mut self, pid: u32, item: u64, fraction: f64) {
        Hooks::progress(self, pid, item, fraction);
    }
    fn delivered(&mut self, n: usize) {
        self.delivered_many(n);
    }
    fn worker_exit(&mut self, pid: u32, exit: &[u8]) {
        Hooks::worker_exit(self, pid, exit);
    }
    fn insights(&mut self, insights: &Insights) {
        Hooks::insights(self, insights);
    }
    fn take_broken(&mut self) -> Option<Error> {
        self.broken.take()
    }
}

/// No handlers: what is not taken is dropped (a lone [`Process`](crate::Process) reports its
/// own failure).
impl Handlers for () {
    fn failure(&mut self, _: &ItemError) {}
    fn message(&mut self, _: u32, _: u64, _: &[u8]) {}
    fn log(&mut self, _: WorkerLog) {}
    fn progress(&mut self, _: u32, _: u64, _: f64) {}
    fn delivered(&mut self, _: usize) {}
    fn worker_exit(&mut self, _: u32, _: &[u8]) {}
    fn insights(&mut self, _: &Insights) {}
    fn take_broken(&mut self) -> Option<Error> {
        None
    }
}
