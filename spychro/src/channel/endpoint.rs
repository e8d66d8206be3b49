//! One end of a `SOCK_SEQPACKET` socketpair carrying encoded messages, and how an end travels
//! to a child process: serialized as its descriptor number, which the child inherits.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, SockFlag, SockType, recv, send, socketpair};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest message a channel carries: what the kernel's default socket buffer holds.
pub(crate) const MAX_MESSAGE: usize = 200 * 1024;

/// Why a channel operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// Every peer that could send (or receive) is gone, or the channel was closed, and nothing
    /// is left to take.
    #[error("the channel is closed: every peer on the other side is gone or closed it")]
    Disconnected,
    /// Nothing arrived in time (or, for `try_recv`, nothing was there).
    #[error("no message arrived within {0:?}")]
    Timeout(Duration),
    /// The message does not fit in one channel message.
    #[error(
        "a message of {size} bytes is above the channel limit of {limit} bytes; send smaller \
         messages (or a path to a file)"
    )]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// No mailbox has this recipient id.
    #[error("no mailbox has recipient id {0}")]
    UnknownRecipient(u64),
    /// The message could not be encoded or decoded.
    #[error("a channel message could not be {0}")]
    Codec(String),
    /// The operating system refused.
    #[error("channel i/o failed: {0}")]
    Io(#[from] io::Error),
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
    pub(crate) fn send_bytes(&self, bytes: &[u8]) -> Result<(), ChannelError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(ChannelError::TooLarge {
                size: bytes.len(),
                limit: MAX_MESSAGE,
            });
        }
        loop {
            match send(self.fd.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET) => {
                    return Err(ChannelError::Disconnected);
                }
                Err(nix::errno::Errno::EMSGSIZE) => {
                    return Err(ChannelError::TooLarge {
                        size: bytes.len(),
                        limit: MAX_MESSAGE,
                    });
                }
                Err(e) => return Err(ChannelError::Io(e.into())),
            }
        }
    }

    /// Takes one whole message, waiting at most `timeout` (forever with `None`).
    pub(crate) fn recv_bytes(&self, timeout: Option<Duration>) -> Result<Vec<u8>, ChannelError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            // Another reader may take a message between the wait and the read: read without
            // blocking and wait again if so.
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => return Err(ChannelError::Disconnected),
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(nix::errno::Errno::EAGAIN) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ECONNRESET) => return Err(ChannelError::Disconnected),
                Err(e) => return Err(ChannelError::Io(e.into())),
            }
            let wait = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ChannelError::Timeout(timeout.unwrap_or_default()));
                    }
                    PollTimeout::from(left.as_millis().clamp(1, u16::MAX as u128) as u16)
                }
            };
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, wait) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(ChannelError::Io(e.into())),
            }
        }
    }

    /// Encodes and sends one message.
    pub(crate) fn send_value<T: Serialize>(&self, value: &T) -> Result<(), ChannelError> {
        self.send_bytes(&encode(value)?)
    }

    /// Takes and decodes one message, waiting at most `timeout` (forever with `None`).
    pub(crate) fn recv_value<T: serde::de::DeserializeOwned>(
        &self,
        timeout: Option<Duration>,
    ) -> Result<T, ChannelError> {
        decode(&self.recv_bytes(timeout)?)
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
    /// take what is queued, then get [`ChannelError::Disconnected`].
    pub(crate) fn close_sending(&self) {
        let _ = nix::sys::socket::shutdown(self.fd.as_raw_fd(), nix::sys::socket::Shutdown::Write);
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ChannelError> {
    crate::wire::encode_value(value).map_err(|e| ChannelError::Codec(format!("serialized: {e}")))
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ChannelError> {
    crate::wire::decode_value(bytes).map_err(|e| ChannelError::Codec(format!("deserialized: {e}")))
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
