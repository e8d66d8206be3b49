//! A batch of items sent to a worker and not yet fully answered: its first index, how many,
//! how many were answered, and the items' bytes (kept to send again or to describe a failure).

use std::sync::Arc;

use crate::wire;

/// A batch in flight.
pub(crate) struct InFlight {
    /// The job the items belong to.
    pub(crate) job: u32,
    pub(crate) first: u64,
    pub(crate) count: u32,
    /// Outcomes received so far.
    pub(crate) done: u32,
    /// The items, encoded back to back, kept to describe a failed item or send it again.
    pub(crate) items: Arc<Vec<u8>>,
    /// One item run again on its own, to find which of several broke its worker's socket:
    /// its worker gets nothing else until it answers, so that the worker sends its result
    /// at once (it holds results only while another batch waits) and a failure names it.
    pub(crate) alone: bool,
}

impl InFlight {
    /// The items `first + from .. first + to` as a batch of their own.
    pub(crate) fn slice(&self, from: u32, to: u32) -> Option<InFlight> {
        if from >= to {
            return None;
        }
        let mut values = wire::Values::new(&self.items);
        let mut start = 0;
        for n in 0..to {
            if n == from {
                start = values.position();
            }
            values.skip().ok()?;
        }
        Some(InFlight {
            job: self.job,
            first: self.first + from as u64,
            count: to - from,
            done: 0,
            items: Arc::new(self.items[start..values.position()].to_vec()),
            alone: false,
        })
    }

    /// The encoded item `first + n`.
    pub(crate) fn item(&self, n: u32) -> Option<&[u8]> {
        let mut values = wire::Values::new(&self.items);
        for _ in 0..n {
            values.skip().ok()?;
        }
        values.skip().ok()
    }

    /// Whether item `index` is in this batch and not answered yet.
    pub(crate) fn unanswered(&self, index: u64) -> bool {
        index >= self.first + self.done as u64 && index < self.first + self.count as u64
    }

    /// Item `index`'s position in this batch, if it is in it.
    pub(crate) fn position(&self, index: u64) -> Option<u32> {
        let n = index.checked_sub(self.first)?;
        (n < self.count as u64).then_some(n as u32)
    }
}
