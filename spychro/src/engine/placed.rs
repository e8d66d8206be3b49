//! The vector a collecting run returns, filled in input order while outputs arrive in any
//! order: an output whose place lies within the room reserved up front is written there as
//! soon as it is decoded, so nothing waits in a second buffer or is copied again.
//!
//! `len` covers the outputs in order with no gap; runs written further on are remembered until
//! the gap before them closes, and dropped with the vector if it never does.

use std::collections::BTreeMap;

/// Outputs placed by index into one vector.
pub(crate) struct Placed<O> {
    vec: Vec<O>,
    /// Runs written beyond `vec.len()`, within its capacity: start -> end. None touches
    /// another or `vec.len()` (they are merged as soon as they do).
    ahead: BTreeMap<usize, usize>,
    /// Bytes of the allocation, from its start, already made resident.
    resident: usize,
    /// The allocation last offered huge pages (its address), so that it is advised once.
    advised: usize,
}

impl<O> Placed<O> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Placed {
            vec: Vec::with_capacity(n),
            ahead: BTreeMap::new(),
            resident: 0,
            advised: 0,
        }
    }

    /// Outputs in order so far.
    pub(crate) fn len(&self) -> usize {
        self.vec.len()
    }

    /// A writer for up to `n` outputs at positions `at..`, if they can be written in place:
    /// next in order (growing the vector if nothing waits beyond it), or further on within
    /// the reserved room and clear of what is there.
    pub(crate) fn writer(&mut self, at: usize, n: usize) -> Option<Writer<'_, O>> {
        let len = self.vec.len();
        let end = at.checked_add(n)?;
        match self.ahead.first_key_value() {
            // Nothing ahead: in order, the vector may grow.
            None if at == len => self.vec.reserve(n),
            _ if at < len || end > self.vec.capacity() => return None,
            _ => {
                // Clear of the runs before and after it.
                let before = self.ahead.range(..=at).next_back();
                let after = self.ahead.range(at..).next();
                if before.is_some_and(|(_, &e)| e > at) || after.is_some_and(|(&s, _)| s < end) {
                    return None;
                }
            }
        }
        self.make_resident(end);
        // SAFETY: `at + n` is within the capacity (reserved, or checked above), so `at` is
        // at most one past the end of the allocation.
        let base = unsafe { self.vec.as_mut_ptr().add(at) };
        Some(Writer {
            placed: self,
            at,
            base,
            written: 0,
            room: n,
        })
    }

    /// Makes the pages up to position `end` resident with one call, before they are written:
    /// a fault per 4 KiB page costs more (on a VM, ~2 us each; an 8 MB vector has ~2,000).
    /// Only pages about to be written are touched; on kernels without `MADV_POPULATE_WRITE`
    /// (before 5.14) the call fails and the pages fault in as they are written.
    fn make_resident(&mut self, end: usize) {
        let size = std::mem::size_of::<O>();
        let want = end.saturating_mul(size).min(self.vec.capacity() * size);
        if want <= self.resident || size == 0 {
            return;
        }
        const PAGE: usize = 4096;
        let base = self.vec.as_mut_ptr() as usize;
        #[cfg(not(miri))]
        if base != self.advised {
            self.advised = base;
            offer_huge_pages(base, self.vec.capacity() * size);
        }
        let from = (base + self.resident).div_ceil(PAGE) * PAGE;
        let to = (base + want) / PAGE * PAGE;
        // (Miri runs the rest of this module; it has no madvise.)
        #[cfg(not(miri))]
        if to > from {
            // SAFETY: `from..to` lies within the vector's allocation (whole pages between its
            // start and `want` bytes in); MADV_POPULATE_WRITE only faults pages in, as a write
            // would, without changing their contents.
            unsafe {
                libc::madvise(
                    from as *mut libc::c_void,
                    to - from,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
        self.resident = want;
    }

    /// Appends an output in order. Only while nothing waits beyond the end, or there is room
    /// before the first run that does (so the vector never moves under a run).
    pub(crate) fn push(&mut self, out: O) {
        match self.ahead.first_key_value() {
            Some((&start, _)) if start <= self.vec.len() => {
                // Cannot happen: runs are merged as soon as they touch the end. Dropping
                // the output keeps the runs valid; the count check at the end reports it.
                debug_assert!(false, "an output was pushed over a placed run");
            }
            _ => self.vec.push(out),
        }
        self.settle();
    }

    /// Moves `len` over the runs that now follow it with no gap.
    fn settle(&mut self) {
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != self.vec.len() {
                break;
            }
            let end = entry.remove();
            // SAFETY: every position of a run in `ahead` was written by a `Writer` and not
            // read since; `end` is within the capacity (checked when the writer was made).
            unsafe { self.vec.set_len(end) };
        }
    }

    /// The outputs in order; those placed beyond a gap are dropped.
    pub(crate) fn into_vec(mut self) -> Vec<O> {
        self.drop_ahead();
        std::mem::take(&mut self.vec)
    }

    fn drop_ahead(&mut self) {
        let base = self.vec.as_mut_ptr();
        for (start, end) in std::mem::take(&mut self.ahead) {
            // SAFETY: positions `start..end` hold values written by a `Writer`, beyond `len`,
            // so the vector will not drop them; each run is dropped once (the map is taken).
            unsafe {
                std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                    base.add(start),
                    end - start,
                ))
            };
        }
    }
}

/// A vector this large is offered 2 MiB pages.
const HUGE_FROM: usize = 4 << 20;

/// Asks the kernel to back the whole 2 MiB blocks of a large allocation with huge pages
/// (`MADV_HUGEPAGE`; with the usual `madvise` setting of transparent huge pages, only
/// regions so advised get them): the pages are then faulted in 512 at a time, and an 8 MB
/// vector costs 4 faults instead of ~2,000. Where the kernel has none to give, or huge
/// pages are off, the call changes nothing and the pages fault in as before. Only blocks
/// wholly inside the allocation are advised, so no memory outside it is ever backed.
#[cfg(not(miri))]
fn offer_huge_pages(base: usize, bytes: usize) {
    const HUGE: usize = 2 << 20;
    if bytes < HUGE_FROM {
        return;
    }
    let from = base.div_ceil(HUGE) * HUGE;
    let to = (base + bytes) / HUGE * HUGE;
    if to > from {
        // SAFETY: `from..to` lies within the vector's allocation; MADV_HUGEPAGE only changes
        // how the kernel backs those pages, never their contents.
        unsafe {
            libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
        }
    }
}

impl<O> Drop for Placed<O> {
    fn drop(&mut self) {
        self.drop_ahead();
    }
}

/// Writes consecutive outputs from one place on; what it wrote is recorded when it is
/// dropped (also while unwinding from a panicking deserializer).
pub(crate) struct Writer<'a, O> {
    placed: &'a mut Placed<O>,
    at: usize,
    /// Where position `at` is in the vector's allocation.
    base: *mut O,
    written: usize,
    /// Positions it may write, from `at` on.
    room: usize,
}

impl<O> crate::wire::Sink<O> for Writer<'_, O> {
    /// Writes the next output. Past its room the output is dropped (the frame said fewer
    /// outputs than it held, which the results check reports).
    #[inline(always)]
    fn push(&mut self, out: O) {
        if self.written < self.room {
            // SAFETY: `at + written` is below `at + room`, which is within the capacity,
            // at or beyond `len`, and clear of every run in `ahead` (checked when the writer
            // was made); the vector cannot move while the writer borrows it.
            unsafe { self.base.add(self.written).write(out) };
            self.written += 1;
        }
    }
}

impl<O> Writer<'_, O> {
    /// Copies the next `n` outputs from `src`, where they lie back to back as `O`'s bytes
    /// (a plain job's outputs in its worker's region), at once. Past its room they are left
    /// out, as with `push`.
    ///
    /// # Safety
    /// `O` must be plain (see `call/plain.rs`) and `src` must hold `n` values of it.
    pub(crate) unsafe fn copy_plain(&mut self, src: *const u8, n: usize) {
        let n = n.min(self.room - self.written);
        // SAFETY: positions `written..written + n` are within the writer's room (as in
        // `push`); `src` holds `n` plain values, which are valid `O`s whatever their bytes,
        // and cannot overlap the caller's vector (it is in another mapping).
        unsafe {
            std::ptr::copy_nonoverlapping(
                src,
                self.base.add(self.written).cast::<u8>(),
                n * std::mem::size_of::<O>(),
            )
        };
        self.written += n;
    }
}

impl<O> Drop for Writer<'_, O> {
    fn drop(&mut self) {
        let placed = &mut *self.placed;
        let (start, end) = (self.at, self.at + self.written);
        if start == end {
            return;
        }
        if start == placed.vec.len() {
            // SAFETY: positions `start..end` were written just now, and `end` is within
            // the capacity.
            unsafe { placed.vec.set_len(end) };
        } else {
            // Join a run that ends where this one starts, and one that starts where it ends.
            let start = match placed.ahead.range(..start).next_back() {
                Some((&s, &e)) if e == start => s,
                _ => start,
            };
            let end = placed.ahead.remove(&end).unwrap_or(end);
            placed.ahead.insert(start, end);
        }
        placed.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Sink;
    use std::rc::Rc;

    fn write(p: &mut Placed<Rc<u32>>, at: usize, values: &[u32]) {
        let mut w = p.writer(at, values.len()).expect("fits");
        for &v in values {
            w.push(Rc::new(v));
        }
    }

    #[test]
    fn fills_in_order_whatever_order_runs_arrive_in() {
        let mut p = Placed::with_capacity(10);
        write(&mut p, 6, &[6, 7]);
        assert_eq!(p.len(), 0);
        write(&mut p, 2, &[2, 3]);
        write(&mut p, 4, &[4, 5]);
        assert_eq!(p.len(), 0);
        write(&mut p, 0, &[0, 1]);
        assert_eq!(p.len(), 8);
        write(&mut p, 8, &[8, 9]);
        // In order beyond the reserved room: the vector grows.
        write(&mut p, 10, &[10, 11, 12]);
        let v: Vec<u32> = p.into_vec().iter().map(|x| **x).collect();
        assert_eq!(v, (0..13).collect::<Vec<_>>());
    }

    #[test]
    fn refuses_what_does_not_fit_or_overlaps() {
        let mut p: Placed<u32> = Placed::with_capacity(8);
        assert!(p.writer(6, 3).is_none(), "past the room");
        {
            let mut w = p.writer(2, 2).unwrap();
            w.push(2);
            w.push(3);
        }
        assert!(p.writer(3, 1).is_none(), "inside a run");
        assert!(p.writer(1, 2).is_none(), "over a run's start");
        assert!(p.writer(0, 3).is_none(), "in order but over a run");
        assert!(p.writer(0, 2).is_some());
        // In order with a run ahead: growing would move the run, so only the gap fits.
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn outputs_beyond_a_gap_are_dropped_once() {
        let counted = Rc::new(0u32);
        let mut p = Placed::with_capacity(8);
        {
            let mut w = p.writer(3, 3).unwrap();
            for _ in 0..3 {
                w.push(Rc::clone(&counted));
            }
        }
        {
            let mut w = p.writer(0, 1).unwrap();
            w.push(Rc::clone(&counted));
        }
        assert_eq!(Rc::strong_count(&counted), 5);
        let v = p.into_vec();
        assert_eq!(v.len(), 1);
        assert_eq!(Rc::strong_count(&counted), 2);
        drop(v);
        assert_eq!(Rc::strong_count(&counted), 1);

        let mut p = Placed::with_capacity(8);
        {
            let mut w = p.writer(5, 2).unwrap();
            w.push(Rc::clone(&counted));
        }
        drop(p);
        assert_eq!(Rc::strong_count(&counted), 1);
    }

    #[test]
    fn zero_sized_outputs_are_counted_in_place() {
        let mut p: Placed<()> = Placed::with_capacity(4);
        {
            let mut w = p.writer(2, 2).unwrap();
            w.push(());
            w.push(());
        }
        assert_eq!(p.len(), 0);
        {
            let mut w = p.writer(0, 2).unwrap();
            w.push(());
            w.push(());
        }
        assert_eq!(p.into_vec().len(), 4);
    }

    #[test]
    fn a_writer_never_writes_past_its_room() {
        let counted = Rc::new(0u32);
        let mut p = Placed::with_capacity(4);
        {
            let mut w = p.writer(2, 1).unwrap();
            w.push(Rc::clone(&counted));
            w.push(Rc::clone(&counted));
        }
        assert_eq!(Rc::strong_count(&counted), 2);
        drop(p);
        assert_eq!(Rc::strong_count(&counted), 1);
    }
}
