//! What travels through the broker: a batch of items (one JetStream message on the job's
//! items subject), what hosts report back on the job's reports subject (what the job's
//! workers sent while it ran, then the outcomes of a batch), and the caller's notice that a
//! job is withdrawn (core NATS, on the job's cancel subject). All are encoded with spychro's
//! own codec; items and outputs stay encoded values inside.

use serde::{Deserialize, Serialize};

use crate::error::FailureKind;

/// Subjects and streams.
pub(crate) const ITEMS_STREAM: &str = "SPYCHRO_ITEMS";
pub(crate) const REPORTS_STREAM: &str = "SPYCHRO_REPORTS";
pub(crate) const HOSTS_CONSUMER: &str = "spychro-hosts";
/// Every job's cancel subject (hosts subscribe to all of them).
pub(crate) const CANCEL_ALL: &str = "spychro.cancel.*";

pub(crate) fn items_subject(job: &str) -> String {
    format!("spychro.items.{job}")
}

pub(crate) fn reports_subject(job: &str) -> String {
    format!("spychro.reports.{job}")
}

pub(crate) fn cancel_subject(job: &str) -> String {
    format!("spychro.cancel.{job}")
}

/// The durable consumer through which job `job`'s caller reads its reports; while it exists,
/// the caller is there.
pub(crate) fn caller_consumer(job: &str) -> String {
    format!("caller-{job}")
}

/// The job of a cancel subject.
pub(crate) fn job_of_cancel(subject: &str) -> Option<&str> {
    subject.strip_prefix("spychro.cancel.")
}

/// A batch of a job's items.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Batch {
    /// The job's id (unique per caller job), in every subject.
    pub(crate) job: String,
    /// The job's registered name and signature hash: a host built from other code refuses.
    pub(crate) name: String,
    pub(crate) signature: u64,
    /// The job's extra arguments, encoded.
    pub(crate) args: Vec<u8>,
    /// The index of the first item.
    pub(crate) first: u64,
    /// The items, each encoded.
    pub(crate) items: Vec<Vec<u8>>,
    /// Per-item timeout and retries, as the caller set them.
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) retries: u32,
    /// What the caller wants to hear of while the batch runs.
    pub(crate) wants: Wants,
}

/// What the caller has handlers for, so that hosts send only that.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Wants {
    pub(crate) messages: bool,
    pub(crate) progress: bool,
    pub(crate) worker_exits: bool,
    /// The most verbose `log` level to send (as the wire numbers it; 0: none).
    pub(crate) log_level: u8,
}

/// Something a job's worker sent while a batch ran; items are numbered as the caller's.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Event {
    /// `Ctx::send`: the message, encoded.
    Message { pid: u32, body: Vec<u8> },
    /// `Ctx::progress`.
    Progress { pid: u32, item: u64, fraction: f64 },
    /// A `log` record.
    Log {
        pid: u32,
        level: u8,
        target: String,
        message: String,
        item: Option<u64>,
        time_ms: u64,
    },
    /// A worker ended the job's per-worker state; its exit value, encoded.
    WorkerExit { pid: u32, body: Vec<u8> },
}

/// One item's outcome: its output (encoded), or its failure and the process it failed in.
pub(crate) type WireOutcome = Result<Vec<u8>, (FailureKind, u32)>;

/// What a host sends on a job's reports subject.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    /// What workers sent while a batch ran, before its outcomes.
    Events { host: String, events: Vec<Event> },
    /// The outcomes of a batch.
    Done(Done),
}

/// The outcomes of a batch, from the host that ran it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Done {
    pub(crate) first: u64,
    /// The host (`hostname:pid`).
    pub(crate) host: String,
    /// The batch was refused as a whole (unknown job, other code): why.
    pub(crate) refused: Option<String>,
    pub(crate) outcomes: Vec<WireOutcome>,
}
