//! [`current_process`]: the name and pid of the running process, as Python's
//! `multiprocessing.current_process()` gives them.

/// The name and pid of the running process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurrentProcess {
    /// `MainProcess` in a program, the name given to a [`Process`](super::Process), `Worker-PID` in a pool
    /// worker.
    pub name: String,
    /// The pid.
    pub pid: u32,
}

/// The name and pid of this process.
///
/// ```
/// assert_eq!(spychro::current_process().name, "MainProcess");
/// ```
pub fn current_process() -> CurrentProcess {
    let pid = std::process::id();
    let name = match crate::worker::current::process_name() {
        Some(name) => name.to_owned(),
        None if crate::worker::current::is_worker() => format!("Worker-{pid}"),
        None => "MainProcess".to_owned(),
    };
    CurrentProcess { name, pid }
}
