//! The count of a queue's unfinished messages (sent, not yet marked `task_done`) in a page
//! shared by every process of the queue, and how `join` waits for it to reach zero.
//!
//! The count lives in word 0 of a shared page ([`StatusPage`]): its low 63 bits count, its top
//! bit ([`WAITING`]) says that a `join` may be asleep. `join` sleeps on the word with a
//! [`futex`] (`FUTEX_WAIT` without `FUTEX_PRIVATE_FLAG`, which works across processes on
//! `MAP_SHARED` memory): the `task_done` that brings the count to zero clears the flag and
//! wakes every sleeper at once, so a join returns within microseconds of the last
//! `task_done`, and a `task_done` makes no system call unless someone is joining. A futex cannot also wait for
//! the receivers to be gone, so the sleep is cut into [`HANGUP_CHECK`] slices and the sender's
//! socket is polled for `POLLHUP` between them: a join learns within a slice that no receiver
//! is left (the other way round, polling the socket and sleeping between looks at the count,
//! would delay the common case, the count reaching zero, instead of the rare one).
//!
//! Why the flag cannot lose a wake-up: a joiner sets it (in the same word, by compare and
//! swap) only while the count is above zero, then sleeps only if the count's low 32 bits
//! (what `FUTEX_WAIT` compares) are still what it saw. The `task_done` that takes the count
//! to zero changes that word after the flag was set, so it sees the flag and wakes; if it does
//! so before the joiner is asleep, the joiner's `FUTEX_WAIT` finds the count changed and
//! returns at once.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::endpoint::{Endpoint, deserialize_fd, serialize_fd};
use super::error::{JoinTimeoutError, TaskDoneError};
use crate::sys::futex;
use crate::sys::status::StatusPage;

/// Set in the shared word while a `join` may sleep on it.
const WAITING: u64 = 1 << 63;
/// The count's bits.
const COUNT: u64 = WAITING - 1;
/// How often a sleeping `join` looks whether any receiver is left.
const HANGUP_CHECK: Duration = Duration::from_millis(10);

/// The counter behind `task_done`/`join`, in memory shared by every process of a queue.
pub(crate) struct Unfinished {
    fd: OwnedFd,
    page: StatusPage,
}

impl Unfinished {
    pub(crate) fn new() -> io::Result<Unfinished> {
        let (page, fd) = StatusPage::create()?;
        Ok(Unfinished { fd, page })
    }

    fn word(&self) -> &AtomicU64 {
        self.page.word(0)
    }

    /// The messages sent and not marked done.
    pub(crate) fn count(&self) -> u64 {
        self.word().load(Ordering::SeqCst) & COUNT
    }

    /// One more message is about to be sent.
    pub(crate) fn add_one(&self) {
        self.word().fetch_add(1, Ordering::SeqCst);
    }

    /// One message is done (or was not sent after all); wakes the joiners if it was the last.
    pub(crate) fn finish_one(&self) -> Result<(), TaskDoneError> {
        let before = self
            .word()
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| match w & COUNT {
                0 => None,
                // The last one: the joiners are woken now, the flag goes with them.
                1 => Some(0),
                _ => Some(w - 1),
            })
            .map_err(|_| TaskDoneError)?;
        if before == WAITING | 1 {
            futex::wake_all(self.word());
        }
        Ok(())
    }

    /// Waits until the count is zero, until no receiver is left (`receivers` has no peer),
    /// or until `deadline`.
    pub(crate) fn wait_zero(
        &self,
        receivers: &Endpoint,
        deadline: Option<Instant>,
    ) -> Result<(), JoinTimeoutError> {
        let word = self.word();
        loop {
            // Say that we may sleep, unless the count is zero already.
            let seen = match word.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                (w & COUNT != 0).then_some(w | WAITING)
            }) {
                Ok(w) => w & COUNT,
                Err(_) => return Ok(()),
            };
            if receivers.peer_gone().map_err(JoinTimeoutError::Io)? {
                // The last receiver may have marked its last message done, then exited.
                return match self.count() {
                    0 => Ok(()),
                    unfinished => Err(JoinTimeoutError::Disconnected { unfinished }),
                };
            }
            let slice = match deadline {
                None => HANGUP_CHECK,
                Some(d) => match d.saturating_duration_since(Instant::now()) {
                    left if left.is_zero() => {
                        return match self.count() {
                            0 => Ok(()),
                            unfinished => Err(JoinTimeoutError::Timeout { unfinished }),
                        };
                    }
                    left => left.min(HANGUP_CHECK),
                },
            };
            futex::wait(word, seen as u32, slice).map_err(JoinTimeoutError::Io)?;
        }
    }
}

impl Serialize for Unfinished {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_fd(&self.fd, s)
    }
}

impl<'de> Deserialize<'de> for Unfinished {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fd = deserialize_fd(d)?;
        let page = StatusPage::map(&fd).map_err(serde::de::Error::custom)?;
        Ok(Unfinished { fd, page })
    }
}

impl std::fmt::Debug for Unfinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unfinished(fd {})", self.fd.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::endpoint::seqpacket_pair;

    #[test]
    fn the_count_goes_up_and_down_and_not_below_zero() {
        let u = Unfinished::new().unwrap();
        assert_eq!(u.finish_one(), Err(TaskDoneError));
        u.add_one();
        u.add_one();
        assert_eq!(u.count(), 2);
        u.finish_one().unwrap();
        u.finish_one().unwrap();
        assert_eq!(u.count(), 0);
        assert_eq!(u.finish_one(), Err(TaskDoneError));
    }

    #[test]
    fn a_sleeping_join_is_woken_through_another_mapping() {
        let (page, fd) = StatusPage::create().unwrap();
        let theirs = Unfinished {
            page: StatusPage::map(&fd).unwrap(),
            fd: fd.try_clone().unwrap(),
        };
        let ours = Unfinished { fd, page };
        ours.add_one();
        ours.word().fetch_or(WAITING, Ordering::SeqCst);
        let finisher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            theirs.finish_one().unwrap();
        });
        let started = Instant::now();
        // Without the wake this sleeps the whole 5 s.
        futex::wait(ours.word(), 1, Duration::from_secs(5)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(4));
        finisher.join().unwrap();
        assert_eq!(
            ours.word().load(Ordering::SeqCst),
            0,
            "the flag went with the count"
        );
        let (tx, _rx) = seqpacket_pair().unwrap();
        ours.wait_zero(&tx, None).unwrap();
    }

    #[test]
    fn a_join_ends_on_its_deadline_or_when_no_receiver_is_left() {
        let u = Unfinished::new().unwrap();
        let (tx, rx) = seqpacket_pair().unwrap();
        u.add_one();
        let started = Instant::now();
        let waited = u.wait_zero(&tx, Some(started + Duration::from_millis(30)));
        assert!(matches!(
            waited,
            Err(JoinTimeoutError::Timeout { unfinished: 1 })
        ));
        assert!(started.elapsed() >= Duration::from_millis(30));
        drop(rx);
        let waited = u.wait_zero(&tx, None);
        assert!(matches!(
            waited,
            Err(JoinTimeoutError::Disconnected { unfinished: 1 })
        ));
    }
}
