//! [`pipe`]: a duplex channel between two processes.

use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::endpoint::{Endpoint, encode, seqpacket_pair};
use super::error::{RecvError, RecvTimeoutError, SendError, TryRecvError};

/// One end of a duplex [`pipe`]: sends `S`, receives `R`.
///
/// ```
/// let (a, b) = spychro::pipe::<String, usize>()?;
/// a.send("four".to_string()).unwrap();
/// let word = b.recv().unwrap();
/// b.send(word.len()).unwrap();
/// assert_eq!(a.recv().unwrap(), 4);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct PipeEnd<S, R> {
    end: Endpoint,
    #[serde(skip)]
    _types: PhantomData<fn(S) -> R>,
}

/// A duplex channel between two processes: keep one end, give the other to a child (in its
/// item or arguments). A peer that is gone ends a waiting `recv` with
/// [`RecvError::Disconnected`], and a `send` to it with
/// [`SendError::Disconnected`], which hands the message back.
///
/// ```
/// use spychro::{PipeEnd, Process};
///
/// #[spychro::job]
/// fn echo_upper(end: PipeEnd<String, String>) -> usize {
///     let mut n = 0;
///     while let Ok(line) = end.recv() {
///         end.send(line.to_uppercase()).unwrap();
///         n += 1;
///     }
///     n
/// }
///
/// let (ours, theirs) = spychro::pipe::<String, String>()?;
/// let mut child = Process::new(echo_upper, theirs);
/// child.start()?;
/// ours.send("hello".to_string())?;
/// assert_eq!(ours.recv()?, "HELLO");
/// drop(ours); // the child's recv now ends
/// assert_eq!(child.join()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
// The two ends' types are the documentation: an alias would hide them.
#[allow(clippy::type_complexity)]
pub fn pipe<A, B>() -> io::Result<(PipeEnd<A, B>, PipeEnd<B, A>)> {
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
    /// Sends a message to the other end; on failure the error holds it.
    ///
    /// ```
    /// use spychro::SendError;
    ///
    /// let (a, b) = spychro::pipe::<u32, u32>()?;
    /// a.send(1).unwrap();
    /// drop(b);
    /// assert!(matches!(a.send(2), Err(SendError::Disconnected(2))));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, message: S) -> Result<(), SendError<S>> {
        let bytes = match encode(&message) {
            Ok(bytes) => bytes,
            Err(error) => return Err(SendError::Serialize { message, error }),
        };
        self.end
            .send_bytes(&bytes)
            .map_err(|failure| failure.with(message))
    }

    /// Waits for the next message.
    ///
    /// ```
    /// use spychro::RecvError;
    ///
    /// let (a, b) = spychro::pipe::<u32, u32>()?;
    /// b.send(5).unwrap();
    /// drop(b); // what it sent is still there
    /// assert_eq!(a.recv().unwrap(), 5);
    /// assert!(matches!(a.recv(), Err(RecvError::Disconnected)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&self) -> Result<R, RecvError> {
        self.end.recv_wait()
    }

    /// Waits at most `timeout` for the next message.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spychro::RecvTimeoutError;
    ///
    /// let (a, b) = spychro::pipe::<u32, u32>()?;
    /// let waited = a.recv_timeout(Duration::from_millis(10));
    /// assert!(matches!(waited, Err(RecvTimeoutError::Timeout)));
    /// b.send(5).unwrap();
    /// assert_eq!(a.recv_timeout(Duration::from_secs(1)).unwrap(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<R, RecvTimeoutError> {
        self.end.recv_timeout(timeout)
    }

    /// Takes the next message if one is there, without waiting.
    ///
    /// ```
    /// use spychro::TryRecvError;
    ///
    /// let (a, b) = spychro::pipe::<u32, u32>()?;
    /// assert!(matches!(a.try_recv(), Err(TryRecvError::Empty)));
    /// b.send(5).unwrap();
    /// assert_eq!(a.try_recv().unwrap(), 5);
    /// drop(b);
    /// assert!(matches!(a.try_recv(), Err(TryRecvError::Disconnected)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&self) -> Result<R, TryRecvError> {
        self.end.try_recv()
    }

    /// Whether no message is waiting at this end right now.
    ///
    /// ```
    /// let (a, b) = spychro::pipe::<u8, u8>()?;
    /// assert!(b.is_empty());
    /// a.send(1).unwrap();
    /// assert!(!b.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.end.is_empty()
    }
}
