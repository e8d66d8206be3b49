//! Results held back for a moment: a worker that finishes a batch while the next one already
//! waits in its read buffer keeps the finished results and sends them with the next ones,
//! rather than making one write (and waking the caller once) per batch. One item per batch
//! (`chunk_size(1)`) then costs a write per several items instead of one each: 20,000 items
//! went from ~42 ms to ~15 ms on two workers.
//!
//! What bounds the wait is a timer, not the next batch: results are held at most
//! [`HOLD`] even when the next item runs for minutes, because the watchdog thread sends what
//! is held when the timer fires (`link`). So a stream's consumer sees an output at most ~2 ms
//! later than it would have, and a worker that dies loses no more than the results frame it
//! was filling would have lost anyway (those items run again, as unanswered items of a batch
//! always did).
//!
//! Which items the held bytes answer is kept with them, so that a failed write names every
//! unsent item on the status page, held ones included (see `batch::Pending`).

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// The longest results are held.
pub(crate) const HOLD: Duration = Duration::from_millis(2);

/// Results held at most this many bytes; past it they are sent.
pub(crate) const HOLD_BYTES: usize = 64 * 1024;

/// Results frames not sent yet, and what they answer.
#[derive(Default)]
pub(crate) struct Held {
    /// Whole frames.
    pub(crate) out: Vec<u8>,
    /// The first item they answer, if any.
    pub(crate) first: Option<u64>,
    /// The item after the last one they answer.
    pub(crate) next: u64,
    /// When the oldest of them was held, in `now_ms` time.
    pub(crate) since_ms: u64,
}

impl Held {
    /// Takes `out` (whole frames answering items `first..next`) to hold; returns whether
    /// nothing was held before (the timer is then to be armed).
    pub(crate) fn take(
        &mut self,
        out: &mut Vec<u8>,
        first: Option<u64>,
        next: u64,
        now_ms: u64,
    ) -> bool {
        let was_empty = self.out.is_empty();
        if was_empty {
            self.since_ms = now_ms;
        }
        self.out.append(out);
        self.first = self.first.or(first);
        self.next = self.next.max(next);
        was_empty
    }

    /// Everything was sent.
    pub(crate) fn clear(&mut self) {
        self.out.clear();
        self.first = None;
        self.next = 0;
    }
}

/// The timer that makes the watchdog thread send what is held.
pub(crate) struct HoldTimer(TimerFd);

impl HoldTimer {
    /// A timer, if the kernel gives one (without it, nothing is held).
    pub(crate) fn new() -> Option<HoldTimer> {
        TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .ok()
        .map(HoldTimer)
    }

    /// Fires once after `after`.
    pub(crate) fn arm(&self, after: Duration) -> bool {
        self.0
            .set(
                Expiration::OneShot(TimeSpec::from_duration(after)),
                TimerSetTimeFlags::empty(),
            )
            .is_ok()
    }

    /// Clears a firing (so that the timer's descriptor stops being readable).
    pub(crate) fn clear(&self) {
        let mut count = [0u8; 8];
        let _ = nix::unistd::read(&self.0, &mut count);
    }
}

impl AsFd for HoldTimer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_frames_keep_the_first_and_last_items_they_answer() {
        let mut held = Held::default();
        let mut a = vec![1, 2];
        assert!(held.take(&mut a, Some(5), 7, 100));
        assert!(a.is_empty());
        let mut b = vec![3];
        assert!(!held.take(&mut b, Some(7), 9, 101));
        assert_eq!(held.out, [1, 2, 3]);
        assert_eq!((held.first, held.next, held.since_ms), (Some(5), 9, 100));
        held.clear();
        assert!(held.out.is_empty() && held.first.is_none() && held.next == 0);
        let mut c = vec![4];
        assert!(held.take(&mut c, None, 9, 200));
        assert_eq!(held.since_ms, 200);
    }

    #[test]
    fn the_timer_fires_once_after_it_is_armed() {
        let timer = HoldTimer::new().expect("timerfd");
        assert!(timer.arm(Duration::from_millis(5)));
        let mut fds = [nix::poll::PollFd::new(
            timer.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let t = std::time::Instant::now();
        let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(2000u16)).unwrap();
        assert_eq!(n, 1);
        assert!(t.elapsed() >= Duration::from_millis(4), "{:?}", t.elapsed());
        timer.clear();
        let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap();
        assert_eq!(n, 0, "cleared");
    }
}
