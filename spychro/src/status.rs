//! A page of memory shared by the caller and one worker, where the worker records the item it
//! is running and when it started. It survives the worker's death, so the caller knows exactly
//! which item a crash interrupted, and can time items out even when the worker is wedged.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

/// The shared words. Only atomics live here, so both processes may touch them at any time.
/// A worker uses 0 (index + 1 of the item running now; 0 between items) and 1 (when it
/// started, in [`now_ms`] time); channels use 0 as a counter.
#[repr(C)]
struct Slots {
    words: [AtomicU64; 8],
}

const LEN: usize = 4096;

/// One worker's status page, mapped in this process.
pub(crate) struct StatusPage {
    slots: NonNull<Slots>,
}

// SAFETY: the mapping is only accessed through atomics, which are safe to share between threads
// (and processes).
unsafe impl Send for StatusPage {}
// SAFETY: as above.
unsafe impl Sync for StatusPage {}

impl StatusPage {
    /// Creates a zeroed page and returns it with the fd a worker maps it from.
    pub(crate) fn create() -> io::Result<(StatusPage, OwnedFd)> {
        use nix::sys::memfd::{MFdFlags, memfd_create};
        let fd = memfd_create(c"spychro-status", MFdFlags::MFD_CLOEXEC)?;
        nix::unistd::ftruncate(&fd, LEN as i64)?;
        let page = StatusPage::map(&fd)?;
        Ok((page, fd))
    }

    /// Maps the page a caller created.
    pub(crate) fn map(fd: &impl AsFd) -> io::Result<StatusPage> {
        let len = NonZeroUsize::new(LEN).expect("LEN is not zero");
        // SAFETY: a fresh shared mapping of a memfd of LEN bytes; nothing else in this process
        // aliases it. It stays mapped until this StatusPage is dropped.
        let ptr = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )?
        };
        Ok(StatusPage {
            slots: ptr.cast::<Slots>(),
        })
    }

    #[inline]
    fn slots(&self) -> &Slots {
        // SAFETY: the mapping is page-aligned, LEN bytes long (more than `Slots`), zero-filled
        // at creation (a valid bit pattern for atomics) and mapped for as long as `self` lives.
        unsafe { self.slots.as_ref() }
    }

    /// Shared word `i` (0..8).
    #[inline]
    pub(crate) fn word(&self, i: usize) -> &AtomicU64 {
        &self.slots().words[i]
    }

    /// The worker starts item `index`.
    #[inline]
    pub(crate) fn begin(&self, index: u64, now_ms: u64) {
        self.word(1).store(now_ms, Ordering::Relaxed);
        self.word(0).store(index + 1, Ordering::Release);
    }

    /// The worker finished its item.
    #[inline]
    pub(crate) fn end(&self) {
        self.word(0).store(0, Ordering::Release);
    }

    /// The item the worker is running and when it started, if it is running one.
    pub(crate) fn current(&self) -> Option<(u64, u64)> {
        let current = self.word(0).load(Ordering::Acquire);
        (current != 0).then(|| (current - 1, self.word(1).load(Ordering::Relaxed)))
    }
}

impl Drop for StatusPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference to it outlives self.
        let _ = unsafe { munmap(self.slots.cast(), LEN) };
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
        assert_eq!(a.current(), None);
        b.begin(41, 1234);
        assert_eq!(a.current(), Some((41, 1234)));
        b.end();
        assert_eq!(a.current(), None);
        let t = now_ms();
        assert!(t > 0 && now_ms() >= t);
    }
}
