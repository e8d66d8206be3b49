//! Adaptive batch sizing: aim for a few milliseconds of work per batch, measured from the busy
//! time workers report, growing from one item the way TCP slow-start grows its window.

/// The work a batch should hold.
const TARGET_NS: f64 = 4_000_000.0;
/// The most items in one batch.
pub(crate) const MAX_ITEMS: usize = 32 * 1024;
/// A batch stops growing once its items take this many bytes (one item always fits).
pub(crate) const MAX_BYTES: usize = 4 << 20;

pub(crate) struct Sizer {
    fixed: Option<usize>,
    /// Exponentially weighted mean of the worker time per item, in nanoseconds.
    per_item_ns: Option<f64>,
    /// The slow-start ceiling: doubles with each measurement.
    ceiling: usize,
}

impl Sizer {
    pub(crate) fn new(fixed: Option<usize>) -> Sizer {
        Sizer {
            fixed,
            per_item_ns: None,
            ceiling: 1,
        }
    }

    /// The size of the next batch, given how many items remain (when known) and how many
    /// workers share them.
    pub(crate) fn next(&self, remaining: Option<usize>, workers: usize) -> usize {
        if let Some(n) = self.fixed {
            return n;
        }
        let wanted = match self.per_item_ns {
            Some(ns) => (TARGET_NS / ns.max(1.0)) as usize,
            None => 1,
        };
        let mut size = wanted.clamp(1, self.ceiling).min(MAX_ITEMS);
        if let Some(rem) = remaining {
            // Near the end, split what is left evenly so that no worker holds a long tail.
            size = size.min(rem.div_ceil(2 * workers.max(1)).max(1));
        }
        size
    }

    /// Records that a worker spent `busy_ns` on `count` items.
    pub(crate) fn observe(&mut self, count: u32, busy_ns: u64) {
        if count == 0 {
            return;
        }
        let sample = busy_ns as f64 / count as f64;
        let mean = match self.per_item_ns {
            None => sample,
            Some(mean) => 0.7 * mean + 0.3 * sample,
        };
        self.per_item_ns = Some(mean);
        // Doubling is the safe pace when items may be heavy; when they are measured to be
        // tiny, jump to an eighth of the size that would fill the target.
        let wanted = (TARGET_NS / mean.max(1.0)) as usize;
        self.ceiling = (self.ceiling * 2).max(wanted / 8).min(MAX_ITEMS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_for_tiny_items_and_stays_small_for_heavy_ones() {
        let mut s = Sizer::new(None);
        assert_eq!(s.next(None, 4), 1);
        for _ in 0..30 {
            let n = s.next(None, 4);
            s.observe(n as u32, n as u64 * 50);
        }
        assert_eq!(s.next(None, 4), MAX_ITEMS);

        let mut s = Sizer::new(None);
        for _ in 0..30 {
            let n = s.next(None, 4);
            s.observe(n as u32, n as u64 * 10_000_000);
        }
        assert_eq!(s.next(None, 4), 1);
    }

    #[test]
    fn splits_the_tail_and_honours_a_fixed_size() {
        let mut s = Sizer::new(None);
        for _ in 0..30 {
            s.observe(1000, 1000);
        }
        assert_eq!(s.next(Some(100), 5), 10);
        assert_eq!(Sizer::new(Some(7)).next(Some(1), 1), 7);
    }
}
