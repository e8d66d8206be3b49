//! Typed, serde-based channels between processes: a duplex [`pipe`] for a parent and one
//! child, a [`queue`] for any number of senders and receivers (with `task_done`/`join`), and
//! [`postbox`] for messages addressed to one recipient; why an operation failed (`error`).
//!
//! Every channel is a `SOCK_SEQPACKET` socketpair: the kernel delivers each message whole to
//! exactly one reader, keeps a message queued when a reader dies before taking it, and ends
//! every reader's wait (after the queued messages) once the sending side is closed or gone;
//! a sender sees `POLLHUP` once every reader is gone. Channel ends are handed to a child by
//! passing them in its item or arguments to [`Process::new`](crate::Process::new): the child
//! inherits the descriptor.

mod endpoint;
mod error;
mod pipe;
mod postbox;
mod queue;
mod unfinished;

pub(crate) use endpoint::{capture_fds, deserialize_fd, serialize_fd};
pub use error::{
    JoinError, JoinTimeoutError, RecvError, RecvTimeoutError, SendError, TaskDoneError,
    TryRecvError,
};
pub use pipe::{PipeEnd, pipe};
pub use postbox::{Mailbox, Postbox, postbox};
pub use queue::{Receiver, Sender, queue};
