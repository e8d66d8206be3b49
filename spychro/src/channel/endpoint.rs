//! One end of a `SOCK_SEQPACKET` socketpair carrying encoded messages, and how an end travels
//! to a child process: serialized as its descriptor number, which the child inherits.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, SockFlag, SockType, recv, send, socketpair};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{RecvError, RecvTimeoutError, SendError, TryRecvError};

/// The largest message a channel carries: what the kernel's default socket buffer holds.
pub(crate) const MAX_MESSAGE: usize = 200 * 1024;

/// Why sending bytes failed; the caller adds the message to make a [`SendError`].
#[derive(Debug)]
pub(crate) enum SendFailure {
    Disconnected,
    TooLarge { size: usize },
    Io(io::Error),
}

impl SendFailure {
    pub(crate) fn with<T>(self, message: T) -> SendError<T> {
        match self {
            SendFailure::Disconnected => SendError::Disconnected(message),
            SendFailure::TooLarge { size } => SendError::TooLarge {
                message,
                size,
                limit: MAX_MESSAGE,
            },
            SendFailure::Io(error) => SendError::Io { message, error },
        }
    }
}

/// A socket end, shared by the clones of a channel end in this process.
#[derive(Debug)]
pub(crate) struct Endpoint {
    fd: OwnedFd,
}

pub(crate) fn seqpacket_pair() -> io::Result<(Endpoint, Endpoint)> {
    let (a, b) = socketpair(
        nix::sys::socket::AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Endpoint { fd: a }, Endpoint { fd: b }))
}

impl Endpoint {
    pub(crate) fn send_bytes(&self, bytes: &[u8]) -> Result<(), SendFailure> {
        let too_large = SendFailure::TooLarge { size: bytes.len() };
        if bytes.len() > MAX_MESSAGE {
            return Err(too_large);
        }
        loop {
            match send(self.fd.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(Errno::EPIPE | Errno::ECONNRESET) => return Err(SendFailure::Disconnected),
                Err(Errno::EMSGSIZE) => return Err(too_large),
                Err(e) => return Err(SendFailure::Io(e.into())),
            }
        }
    }

    /// Takes one whole message, waiting until `deadline` (forever with `None`).
    fn recv_bytes(&self, deadline: Option<Instant>) -> Result<Vec<u8>, RecvTimeoutError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut reset = false;
        loop {
            // Another reader may take a message between the wait and the read: read without
            // blocking and wait again if so.
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => return Err(RecvTimeoutError::Disconnected),
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(Errno::EAGAIN) => {}
                Err(Errno::EINTR) => continue,
                // The peer closed with messages of ours unread: the kernel reports that once,
                // before the messages queued for us. Reading again takes them (or the end).
                Err(Errno::ECONNRESET) if !reset => {
                    reset = true;
                    continue;
                }
                Err(Errno::ECONNRESET) => return Err(RecvTimeoutError::Disconnected),
                Err(e) => return Err(RecvTimeoutError::Io(e.into())),
            }
            let wait = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    poll_timeout(left)
                }
            };
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, wait) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(RecvTimeoutError::Io(e.into())),
            }
        }
    }

    /// Takes and decodes one message, waiting until `deadline` (forever with `None`).
    fn recv_value<T: DeserializeOwned>(
        &self,
        deadline: Option<Instant>,
    ) -> Result<T, RecvTimeoutError> {
        let bytes = self.recv_bytes(deadline)?;
        crate::wire::decode_value(&bytes).map_err(RecvTimeoutError::Deserialize)
    }

    /// Takes and decodes one message, waiting for one.
    pub(crate) fn recv_wait<T: DeserializeOwned>(&self) -> Result<T, RecvError> {
        self.recv_value(None)
            .map_err(RecvTimeoutError::without_deadline)
    }

    /// Takes and decodes one message, waiting at most `timeout`.
    pub(crate) fn recv_timeout<T: DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> Result<T, RecvTimeoutError> {
        // A timeout too far away to be an instant is no timeout.
        self.recv_value(Instant::now().checked_add(timeout))
    }

    /// Takes and decodes one message if one is there.
    pub(crate) fn try_recv<T: DeserializeOwned>(&self) -> Result<T, TryRecvError> {
        self.recv_value(Some(Instant::now()))
            .map_err(RecvTimeoutError::without_waiting)
    }

    /// Whether every process that held the other end has closed it (the peer's side of the
    /// socketpair is released: `POLLHUP`).
    pub(crate) fn peer_gone(&self) -> io::Result<bool> {
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::empty())];
        loop {
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(_) => {
                    let seen = fds[0].revents().unwrap_or(PollFlags::empty());
                    return Ok(seen.contains(PollFlags::POLLHUP));
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether a message is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => {
                // Readable also means "closed": look for a real message.
                let mut one = [0u8; 1];
                !matches!(
                    recv(
                        self.fd.as_raw_fd(),
                        &mut one,
                        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT
                    ),
                    Ok(1..)
                )
            }
            _ => true,
        }
    }

    /// Ends sending on this socket for every process that holds it: readers of the other end
    /// take what is queued, then are told the channel is disconnected.
    pub(crate) fn close_sending(&self) {
        let _ = nix::sys::socket::shutdown(self.fd.as_raw_fd(), nix::sys::socket::Shutdown::Write);
    }
}

/// Encodes a message, or says why it cannot be.
pub(crate) fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, String> {
    crate::wire::encode_value(message)
}

/// A poll(2) timeout of at least `left` rounded up to a millisecond, at most about a minute
/// (a longer wait polls again).
fn poll_timeout(left: Duration) -> PollTimeout {
    let ms = left.as_nanos().div_ceil(1_000_000);
    PollTimeout::from(ms.clamp(1, u16::MAX as u128) as u16)
}

thread_local! {
    /// While a process is being started: the descriptors its item and arguments carry.
    static CAPTURE: RefCell<Option<Vec<RawFd>>> = const { RefCell::new(None) };
}

/// Runs `f` (which serializes a child's item and arguments) and returns the descriptors that
/// the child must inherit.
pub(crate) fn capture_fds<R>(f: impl FnOnce() -> R) -> (R, Vec<RawFd>) {
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let out = f();
    let fds = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, fds)
}

/// Whether descriptors received in arguments are ours to take: only in a child process.
pub(crate) fn inherited_fds_ok() -> bool {
    crate::worker::current::is_worker()
}

/// Serializes a descriptor that a child being started will inherit.
pub(crate) fn serialize_fd<S: Serializer>(fd: &OwnedFd, s: S) -> Result<S::Ok, S::Error> {
    let fd = fd.as_raw_fd();
    let captured = CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(list) => {
            list.push(fd);
            true
        }
        None => false,
    });
    if !captured {
        return Err(serde::ser::Error::custom(
            "a channel end can only be given to a child through Process::new or \
             Process::with_args (it cannot travel to pool workers or be stored)",
        ));
    }
    s.serialize_i32(fd)
}

/// Takes a descriptor that this child inherited.
pub(crate) fn deserialize_fd<'de, D: Deserializer<'de>>(d: D) -> Result<OwnedFd, D::Error> {
    let fd = i32::deserialize(d)?;
    if !inherited_fds_ok() || fd < 3 {
        return Err(serde::de::Error::custom(
            "a channel end can only be received by the child process it was given to",
        ));
    }
    // SAFETY: `fd` was inherited from the caller for this process's exclusive use; it is
    // taken here exactly once, when the child's item or arguments are decoded.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| serde::de::Error::custom(format!("inherited descriptor {fd:?}: {e}")))?;
    Ok(fd)
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_fd(&self.fd, s)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Endpoint {
            fd: deserialize_fd(d)?,
        })
    }
}
