//! [`postbox`]: messages addressed to one recipient, each received only by its mailbox, with a
//! shutdown that reaches every mailbox.

use std::collections::BTreeMap;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::endpoint::{Endpoint, encode, seqpacket_pair};
use super::error::{RecvError, RecvTimeoutError, SendError, TryRecvError};

/// Sends messages addressed to recipients (pymulproc's recipient pid): clone it, or give it to
/// children.
///
/// ```
/// let (post, boxes) = spychro::postbox::<u32>([1, 2])?;
/// let copy = post.clone();
/// copy.send_to(2, 20).unwrap();
/// assert_eq!(boxes[1].recv().unwrap(), 20);
/// # drop(post);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Postbox<T> {
    boxes: BTreeMap<u64, Arc<Endpoint>>,
    #[serde(skip)]
    _type: PhantomData<fn(T)>,
}

/// The messages addressed to one recipient: give it to the child that is that recipient.
///
/// ```
/// let (post, mut boxes) = spychro::postbox::<String>([5])?;
/// let mailbox = boxes.pop().unwrap();
/// post.send_to(5, "hi".to_string()).unwrap();
/// assert_eq!(mailbox.id(), 5);
/// assert_eq!(mailbox.recv().unwrap(), "hi");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Mailbox<T> {
    id: u64,
    end: Endpoint,
    #[serde(skip)]
    _type: PhantomData<fn() -> T>,
}

/// A postbox and one mailbox per recipient id. A message sent to a recipient is received
/// only from its mailbox, whole and once; [`Postbox::close`] (or dropping every postbox)
/// ends each mailbox's `recv` once its messages are taken, so a shutdown cannot be lost.
///
/// ```
/// use spychro::{Mailbox, Postbox, Process};
///
/// #[spychro::job]
/// fn recipient(mailbox: Mailbox<String>) -> Vec<String> {
///     let mut got = Vec::new();
///     while let Ok(m) = mailbox.recv() {
///         got.push(m);
///     }
///     got
/// }
///
/// let (post, mut boxes) = spychro::postbox::<String>([7, 9])?;
/// let mut nine = Process::new(recipient, boxes.pop().unwrap());
/// let mut seven = Process::new(recipient, boxes.pop().unwrap());
/// seven.start()?;
/// nine.start()?;
/// post.send_to(9, "for nine".to_string())?;
/// post.send_to(7, "for seven".to_string())?;
/// post.broadcast("for all".to_string())?;
/// post.close();
/// assert_eq!(seven.join()?, ["for seven", "for all"]);
/// assert_eq!(nine.join()?, ["for nine", "for all"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn postbox<T>(
    recipients: impl IntoIterator<Item = u64>,
) -> io::Result<(Postbox<T>, Vec<Mailbox<T>>)> {
    let mut boxes = BTreeMap::new();
    let mut mailboxes = Vec::new();
    for id in recipients {
        let (send, recv) = seqpacket_pair()?;
        boxes.insert(id, Arc::new(send));
        mailboxes.push(Mailbox {
            id,
            end: recv,
            _type: PhantomData,
        });
    }
    Ok((
        Postbox {
            boxes,
            _type: PhantomData,
        },
        mailboxes,
    ))
}

impl<T> Clone for Postbox<T> {
    fn clone(&self) -> Self {
        Postbox {
            boxes: self.boxes.clone(),
            _type: PhantomData,
        }
    }
}

impl<T: Serialize> Postbox<T> {
    /// Sends `message` to recipient `id`; on failure the error holds it.
    ///
    /// ```
    /// use spychro::SendError;
    ///
    /// let (post, boxes) = spychro::postbox::<u32>([1])?;
    /// post.send_to(1, 10).unwrap();
    /// match post.send_to(2, 20) {
    ///     Err(SendError::UnknownRecipient { message, id }) => assert_eq!((message, id), (20, 2)),
    ///     other => panic!("{other:?}"),
    /// }
    /// # drop(boxes);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to(&self, id: u64, message: T) -> Result<(), SendError<T>> {
        let Some(end) = self.boxes.get(&id) else {
            return Err(SendError::UnknownRecipient { message, id });
        };
        let bytes = match encode(&message) {
            Ok(bytes) => bytes,
            Err(error) => return Err(SendError::Serialize { message, error }),
        };
        end.send_bytes(&bytes)
            .map_err(|failure| failure.with(message))
    }

    /// Sends `message` to every recipient (encoded once, so it need not be `Clone`). A
    /// recipient that cannot take it does not keep it from the others: the error is the first
    /// recipient's (in id order) that failed, and every other recipient got the message.
    ///
    /// ```
    /// let (post, boxes) = spychro::postbox::<String>([1, 2])?;
    /// post.broadcast("stop".to_string()).unwrap();
    /// assert!(boxes.iter().all(|b| b.recv().unwrap() == "stop"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broadcast(&self, message: T) -> Result<(), SendError<T>> {
        let bytes = match encode(&message) {
            Ok(bytes) => bytes,
            Err(error) => return Err(SendError::Serialize { message, error }),
        };
        let mut first_failure = None;
        for end in self.boxes.values() {
            if let Err(failure) = end.send_bytes(&bytes) {
                first_failure.get_or_insert(failure);
            }
        }
        match first_failure {
            None => Ok(()),
            Some(failure) => Err(failure.with(message)),
        }
    }
}

impl<T> Postbox<T> {
    /// The recipients' ids, in order.
    ///
    /// ```
    /// let (post, _boxes) = spychro::postbox::<u32>([9, 3])?;
    /// assert_eq!(post.recipients().collect::<Vec<_>>(), [3, 9]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recipients(&self) -> impl Iterator<Item = u64> + '_ {
        self.boxes.keys().copied()
    }

    /// Shuts every mailbox down, for every process: each takes what was sent to it, then gets
    /// [`RecvError::Disconnected`].
    ///
    /// ```
    /// use spychro::RecvError;
    ///
    /// let (post, boxes) = spychro::postbox::<u32>([1])?;
    /// post.send_to(1, 10).unwrap();
    /// post.close();
    /// assert_eq!(boxes[0].recv().unwrap(), 10);
    /// assert!(matches!(boxes[0].recv(), Err(RecvError::Disconnected)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&self) {
        for end in self.boxes.values() {
            end.close_sending();
        }
    }
}

impl<T: DeserializeOwned> Mailbox<T> {
    /// Takes the next message for this recipient, waiting for one.
    ///
    /// ```
    /// let (post, boxes) = spychro::postbox::<u32>([1])?;
    /// post.send_to(1, 10).unwrap();
    /// assert_eq!(boxes[0].recv().unwrap(), 10);
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
    /// let (post, boxes) = spychro::postbox::<u32>([1])?;
    /// let waited = boxes[0].recv_timeout(Duration::from_millis(10));
    /// assert!(matches!(waited, Err(RecvTimeoutError::Timeout)));
    /// # drop(post);
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
    /// let (post, boxes) = spychro::postbox::<u32>([1])?;
    /// assert!(matches!(boxes[0].try_recv(), Err(TryRecvError::Empty)));
    /// drop(post);
    /// assert!(matches!(boxes[0].try_recv(), Err(TryRecvError::Disconnected)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.end.try_recv()
    }
}

impl<T> Mailbox<T> {
    /// This recipient's id.
    ///
    /// ```
    /// let (_post, boxes) = spychro::postbox::<u32>([4, 2])?;
    /// assert_eq!(boxes.iter().map(|b| b.id()).collect::<Vec<_>>(), [4, 2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }
}
