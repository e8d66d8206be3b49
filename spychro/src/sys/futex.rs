//! Sleeping on a word of shared memory until another process changes it: the two futex
//! operations, without `FUTEX_PRIVATE_FLAG`, so they work across processes on `MAP_SHARED`
//! memory (the status page).

use std::io;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The 32 bits of `word` that a futex compares: its low half.
fn low_half(word: &AtomicU64) -> *mut u32 {
    let p = word.as_ptr().cast::<u32>();
    if cfg!(target_endian = "big") {
        p.wrapping_add(1)
    } else {
        p
    }
}

/// Sleeps while the low half of `word` is `expected`, at most `timeout`; returns early when
/// woken by [`wake_all`], when the low half is not (or no longer) `expected`, or on a signal.
pub(crate) fn wait(word: &AtomicU64, expected: u32, timeout: Duration) -> io::Result<()> {
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    // SAFETY: `low_half(word)` points at 4 aligned bytes inside `word`, which is borrowed (and
    // so mapped) for the whole call; FUTEX_WAIT only reads them and `timeout`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            low_half(word),
            libc::FUTEX_WAIT,
            expected,
            &timeout as *const libc::timespec,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::ETIMEDOUT | libc::EINTR) => Ok(()),
        _ => Err(e),
    }
}

/// Wakes every thread, in any process, sleeping in [`wait`] on `word`.
pub(crate) fn wake_all(word: &AtomicU64) {
    // SAFETY: as in `wait`; FUTEX_WAKE does not touch the memory at all. It cannot fail on a
    // valid, aligned address, and a failure would only leave a sleeper to its timeout.
    unsafe {
        libc::syscall(libc::SYS_futex, low_half(word), libc::FUTEX_WAKE, i32::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::status::StatusPage;
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    #[test]
    fn a_sleeper_is_woken_through_another_mapping_and_not_put_to_sleep_on_a_changed_word() {
        let (ours, fd) = StatusPage::create().unwrap();
        let theirs = StatusPage::map(&fd).unwrap();
        let started = Instant::now();
        wait(ours.word(7), 1, Duration::from_secs(5)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(4), "0 is not 1");
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            theirs.word(7).store(1, Ordering::SeqCst);
            wake_all(theirs.word(7));
        });
        // Without the wake this sleeps the whole 5 s.
        wait(ours.word(7), 0, Duration::from_secs(5)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(4));
        waker.join().unwrap();
        let started = Instant::now();
        wait(ours.word(7), 1, Duration::from_millis(20)).unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(20),
            "the timeout holds"
        );
    }
}
