//! [`queue`]: many senders and receivers, each message taken by exactly one receiver, with
//! `task_done`/`join` like Python's `JoinableQueue` (the count behind them: `unfinished`).

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::endpoint::{Endpoint, encode, seqpacket_pair};
use super::error::{
    JoinError, JoinTimeoutError, RecvError, RecvTimeoutError, SendError, TaskDoneError,
    TryRecvError,
};
use super::unfinished::Unfinished;

/// The sending side of a [`queue`]. Clone it, or give it to children: every message goes to
/// exactly one receiver.
///
/// ```
/// let (tx, rx) = spychro::queue::<u32>()?;
/// let tx2 = tx.clone();
/// tx.send(1).unwrap();
/// tx2.send(2).unwrap();
/// assert_eq!((rx.recv().unwrap(), rx.recv().unwrap()), (1, 2));
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// ```
/// let (tx, rx) = spychro::queue::<u32>()?;
/// let rx2 = rx.clone();
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert_eq!(rx.recv().unwrap() + rx2.recv().unwrap(), 3);
/// # Ok::<(), std::io::Error>(())
/// ```
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
/// be lost), receivers take what is left and then get [`RecvError::Disconnected`].
///
/// ```
/// use spychro::{Process, ProcessList, Receiver};
///
/// #[spychro::job]
/// fn consume(rx: Receiver<u64>) -> u64 {
///     let mut sum = 0;
///     while let Ok(x) = rx.recv() {
///         sum += x;
///         rx.task_done().unwrap();
///     }
///     sum
/// }
///
/// let (tx, rx) = spychro::queue::<u64>()?;
/// let mut consumers = ProcessList::new();
/// for _ in 0..2 {
///     consumers.add(Process::new(consume, rx.clone()));
/// }
/// drop(rx); // the consumers hold the only receivers: join sees them go
/// consumers.start()?;
/// for x in 1..=100 {
///     tx.send(x)?;
/// }
/// tx.join()?; // every message was taken and marked done
/// tx.close(); // the poison pill: every consumer's recv ends
/// let codes = consumers.join()?;
/// assert!(codes.iter().all(|c| *c == Some(0)), "{codes:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn queue<T>() -> io::Result<(Sender<T>, Receiver<T>)> {
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
    /// Queues a message, waiting while the queue is full; on failure the error holds it.
    ///
    /// ```
    /// use spychro::SendError;
    ///
    /// let (tx, rx) = spychro::queue::<Vec<u8>>()?;
    /// tx.send(vec![1; 10]).unwrap();
    /// match tx.send(vec![0; 1 << 20]) {
    ///     Err(SendError::TooLarge { message, size, limit }) => {
    ///         assert_eq!(message.len(), 1 << 20);
    ///         assert!(size > limit);
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// assert_eq!(rx.recv().unwrap(), [1; 10]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, message: T) -> Result<(), SendError<T>> {
        let bytes = match encode(&message) {
            Ok(bytes) => bytes,
            Err(error) => return Err(SendError::Serialize { message, error }),
        };
        // Counted before it can be received, so that a quick task_done never finds it missing.
        self.unfinished.add_one();
        self.end.send_bytes(&bytes).map_err(|failure| {
            // Not sent: not to be waited for. (Only an extra task_done elsewhere can have
            // taken the count to zero already; that one was told.)
            let _ = self.unfinished.finish_one();
            failure.with(message)
        })
    }
}

impl<T> Sender<T> {
    /// Waits until every message sent so far (by any sender of this queue) was received and
    /// marked with [`Receiver::task_done`], as Python's `JoinableQueue.join` does.
    ///
    /// Fails, instead of waiting forever, once no receiver is left anywhere while messages are
    /// not done: every process that held a [`Receiver`] of this queue closed it (dropped it,
    /// exited or died), so those messages never will be. Until then it waits: a consumer that
    /// died holding a message while others live leaves that message unfinished, and `join`
    /// returns the error only once the others are gone too (after [`close`](Sender::close),
    /// say). A `Receiver` kept in the calling process counts: it keeps the queue open, and
    /// `join` then waits for as long as messages are not done; drop yours before joining, or
    /// use [`join_timeout`](Sender::join_timeout). A join wakes within microseconds of the
    /// last `task_done`, and within about 10 ms of the last receiver closing.
    ///
    /// ```
    /// use spychro::{JoinError, Process, Receiver};
    ///
    /// #[spychro::job]
    /// fn take_one_and_leave(rx: Receiver<u32>) -> u32 {
    ///     rx.recv().unwrap() // returns without task_done
    /// }
    ///
    /// let (tx, rx) = spychro::queue::<u32>()?;
    /// let mut consumer = Process::new(take_one_and_leave, rx); // ours goes with it
    /// consumer.start()?;
    /// tx.send(1)?;
    /// assert_eq!(consumer.join()?, 1);
    /// assert!(matches!(tx.join(), Err(JoinError::Disconnected { unfinished: 1 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self) -> Result<(), JoinError> {
        self.unfinished
            .wait_zero(&self.end, None)
            .map_err(JoinTimeoutError::without_deadline)
    }

    /// [`join`](Sender::join), waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spychro::JoinTimeoutError;
    ///
    /// let (tx, rx) = spychro::queue::<u32>()?;
    /// tx.send(1).unwrap();
    /// let waited = tx.join_timeout(Duration::from_millis(10));
    /// assert!(matches!(waited, Err(JoinTimeoutError::Timeout { unfinished: 1 })));
    /// rx.recv().unwrap();
    /// rx.task_done().unwrap();
    /// tx.join_timeout(Duration::from_millis(10)).unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        // A timeout too far away to be an instant is no timeout.
        self.unfinished
            .wait_zero(&self.end, Instant::now().checked_add(timeout))
    }

    /// Closes the queue for every process: receivers take what is queued, then get
    /// [`RecvError::Disconnected`]. Sending afterwards fails with
    /// [`SendError::Disconnected`].
    ///
    /// ```
    /// use spychro::RecvError;
    ///
    /// let (tx, rx) = spychro::queue::<u32>()?;
    /// let also_tx = tx.clone();
    /// tx.send(1).unwrap();
    /// tx.close(); // for every clone and every process
    /// assert!(also_tx.send(2).is_err());
    /// assert_eq!(rx.recv().unwrap(), 1);
    /// assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&self) {
        self.end.close_sending();
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    /// Takes the next message, waiting for one.
    ///
    /// ```
    /// use spychro::RecvError;
    ///
    /// let (tx, rx) = spychro::queue::<u32>()?;
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv().unwrap(), 1);
    /// assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.end.recv_wait()
    }

    /// Takes the next message, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spychro::RecvTimeoutError;
    ///
    /// let (tx, rx) = spychro::queue::<u32>()?;
    /// let waited = rx.recv_timeout(Duration::from_millis(10));
    /// assert!(matches!(waited, Err(RecvTimeoutError::Timeout)));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(1)).unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.end.recv_timeout(timeout)
    }

    /// Takes the next message if one is there, without waiting.
    ///
    /// ```
    /// use spychro::TryRecvError;
    ///
    /// let (tx, rx) = spychro::queue::<u32>()?;
    /// assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    /// tx.send(1).unwrap();
    /// tx.close();
    /// assert_eq!(rx.try_recv().unwrap(), 1);
    /// assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.end.try_recv()
    }
}

impl<T> Receiver<T> {
    /// Whether no message is waiting right now.
    ///
    /// ```
    /// let (tx, rx) = spychro::queue::<u32>()?;
    /// assert!(rx.is_empty());
    /// tx.send(1).unwrap();
    /// assert!(!rx.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.end.is_empty()
    }

    /// Marks one received message as processed, for [`Sender::join`]. Calling it more times
    /// than messages were sent is an error, [`TaskDoneError`] (the count is the queue's, over
    /// every process: as with Python's `JoinableQueue`, an extra call while another message
    /// is unfinished counts that one as done).
    ///
    /// ```
    /// use spychro::TaskDoneError;
    ///
    /// let (tx, rx) = spychro::queue::<u32>()?;
    /// tx.send(1).unwrap();
    /// rx.recv().unwrap();
    /// rx.task_done().unwrap();
    /// assert_eq!(rx.task_done(), Err(TaskDoneError));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.unfinished.finish_one()
    }
}
