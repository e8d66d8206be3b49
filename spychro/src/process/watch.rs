//! The thread that watches a running [`Process`](super::Process): it re-emits the child's logs
//! as they come, keeps its results frame, and reports once the child has ended — seen from its
//! process descriptor, not only from its socket, which a forked copy of the child may hold.

use std::sync::Mutex;
use std::time::Duration;

use crate::engine::hooks::{WorkerLog, reemit, write_above};
use crate::engine::worker::Worker;
use crate::error::{Error, ExitStatus, WorkerError, WorkerErrorKind};
use crate::wire;

/// What the watching thread reports once the child has ended.
pub(super) struct Ended {
    /// The child's results frame, or why there is none.
    pub(super) outcome: Result<Vec<u8>, Error>,
    pub(super) status: ExitStatus,
}

/// Re-emits a `log` frame from the child through this process's logger.
pub(super) fn forward_log(pid: u32, tag: u8, body: &[u8]) {
    if tag == wire::TAG_LOG
        && let Ok(log) = wire::decode::<wire::WireLog>(body, "log")
    {
        // A process runs one "item": naming it adds nothing.
        let mut record = WorkerLog::from_wire(pid, log);
        record.item = None;
        reemit(&record);
    }
}

/// The watching thread: re-emits the child's logs as they come, keeps its results frame, and
/// returns once the child has ended — seen from its process descriptor, not only from its
/// socket (a forked copy may hold that open) — with what it sent and how it ended.
pub(super) fn watch(mut w: Worker, name: &str, reaped: &Mutex<bool>) -> Ended {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let pid = w.pid;
    let mut result: Option<Vec<u8>> = None;
    let mut failure: Option<Error> = None;
    let mut take_frames = |w: &mut Worker, failure: &mut Option<Error>| loop {
        match w.rx.next_frame() {
            Ok(Some((wire::TAG_RESULTS, body))) => result = Some(body.to_vec()),
            Ok(Some((tag, body))) => forward_log(pid, tag, body),
            Ok(None) => break,
            Err(e) => {
                *failure = Some(
                    WorkerError::new(Some(pid), name.into(), WorkerErrorKind::Wire(e))
                        .of_process(name)
                        .into(),
                );
                break;
            }
        }
    };
    // Frames that came with the handshake first.
    take_frames(&mut w, &mut failure);
    while failure.is_none() {
        let mut fds = vec![PollFd::new(w.sock.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = w.exit_fd() {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let _ = poll(&mut fds, PollTimeout::NONE);
        let exited = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        let open = w.rx.fill(&mut &w.sock).unwrap_or(false);
        take_frames(&mut w, &mut failure);
        if exited || !open {
            break;
        }
    }
    // Read what is left (the child wrote it before it ended; a copy of it may hold the
    // socket open, so read only what is there).
    if failure.is_none() && w.rx.fill_all(&mut &w.sock).is_ok() {
        take_frames(&mut w, &mut failure);
    }
    // Then wait for it to end.
    w.wait_ended();
    let status = {
        let mut reaped = reaped.lock().unwrap_or_else(|e| e.into_inner());
        let status = w.reap(Duration::ZERO);
        *reaped = true;
        status
    };
    let outcome = match (failure, result) {
        (Some(e), _) => Err(e),
        (None, Some(body)) => {
            report_failure(name, pid, &body);
            Ok(body)
        }
        (None, None) => Err(WorkerError::new(
            Some(pid),
            name.into(),
            WorkerErrorKind::EndedWithoutResult { status },
        )
        .of_process(name)
        .into()),
    };
    Ended { outcome, status }
}

/// Prints a child's failure on the caller's stderr, as Python prints a child's traceback.
fn report_failure(name: &str, pid: u32, body: &[u8]) {
    if let Ok((header, rest)) = wire::parse_results(body)
        && header.failed
        && let Ok(failure) = wire::decode::<wire::WireFailure>(rest, "failure")
    {
        let kind = failure.into_kind();
        let report = format!("spychro: process {name} (pid {pid}) failed: {kind}\n");
        write_above(|| eprint!("{report}"));
    }
}
