//! [`WireError`]: a message between the caller and a worker that is malformed or truncated.

use std::io;

/// A malformed or truncated message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The stream ended in the middle of a frame.
    #[error("the stream ended in the middle of a frame ({got} of {want} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes the frame claimed.
        want: usize,
    },
    /// A frame claimed more than the maximum size.
    #[error("a frame claims {claimed} bytes, above the {max}-byte limit")]
    TooLarge {
        /// The claimed size.
        claimed: usize,
        /// The limit.
        max: usize,
    },
    /// A frame body is shorter than its fields.
    #[error("a {what} message is shorter than its fields")]
    Short {
        /// The kind of message.
        what: &'static str,
    },
    /// An unknown frame tag.
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    /// A field failed to decode.
    #[error("a {what} message failed to decode: {message}")]
    Decode {
        /// The kind of message.
        what: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// The operating system failed a read or write.
    #[error("i/o error on the worker socket: {0}")]
    Io(#[from] io::Error),
}

impl WireError {
    /// The same error, once more (an OS error is copied by its code and text).
    pub(crate) fn duplicate(&self) -> WireError {
        match self {
            WireError::Truncated { got, want } => WireError::Truncated {
                got: *got,
                want: *want,
            },
            WireError::TooLarge { claimed, max } => WireError::TooLarge {
                claimed: *claimed,
                max: *max,
            },
            WireError::Short { what } => WireError::Short { what },
            WireError::UnknownTag(t) => WireError::UnknownTag(*t),
            WireError::Decode { what, message } => WireError::Decode {
                what,
                message: message.clone(),
            },
            WireError::Io(e) => WireError::Io(super::worker::copy_io(e)),
        }
    }
}
