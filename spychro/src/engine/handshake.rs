//! The handshake, the same for a pool's workers, a [`Process`](crate::Process) and (later) a
//! supervisor's processes: the worker says hello (its protocol version) within the caller's
//! `start_timeout`. What the caller queued before the hello (a job's set-up, its first batch)
//! is read right after it, so a start costs no extra round trip; each set-up is answered with
//! "loaded" or the reason it was refused, also within `start_timeout`.
//!
//! A pool drives it from its poll loop ([`on_frame`]); a lone process waits for its hello and
//! its one set-up ([`complete`]).

use std::os::fd::AsFd;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::worker::{State, Worker};
use crate::error::{ExitStatus, WorkerErrorKind};
use crate::wire;

/// What a frame from a worker in its handshake meant.
pub(crate) enum Step {
    /// The frame was the hello.
    Done,
    /// The frame is not part of the handshake: handle it as usual.
    NotHandshake,
}

/// Handles `tag` if it is worker `w`'s hello.
pub(crate) fn on_frame(w: &mut Worker, tag: u8, body: &[u8]) -> Result<Step, WorkerErrorKind> {
    match (tag, w.state) {
        (wire::TAG_HELLO, State::Starting { .. }) => {
            let hello: wire::Hello = wire::decode(body, "hello").map_err(WorkerErrorKind::Wire)?;
            if hello.protocol != wire::PROTOCOL_VERSION {
                return Err(WorkerErrorKind::ProtocolMismatch {
                    ours: wire::PROTOCOL_VERSION,
                    theirs: hello.protocol,
                });
            }
            w.state = State::Ready;
            w.life.ready = Some(std::time::Instant::now());
            Ok(Step::Done)
        }
        (wire::TAG_HELLO, state) => Err(WorkerErrorKind::Wire(crate::error::WireError::Decode {
            what: "handshake",
            message: format!("a second hello while the worker is {state:?}"),
        })),
        _ => Ok(Step::NotHandshake),
    }
}

/// What went wrong before a worker's handshake ended, from how it ended.
pub(crate) fn death_before_handshake(status: ExitStatus, starts: u32) -> WorkerErrorKind {
    match status {
        ExitStatus::Signal(_) => WorkerErrorKind::KilledBeforeHandshake { status, starts },
        _ => WorkerErrorKind::DiedBeforeHandshake(status),
    }
}

/// Waits until worker `w` (whose set-up is queued) is ready for job `job`: sends what is
/// queued, reads its handshake frames and hands any other frame (its logs) to `other`. Fails
/// with what went wrong: the worker died (how), broke the protocol, refused the job, or did
/// not finish within its start timeout.
pub(crate) fn complete(
    w: &mut Worker,
    job: &str,
    mut other: impl FnMut(&Worker, u8, &[u8]),
) -> Result<(), WorkerErrorKind> {
    let deadline = w
        .state
        .handshake_deadline()
        .unwrap_or_else(|| Instant::now() + w.start_timeout);
    let mut loaded = false;
    loop {
        if w.wants_write() {
            w.flush().map_err(|_| died(w))?;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(WorkerErrorKind::HandshakeTimeout(w.start_timeout));
        }
        let mut fds = vec![PollFd::new(
            w.sock.as_fd(),
            if w.wants_write() {
                PollFlags::POLLIN | PollFlags::POLLOUT
            } else {
                PollFlags::POLLIN
            },
        )];
        if let Some(fd) = w.exit_fd() {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let ms = left.as_millis().clamp(1, u16::MAX as u128) as u16;
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(WorkerErrorKind::Io(e.into())),
        }
        drop(fds);
        let open = w.rx.fill(&mut &w.sock).unwrap_or_default();
        let mut rx = std::mem::take(&mut w.rx);
        let handled = (|| {
            // Frames after the handshake stay in the buffer for whoever reads the worker next.
            while !loaded
                && let Some((tag, body)) = rx.next_frame().map_err(WorkerErrorKind::Wire)?
            {
                if let Step::Done = on_frame(w, tag, body)? {
                    continue;
                }
                if tag == wire::TAG_SETUP_DONE && w.state == State::Ready {
                    let done: wire::SetupDone =
                        wire::decode(body, "setup done").map_err(WorkerErrorKind::Wire)?;
                    done.result.map_err(|failure| match failure {
                        wire::SetupFailure::Refused(reason) => WorkerErrorKind::Refused {
                            job: job.to_owned(),
                            reason,
                        },
                        wire::SetupFailure::State(reason) => WorkerErrorKind::StateInit {
                            job: job.to_owned(),
                            reason,
                        },
                    })?;
                    loaded = true;
                } else {
                    other(w, tag, body);
                }
            }
            Ok(())
        })();
        w.rx = rx;
        handled?;
        if loaded {
            return Ok(());
        }
        if !open || exited(w) {
            return Err(died(w));
        }
    }
}

/// Whether the worker's process descriptor says it ended.
fn exited(w: &Worker) -> bool {
    let Some(fd) = w.exit_fd() else { return false };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// The error for a worker that ended (or closed its socket) before its handshake.
fn died(w: &mut Worker) -> WorkerErrorKind {
    let status = w.reap(std::time::Duration::from_millis(500));
    death_before_handshake(status, 1)
}
