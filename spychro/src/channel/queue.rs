//! [`pipe`]: a duplex channel between two processes; [`queue`]: many senders and receivers,
//! each message taken by exactly one receiver, with `task_done`/`join` like Python's
//! `JoinableQueue`.

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::endpoint::{ChannelError, Endpoint, encode, seqpacket_pair};
use crate::sys::status::StatusPage;

/// One end of a duplex [`pipe`]: sends `S`, receives `R`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct PipeEnd<S, R> {
    end: Endpoint,
    #[serde(skip)]
    _types: PhantomData<fn(S) -> R>,
}

/// A duplex channel between two processes: keep one end, give the other to a child (in its
/// item or arguments). A peer that is gone ends a waiting `recv` with
/// [`ChannelError::Disconnected`].
///
/// ```
/// use spychro::{PipeEnd, Process};
///
/// #[spychro::job]
/// fn echo_upper(end: PipeEnd<String, String>) -> usize {
///     let mut n = 0;
///     while let Ok(line) = end.recv() {
///         end.send(&line.to_uppercase()).unwrap();
///         n += 1;
///     }
///     n
/// }
///
/// let (ours, theirs) = spychro::pipe::<String, String>()?;
/// let mut child = Process::new(echo_upper, theirs);
/// child.start()?;
/// ours.send(&"hello".to_string())?;
/// assert_eq!(ours.recv()?, "HELLO");
/// drop(ours); // the child's recv now ends
/// assert_eq!(child.join()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
// The two ends' types are the documentation: an alias would hide them.
#[allow(clippy::type_complexity)]
pub fn pipe<A, B>() -> Result<(PipeEnd<A, B>, PipeEnd<B, A>), ChannelError> {
    let (a, b) = seqpacket_pair()?;
    Ok((
        PipeEnd {
            end: a,
            _types: PhantomData,
        },
        PipeEnd {
            end: b,
            _types: PhantomData,
        },
    ))
}

impl<S: Serialize, R: DeserializeOwned> PipeEnd<S, R> {
    /// Sends a message to the other end.
    pub fn send(&self, message: &S) -> Result<(), ChannelError> {
        self.end.send_value(message)
    }

    /// Waits for the next message.
    pub fn recv(&self) -> Result<R, ChannelError> {
        self.end.recv_value(None)
    }

    /// Waits at most `timeout` for the next message.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<R, ChannelError> {
        self.end.recv_value(Some(timeout))
    }
}

/// The counter behind `task_done`/`join`, in memory shared by every process of a queue.
struct Unfinished {
    fd: OwnedFd,
    page: StatusPage,
}

impl Unfinished {
    fn new() -> Result<Unfinished, ChannelError> {
        let (page, fd) = StatusPage::create()?;
        Ok(Unfinished { fd, page })
    }
}

impl Serialize for Unfinished {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::endpoint::serialize_fd(&self.fd, s)
    }
}

impl<'de> Deserialize<'de> for Unfinished {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fd = super::endpoint::deserialize_fd(d)?;
        let page = StatusPage::map(&fd).map_err(serde::de::Error::custom)?;
        Ok(Unfinished { fd, page })
    }
}

/// The sending side of a [`queue`]. Clone it, or give it to children: every message goes to
/// exactly one receiver.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Sender<T> {
    end: Arc<Endpoint>,
    unfinished: Arc<Unfinished>,
    #[serde(skip)]
    _type: PhantomData<fn(T)>,
}

/// The receiving side of a [`queue`]. Clone it, or give it to children: receivers share the
/// messages, each taken by one of them.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Receiver<T> {
    end: Arc<Endpoint>,
    unfinished: Arc<Unfinished>,
    #[serde(skip)]
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            end: self.end.clone(),
            unfinished: self.unfinished.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver {
            end: self.end.clone(),
            unfinished: self.unfinished.clone(),
            _type: PhantomData,
        }
    }
}

/// A queue between any number of processes (1:N, N:1, N:M). Each message is delivered whole
/// to exactly one receiver; a receiver that dies does not lose the messages it had not taken.
/// Once every sender is dropped (or one calls [`Sender::close`], the poison pill that cannot
/// be lost), receivers take what is left and then get [`ChannelError::Disconnected`].
///
/// ```
/// use spychro::{Process, ProcessList, Receiver};
///
/// #[spychro::job]
/// fn consume(rx: Receiver<u64>) -> u64 {
///     let mut sum = 0;
///     while let Ok(x) = rx.recv() {
///         sum += x;
///         rx.task_done();
///     }
///     sum
/// }
///
/// let (tx, rx) = spychro::queue::<u64>()?;
/// let mut consumers = ProcessList::new();
/// for _ in 0..2 {
///     consumers.add(Process::new(consume, rx.clone()));
/// }
/// drop(rx);
/// consumers.start()?;
/// for x in 1..=100 {
///     tx.send(&x)?;
/// }
/// tx.join(); // every message was taken and marked done
/// tx.close(); // the poison pill: every consumer's recv ends
/// let codes = consumers.join()?;
/// assert!(codes.iter().all(|c| *c == Some(0)), "{codes:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn queue<T>() -> Result<(Sender<T>, Receiver<T>), ChannelError> {
    let (a, b) = seqpacket_pair()?;
    let unfinished = Arc::new(Unfinished::new()?);
    Ok((
        Sender {
            end: Arc::new(a),
            unfinished: unfinished.clone(),
            _type: PhantomData,
        },
        Receiver {
            end: Arc::new(b),
            unfinished,
            _type: PhantomData,
        },
    ))
}

impl<T: Serialize> Sender<T> {
    /// Queues a message; waits while the queue is full.
    pub fn send(&self, message: &T) -> Result<(), ChannelError> {
        let bytes = encode(message)?;
        let counter = self.unfinished.page.word(0);
        counter.fetch_add(1, Ordering::AcqRel);
        self.end.send_bytes(&bytes).inspect_err(|_| {
            counter.fetch_sub(1, Ordering::AcqRel);
        })
    }
}

impl<T> Sender<T> {
    /// Waits until every message sent so far (by any sender of this queue) was received and
    /// marked with [`Receiver::task_done`].
    pub fn join(&self) {
        let counter = self.unfinished.page.word(0);
        let mut nap = Duration::from_micros(50);
        while counter.load(Ordering::Acquire) != 0 {
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(2));
        }
    }

    /// Closes the queue for every process: receivers take what is queued, then get
    /// [`ChannelError::Disconnected`]. Sending afterwards fails.
    pub fn close(&self) {
        self.end.close_sending();
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    /// Takes the next message, waiting for one.
    pub fn recv(&self) -> Result<T, ChannelError> {
        self.end.recv_value(None)
    }

    /// Takes the next message, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, ChannelError> {
        self.end.recv_value(Some(timeout))
    }

    /// Takes the next message if one is there.
    pub fn try_recv(&self) -> Result<T, ChannelError> {
        self.end.recv_value(Some(Duration::ZERO))
    }
}

impl<T> Receiver<T> {
    /// Whether no message is waiting right now.
    pub fn is_empty(&self) -> bool {
        self.end.is_empty()
    }

    /// Marks one received message as processed, for [`Sender::join`].
    pub fn task_done(&self) {
        let counter = self.unfinished.page.word(0);
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

impl std::fmt::Debug for Unfinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unfinished(fd {})", self.fd.as_raw_fd())
    }
}
