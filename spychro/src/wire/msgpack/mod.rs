//! MessagePack, written and read straight to and from byte buffers.
//!
//! This is the wire's serde format (see `codec` for how values are laid out in frames). It is
//! our own rather than rmp-serde's because its cost is per item: rmp-serde's generic I/O and
//! error plumbing took ~80 instructions to write and read back one `u64`; here it is a
//! handful, and strings and bytes are read borrowed, without a copy. The bytes are plain
//! MessagePack (`rmp-serde` reads them in the conformance tests). One thing is our own: a
//! `Some` whose value would read back as `None` (`Some(None)`, `Some(())`) is wrapped in an
//! extension value (see `ser`), where rmp-serde writes both as nil and reads back `None`.

mod de;
mod ser;

pub(crate) use de::Deserializer;
pub(crate) use ser::Serializer;

use std::fmt;

/// A value that could not be written or read, with serde's or our message. (Boxed, so that
/// a `Result` of it is as small as what it holds: results pass through every value.)
#[derive(Debug)]
pub(crate) struct Error(Box<str>);

impl Error {
    #[cold]
    pub(crate) fn new(message: String) -> Error {
        Error(message.into_boxed_str())
    }

    #[cold]
    fn eof() -> Error {
        Error::new("a value ends before its last byte".to_owned())
    }
}

/// How deep values may nest: arrays, maps, enum variants with content and the markers of
/// `Some` (see `ser`) each count a level. Reading and writing recurse once per level, in
/// frames as large as the types make them, so deeper values are refused before the stack runs
/// out, by the writer as well as the reader, so that whatever is sent can be read. 128 is
/// serde_json's limit. Measured with `serde_json::Value` (and an untagged enum buffering
/// one), 128 levels take ~770 KiB of stack to read and ~330 KiB to write with everything built
/// at opt-level 0, and ~60 KiB to read and ~560 KiB to write in the workspace's dev profile
/// (most of it the 4 KiB byte-gathering buffer of `bytes::Ser`, a level each): a spawned
/// thread's 2 MiB holds them with room to spare, where 400 levels (~2.4 MiB) would not.
pub(crate) const MAX_DEPTH: u32 = 128;

/// A value nests more than [`MAX_DEPTH`] deep; `doing`: what was refused.
#[cold]
#[inline(never)]
fn too_deep(doing: &str) -> Error {
    Error::new(format!(
        "{doing}: it nests more than {MAX_DEPTH} levels deep (each array, map, struct, enum \
         variant with content and wrapped `Some` is a level), and deeper values are refused \
         so that reading them cannot overflow the stack; send deep structures flattened (a \
         tree as a list of nodes that refer to their parents by index, say) or as a string \
         or bytes in a format of your own"
    ))
}

/// The MessagePack extension type of the marker that wraps `Some(x)` when `x` itself would
/// read as `None` (see `ser`).
pub(crate) const SOME: u8 = b'S';

/// The extension value at the start of `bytes` (whose first byte is an `ext 8/16/32` marker,
/// 0xc7..=0xc9): its header's length, its type and its payload's length. `None` when the
/// header is cut short.
#[inline]
pub(crate) fn ext_header(bytes: &[u8]) -> Option<(usize, u8, usize)> {
    let width = match bytes.first()? {
        0xc7 => 1,
        0xc8 => 2,
        _ => 4,
    };
    let len = bytes
        .get(1..1 + width)?
        .iter()
        .fold(0usize, |v, &b| (v << 8) | usize::from(b));
    Some((2 + width, *bytes.get(1 + width)?, len))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl serde::ser::Error for Error {
    #[cold]
    fn custom<T: fmt::Display>(message: T) -> Error {
        Error::new(message.to_string())
    }
}

impl serde::de::Error for Error {
    #[cold]
    fn custom<T: fmt::Display>(message: T) -> Error {
        Error::new(message.to_string())
    }
}

/// The length in bytes of the MessagePack value at the start of `bytes`, found by reading
/// only markers and lengths. Fails on bytes that are not one whole value.
pub(crate) fn value_len(bytes: &[u8]) -> Result<usize, String> {
    let short = || "a value ends before its last byte".to_owned();
    let mut at = 0usize;
    // Values still to step over: 1, plus the elements of every array and map entered.
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let marker = *bytes.get(at).ok_or_else(short)?;
        at += 1;
        let mut be = |n: usize| -> Result<u64, String> {
            let field = bytes.get(at..at + n).ok_or_else(short)?;
            at += n;
            Ok(field.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
        };
        // (bytes of payload to skip, values nested inside)
        let (skip, nested): (u64, u64) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (u64::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (be(1)?, 0),
            0xc5 | 0xda => (be(2)?, 0),
            0xc6 | 0xdb => (be(4)?, 0),
            0xc7 => (be(1)? + 1, 0),
            0xc8 => (be(2)? + 1, 0),
            0xc9 => (be(4)? + 1, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, be(2)?),
            0xdd => (0, be(4)?),
            0xde => (0, 2 * be(2)?),
            0xdf => (0, 2 * be(4)?),
            0xc1 => return Err("byte 0xc1 is not MessagePack".to_owned()),
        };
        at = at
            .checked_add(usize::try_from(skip).map_err(|_| short())?)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(short)?;
        pending += nested;
        // Every nested value takes at least a byte: a claim beyond the bytes left is false.
        if pending > (bytes.len() - at) as u64 {
            return Err(short());
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests;
