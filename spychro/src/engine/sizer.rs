//! Adaptive batch sizing: aim for a few milliseconds of work per batch, measured from the busy
//! time workers report, growing from one item the way TCP slow-start grows its window.

/// The work a batch should hold.
const TARGET_NS: f64 = 4_000_000.0;
/// Near the end batches shrink, but not below this much work.
const TAIL_NS: f64 = 200_000.0;
/// The most items in one batch.
pub(crate) const MAX_ITEMS: usize = 32 * 1024;
/// A batch stops growing once its items take this many bytes (one item always fits).
pub(crate) const MAX_BYTES: usize = 4 << 20;
/// Small batches may have up to about this many items waiting in one worker...
const PIPELINE_ITEMS: usize = 64;
/// ...as long as they take no more than this many bytes...
const PIPELINE_BYTES: usize = 4 << 20;
/// ...and no more than this much measured work, so that a job submitted to a pool while
/// another runs waits behind a few milliseconds of the other's items, not hundreds.
const PIPELINE_NS: f64 = 2.0 * TARGET_NS;

pub(crate) struct Sizer {
    fixed: Option<usize>,
    /// Exponentially weighted mean of the worker time per item, in nanoseconds.
    per_item_ns: Option<f64>,
    /// The slow-start ceiling: doubles with each measurement.
    ceiling: usize,
    /// Exponentially weighted mean of an item's encoded size, in bytes.
    item_bytes: Option<f64>,
    /// Items in the last measured batch.
    last_count: u32,
}

/// What a job's sizer measured of its function, to start the next job of the same function
/// on a pool warm instead of from one item.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Learned {
    per_item_ns: f64,
    item_bytes: Option<f64>,
    ceiling: usize,
}

impl Sizer {
    pub(crate) fn new(fixed: Option<usize>) -> Sizer {
        Sizer {
            fixed,
            per_item_ns: None,
            ceiling: 1,
            item_bytes: None,
            last_count: 0,
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
            // Near the end, split what is left evenly so that no worker holds a long tail,
            // but not below a batch of TAIL_NS of work: past that, another round trip costs
            // more than the imbalance it saves.
            let floor = match self.per_item_ns {
                Some(ns) => (TAIL_NS / ns.max(1.0)) as usize,
                None => 1,
            };
            size = size
                .min(rem.div_ceil(2 * workers.max(1)).max(floor))
                .min(rem)
                .max(1);
        }
        size
    }

    /// How long `count` items are expected to take, once items were measured.
    pub(crate) fn expected(&self, count: u32) -> Option<std::time::Duration> {
        self.per_item_ns
            .map(|ns| std::time::Duration::from_nanos((ns * f64::from(count)) as u64))
    }

    /// What this sizer measured, once it has.
    pub(crate) fn learned(&self) -> Option<Learned> {
        self.per_item_ns.map(|per_item_ns| Learned {
            per_item_ns,
            item_bytes: self.item_bytes,
            ceiling: self.ceiling,
        })
    }

    /// Starts from what another job of the same function measured. The first measurement of
    /// this job then replaces it outright (see [`observe`](Sizer::observe)'s weight), so a
    /// job whose items cost differently pays for at most one batch of the old guess.
    pub(crate) fn seed(&mut self, learned: Learned) {
        self.per_item_ns = Some(learned.per_item_ns);
        self.item_bytes = learned.item_bytes;
        self.ceiling = learned.ceiling;
        self.last_count = 0;
    }

    /// Records the encoded size of a batch just built.
    pub(crate) fn built(&mut self, count: u32, bytes: usize) {
        if count > 0 {
            let sample = bytes as f64 / count as f64;
            self.item_bytes = Some(self.item_bytes.map_or(sample, |m| 0.7 * m + 0.3 * sample));
        }
    }

    /// How many batches of `size` items may wait in one worker: two, or more for small
    /// batches (up to [`PIPELINE_ITEMS`] items), never more than [`PIPELINE_BYTES`] nor
    /// [`PIPELINE_NS`] of measured work.
    pub(crate) fn depth(&self, size: usize) -> usize {
        let by_items = PIPELINE_ITEMS / size.max(1);
        let batch_bytes = self.item_bytes.unwrap_or(0.0) * size.max(1) as f64;
        let by_bytes = (PIPELINE_BYTES as f64 / batch_bytes.max(1.0)) as usize;
        // Until a batch is measured, items may be slow: two batches.
        let by_time = match self.per_item_ns {
            Some(ns) => (PIPELINE_NS / (ns.max(1.0) * size.max(1) as f64)) as usize,
            None => 2,
        };
        by_items.min(by_bytes).min(by_time).clamp(2, PIPELINE_ITEMS)
    }

    /// Records that a worker spent `busy_ns` on `count` items.
    pub(crate) fn observe(&mut self, count: u32, busy_ns: u64) {
        if count == 0 {
            return;
        }
        let sample = busy_ns as f64 / count as f64;
        // A sample weighs by its items against the one before, so that the first batch of
        // one item, slowed by a cold worker, does not hold back the next hundred.
        let weight = (count as f64 / (count + self.last_count) as f64).max(0.3);
        let mean = match self.per_item_ns {
            None => sample,
            Some(mean) => (1.0 - weight) * mean + weight * sample,
        };
        self.last_count = count;
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
    fn a_cold_first_item_does_not_hold_back_growth() {
        let mut s = Sizer::new(None);
        assert_eq!(s.next(None, 2), 1);
        // The first item takes 5 us (a cold worker); the next hundred take 50 ns each.
        s.observe(1, 5_000);
        assert_eq!(s.next(None, 2), 100);
        s.observe(100, 5_000);
        assert!(s.next(None, 2) >= 5_000, "{}", s.next(None, 2));
    }

    #[test]
    fn small_batches_pipeline_deeper_unless_they_are_big_or_slow() {
        let mut s = Sizer::new(Some(1));
        s.built(10, 80);
        assert_eq!(s.depth(1), 2, "unmeasured items may be slow");
        s.observe(1, 1_000);
        assert_eq!(s.depth(1), 64);
        s = Sizer::new(Some(1));
        s.observe(1, 1_000);
        s.built(1, 1 << 20);
        assert_eq!(s.depth(1), 4);
        s.built(1, 8 << 20);
        assert_eq!(s.depth(1), 2);
        assert_eq!(Sizer::new(None).depth(32 * 1024), 2);
        // 1 ms items: 8 ms of work may wait in a worker.
        let mut s = Sizer::new(Some(1));
        s.observe(1, 1_000_000);
        assert_eq!(s.depth(1), 8);
        s.observe(1, 20_000_000);
        assert_eq!(s.depth(1), 2);
    }

    #[test]
    fn a_job_seeded_with_what_another_learned_starts_warm() {
        let mut first = Sizer::new(None);
        for _ in 0..30 {
            let n = first.next(None, 2);
            first.observe(n as u32, n as u64 * 100_000);
        }
        let learned = first.learned().expect("measured");
        let mut next = Sizer::new(None);
        next.seed(learned);
        assert_eq!(
            next.next(None, 2),
            40,
            "4 ms of 100 us items, from the first batch"
        );
        assert_eq!(
            next.next(Some(100), 2),
            25,
            "a short job still splits its items"
        );
        // The next job's own measurement replaces the seed at once.
        next.observe(4, 40_000_000);
        assert_eq!(next.next(None, 2), 1);
        // A fixed size stays fixed.
        let mut fixed = Sizer::new(Some(3));
        fixed.seed(learned);
        assert_eq!(fixed.next(None, 2), 3);
    }

    #[test]
    fn splits_the_tail_and_honours_a_fixed_size() {
        // 10 us items: the tail is split evenly down to batches of 200 us (20 items).
        let mut s = Sizer::new(None);
        for _ in 0..30 {
            s.observe(100, 1_000_000);
        }
        assert_eq!(s.next(Some(1000), 5), 100);
        assert_eq!(s.next(Some(100), 5), 20);
        assert_eq!(s.next(Some(7), 5), 7);
        // 1 ns items: a tail of 100 is one batch.
        let mut s = Sizer::new(None);
        for _ in 0..30 {
            s.observe(1000, 1000);
        }
        assert_eq!(s.next(Some(100), 5), 100);
        assert_eq!(Sizer::new(Some(7)).next(Some(1), 1), 7);
    }
}
