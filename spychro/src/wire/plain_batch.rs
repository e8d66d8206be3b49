//! The batch of a plain job (see `call/plain.rs`): its items are already in the worker's
//! region, and its outputs go there; the frame says where.
//!
//! ```text
//! PLAIN_BATCH  job:u32 first:u64 count:u32 items_at:u32 outputs_at:u32 item_size:u32 output_size:u32
//! ```
//!
//! Its results are ordinary RESULTS frames with no outputs in them (only the failure that ends
//! a frame, if one does): the outputs of the items they answer are in the region, at
//! `outputs_at + n * output_size` for the batch's `n`-th item. Outputs may overwrite items:
//! the worker reads item `n` before it writes output `n`, and the caller lays them out so that
//! output `n` ends before item `n + 1` starts (`engine/slots.rs`).

use super::frame::{Cursor, begin_frame, end_frame};
use crate::error::WireError;

/// Caller to worker: a plain job's batch.
pub(crate) const TAG_PLAIN_BATCH: u8 = 5;

/// Where a plain batch's items and outputs are in the worker's region, and their sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlainBatch {
    pub(crate) job: u32,
    pub(crate) first: u64,
    pub(crate) count: u32,
    pub(crate) items_at: u32,
    pub(crate) outputs_at: u32,
    pub(crate) item_size: u32,
    pub(crate) output_size: u32,
}

impl PlainBatch {
    /// Whether its items and outputs lie within a region of `len` bytes.
    pub(crate) fn fits(&self, len: usize) -> bool {
        let end = |at: u32, size: u32| u64::from(at) + u64::from(self.count) * u64::from(size);
        end(self.items_at, self.item_size) <= len as u64
            && end(self.outputs_at, self.output_size) <= len as u64
    }
}

/// Appends a plain batch frame.
pub(crate) fn push_plain_batch(buf: &mut Vec<u8>, b: &PlainBatch) {
    let start = begin_frame(buf, TAG_PLAIN_BATCH);
    buf.extend_from_slice(&b.job.to_le_bytes());
    buf.extend_from_slice(&b.first.to_le_bytes());
    for word in [
        b.count,
        b.items_at,
        b.outputs_at,
        b.item_size,
        b.output_size,
    ] {
        buf.extend_from_slice(&word.to_le_bytes());
    }
    // A fixed 36 bytes: far below any limit.
    let _ = end_frame(buf, start);
}

/// Reads a plain batch frame's body.
pub(crate) fn parse_plain_batch(body: &[u8]) -> Result<PlainBatch, WireError> {
    let mut c = Cursor::new(body, "plain batch");
    let batch = PlainBatch {
        job: c.u32()?,
        first: c.u64()?,
        count: c.u32()?,
        items_at: c.u32()?,
        outputs_at: c.u32()?,
        item_size: c.u32()?,
        output_size: c.u32()?,
    };
    if c.remaining() != 0 {
        return Err(WireError::Decode {
            what: "plain batch",
            message: format!("{} bytes follow the batch", c.remaining()),
        });
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_batch_reads_back_as_written() {
        let b = PlainBatch {
            job: 3,
            first: 1 << 40,
            count: 7,
            items_at: 64,
            outputs_at: 128,
            item_size: 8,
            output_size: 4,
        };
        let mut buf = Vec::new();
        push_plain_batch(&mut buf, &b);
        let mut reader = std::io::Cursor::new(buf);
        let mut body = Vec::new();
        let tag = crate::wire::read_frame(&mut reader, &mut body).unwrap();
        assert_eq!(tag, Some(TAG_PLAIN_BATCH));
        assert_eq!(parse_plain_batch(&body).unwrap(), b);
        assert!(b.fits(128 + 28));
        assert!(!b.fits(128 + 27));
        assert!(parse_plain_batch(&body[..body.len() - 1]).is_err());
    }
}
