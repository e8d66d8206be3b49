//! Why a channel operation failed: one type per operation, as crossbeam-channel's `err.rs`
//! does. A failed send hands its message back; a receive says whether the channel was only
//! empty (or slow) or is done for good.

use std::error::Error;
use std::fmt;
use std::io;

const DISCONNECTED_SEND: &str =
    "sending on a disconnected channel: every receiver is gone or the channel was closed";
const DISCONNECTED_RECV: &str = "receiving on an empty and disconnected channel: every sender is gone or the channel was \
     closed";
const DESERIALIZE: &str = "a channel message could not be deserialized";

/// Why a send failed: [`Sender::send`](crate::Sender::send),
/// [`PipeEnd::send`](crate::PipeEnd::send), [`Postbox::send_to`](crate::Postbox::send_to) or
/// [`Postbox::broadcast`](crate::Postbox::broadcast). It holds the message, which
/// [`into_inner`](SendError::into_inner) hands back.
///
/// ```
/// use spychro::SendError;
///
/// let (tx, rx) = spychro::queue::<Vec<u8>>()?;
/// drop(rx); // the only receiver
/// match tx.send(vec![1, 2, 3]) {
///     Err(SendError::Disconnected(message)) => assert_eq!(message, [1, 2, 3]),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[non_exhaustive]
pub enum SendError<T> {
    /// Every receiver is gone (closed in every process that held one), or the channel was
    /// closed with `close`. Nothing sent from now on can arrive.
    Disconnected(T),
    /// The message, encoded, is larger than one channel message may be.
    TooLarge {
        /// The message.
        message: T,
        /// Its encoded size in bytes.
        size: usize,
        /// The most bytes one channel message holds.
        limit: usize,
    },
    /// The message could not be serialized.
    Serialize {
        /// The message.
        message: T,
        /// What the serializer said.
        error: String,
    },
    /// No mailbox has this recipient id ([`Postbox::send_to`](crate::Postbox::send_to) only).
    UnknownRecipient {
        /// The message.
        message: T,
        /// The id it was addressed to.
        id: u64,
    },
    /// The operating system refused.
    Io {
        /// The message.
        message: T,
        /// What the operating system said.
        error: io::Error,
    },
}

impl<T> SendError<T> {
    /// The message that could not be sent.
    ///
    /// ```
    /// let (tx, rx) = spychro::queue::<String>()?;
    /// tx.close();
    /// let err = tx.send("late".to_string()).unwrap_err();
    /// assert_eq!(err.into_inner(), "late");
    /// # drop(rx);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendError::Disconnected(message)
            | SendError::TooLarge { message, .. }
            | SendError::Serialize { message, .. }
            | SendError::UnknownRecipient { message, .. }
            | SendError::Io { message, .. } => message,
        }
    }
}

// Like crossbeam-channel's: no `T: Debug` needed, and a large message is not printed.
impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Disconnected(_) => f.write_str("Disconnected(..)"),
            SendError::TooLarge { size, limit, .. } => f
                .debug_struct("TooLarge")
                .field("size", size)
                .field("limit", limit)
                .finish_non_exhaustive(),
            SendError::Serialize { error, .. } => f
                .debug_struct("Serialize")
                .field("error", error)
                .finish_non_exhaustive(),
            SendError::UnknownRecipient { id, .. } => f
                .debug_struct("UnknownRecipient")
                .field("id", id)
                .finish_non_exhaustive(),
            SendError::Io { error, .. } => f
                .debug_struct("Io")
                .field("error", error)
                .finish_non_exhaustive(),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Disconnected(_) => f.write_str(DISCONNECTED_SEND),
            SendError::TooLarge { size, limit, .. } => write!(
                f,
                "a message of {size} bytes is above the channel limit of {limit} bytes; send \
                 smaller messages (or a path to a file)"
            ),
            SendError::Serialize { error, .. } => {
                write!(f, "a channel message could not be serialized: {error}")
            }
            SendError::UnknownRecipient { id, .. } => write!(
                f,
                "no mailbox has recipient id {id}; send to one of the ids given to postbox()"
            ),
            SendError::Io { error, .. } => write!(f, "sending on a channel failed: {error}"),
        }
    }
}

impl<T> Error for SendError<T> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SendError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Why [`recv`](crate::Receiver::recv) failed (on a [`Receiver`](crate::Receiver),
/// [`PipeEnd`](crate::PipeEnd) or [`Mailbox`](crate::Mailbox)).
///
/// ```
/// use spychro::RecvError;
///
/// let (tx, rx) = spychro::queue::<u32>()?;
/// tx.send(1).unwrap();
/// drop(tx); // the only sender: the queued message is still taken
/// assert_eq!(rx.recv().unwrap(), 1);
/// assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RecvError {
    /// No message is left and none can come: every sender is gone (closed in every process
    /// that held one), or the channel was closed with `close`.
    Disconnected,
    /// A message was taken but could not be deserialized; it is lost.
    Deserialize(String),
    /// The operating system refused.
    Io(io::Error),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Disconnected => f.write_str(DISCONNECTED_RECV),
            RecvError::Deserialize(error) => write!(f, "{DESERIALIZE}: {error}"),
            RecvError::Io(error) => write!(f, "receiving on a channel failed: {error}"),
        }
    }
}

impl Error for RecvError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RecvError::Io(error) => Some(error),
            _ => None,
        }
    }
}

/// Why [`recv_timeout`](crate::Receiver::recv_timeout) failed.
///
/// ```
/// use std::time::Duration;
/// use spychro::RecvTimeoutError;
///
/// let (tx, rx) = spychro::queue::<u32>()?;
/// let waited = rx.recv_timeout(Duration::from_millis(10));
/// assert!(matches!(waited, Err(RecvTimeoutError::Timeout)));
/// # drop(tx);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// No message arrived in time; the channel is still open.
    Timeout,
    /// No message is left and none can come: every sender is gone (closed in every process
    /// that held one), or the channel was closed with `close`.
    Disconnected,
    /// A message was taken but could not be deserialized; it is lost.
    Deserialize(String),
    /// The operating system refused.
    Io(io::Error),
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting for a channel message"),
            RecvTimeoutError::Disconnected => f.write_str(DISCONNECTED_RECV),
            RecvTimeoutError::Deserialize(error) => write!(f, "{DESERIALIZE}: {error}"),
            RecvTimeoutError::Io(error) => write!(f, "receiving on a channel failed: {error}"),
        }
    }
}

impl Error for RecvTimeoutError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RecvTimeoutError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Disconnected => RecvTimeoutError::Disconnected,
            RecvError::Deserialize(error) => RecvTimeoutError::Deserialize(error),
            RecvError::Io(error) => RecvTimeoutError::Io(error),
        }
    }
}

impl RecvTimeoutError {
    /// For a wait that had no deadline.
    pub(crate) fn without_deadline(self) -> RecvError {
        match self {
            RecvTimeoutError::Timeout => unreachable!("a wait without a deadline timed out"),
            RecvTimeoutError::Disconnected => RecvError::Disconnected,
            RecvTimeoutError::Deserialize(error) => RecvError::Deserialize(error),
            RecvTimeoutError::Io(error) => RecvError::Io(error),
        }
    }

    /// For a wait that was not to wait at all.
    pub(crate) fn without_waiting(self) -> TryRecvError {
        match self {
            RecvTimeoutError::Timeout => TryRecvError::Empty,
            RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
            RecvTimeoutError::Deserialize(error) => TryRecvError::Deserialize(error),
            RecvTimeoutError::Io(error) => TryRecvError::Io(error),
        }
    }
}

/// Why [`try_recv`](crate::Receiver::try_recv) failed.
///
/// ```
/// use spychro::TryRecvError;
///
/// let (tx, rx) = spychro::queue::<u32>()?;
/// assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
/// tx.send(7).unwrap();
/// tx.close();
/// assert_eq!(rx.try_recv().unwrap(), 7);
/// assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TryRecvError {
    /// No message is there now; the channel is still open.
    Empty,
    /// No message is left and none can come: every sender is gone (closed in every process
    /// that held one), or the channel was closed with `close`.
    Disconnected,
    /// A message was taken but could not be deserialized; it is lost.
    Deserialize(String),
    /// The operating system refused.
    Io(io::Error),
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Disconnected => f.write_str(DISCONNECTED_RECV),
            TryRecvError::Deserialize(error) => write!(f, "{DESERIALIZE}: {error}"),
            TryRecvError::Io(error) => write!(f, "receiving on a channel failed: {error}"),
        }
    }
}

impl Error for TryRecvError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TryRecvError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<RecvError> for TryRecvError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Disconnected => TryRecvError::Disconnected,
            RecvError::Deserialize(error) => TryRecvError::Deserialize(error),
            RecvError::Io(error) => TryRecvError::Io(error),
        }
    }
}

/// Why [`Sender::join`](crate::Sender::join) failed: the messages it waits for can no longer
/// be marked done.
///
/// ```
/// use spychro::JoinError;
///
/// let (tx, rx) = spychro::queue::<u32>()?;
/// tx.send(1).unwrap();
/// drop(rx); // the only receiver, gone with the message
/// assert!(matches!(tx.join(), Err(JoinError::Disconnected { unfinished: 1 })));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinError {
    /// Every receiver is gone (closed in every process that held one) while messages were
    /// not marked done: a consumer died, or returned, holding them.
    Disconnected {
        /// The messages sent and not marked done.
        unfinished: u64,
    },
    /// The operating system refused.
    Io(io::Error),
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Disconnected { unfinished } => write_lost(f, *unfinished),
            JoinError::Io(error) => write_join_io(f, error),
        }
    }
}

impl Error for JoinError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            JoinError::Io(error) => Some(error),
            _ => None,
        }
    }
}

/// Why [`Sender::join_timeout`](crate::Sender::join_timeout) failed.
///
/// ```
/// use std::time::Duration;
/// use spychro::JoinTimeoutError;
///
/// let (tx, rx) = spychro::queue::<u32>()?;
/// tx.send(1).unwrap();
/// let _one = rx.recv().unwrap(); // taken, not marked done
/// let waited = tx.join_timeout(Duration::from_millis(10));
/// assert!(matches!(waited, Err(JoinTimeoutError::Timeout { unfinished: 1 })));
/// rx.task_done().unwrap();
/// tx.join_timeout(Duration::from_millis(10)).unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinTimeoutError {
    /// Messages were still not marked done when the time was up.
    Timeout {
        /// The messages sent and not marked done.
        unfinished: u64,
    },
    /// Every receiver is gone (closed in every process that held one) while messages were
    /// not marked done: a consumer died, or returned, holding them.
    Disconnected {
        /// The messages sent and not marked done.
        unfinished: u64,
    },
    /// The operating system refused.
    Io(io::Error),
}

impl fmt::Display for JoinTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout { unfinished } => write!(
                f,
                "timed out waiting for queued messages to be done: {unfinished} not marked \
                 with task_done yet"
            ),
            JoinTimeoutError::Disconnected { unfinished } => write_lost(f, *unfinished),
            JoinTimeoutError::Io(error) => write_join_io(f, error),
        }
    }
}

impl Error for JoinTimeoutError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            JoinTimeoutError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<JoinError> for JoinTimeoutError {
    fn from(e: JoinError) -> Self {
        match e {
            JoinError::Disconnected { unfinished } => JoinTimeoutError::Disconnected { unfinished },
            JoinError::Io(error) => JoinTimeoutError::Io(error),
        }
    }
}

impl JoinTimeoutError {
    /// For a wait that had no deadline.
    pub(crate) fn without_deadline(self) -> JoinError {
        match self {
            JoinTimeoutError::Timeout { .. } => unreachable!("a wait without a deadline timed out"),
            JoinTimeoutError::Disconnected { unfinished } => JoinError::Disconnected { unfinished },
            JoinTimeoutError::Io(error) => JoinError::Io(error),
        }
    }
}

fn write_lost(f: &mut fmt::Formatter<'_>, unfinished: u64) -> fmt::Result {
    write!(
        f,
        "every receiver of the queue is gone with {unfinished} messages not marked done: a \
         consumer died or returned without calling task_done for each message it took"
    )
}

fn write_join_io(f: &mut fmt::Formatter<'_>, error: &io::Error) -> fmt::Result {
    write!(f, "waiting for queued messages to be done failed: {error}")
}

/// [`Receiver::task_done`](crate::Receiver::task_done) was called more times than messages
/// were sent (counted over the whole queue, as Python's `JoinableQueue` does).
///
/// ```
/// use spychro::TaskDoneError;
///
/// let (tx, rx) = spychro::queue::<u32>()?;
/// tx.send(1).unwrap();
/// rx.recv().unwrap();
/// rx.task_done().unwrap();
/// assert!(matches!(rx.task_done(), Err(TaskDoneError)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "task_done was called more times than messages were sent; call it once for each \
             message received",
        )
    }
}

impl Error for TaskDoneError {}
