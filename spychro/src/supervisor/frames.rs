//! The link between a supervised process and its supervisor: frames over a private stream
//! socketpair, with the wire's framing (`[u32 length][u8 tag][body]`). Messages between
//! processes are routed by their header alone: the supervisor copies the encoded message
//! without decoding it. The protocol, in order, is in this folder's README.
//!
//! ```text
//! SEND     to:u8 id:u64 kind:u32 message          process -> supervisor
//! DELIVER  from:u64 to:u8 id:u64 kind:u32 message supervisor -> process
//! REFUSED  from:u64 kind:u32 reason(utf-8)         process -> supervisor (not handled)
//! ```
//!
//! The other frames carry one encoded value (an object, a line, a prompt, a name, ids).

use super::message::To;
use crate::error::WireError;
use crate::wire::{self, Cursor};

// Process to supervisor.
pub(crate) const UP_SEND: u8 = 1;
pub(crate) const UP_OBJECT: u8 = 2;
pub(crate) const UP_PRINT: u8 = 3;
pub(crate) const UP_INPUT: u8 = 4;
pub(crate) const UP_IDS: u8 = 5;
/// Its run phase returned: it handles what was sent to it until `CLOSE`.
pub(crate) const UP_FINISHED: u8 = 6;
/// A handler returned `Flow::Stop`: it refuses what comes until `CLOSE`.
pub(crate) const UP_STOPPED: u8 = 7;
pub(crate) const UP_REFUSED: u8 = 8;
// Supervisor to process.
pub(crate) const DOWN_DELIVER: u8 = 20;
pub(crate) const DOWN_INPUT: u8 = 21;
pub(crate) const DOWN_IDS: u8 = 22;
/// Nothing more will be routed to it: it ends once it has handled what came before.
pub(crate) const DOWN_CLOSE: u8 = 23;

/// A target on the wire: a tag and an id.
fn to_wire(to: To) -> (u8, u64) {
    match to {
        To::Id(id) => (0, id),
        To::Listeners => (1, 0),
        To::Broadcast => (2, 0),
    }
}

fn to_from_wire(tag: u8, id: u64) -> Result<To, WireError> {
    match tag {
        0 => Ok(To::Id(id)),
        1 => Ok(To::Listeners),
        2 => Ok(To::Broadcast),
        _ => Err(WireError::Decode {
            what: "supervisor target",
            message: format!("unknown target tag {tag}"),
        }),
    }
}

/// Appends a SEND frame: the message's header, then the message encoded.
pub(crate) fn push_send<M: serde::Serialize>(
    buf: &mut Vec<u8>,
    to: To,
    kind: u32,
    message: &M,
) -> Result<(), String> {
    let start = wire::begin_frame(buf, UP_SEND);
    let (tag, id) = to_wire(to);
    buf.push(tag);
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&kind.to_le_bytes());
    if let Err(e) = wire::encode_into(buf, message) {
        buf.truncate(start);
        return Err(e);
    }
    wire::end_frame(buf, start).map_err(|e| {
        buf.truncate(start);
        e.to_string()
    })
}

/// A SEND frame's header and encoded message.
pub(crate) fn parse_send(body: &[u8]) -> Result<(To, u32, &[u8]), WireError> {
    let mut c = Cursor::new(body, "message");
    let tag = c.u8()?;
    let id = c.u64()?;
    let kind = c.u32()?;
    let rest = c.bytes(c.remaining())?;
    Ok((to_from_wire(tag, id)?, kind, rest))
}

/// Appends a DELIVER frame for a message (already encoded) from `from`.
pub(crate) fn push_deliver(buf: &mut Vec<u8>, from: u64, to: To, kind: u32, message: &[u8]) {
    let start = wire::begin_frame(buf, DOWN_DELIVER);
    let (tag, id) = to_wire(to);
    buf.extend_from_slice(&from.to_le_bytes());
    buf.push(tag);
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&kind.to_le_bytes());
    buf.extend_from_slice(message);
    // A message the process could send fits a frame: its SEND frame was one.
    let _ = wire::end_frame(buf, start);
}

/// A DELIVER frame's sender, target, kind and encoded message.
pub(crate) fn parse_deliver(body: &[u8]) -> Result<(u64, To, u32, &[u8]), WireError> {
    let mut c = Cursor::new(body, "delivered message");
    let from = c.u64()?;
    let tag = c.u8()?;
    let id = c.u64()?;
    let kind = c.u32()?;
    let rest = c.bytes(c.remaining())?;
    Ok((from, to_from_wire(tag, id)?, kind, rest))
}

/// Appends a REFUSED frame: a message from `from` of `kind` that was not handled, and why.
pub(crate) fn push_refused(buf: &mut Vec<u8>, from: u64, kind: u32, reason: &str) {
    let start = wire::begin_frame(buf, UP_REFUSED);
    buf.extend_from_slice(&from.to_le_bytes());
    buf.extend_from_slice(&kind.to_le_bytes());
    buf.extend_from_slice(reason.as_bytes());
    let _ = wire::end_frame(buf, start);
}

/// A REFUSED frame's sender, kind and reason.
pub(crate) fn parse_refused(body: &[u8]) -> Result<(u64, u32, String), WireError> {
    let mut c = Cursor::new(body, "refused message");
    let from = c.u64()?;
    let kind = c.u32()?;
    let rest = c.bytes(c.remaining())?;
    Ok((from, kind, String::from_utf8_lossy(rest).into_owned()))
}

/// Appends an empty frame.
pub(crate) fn push_empty(buf: &mut Vec<u8>, tag: u8) {
    wire::push_empty(buf, tag);
}

/// Appends a frame holding one encoded value.
pub(crate) fn push_value<T: serde::Serialize>(
    buf: &mut Vec<u8>,
    tag: u8,
    value: &T,
) -> Result<(), String> {
    wire::push_message(buf, tag, value).map_err(|e| e.to_string())
}
