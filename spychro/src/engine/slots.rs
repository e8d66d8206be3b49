//! Where plain batches go in a worker's region (see `call/plain.rs`): each batch in flight
//! takes one run of the region for its items, which its outputs then overwrite, and gives it
//! back once it is answered (or its worker is gone, with the region).
//!
//! First fit from the region's start, rather than a ring: a worker's few batches in flight
//! then keep reusing the same low pages, so a run touches (and the kernel zeroes) only as many
//! pages as it has bytes in flight, not the whole region. Hand-written: a handful of runs, no
//! crate's allocator fits memory that another process shares.

/// Runs are aligned to this (a cache line), so that two batches never share a line.
const ALIGN: usize = 64;

/// The region is made resident this much at a time, ahead of the batches that use it.
const RESIDENT_STEP: usize = 256 * 1024;

/// One batch's run of a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Where the items start.
    pub(crate) items_at: usize,
    /// Where the outputs start.
    pub(crate) outputs_at: usize,
    start: usize,
    len: usize,
}

/// The runs of one region that batches hold.
#[derive(Debug)]
pub(crate) struct Slots {
    len: usize,
    /// `(start, end)` of each run taken, by start.
    taken: Vec<(usize, usize)>,
    /// The end of the furthest run ever taken: how much of the region batches have touched.
    high_water: usize,
    /// How much of the region, from its start, was made resident at once.
    resident: usize,
}

fn round_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

impl Slots {
    /// Slots of a region of `len` bytes (0: a worker without one).
    pub(crate) fn new(len: usize) -> Slots {
        Slots {
            len,
            taken: Vec::new(),
            high_water: 0,
            resident: 0,
        }
    }

    /// What to make resident before `slot` is written, if it reaches past what already is:
    /// up to its end, rounded up to [`RESIDENT_STEP`] (not past the region).
    pub(crate) fn resident_for(&mut self, slot: &Slot) -> Option<(usize, usize)> {
        let end = slot.start + slot.len;
        if end <= self.resident {
            return None;
        }
        let from = self.resident;
        self.resident = end.next_multiple_of(RESIDENT_STEP).min(self.len);
        Some((from, self.resident))
    }

    /// How many bytes from the region's start batches have used (and made resident).
    pub(crate) fn touched(&self) -> usize {
        self.high_water
    }

    /// The region's size.
    pub(crate) fn region_len(&self) -> usize {
        self.len
    }

    /// How many items of `per_item` bytes (the larger of an item and its output) the largest
    /// free run holds, at most `cap`.
    pub(crate) fn room(&self, per_item: usize, cap: usize) -> usize {
        let mut largest = 0;
        let mut end = 0;
        for &(s, e) in &self.taken {
            largest = largest.max(s - end);
            end = e;
        }
        largest = largest.max(self.len - end);
        // Rounding up loses less than an alignment.
        let usable = largest.saturating_sub(ALIGN);
        match per_item {
            0 => cap,
            per => (usable / per).min(cap),
        }
    }

    /// Takes a run for `count` items of `item` bytes and their outputs of `output` bytes:
    /// the first free one from the region's start. `None` when no run is large enough.
    ///
    /// Outputs overwrite the items they answer: a run holds `count` times the larger of the
    /// two sizes, outputs packed from its start and items packed against its end, so that
    /// writing output `n` never reaches item `n + 1` (the caller keeps its own copy of the
    /// items to send again or describe). The pages the caller wrote the items to are the
    /// pages the worker writes the outputs to: a batch touches half the memory.
    pub(crate) fn take(&mut self, count: usize, item: usize, output: usize) -> Option<Slot> {
        let stride = item.max(output);
        let len = round_up(count * stride);
        let slot = |start: usize| Slot {
            items_at: start + count * (stride - item),
            outputs_at: start,
            start,
            len,
        };
        if len == 0 {
            return Some(slot(0));
        }
        let mut start = 0;
        let mut at = self.taken.len();
        for (k, &(s, e)) in self.taken.iter().enumerate() {
            if s - start >= len {
                at = k;
                break;
            }
            start = e;
        }
        if at == self.taken.len() && self.len - start < len {
            return None;
        }
        self.taken.insert(at, (start, start + len));
        self.high_water = self.high_water.max(start + len);
        Some(slot(start))
    }

    /// Gives `slot`'s run back.
    pub(crate) fn free(&mut self, slot: &Slot) {
        if slot.len == 0 {
            return;
        }
        if let Some(k) = self
            .taken
            .iter()
            .position(|&(s, e)| s == slot.start && e == slot.start + slot.len)
        {
            self.taken.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_taken_first_fit_and_given_back() {
        let mut s = Slots::new(1024);
        let a = s.take(25, 8, 4).unwrap();
        // 200 bytes, rounded to 256; outputs (smaller) overwrite the items from the start.
        assert_eq!((a.items_at, a.outputs_at, a.len), (0, 0, 256));
        let b = s.take(8, 8, 8).unwrap();
        assert_eq!(b.items_at, 256);
        // Larger outputs: the items sit against the run's end.
        let c = s.take(10, 4, 20).unwrap();
        assert_eq!((c.outputs_at, c.items_at), (320, 320 + 10 * 16));
        // 1024 - 576 = 448 left at the end.
        assert!(s.take(450, 1, 1).is_none());
        s.free(&a);
        // The hole at the start is used first.
        let d = s.take(16, 8, 8).unwrap();
        assert_eq!(d.items_at, 0);
        assert_eq!(s.room(1, usize::MAX), 448 - ALIGN);
        s.free(&b);
        s.free(&c);
        s.free(&d);
        assert_eq!(s.room(2, usize::MAX), (1024 - ALIGN) / 2);
        assert_eq!(s.room(2, 10), 10);
    }

    #[test]
    fn what_room_promises_can_be_taken() {
        let mut s = Slots::new(4096);
        let _ = s.take(1000, 1, 1).unwrap();
        for (item, output) in [(1, 1), (3, 1), (1, 3), (16, 16), (100, 7), (1000, 1000)] {
            let n = s.room(item.max(output), usize::MAX);
            assert!(n > 0);
            let slot = s.take(n, item, output).expect("room said it fits");
            assert!(slot.items_at + n * item <= slot.start + slot.len);
            assert!(slot.outputs_at + n * output <= slot.start + slot.len);
            s.free(&slot);
        }
        // Batches of zero-sized types take nothing.
        let z = s.take(10, 0, 0).unwrap();
        s.free(&z);
        assert_eq!(s.taken.len(), 1);
    }

    #[test]
    fn an_output_never_overwrites_an_item_not_yet_read() {
        for (item, output) in [(8, 8), (8, 1), (1, 8), (3, 5), (5, 3), (0, 4), (4, 0)] {
            let mut s = Slots::new(1 << 16);
            let count = 50;
            let slot = s.take(count, item, output).unwrap();
            for n in 0..count {
                let out_end = slot.outputs_at + (n + 1) * output;
                let next_item = slot.items_at + (n + 1) * item;
                assert!(
                    n + 1 == count || output == 0 || out_end <= next_item,
                    "{item}/{output}: output {n} ends at {out_end}, item {} starts at {next_item}",
                    n + 1
                );
            }
        }
    }
}
