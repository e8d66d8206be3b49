//! The wire between the caller and a worker: length-prefixed frames over a private socketpair.
//!
//! See `frame` for the framing rules and `message` for what travels inside a frame.

mod frame;
mod message;

pub use frame::WireError;
pub(crate) use frame::{Cursor, FrameBuf, read_frame};
pub(crate) use message::*;
