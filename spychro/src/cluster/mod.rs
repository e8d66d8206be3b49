//! Jobs on many hosts through NATS JetStream (the `cluster` feature): a [`Cluster`] client
//! publishes a job's items in batches to a work queue on the broker, and hosts — this same
//! program started with [`serve`] — run them on local pools and send the outcomes back. The
//! broker delivers each batch at least once (again when a host dies or goes silent); the
//! caller keeps each item's first outcome, so results are exactly once, in input order.
//!
//! [`Cluster::run`] returns what `run_multi_processed` would; [`Cluster::stream`] gives the
//! same [`Results`](crate::Results) as `stream_multi_processed`, in bounded memory.
//!
//! # Options
//!
//! | option | on a cluster |
//! |---|---|
//! | `chunk_size` | items per batch (4,096 unless set) |
//! | `timeout`, `retries`, `keep_going` | as locally, applied by the host's pool |
//! | `deadline`, Ctrl-C, dropping a stream | the caller stops, withdraws the job (hosts drop its running batches; its batches and reports are purged from the broker) and returns the error |
//! | `on_failure`, `on_panic` | called for each failed item as its outcome arrives; [`ItemError::host`](crate::ItemError::host) names the host |
//! | `on_message`, `on_progress`, `on_log`, `log_level`, `progress` | carried back from the hosts while batches run (only when set); [`WorkerLog::host`](crate::WorkerLog::host) names the host; at least once: a batch run twice sends twice |
//! | `on_worker_exit` | each host's worker ends its per-worker state at the end of each batch (a batch is a job on the host's pool) |
//! | `processes`, `memory_limit`, `max_items_per_worker`, `worker_program`, `daemon`, `kill_descendants`, `forward_output`, `start_timeout` | refused ([`Error::InvalidOption`](crate::Error::InvalidOption)) when set: they belong to the hosts' pools, set where `serve` starts them |
//! | `on_insights` | refused: the workers are on the hosts; a cluster stream's [`insights`](crate::Results::insights) has the time elapsed and no workers |
//!
//! # The parts
//!
//! The protocol, and why it is safe when a host, the broker or the caller dies, is in
//! `README.md` beside this module.
//!
//! - `broker`: the connection and the shared streams;
//! - `messages`: what travels (batches, reports, withdrawals) and on which subjects;
//! - `registry`: the jobs a host can run, by name, and how a batch runs on its pool;
//! - `host`: [`serve`]; `caller`: [`Cluster`]; `session`: one job from the caller's side.

mod broker;
mod caller;
mod host;
mod messages;
mod registry;
mod session;

pub use caller::Cluster;
pub use host::serve;
#[doc(hidden)]
pub use registry::{CLUSTER_JOBS, ClusterEntry};
