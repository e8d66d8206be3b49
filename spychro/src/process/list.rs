//! [`ProcessList`]: many processes started, joined, tested and signalled together
//! (multitools' `ProcessList`), over [`ProcessControl`], the type-erased face of a
//! [`Process`].

use std::any::Any;

use super::Process;
use crate::call::job_fn::JobFn;
use crate::error::Error;

/// A [`Process`] of any job, as [`ProcessList`] holds it.
///
/// ```
/// use spychro::{Process, ProcessControl};
///
/// #[spychro::job]
/// fn id(x: u8) -> u8 { x }
///
/// let mut p: Box<dyn ProcessControl> = Box::new(Process::new(id, 7));
/// p.start()?;
/// assert_eq!(p.wait(), Some(0));
/// # Ok::<(), spychro::Error>(())
/// ```
pub trait ProcessControl {
    /// Starts it.
    fn start(&mut self) -> Result<(), Error>;
    /// Waits for it and returns its exit code (its value is kept for
    /// [`join_value`](ProcessControl::join_value)).
    fn wait(&mut self) -> Option<i32>;
    /// Waits for it and returns what its function returned (boxed), or why it failed.
    fn join_value(&mut self) -> Result<Box<dyn Any>, Error>;
    /// Whether it runs.
    fn is_alive(&self) -> bool;
    /// SIGTERM.
    fn terminate(&mut self);
    /// SIGKILL.
    fn kill(&mut self);
    /// Its pid, once started.
    fn pid(&self) -> Option<u32>;
    /// Its exit code (Python's convention), once it ended.
    fn exit_code(&self) -> Option<i32>;
    /// Its name.
    fn name(&self) -> &str;
}

/// A process wrapped for a list: the value its join returned is kept until asked for.
struct Held<F: JobFn> {
    process: Process<F>,
    joined: Option<Result<F::Output, Error>>,
}

impl<F: JobFn> Held<F> {
    fn join(&mut self) {
        if self.joined.is_none() {
            self.joined = Some(self.process.join());
        }
    }
}

impl<F: JobFn> ProcessControl for Held<F> {
    fn start(&mut self) -> Result<(), Error> {
        self.process.start()
    }
    fn wait(&mut self) -> Option<i32> {
        self.join();
        self.process.exit_code()
    }
    fn join_value(&mut self) -> Result<Box<dyn Any>, Error> {
        self.join();
        match self.joined.take() {
            Some(Ok(v)) => Ok(Box::new(v)),
            Some(Err(e)) => Err(e),
            None => self.process.join().map(|v| Box::new(v) as Box<dyn Any>),
        }
    }
    fn is_alive(&self) -> bool {
        self.process.is_alive()
    }
    fn terminate(&mut self) {
        self.process.terminate()
    }
    fn kill(&mut self) {
        self.process.kill()
    }
    fn pid(&self) -> Option<u32> {
        self.process.pid()
    }
    fn exit_code(&self) -> Option<i32> {
        self.process.exit_code()
    }
    fn name(&self) -> &str {
        self.process.get_name()
    }
}

impl<F: JobFn> ProcessControl for Process<F> {
    fn start(&mut self) -> Result<(), Error> {
        Process::start(self)
    }
    fn wait(&mut self) -> Option<i32> {
        let _ = Process::join(self);
        Process::exit_code(self)
    }
    fn join_value(&mut self) -> Result<Box<dyn Any>, Error> {
        Process::join(self).map(|v| Box::new(v) as Box<dyn Any>)
    }
    fn is_alive(&self) -> bool {
        Process::is_alive(self)
    }
    fn terminate(&mut self) {
        Process::terminate(self)
    }
    fn kill(&mut self) {
        Process::kill(self)
    }
    fn pid(&self) -> Option<u32> {
        Process::pid(self)
    }
    fn exit_code(&self) -> Option<i32> {
        Process::exit_code(self)
    }
    fn name(&self) -> &str {
        Process::get_name(self)
    }
}

/// How one process of a [`ProcessList`] ended, from [`ProcessList::join_all`].
pub struct Joined {
    name: String,
    pid: Option<u32>,
    exit_code: Option<i32>,
    value: Result<Box<dyn Any>, Error>,
}

impl Joined {
    /// The process's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its pid.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Its exit code, in Python's convention.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    /// Why it failed, if it did.
    pub fn error(&self) -> Option<&Error> {
        self.value.as_ref().err()
    }

    /// What its function returned, as type `T` (its job's output type); the error if it
    /// failed, or `Err(Error::Misuse)` if `T` is not its output type.
    pub fn value<T: 'static>(self) -> Result<T, Error> {
        let name = self.name;
        self.value?.downcast::<T>().map(|v| *v).map_err(|_| {
            Error::Misuse(format!(
                "process {name} returned another type than `{}`",
                std::any::type_name::<T>()
            ))
        })
    }
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joined")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .field("exit_code", &self.exit_code)
            .field("error", &self.error())
            .finish()
    }
}

/// Many processes, started, joined, signalled together (multitools' `ProcessList`).
///
/// ```
/// use spychro::{Process, ProcessList};
///
/// #[spychro::job]
/// fn exit_with(code: i32) { std::process::exit(code) }
///
/// let mut list = ProcessList::new();
/// for code in [0, 3, 7] {
///     list.add(Process::new(exit_with, code));
/// }
/// list.start()?;
/// assert_eq!(list.join()?, [Some(0), Some(3), Some(7)]);
/// assert!(!list.is_alive());
/// # Ok::<(), spychro::Error>(())
/// ```
#[derive(Default)]
pub struct ProcessList {
    processes: Vec<Box<dyn ProcessControl>>,
}

impl ProcessList {
    /// An empty list.
    ///
    /// ```
    /// assert!(spychro::ProcessList::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a process (not yet started).
    ///
    /// ```
    /// #[spychro::job]
    /// fn id(x: u8) -> u8 { x }
    ///
    /// let mut list = spychro::ProcessList::new();
    /// list.add(spychro::Process::new(id, 1));
    /// assert_eq!(list.len(), 1);
    /// ```
    pub fn add<F: JobFn>(&mut self, process: Process<F>) {
        self.processes.push(Box::new(Held {
            process,
            joined: None,
        }));
    }

    /// Starts every process; stops at the first that cannot start (the others keep running).
    pub fn start(&mut self) -> Result<(), Error> {
        self.processes.iter_mut().try_for_each(|p| p.start())
    }

    /// Waits for every process and returns their exit codes, in the order added (Python's
    /// `join` then `exitcode`); their values stay for [`join_all`](ProcessList::join_all).
    pub fn join(&mut self) -> Result<Vec<Option<i32>>, Error> {
        Ok(self.processes.iter_mut().map(|p| p.wait()).collect())
    }

    /// Waits for every process and returns how each ended: name, pid, exit code, and what
    /// its function returned or why it failed.
    ///
    /// ```
    /// use spychro::{Process, ProcessList};
    ///
    /// #[spychro::job]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let mut list = ProcessList::new();
    /// list.add(Process::new(square, 3).name("three"));
    /// list.add(Process::new(square, 4));
    /// list.start()?;
    /// let joined = list.join_all();
    /// assert_eq!(joined[0].name(), "three");
    /// let values: Vec<u64> = joined.into_iter().map(|j| j.value::<u64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(values, [9, 16]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn join_all(&mut self) -> Vec<Joined> {
        self.processes
            .iter_mut()
            .map(|p| {
                let value = p.join_value();
                Joined {
                    name: p.name().to_owned(),
                    pid: p.pid(),
                    exit_code: p.exit_code(),
                    value,
                }
            })
            .collect()
    }

    /// Whether any process runs.
    pub fn is_alive(&self) -> bool {
        self.processes.iter().any(|p| p.is_alive())
    }

    /// Sends SIGTERM to every process.
    pub fn terminate(&mut self) {
        self.processes.iter_mut().for_each(|p| p.terminate());
    }

    /// Sends SIGKILL to every process.
    pub fn kill(&mut self) {
        self.processes.iter_mut().for_each(|p| p.kill());
    }

    /// The pids of the started processes.
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.processes.iter().map(|p| p.pid()).collect()
    }

    /// The number of processes.
    pub fn len(&self) -> usize {
        self.processes.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }
}
