//! How a worker's C allocator keeps memory the job frees (glibc only).
//!
//! A fresh process starts with glibc's low thresholds: a block over 128 KiB gets its own
//! `mmap`, and free memory over 128 KiB at the top of the heap goes back to the kernel. glibc
//! raises both as it sees large blocks freed, up to 32 MiB (and twice that to trim), but every
//! worker is a fresh process that learns this again, and until it has, a job that allocates
//! and frees buffers item after item (reading files, decoding images) gets its memory from the
//! kernel anew each time: a page fault per 4 KiB, a few microseconds each on a VM. Hashing
//! 4,000 files of 1 KiB to 4 MiB took ~8,500 page faults in two workers against ~5,400 for the
//! same work on two threads of one process, and ~2,700 with the thresholds set as here.
//!
//! Small blocks suffer too: a job that fills 16 MiB with 16 KiB blocks and frees them faults
//! all 4,096 pages in again on every item, because the freed top of the heap went back.
//!
//! So a worker starts where glibc's own rule ends: blocks up to 32 MiB come from the heap, and
//! up to 64 MiB of free heap top is kept. That is what a worker would hold anyway once its job
//! had freed one 32 MiB block; it is never more than the job's own peak use, and a worker
//! hands it back once idle for a second after a job ended (`trim_when_idle`). Setting either
//! threshold turns glibc's adaptation off, which is why both are set at their ceilings rather
//! than lower (a lower fixed one would be worse than the default for larger blocks).
//!
//! Left alone when the environment sets glibc's malloc tunables itself (`GLIBC_TUNABLES` with
//! `glibc.malloc.`, or `MALLOC_MMAP_THRESHOLD_`/`MALLOC_TRIM_THRESHOLD_`), and a no-op where
//! glibc is not the allocator (musl, or a Rust global allocator such as jemalloc, which then
//! never calls into it).

/// glibc's ceiling for its adaptive mmap threshold on 64-bit targets.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Twice that, as glibc's rule sets the trim threshold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 64 << 20;

/// Sets this (worker) process's allocator to keep freed memory for the next item.
pub(crate) fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set_by_user = std::env::var_os("GLIBC_TUNABLES")
            .is_some_and(|t| t.to_string_lossy().contains("glibc.malloc."))
            || std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
            || std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some();
        if set_by_user {
            return;
        }
        // SAFETY: mallopt only changes the allocator's thresholds; it is called before the
        // worker starts any thread, and is thread-safe in glibc regardless.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}

/// How long a worker waits, with nothing to do after a job ended, before it hands the kept
/// memory back: long enough that jobs run back to back on a pool keep it.
pub(crate) const IDLE_BEFORE_TRIM: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits up to [`IDLE_BEFORE_TRIM`] for `fd` to become readable; if it does not, trims
/// ([`trim`]) and returns true. Returns false when there is something to read (or the wait
/// failed), without trimming.
pub(crate) fn trim_when_idle(fd: impl std::os::fd::AsFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(IDLE_BEFORE_TRIM).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(0) => {
            trim();
            true
        }
        _ => false,
    }
}

/// Hands the free memory the allocator kept back to the kernel.
pub(crate) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
