//! The wire between the caller and a worker: length-prefixed frames over a private socketpair.
//!
//! See `frame` for the framing rules, `failure` for how an item's failure travels, `message` for what travels inside a frame, `codec` for
//! how values are laid out and `msgpack` for the format itself.

mod bytes;
mod codec;
mod failure;
mod frame;
mod message;
mod msgpack;
mod plain_batch;
#[cfg(test)]
mod zoo;

pub(crate) use codec::{Sink, Values, decode as decode_value, encode as encode_value, encode_into};
pub(crate) use failure::WireFailure;
pub(crate) use frame::{Cursor, FrameBuf, begin_frame, end_frame, holds_whole_frame, read_frame};
pub(crate) use message::*;
pub(crate) use plain_batch::{PlainBatch, TAG_PLAIN_BATCH, parse_plain_batch, push_plain_batch};
