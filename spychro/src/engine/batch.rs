//! A batch of items sent to a worker and not yet fully answered: its first index, how many,
//! how many were answered, and the items' bytes (kept to send again or to describe a failure):
//! encoded values, or a plain job's raw values (see `call/plain.rs`), which also have a slot
//! in their worker's region while they are there.

use std::sync::Arc;

use super::slots::Slot;
use crate::call::plain::PlainSizes;
use crate::wire;

/// A batch in flight.
pub(crate) struct InFlight {
    /// The job the items belong to.
    pub(crate) job: u32,
    pub(crate) first: u64,
    pub(crate) count: u32,
    /// Outcomes received so far.
    pub(crate) done: u32,
    /// The items, back to back (encoded, or raw for a plain job), kept to describe a failed
    /// item or send it again.
    pub(crate) items: Arc<Vec<u8>>,
    /// One item run again on its own, to find which of several broke its worker's socket:
    /// its worker gets nothing else until it answers, so that the worker sends its result
    /// at once (it holds results only while another batch waits) and a failure names it.
    pub(crate) alone: bool,
    /// The job is plain: `items` are raw values of these sizes.
    pub(crate) plain: Option<PlainSizes>,
    /// Where the batch is in its worker's region (a plain job's, once sent).
    pub(crate) slot: Option<Slot>,
}

/// One item's bytes, as its batch holds them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ItemBytes<'a> {
    /// An encoded value.
    Encoded(&'a [u8]),
    /// A plain job's raw value.
    Plain(&'a [u8]),
}

impl ItemBytes<'_> {
    /// An owned copy.
    pub(crate) fn to_owned(self) -> OwnedItem {
        match self {
            ItemBytes::Encoded(b) => OwnedItem::Encoded(b.to_vec()),
            ItemBytes::Plain(b) => OwnedItem::Plain(b.to_vec()),
        }
    }
}

/// [`ItemBytes`], owned.
#[derive(Clone, Debug)]
pub(crate) enum OwnedItem {
    Encoded(Vec<u8>),
    Plain(Vec<u8>),
}

impl OwnedItem {
    pub(crate) fn as_bytes(&self) -> ItemBytes<'_> {
        match self {
            OwnedItem::Encoded(b) => ItemBytes::Encoded(b),
            OwnedItem::Plain(b) => ItemBytes::Plain(b),
        }
    }
}

impl InFlight {
    /// A new batch of `count` items from `first`, in `items`.
    pub(crate) fn new(
        job: u32,
        first: u64,
        count: u32,
        items: Vec<u8>,
        plain: Option<PlainSizes>,
    ) -> InFlight {
        InFlight {
            job,
            first,
            count,
            done: 0,
            items: Arc::new(items),
            alone: false,
            plain,
            slot: None,
        }
    }

    /// The bytes of items `from..to`: where they start and end in `items`.
    fn span(&self, from: u32, to: u32) -> Option<(usize, usize)> {
        if let Some(sizes) = self.plain {
            let size = sizes.item as usize;
            let end = to as usize * size;
            return (to <= self.count && end <= self.items.len())
                .then_some((from as usize * size, end));
        }
        let mut values = wire::Values::new(&self.items);
        let mut start = 0;
        for n in 0..to {
            if n == from {
                start = values.position();
            }
            values.skip().ok()?;
        }
        Some((start, values.position()))
    }

    /// The items `first + from .. first + to` as a batch of their own (with no slot yet).
    pub(crate) fn slice(&self, from: u32, to: u32) -> Option<InFlight> {
        if from >= to {
            return None;
        }
        let (start, end) = self.span(from, to)?;
        Some(InFlight::new(
            self.job,
            self.first + from as u64,
            to - from,
            self.items[start..end].to_vec(),
            self.plain,
        ))
    }

    /// The item `first + n`.
    pub(crate) fn item(&self, n: u32) -> Option<ItemBytes<'_>> {
        let (start, end) = self.span(n, n + 1)?;
        let bytes = &self.items[start..end];
        Some(match self.plain {
            Some(_) => ItemBytes::Plain(bytes),
            None => ItemBytes::Encoded(bytes),
        })
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
