//! The supervisor (multitools' `ipc.host.Supervisor`, seed 001): named, long-lived processes
//! ([`Actor`]s) that talk to each other through typed messages routed by the supervisor —
//! by id, to a set of ids, to the listeners of a kind, to everyone — and to the caller's
//! handlers (objects, lines, input). The protocol is in this folder's README.
//!
//! - `message`: the message enum's trait and its kinds, targets, listening;
//! - `actor`: the [`Actor`] trait and the hidden job that serves one in a child;
//! - `link`: the process's side ([`Link`]); `serve`: its life in the child;
//! - `logger`: residents that record what they hear ([`Logger`], [`DebugLogger`]);
//! - `frames`: the link's frames;
//! - `member`, `api`, `hub`, `ending`, `input`: the supervisor's side.

mod actor;
mod api;
mod ending;
mod frames;
mod hub;
mod input;
mod link;
mod logger;
mod member;
mod message;
mod serve;

pub use actor::{Actor, ActorJob, ActorRunner, Fail, Flow, Letter};
pub use api::{Ended, Origin, Outcome, Restart, Supervisor, SupervisorHandle};
pub use link::{Link, LinkError, Served};
pub use logger::{DebugLogger, Logger};
pub use message::{Listen, Message, MessageKind, To};
