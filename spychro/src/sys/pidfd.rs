//! Process descriptors: a descriptor that becomes readable the moment a process ends, so that
//! a death is seen from the process itself, not only from the end of its socket (which a
//! forked copy of the process may hold open).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A descriptor that becomes readable when process `pid` (our child) ends, where the kernel
/// has them (Linux 5.3+); `None` elsewhere.
pub(crate) fn open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; it touches
    // no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just made `fd` for this process; nothing else owns it. (pidfds are
    // close-on-exec.)
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Waits until `fd` (a pidfd) is readable (its process ended) or `deadline` passes.
pub(crate) fn wait_readable(fd: &OwnedFd, deadline: std::time::Instant) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    let ms = left.as_millis().clamp(1, u16::MAX as u128) as u16;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::from(ms));
}
