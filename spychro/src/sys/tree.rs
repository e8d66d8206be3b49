//! Ending a process together with everything it started: its process group, and its
//! descendants found through `/proc` (a worker is a child subreaper, so a descendant whose
//! parent exited is re-parented to the worker and stays findable).

/// Sends `signal` to process `pid` (a negative `pid`: to the process group `-pid`). The caller
/// must know that the pid is not reused: it names our unreaped child (or its group).
pub(crate) fn signal(pid: i32, signal: libc::c_int) {
    // SAFETY: kill(2) takes two integers and touches no memory.
    unsafe { libc::kill(pid, signal) };
}

/// Ends this process at once: no destructors, no flushing (`_exit`).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process immediately; it touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Makes this process a child subreaper: orphaned descendants are re-parented to it rather
/// than to init, so they can be found (and ended) with it.
pub(crate) fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Whether this process has any child (running, stopped or a zombie): one system call, no
/// `/proc` walk (whose entries the kernel must then invalidate when the process is reaped).
pub(crate) fn has_children() -> bool {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let flags =
        WaitPidFlag::WEXITED | WaitPidFlag::WSTOPPED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(waitid(Id::All, flags), Err(nix::errno::Errno::ECHILD))
}

/// The direct children of `pid`, from every thread's `children` list.
fn children(pid: u32) -> Vec<u32> {
    let mut all = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return all;
    };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            all.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    all
}

/// Every descendant of `pid`: its children, their children, and so on.
pub(crate) fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(p) = next.pop() {
        for c in children(p) {
            if !found.contains(&c) {
                found.push(c);
                next.push(c);
            }
        }
    }
    found
}

/// Kills (SIGKILL) every descendant of `pid` and the process group `pid` leads, leaving
/// `pid` itself alone when `spare_root`. Repeated while new descendants appear (one may fork
/// while it is being killed), a few times at most.
pub(crate) fn kill_descendants(pid: u32, spare_root: bool) {
    for _ in 0..4 {
        let found = descendants(pid);
        for &d in &found {
            signal(d as i32, libc::SIGKILL);
        }
        if !spare_root {
            // The group `pid` leads: descendants that were not found (not yet listed).
            signal(-(pid as i32), libc::SIGKILL);
        }
        if found.is_empty() {
            return;
        }
    }
}
