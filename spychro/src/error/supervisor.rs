//! [`SupervisorError`]: why a [`Supervisor`](crate::Supervisor) ended early — a process
//! failed, a message could not be delivered, an object had nowhere to go.

/// Why a supervisor ended early. Each names the process involved (name, id, pid).
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// use spychro::{Actor, Error, Fail, Link, Supervisor, SupervisorError};
/// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// # enum Msg { Tick }
///
/// #[derive(Serialize, Deserialize)]
/// struct Crash;
///
/// #[spychro::actor]
/// impl Actor for Crash {
///     type Message = Msg;
///     fn run(&mut self, _: &mut Link<Msg>) -> Result<(), Fail> {
///         Err("out of cheese".into())
///     }
/// }
///
/// let mut s = Supervisor::<Msg>::new();
/// let crash = s.add(Crash);
/// let err = s.supervise().unwrap_err();
/// let Error::Supervisor(e) = &err else { panic!("{err}") };
/// let SupervisorError::Failed { name, id, pid, .. } = &**e else { panic!("{e}") };
/// assert_eq!((name.as_str(), *id), ("Crash", crash));
/// let pid = pid.expect("it had started");
/// assert_eq!(
///     err.to_string(),
///     format!("process Crash (id {crash}, pid {pid}) failed: returned an error: out of cheese")
/// );
/// # Ok::<(), spychro::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// A process panicked, returned an error, crashed or could not start; the others were
    /// ended at once.
    #[error("process {name} (id {id}{}) failed: {}", pid_part(*pid), cause(error))]
    Failed {
        /// Its name.
        name: String,
        /// Its id.
        id: u64,
        /// Its pid, once it had one.
        pid: Option<u32>,
        /// What went wrong (a panic carries its message and location).
        error: Box<super::Error>,
    },
    /// A process failed more often than the restart policy allows; the others were ended.
    #[error(
        "process {name} (id {id}) failed {failures} times within {within:?}, more than the \
         restart policy allows ({max} restarts); the last failure: {error}"
    )]
    RestartsExhausted {
        /// Its name.
        name: String,
        /// Its id.
        id: u64,
        /// Failures within the window.
        failures: u32,
        /// The policy's most restarts.
        max: u32,
        /// The policy's window.
        within: std::time::Duration,
        /// The last failure.
        error: Box<super::Error>,
    },
    /// A message could not be delivered and no `on_undeliverable` handler was set.
    #[error("{0}")]
    Undeliverable(Box<Undelivered>),
    /// A process sent an object and the supervisor has no object handler (multitools'
    /// "Unknown object sent to supervisor").
    #[error(
        "unknown object sent to supervisor: a `{type_name}` from process {name} (id {id}); \
         set a handler with Supervisor::on_object"
    )]
    UnknownObject {
        /// The sender's name.
        name: String,
        /// The sender's id.
        id: u64,
        /// The object's type, as the sender named it.
        type_name: String,
    },
    /// A process sent an object the object handler's type cannot hold.
    #[error(
        "process {name} (id {id}) sent a `{type_name}`, which the object handler (taking \
         `{expected}`) could not decode: {message}"
    )]
    ObjectType {
        /// The sender's name.
        name: String,
        /// The sender's id.
        id: u64,
        /// The object's type, as the sender named it.
        type_name: String,
        /// The type the handler takes.
        expected: &'static str,
        /// The decoder's error.
        message: String,
    },
    /// A handler given to the supervisor panicked.
    #[error("the supervisor's {handler} handler panicked: {message}")]
    Handler {
        /// Which handler.
        handler: &'static str,
        /// The panic message.
        message: String,
    },
}

/// A process's failure without the job-and-item framing of a pool's (a supervised process
/// runs one "item": itself).
fn cause(error: &super::Error) -> String {
    match error {
        super::Error::Item(item) => item.kind().to_string(),
        other => other.to_string(),
    }
}

fn pid_part(pid: Option<u32>) -> String {
    pid.map(|p| format!(", pid {p}")).unwrap_or_default()
}

/// A message that could not be delivered: who sent it, where, its kind, and why.
///
/// ```
/// let u = spychro::Undelivered {
///     from: 1,
///     from_name: "Sender".into(),
///     to: "process 7".into(),
///     kind: "Text",
///     reason: "no process has id 7 (it ended, or never existed)".into(),
/// };
/// assert_eq!(
///     u.to_string(),
///     "a Text message from Sender (id 1) to process 7 could not be delivered: no process has \
///      id 7 (it ended, or never existed)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} message from {from_name} (id {from}) to {to} could not be delivered: {reason}")]
pub struct Undelivered {
    /// The sender's id.
    pub from: u64,
    /// The sender's name.
    pub from_name: String,
    /// Where it was sent.
    pub to: String,
    /// The message's kind.
    pub kind: &'static str,
    /// Why it could not be delivered.
    pub reason: String,
}
