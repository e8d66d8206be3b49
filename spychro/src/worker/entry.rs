//! How a process becomes a worker: before `main` (a constructor), or as main's first line,
//! it looks for the variable the caller set, takes its socket and status page, serves, and
//! exits — the program's `main` never runs in a worker.

use std::io::Write;

use super::current;
use crate::sys::spawn::take_worker_ends;
use crate::sys::status::StatusPage;
use crate::sys::zygote::serve_if_server;

/// Exit code of a worker that hit a protocol error, or whose socket failed.
pub(crate) const EXIT_PROTOCOL: i32 = 102;

// SAFETY: runs before main. It reads one environment variable and returns at once unless this
// process was started as a worker; a worker never returns to the program's `main`.
#[ctor::ctor(unsafe)]
fn enter_before_main() {
    enter_if_worker();
}

/// Becomes a worker if this process was started as one, and never returns in that case.
pub(crate) fn enter_if_worker() {
    // A fork server serves here until its caller goes; its copies come back as workers,
    // with the job registry's index built once, in the server. A copy that cannot take its
    // place exits: it must never go on to the program's `main`.
    let ends = match serve_if_server(super::registry::warm) {
        Some(Err(e)) => {
            current::set_worker();
            cannot_start(&format!("take its place as a copy of the fork server: {e}"));
        }
        Some(Ok(ends)) => Some(Ok(ends)),
        None => take_worker_ends(),
    };
    let (sock, status) = match ends {
        None => return,
        Some(Ok(ends)) => ends,
        Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
            eprintln!("spychro: ignoring it: {e}");
            return;
        }
        Some(Err(e)) => {
            current::set_worker();
            cannot_start(&format!("take its socket and status page: {e}"));
        }
    };
    current::set_worker();
    let status = StatusPage::map(&status)
        .unwrap_or_else(|e| cannot_start(&format!("map its status page: {e}")));
    let code = match super::serve::serve(sock, status) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("spychro worker {}: {e}", std::process::id());
            EXIT_PROTOCOL
        }
    };
    super::link::end_descendants();
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Says what a worker could not do to start, and exits.
fn cannot_start(what: &str) -> ! {
    eprintln!("spychro worker {}: cannot {what}", std::process::id());
    std::process::exit(EXIT_PROTOCOL);
}
