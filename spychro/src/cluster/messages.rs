//! What travels through the broker: a batch of items (one JetStream message on the job's
//! items subject) and the outcomes of a batch (one message on the job's results subject).
//! Both are encoded with spychro's own codec; items and outputs stay encoded values inside.

use serde::{Deserialize, Serialize};

use crate::wire::WireFailure;

/// Subjects and streams.
pub(crate) const ITEMS_STREAM: &str = "SPYCHRO_ITEMS";
pub(crate) const RESULTS_STREAM: &str = "SPYCHRO_RESULTS";
pub(crate) const HOSTS_CONSUMER: &str = "spychro-hosts";

pub(crate) fn items_subject(job: &str) -> String {
    format!("spychro.items.{job}")
}

pub(crate) fn results_subject(job: &str) -> String {
    format!("spychro.results.{job}")
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
}

/// One item's outcome: its output (encoded), or its failure and the process it failed in.
pub(crate) type WireOutcome = Result<Vec<u8>, (WireFailure, u32)>;

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
