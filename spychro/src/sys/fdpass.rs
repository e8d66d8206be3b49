//! Passing descriptors over a Unix socket (`SCM_RIGHTS`): how a worker started with
//! posix_spawn receives its status page, and how a fork server receives a request's.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Sends `fd` over `sock` with one byte of data.
pub(crate) fn send_fd(sock: &OwnedFd, fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let sent = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&[0])],
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if sent != 1 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    Ok(())
}

/// Receives one message into `buf` with the descriptors it carries (close-on-exec, owned
/// at once), retrying on EINTR; `space` is room for their control message
/// (`nix::cmsg_space!`). Returns the bytes read, the message's flags and the descriptors.
pub(crate) fn receive_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    space: &mut Vec<u8>,
) -> io::Result<(usize, MsgFlags, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut *space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: the kernel just installed these descriptors in this process for us.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok((msg.bytes, msg.flags, fds))
}

/// Receives a descriptor sent with [`send_fd`] (close-on-exec), reading exactly its one byte.
pub(crate) fn receive_fd(sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let (bytes, _, fds) = receive_with_fds(sock, &mut byte, &mut space)?;
    if bytes != 1 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the caller closed the socket before sending the status page",
        ));
    }
    fds.into_iter()
        .next()
        .ok_or_else(|| io::Error::other("the caller's first message carried no descriptor"))
}
