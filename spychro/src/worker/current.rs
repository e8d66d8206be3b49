//! What this process is — a worker or not, a named [`Process`](crate::Process) or a pool
//! worker — and what the job whose batch is running allows (nested pools). Read by code above
//! the worker layer (`current_process`, the nested-pool check, channels).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static IS_WORKER: AtomicBool = AtomicBool::new(false);
/// The running batch's job allows pools of its own (non-daemon mode).
static MAY_NEST: AtomicBool = AtomicBool::new(false);
/// The name of this process when it was started as a `Process`.
static PROCESS_NAME: OnceLock<String> = OnceLock::new();

/// Whether this process is a spychro worker.
pub(crate) fn is_worker() -> bool {
    IS_WORKER.load(Ordering::Relaxed)
}

pub(crate) fn set_worker() {
    IS_WORKER.store(true, Ordering::Relaxed);
}

/// Whether the job running in this worker may start pools or processes of its own.
pub(crate) fn may_nest() -> bool {
    MAY_NEST.load(Ordering::Relaxed)
}

pub(crate) fn set_may_nest(nested: bool) {
    MAY_NEST.store(nested, Ordering::Relaxed);
}

/// This process's name if it was started as a `Process`.
pub(crate) fn process_name() -> Option<&'static str> {
    PROCESS_NAME.get().map(String::as_str)
}

pub(crate) fn set_process_name(name: String) {
    let _ = PROCESS_NAME.set(name);
}
