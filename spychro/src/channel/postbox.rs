//! [`postbox`]: messages addressed to one recipient, each received only by its mailbox, with a
//! shutdown that reaches every mailbox.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::endpoint::{ChannelError, Endpoint, encode, seqpacket_pair};

/// Sends messages addressed to recipients (pymulproc's recipient pid): clone it, or give it to
/// children.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Postbox<T> {
    boxes: BTreeMap<u64, Arc<Endpoint>>,
    #[serde(skip)]
    _type: PhantomData<fn(T)>,
}

/// The messages addressed to one recipient: give it to the child that is that recipient.
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
/// post.send_to(9, &"for nine".to_string())?;
/// post.send_to(7, &"for seven".to_string())?;
/// post.broadcast(&"for all".to_string())?;
/// post.close();
/// assert_eq!(seven.join()?, ["for seven", "for all"]);
/// assert_eq!(nine.join()?, ["for nine", "for all"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn postbox<T>(
    recipients: impl IntoIterator<Item = u64>,
) -> Result<(Postbox<T>, Vec<Mailbox<T>>), ChannelError> {
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
    /// Sends `message` to recipient `id`.
    pub fn send_to(&self, id: u64, message: &T) -> Result<(), ChannelError> {
        let end = self
            .boxes
            .get(&id)
            .ok_or(ChannelError::UnknownRecipient(id))?;
        end.send_bytes(&encode(message)?)
    }

    /// Sends `message` to every recipient.
    pub fn broadcast(&self, message: &T) -> Result<(), ChannelError> {
        let bytes = encode(message)?;
        for end in self.boxes.values() {
            end.send_bytes(&bytes)?;
        }
        Ok(())
    }
}

impl<T> Postbox<T> {
    /// The recipients' ids.
    pub fn recipients(&self) -> impl Iterator<Item = u64> + '_ {
        self.boxes.keys().copied()
    }

    /// Shuts every mailbox down, for every process: each takes what was sent to it, then gets
    /// [`ChannelError::Disconnected`].
    pub fn close(&self) {
        for end in self.boxes.values() {
            end.close_sending();
        }
    }
}

impl<T: DeserializeOwned> Mailbox<T> {
    /// Takes the next message for this recipient, waiting for one.
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

impl<T> Mailbox<T> {
    /// This recipient's id.
    pub fn id(&self) -> u64 {
        self.id
    }
}
