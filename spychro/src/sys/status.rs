//! A page of memory shared by the caller and one worker, where the worker records the item it
//! is running and when it started. It survives the worker's death, so the caller knows exactly
//! which item a crash interrupted, and can time items out even when the worker is wedged.
//!
//! A worker's page is followed by its **region** ([`REGION_LEN`] bytes in the same memfd,
//! mapped with it): where the items and outputs of plain jobs travel (`engine/slots.rs`).
//! Its pages cost nothing until touched.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

/// The shared words. Only atomics live here, so both processes may touch them at any time.
/// A worker uses [`CURRENT`] (index + 1 of the item running now; 0 between items), [`START`]
/// (when it started, in [`now_ms`] time), [`PHASE`], [`PAUSED`] and [`BLOCKED`]; channels use
/// word 0 as a counter.
#[repr(C)]
struct Slots {
    words: [AtomicU64; 16],
}

const LEN: usize = 4096;

/// The size of a worker's region, after its status page.
pub(crate) const REGION_LEN: usize = 4 << 20;

const CURRENT: usize = 0;
const START: usize = 1;
const PHASE: usize = 2;
const PAUSED: usize = 3;
const BLOCKED: usize = 4;
const LAST: usize = 5;
const JOB: usize = 6;
/// Bumped each time a job is cancelled; the cancelled jobs (id + 1) are in a ring after it.
const CANCEL_GEN: usize = 7;
const CANCEL_RING: usize = 8;
const CANCEL_SLOTS: usize = 8;

/// One worker's status page, mapped in this process.
pub(crate) struct StatusPage {
    slots: NonNull<Slots>,
    /// The whole mapping's length: the page, and the region after it if there is one.
    len: usize,
}

// SAFETY: the page is only accessed through atomics, which are safe to share between threads
// (and processes); the region only through raw pointers, by code that says why each access is
// sound.
unsafe impl Send for StatusPage {}
// SAFETY: as above.
unsafe impl Sync for StatusPage {}

impl StatusPage {
    /// Creates a zeroed page and returns it with the fd a worker maps it from.
    pub(crate) fn create() -> io::Result<(StatusPage, OwnedFd)> {
        Self::create_sized(LEN)
    }

    /// Creates a zeroed page followed by a worker's region.
    pub(crate) fn create_with_region() -> io::Result<(StatusPage, OwnedFd)> {
        Self::create_sized(LEN + REGION_LEN)
    }

    fn create_sized(len: usize) -> io::Result<(StatusPage, OwnedFd)> {
        use nix::sys::memfd::{MFdFlags, memfd_create};
        let fd = memfd_create(c"spychro-status", MFdFlags::MFD_CLOEXEC)?;
        nix::unistd::ftruncate(&fd, len as i64)?;
        let page = StatusPage::map_len(&fd, len)?;
        Ok((page, fd))
    }

    /// Maps the page a caller created, with the region after it if the memfd has one.
    pub(crate) fn map(fd: &impl AsFd) -> io::Result<StatusPage> {
        let size = nix::sys::stat::fstat(fd.as_fd())?.st_size;
        let len = if size >= (LEN + REGION_LEN) as i64 {
            LEN + REGION_LEN
        } else {
            LEN
        };
        Self::map_len(fd, len)
    }

    fn map_len(fd: &impl AsFd, len: usize) -> io::Result<StatusPage> {
        let size = NonZeroUsize::new(len).expect("LEN is not zero");
        // SAFETY: a fresh shared mapping of a memfd of at least `len` bytes; nothing else in
        // this process aliases it. It stays mapped until this StatusPage is dropped.
        let ptr = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )?
        };
        Ok(StatusPage {
            slots: ptr.cast::<Slots>(),
            len,
        })
    }

    /// Makes bytes `from..to` of the region resident, writable, with one call rather than a
    /// fault per page as they are first written (each fault is a trap, and slow on a VM).
    /// Best effort: on kernels without `MADV_POPULATE_WRITE` the pages fault in as before.
    pub(crate) fn populate_region(&self, from: usize, to: usize) {
        const PAGE: usize = 4096;
        let Some((region, len)) = self.region() else {
            return;
        };
        let (from, to) = (from / PAGE * PAGE, to.min(len).div_ceil(PAGE) * PAGE);
        if from >= to {
            return;
        }
        // SAFETY: `from..to` lies within the region (whole pages: the region starts on a page
        // and its length is a whole number of pages); MADV_POPULATE_WRITE faults pages in as a
        // write would, without changing their contents.
        unsafe {
            libc::madvise(
                region.add(from).cast(),
                to - from,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }

    /// The region after the page, if it has one: its start and length. It stays mapped for
    /// as long as `self` lives; the other process may write to it at any time, so it is only
    /// touched through raw pointers, never through references.
    pub(crate) fn region(&self) -> Option<(*mut u8, usize)> {
        (self.len > LEN).then(|| {
            // SAFETY: the mapping is `self.len` bytes long, so `LEN` is inside it.
            (
                unsafe { self.slots.cast::<u8>().as_ptr().add(LEN) },
                self.len - LEN,
            )
        })
    }

    #[inline]
    fn slots(&self) -> &Slots {
        // SAFETY: the mapping is page-aligned, LEN bytes long (more than `Slots`), zero-filled
        // at creation (a valid bit pattern for atomics) and mapped for as long as `self` lives.
        unsafe { self.slots.as_ref() }
    }

    /// Shared word `i` (0..16).
    #[inline]
    pub(crate) fn word(&self, i: usize) -> &AtomicU64 {
        &self.slots().words[i]
    }

    /// The worker starts item `index` (decoding it first).
    #[inline]
    pub(crate) fn begin(&self, index: u64, now_ms: u64) {
        self.begin_in(index, now_ms, Phase::Item);
    }

    /// The worker starts item `index` of a plain job, whose items need no decoding: it runs
    /// the job at once.
    #[inline(always)]
    pub(crate) fn begin_running(&self, index: u64, now_ms: u64) {
        self.begin_in(index, now_ms, Phase::Running);
    }

    /// The worker starts item `index` at `now_ms`, in `phase`.
    #[inline(always)]
    fn begin_in(&self, index: u64, now_ms: u64, phase: Phase) {
        self.word(START).store(now_ms, Ordering::Relaxed);
        self.word(PAUSED).store(0, Ordering::Relaxed);
        self.word(PHASE).store(phase as u64, Ordering::Relaxed);
        self.word(CURRENT).store(index + 1, Ordering::Release);
    }

    /// The worker moves on to item `index` of a plain job, straight from the item before it,
    /// begun with [`begin_running`](Self::begin_running) in the same millisecond: only the
    /// item changes (and the time the last one was blocked, if it was, is cleared).
    #[inline(always)]
    pub(crate) fn next_running(&self, index: u64) {
        if self.word(PAUSED).load(Ordering::Relaxed) != 0 {
            self.word(PAUSED).store(0, Ordering::Relaxed);
        }
        self.word(CURRENT).store(index + 1, Ordering::Release);
    }

    /// The worker starts a batch of job `job` (its items are then that job's).
    #[inline]
    pub(crate) fn set_job(&self, job: u32) {
        self.word(JOB).store(u64::from(job), Ordering::Relaxed);
    }

    /// The caller cancels job `job`: the worker stops its batches at the next item.
    pub(crate) fn cancel(&self, job: u32) {
        let generation = self.word(CANCEL_GEN).load(Ordering::Relaxed);
        let slot = CANCEL_RING + (generation as usize % CANCEL_SLOTS);
        self.word(slot).store(u64::from(job) + 1, Ordering::Release);
        self.word(CANCEL_GEN)
            .store(generation + 1, Ordering::Release);
    }

    /// How many jobs were cancelled so far (changes when one is): one load, to check often.
    #[inline(always)]
    pub(crate) fn cancel_generation(&self) -> u64 {
        self.word(CANCEL_GEN).load(Ordering::Acquire)
    }

    /// Whether job `job` is among the recently cancelled jobs.
    pub(crate) fn is_cancelled(&self, job: u32) -> bool {
        (0..CANCEL_SLOTS)
            .any(|k| self.word(CANCEL_RING + k).load(Ordering::Acquire) == u64::from(job) + 1)
    }

    /// The running item moves to `phase`.
    #[inline]
    pub(crate) fn phase(&self, phase: Phase) {
        self.word(PHASE).store(phase as u64, Ordering::Release);
    }

    /// The worker finished its item.
    #[inline]
    pub(crate) fn end(&self) {
        self.word(CURRENT).store(0, Ordering::Release);
    }

    /// The worker could not send the outcomes of items `first..=last` (its socket broke): it
    /// names them, as the items it was running, before it exits.
    pub(crate) fn unsent(&self, first: u64, last: u64, now_ms: u64) {
        self.word(LAST).store(last, Ordering::Relaxed);
        self.begin(first, now_ms);
        self.phase(Phase::Sending);
    }

    /// The worker is blocked writing to the caller (who is slow to read) since `now_ms`.
    pub(crate) fn blocked(&self, now_ms: u64) {
        self.word(BLOCKED).store(now_ms.max(1), Ordering::Release);
    }

    /// The worker could write again at `now_ms`: the time it was blocked is not the item's.
    pub(crate) fn unblocked(&self, now_ms: u64) {
        let since = self.word(BLOCKED).swap(0, Ordering::AcqRel);
        if since != 0 {
            self.word(PAUSED)
                .fetch_add(now_ms.saturating_sub(since), Ordering::AcqRel);
        }
    }

    /// The item the worker is running, if it is running one.
    pub(crate) fn current(&self) -> Option<Running> {
        let current = self.word(CURRENT).load(Ordering::Acquire);
        if current == 0 {
            return None;
        }
        Some(Running {
            index: current - 1,
            started_ms: self.word(START).load(Ordering::Relaxed),
            phase: Phase::from_word(self.word(PHASE).load(Ordering::Acquire)),
            paused_ms: self.word(PAUSED).load(Ordering::Acquire),
            blocked_since_ms: self.word(BLOCKED).load(Ordering::Acquire),
            last: self.word(LAST).load(Ordering::Relaxed),
            job: self.word(JOB).load(Ordering::Relaxed) as u32,
        })
    }
}

/// Where a running item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Its item is being deserialized.
    Item = 1,
    /// The job's code runs.
    Running = 2,
    /// The job returned; its output is being serialized and dropped.
    Output = 3,
    /// The outcomes of items `index..=last` could not be sent: the worker's socket broke.
    Sending = 4,
}

impl Phase {
    fn from_word(w: u64) -> Phase {
        match w {
            1 => Phase::Item,
            3 => Phase::Output,
            4 => Phase::Sending,
            _ => Phase::Running,
        }
    }
}

/// What the status page says of the item a worker runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Running {
    pub(crate) index: u64,
    pub(crate) started_ms: u64,
    pub(crate) phase: Phase,
    /// Time the worker spent blocked on the caller during this item, done with.
    pub(crate) paused_ms: u64,
    /// When the worker's current block on the caller began (0: not blocked).
    pub(crate) blocked_since_ms: u64,
    /// In [`Phase::Sending`]: the last item whose outcome could not be sent.
    pub(crate) last: u64,
    /// The job the item belongs to.
    pub(crate) job: u32,
}

impl Running {
    /// The item's own time at `now_ms`: since it started, less the time its worker spent
    /// waiting for the caller to read what it sent.
    pub(crate) fn working_ms(&self, now_ms: u64) -> u64 {
        let blocked = match self.blocked_since_ms {
            0 => 0,
            since => now_ms.saturating_sub(since),
        };
        now_ms
            .saturating_sub(self.started_ms)
            .saturating_sub(self.paused_ms)
            .saturating_sub(blocked)
    }
}

impl Drop for StatusPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference to it outlives self.
        let _ = unsafe { munmap(self.slots.cast(), self.len) };
    }
}

/// A millisecond clock shared by every process on the machine (CLOCK_MONOTONIC_COARSE: a few
/// nanoseconds to read, a few milliseconds of resolution).
pub(crate) fn now_ms() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    match clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE) {
        Ok(t) => t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_mappings_see_each_other() {
        let (a, fd) = StatusPage::create().unwrap();
        let b = StatusPage::map(&fd).unwrap();
        assert!(a.current().is_none());
        b.begin(41, 1234);
        let r = a.current().unwrap();
        assert_eq!((r.index, r.started_ms, r.phase), (41, 1234, Phase::Item));
        b.phase(Phase::Output);
        b.blocked(1300);
        assert_eq!(a.current().unwrap().working_ms(1400), 66);
        b.unblocked(1500);
        let r = a.current().unwrap();
        assert_eq!(
            (r.phase, r.paused_ms, r.working_ms(1600)),
            (Phase::Output, 200, 166)
        );
        b.end();
        assert!(a.current().is_none());
        let t = now_ms();
        assert!(t > 0 && now_ms() >= t);
    }
}
