//! Jobs on many hosts through NATS JetStream (the `cluster` feature): a [`Cluster`] client
//! publishes a job's items in batches to a work queue on the broker, and hosts — this same
//! program started with [`serve`] — run them on local pools and send the outcomes back. The
//! broker delivers each batch at least once (again when a host dies or goes silent); the
//! caller keeps each item's first outcome, so results are exactly once, in input order.
//!
//! - `broker`: the connection and the shared streams;
//! - `messages`: what travels (batches, outcomes) and on which subjects;
//! - `registry`: the jobs a host can run, by name, and how a batch runs on its pool;
//! - `host`: [`serve`]; `caller`: [`Cluster`].

mod broker;
mod caller;
mod host;
mod messages;
mod registry;

pub use caller::Cluster;
pub use host::serve;
#[doc(hidden)]
pub use registry::{CLUSTER_JOBS, ClusterEntry};
