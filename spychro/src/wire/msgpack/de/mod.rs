//! Reads MessagePack values from a byte slice into serde types, borrowing strings and bytes
//! where the type allows.
//!
//! A `bin` (how byte sequences travel, see `wire::bytes`) is handed as bytes to a type that
//! asks for bytes, and as a sequence of `u8`s to anything else, so `Vec<u8>` reads it and
//! self-describing readers (`#[serde(untagged)]`, `flatten`, `serde_json::Value`) see the
//! sequence of numbers it was.
//!
//! An `ext` of type [`SOME`] is the marker that wraps `Some(x)` where `x` would read as `None`
//! (see `ser`): an option, and any reader that takes any value (`deserialize_any`), is given
//! `visit_some` and reads `x` from the marker's payload in place, which it must fill exactly.
//! A marker counts as a level of nesting, as an array or map does (values nesting deeper than
//! [`MAX_DEPTH`] are refused before the stack runs out). Other extension values are refused.
//!
//! A struct's fields are read from an array by position, so an array that holds fewer values
//! than the struct reads, or more, is refused with a message naming the struct and its
//! fields, rather than read into shifted fields. A struct sent as a map is read by name.
//! Two shapes serde reads only by name cannot travel so, and are errors: the unit variants of
//! adjacently tagged enums (written as their tag alone, read as tag and content), and the
//! struct variants of adjacently tagged and untagged enums (read from a map only). An untagged
//! enum with a later variant that takes a sequence (`Other(serde_json::Value)`) would take
//! such a struct variant's array instead, as it would with any format that writes structs as
//! arrays.

use serde::de::{self, Visitor};

use super::{Error, MAX_DEPTH, SOME, ext_header, too_deep, value_len};

mod access;
use access::*;

/// What reading a struct's fields fails with when they do not line up with the array that
/// holds them: the struct asked for a field past the end, or left values unread. Only ever
/// seen by [`Deserializer::fields`], which says what happened instead.
const MISFIT: &str = "a struct's fields do not line up with the values sent";

/// The error for [`MISFIT`].
#[cold]
#[inline(never)]
fn misfit() -> Error {
    Error::new(MISFIT.to_owned())
}

/// What the count of a struct's fields left to read becomes when it asks for one past the
/// end (never 0 again, so that the mismatch shows).
const FIELDS: usize = usize::MAX;

/// A MessagePack deserializer over a slice; values may follow each other.
pub(crate) struct Deserializer<'de> {
    bytes: &'de [u8],
    pos: usize,
    depth: u32,
}

/// How far to shift eight big-endian bytes right to keep the first 1, 2, 4 or 8.
const SHIFT: [u32; 4] = [56, 48, 32, 0];

impl<'de> Deserializer<'de> {
    /// A deserializer reading `bytes` from the start.
    #[inline]
    pub(crate) fn new(bytes: &'de [u8]) -> Self {
        Deserializer {
            bytes,
            pos: 0,
            depth: MAX_DEPTH,
        }
    }

    /// A deserializer reading `bytes` from `pos` (a value boundary).
    #[inline]
    pub(crate) fn at(bytes: &'de [u8], pos: usize) -> Self {
        Deserializer {
            bytes,
            pos: pos.min(bytes.len()),
            depth: MAX_DEPTH,
        }
    }

    /// Where the next value starts.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Moves to `pos` (a value boundary found by [`value_len`]).
    #[inline]
    pub(crate) fn set_position(&mut self, pos: usize) {
        self.pos = pos.min(self.bytes.len());
        self.depth = MAX_DEPTH;
    }

    #[inline(always)]
    fn peek(&self) -> Result<u8, Error> {
        match self.bytes.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(Error::eof()),
        }
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'de [u8], Error> {
        let bytes: &'de [u8] = self.bytes;
        let end = self.pos.checked_add(n).ok_or_else(Error::eof)?;
        let taken = bytes.get(self.pos..end).ok_or_else(Error::eof)?;
        self.pos = end;
        Ok(taken)
    }

    #[inline(always)]
    fn be<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let b = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    /// An 8-, 16- or 32-bit length after a marker.
    #[inline]
    fn len(&mut self, width: u8) -> Result<usize, Error> {
        Ok(match width {
            1 => self.be::<1>()?[0] as usize,
            2 => u16::from_be_bytes(self.be()?) as usize,
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    fn str_of(&mut self, len: usize) -> Result<&'de str, Error> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map_err(|e| Error::new(format!("a string is not valid UTF-8 ({e})")))
    }

    /// Any value, as the marker says. `bytes`: hand a `bin` over as bytes, not as a sequence.
    fn any<V: Visitor<'de>>(&mut self, visitor: V, bytes: bool) -> Result<V::Value, Error> {
        let marker = self.peek()?;
        self.pos += 1;
        match marker {
            0x00..=0x7f => visitor.visit_u64(u64::from(marker)),
            0xe0..=0xff => visitor.visit_i64(i64::from(marker as i8)),
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), visitor),
            0x90..=0x9f => self.seq(usize::from(marker & 0x0f), visitor),
            0xa0..=0xbf => visitor.visit_borrowed_str(self.str_of(usize::from(marker & 0x1f))?),
            0xc0 => visitor.visit_unit(),
            0xc2 => visitor.visit_bool(false),
            0xc3 => visitor.visit_bool(true),
            0xc4..=0xc6 => {
                let len = self.len(1 << (marker - 0xc4))?;
                let blob = self.take(len)?;
                if bytes {
                    visitor.visit_borrowed_bytes(blob)
                } else {
                    visit_bytes_as_seq(visitor, blob)
                }
            }
            0xca => visitor.visit_f32(f32::from_be_bytes(self.be()?)),
            0xcb => visitor.visit_f64(f64::from_be_bytes(self.be()?)),
            0xcc => visitor.visit_u64(u64::from(self.be::<1>()?[0])),
            0xcd => visitor.visit_u64(u64::from(u16::from_be_bytes(self.be()?))),
            0xce => visitor.visit_u64(u64::from(u32::from_be_bytes(self.be()?))),
            0xcf => visitor.visit_u64(u64::from_be_bytes(self.be()?)),
            0xd0 => visitor.visit_i64(i64::from(i8::from_be_bytes(self.be()?))),
            0xd1 => visitor.visit_i64(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => visitor.visit_i64(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => visitor.visit_i64(i64::from_be_bytes(self.be()?)),
            0xd9..=0xdb => {
                let len = self.len(1 << (marker - 0xd9))?;
                visitor.visit_borrowed_str(self.str_of(len)?)
            }
            0xdc | 0xdd => {
                let len = self.len(if marker == 0xdc { 2 } else { 4 })?;
                self.seq(len, visitor)
            }
            0xde | 0xdf => {
                let len = self.len(if marker == 0xde { 2 } else { 4 })?;
                self.map(len, visitor)
            }
            0xc7..=0xc9 => {
                self.pos -= 1;
                self.wrapped_some(visitor)
            }
            0xd4..=0xd8 => Err(foreign_ext(None)),
            0xc1 => Err(Error::new("byte 0xc1 is not MessagePack".to_owned())),
        }
    }

    /// A number, read without going through [`any`](Self::any) when it is an integer.
    #[inline(always)]
    fn number<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        let rest = &self.bytes[self.pos.min(self.bytes.len())..];
        let Some(&marker) = rest.first() else {
            return Err(Error::eof());
        };
        // (value, bytes taken), when the marker is an unsigned integer whose bytes are here.
        let unsigned = match marker {
            0x00..=0x7f => Some((u64::from(marker), 1)),
            0xcc..=0xcf => {
                // 1, 2, 4 or 8 bytes follow (the marker's low two bits say which).
                let n = 1usize << (marker & 3);
                if let Some(&word) = rest.get(1..9).and_then(|b| <&[u8; 8]>::try_from(b).ok()) {
                    // Eight bytes are here: the value is the first `n` of them, big-endian.
                    Some((
                        u64::from_be_bytes(word) >> SHIFT[usize::from(marker & 3)],
                        1 + n,
                    ))
                } else {
                    rest.get(1..1 + n).map(|b| {
                        let v = b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x));
                        (v, 1 + n)
                    })
                }
            }
            _ => None,
        };
        match unsigned {
            Some((v, n)) => {
                self.pos += n;
                visitor.visit_u64(v)
            }
            None => self.any_detached(visitor),
        }
    }

    /// [`any`](Self::any) on a copy that is written back after: the deserializer's own
    /// address is never taken on the integer fast path, so a loop over numbers can keep it
    /// in registers.
    #[inline(always)]
    fn any_detached<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        let mut de = Deserializer {
            bytes: self.bytes,
            pos: self.pos,
            depth: self.depth,
        };
        let value = de.any(visitor, false);
        self.pos = de.pos;
        self.depth = de.depth;
        value
    }

    /// A `Some` whose value is wrapped in a marker (the `ext` at the reader's position):
    /// `visit_some`, reading the payload in place. The marker counts as a level of nesting
    /// (markers can nest as deep as the bytes go); its payload must be exactly one value.
    #[cold]
    #[inline(never)]
    fn wrapped_some<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        let full: &'de [u8] = self.bytes;
        let (header, kind, len) = ext_header(&full[self.pos..]).ok_or_else(Error::eof)?;
        if kind != SOME {
            return Err(foreign_ext(Some(kind)));
        }
        let end = (self.pos + header)
            .checked_add(len)
            .filter(|&end| end <= full.len())
            .ok_or_else(Error::eof)?;
        self.enter()?;
        self.pos += header;
        self.bytes = &full[..end];
        let value = visitor.visit_some(&mut *self);
        self.bytes = full;
        let value = value?;
        if self.pos != end {
            return Err(Error::new(
                "the marker of a `Some` holds more than one value".to_owned(),
            ));
        }
        self.depth += 1;
        Ok(value)
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth = self
            .depth
            .checked_sub(1)
            .ok_or_else(|| too_deep("a value cannot be read"))?;
        Ok(())
    }

    fn seq<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.enter()?;
        let mut access = Elements {
            de: self,
            left: len,
        };
        let value = visitor.visit_seq(&mut access)?;
        let left = access.left;
        self.depth += 1;
        match left {
            0 => Ok(value),
            _ => Err(de::Error::invalid_length(len, &"fewer elements")),
        }
    }

    /// An array of a struct's `len` fields, which the visitor must read exactly (see
    /// [`fields`](Self::fields)).
    fn struct_seq<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.enter()?;
        let mut access = Fields {
            de: self,
            left: len,
        };
        let value = visitor.visit_seq(&mut access)?;
        let left = access.left;
        self.depth += 1;
        match left {
            0 => Ok(value),
            _ => Err(misfit()),
        }
    }

    fn map<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.enter()?;
        let mut access = Entries {
            de: self,
            left: len,
        };
        let value = visitor.visit_map(&mut access)?;
        let left = access.left;
        self.depth += 1;
        match left {
            0 => Ok(value),
            _ => Err(de::Error::invalid_length(len, &"fewer entries")),
        }
    }

    /// The fields of a struct or struct variant. An array holds them by position, so it must
    /// hold as many as the struct reads: one left out when written (`skip_serializing`) or
    /// not read back (`skip_deserializing`) would shift every field after it, so the reader
    /// asking for a field past the end, or leaving values unread, is an error that names
    /// the struct (the count of fields left shows it after the visit, see [`Fields`]; when
    /// serde's own visitor fails on the missing field, or a field fails to read, while the
    /// counts differ, its error gets the same explanation). `fields` counts aliases too, so
    /// it is not compared with the array's length up front. Anything else (a map, from another
    /// writer) goes to the visitor as it is.
    fn fields<V: Visitor<'de>>(
        &mut self,
        owner: Owner,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let marker = self.peek()?;
        let len = match marker {
            0x90..=0x9f => {
                self.pos += 1;
                usize::from(marker & 0x0f)
            }
            0xdc | 0xdd => {
                self.pos += 1;
                self.len(if marker == 0xdc { 2 } else { 4 })?
            }
            _ => return self.any(visitor, false),
        };
        match self.struct_seq(len, visitor) {
            Ok(value) => Ok(value),
            Err(e) => Err(self.fields_failed(e, owner, fields, len)),
        }
    }

    /// Reading a struct's fields from an array failed with `e`: because they did not line
    /// up with the array (the struct asked for a field past its end, or left values unread),
    /// or, when the counts differ, perhaps because of that.
    #[cold]
    #[inline(never)]
    fn fields_failed(&self, e: Error, owner: Owner, fields: &[&str], sent: usize) -> Error {
        if *e.0 == *MISFIT {
            self.misaligned(owner, fields, sent)
        } else if sent != fields.len() {
            Error::new(format!(
                "{e}; perhaps because {}",
                self.misaligned(owner, fields, sent)
            ))
        } else {
            e
        }
    }

    /// The fields of `owner` do not line up with the `sent` values of an array.
    #[cold]
    #[inline(never)]
    fn misaligned(&self, owner: Owner, fields: &[&str], sent: usize) -> Error {
        // An adjacently tagged enum reads its tag and content as a struct of two fields, but
        // writes a unit variant as its tag alone.
        let adjacent = match owner {
            Owner::Struct(name) if fields.len() == 2 && sent == 1 => format!(
                " (or, if `{name}` is an enum with `#[serde(tag = \"{}\", content = \"{}\")]`, \
                 one of its unit variants was sent: they travel as their tag alone and cannot be \
                 read back by position, so give the variant a `()` field or choose another \
                 representation)",
                fields[0], fields[1]
            ),
            _ => String::new(),
        };
        let owner = match owner {
            Owner::Struct(name) => format!("struct `{name}`"),
            Owner::Variant { name, at } => {
                let mut de = Deserializer::at(self.bytes, at);
                let variant = match <&str as de::Deserialize>::deserialize(&mut de) {
                    Ok(variant) => variant.to_owned(),
                    Err(_) => "?".to_owned(),
                };
                format!("struct variant `{name}::{variant}`")
            }
        };
        Error::new(format!(
            "{owner} expects {} fields ({}) but the value sent holds {sent}: a field was left \
             out when serializing (`#[serde(skip_serializing)]` / `skip_serializing_if`) or \
             is not read back (`#[serde(skip_deserializing)]`); fields travel by position, so \
             use `#[serde(skip)]` on both sides or remove the attribute{adjacent}",
            fields.len(),
            fields.join(", "),
        ))
    }

    /// A 128-bit integer: a number, or 16 big-endian bytes.
    fn wide(&mut self) -> Result<Option<[u8; 16]>, Error> {
        if self.peek()? == 0xc4 && self.bytes.get(self.pos + 1) == Some(&16) {
            self.pos += 2;
            return self.be::<16>().map(Some);
        }
        Ok(None)
    }
}

/// An extension value that is not the marker of a `Some` (`kind`: its type, when known).
#[cold]
fn foreign_ext(kind: Option<u8>) -> Error {
    let kind = kind.map_or(String::new(), |k| format!(" of type {}", k as i8));
    Error::new(format!(
        "a MessagePack extension value{kind}, which spychro never writes"
    ))
}

/// A blob read as a sequence of `u8`s.
fn visit_bytes_as_seq<'de, V: Visitor<'de>>(visitor: V, blob: &[u8]) -> Result<V::Value, Error> {
    // A `Vec<u8>` (its visitor makes one) is the blob, copied at once.
    if let Some(v) = crate::wire::bytes::byte_vec_as::<V>(blob) {
        return Ok(v);
    }
    let mut seq = de::value::SeqDeserializer::<_, Error>::new(blob.iter().copied());
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(value)
}

macro_rules! numbers {
    ($($method:ident)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.number(visitor)
        }
    )*};
}

macro_rules! anything {
    ($($method:ident)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.any(visitor, false)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    numbers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_f32 deserialize_f64
    }

    anything! {
        deserialize_any deserialize_bool deserialize_char deserialize_str deserialize_string
        deserialize_seq deserialize_map deserialize_identifier
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.wide()? {
            Some(b) => visitor.visit_i128(i128::from_be_bytes(b)),
            None => self.number(visitor),
        }
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.wide()? {
            Some(b) => visitor.visit_u128(u128::from_be_bytes(b)),
            None => self.number(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.any(visitor, true)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.any(visitor, true)
    }

    /// Nil is `None`; a marker holds a `Some` whose value would read as `None` (see `ser`);
    /// anything else is the value of a `Some`.
    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.peek()? {
            0xc0 => {
                self.pos += 1;
                visitor.visit_none()
            }
            0xc7..=0xc9 => self.wrapped_some(visitor),
            _ => visitor.visit_some(self),
        }
    }

    /// Nil; an empty array is read as unit too (rmp-serde writes unit structs so).
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.peek()? == 0x90 {
            self.pos += 1;
            return visitor.visit_unit();
        }
        self.any(visitor, false)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.any(visitor, false)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.any(visitor, false)
    }

    /// An array of the fields by position (see [`fields`](Deserializer::fields)), or a map
    /// from their names, as other writers may send.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.fields(Owner::Struct(name), fields, visitor)
    }

    /// A variant's name alone (a unit variant), or a one-entry map from its name to its
    /// content. A variant's index works where its name does.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.peek()? {
            0x81 => {
                self.pos += 1;
                self.enter()?;
                let at = self.pos;
                let value = visitor.visit_enum(Variant {
                    de: self,
                    content: true,
                    name,
                    at,
                })?;
                self.depth += 1;
                Ok(value)
            }
            0xa0..=0xbf | 0xd9..=0xdb | 0x00..=0x7f | 0xcc..=0xcf => {
                let at = self.pos;
                visitor.visit_enum(Variant {
                    de: self,
                    content: false,
                    name,
                    at,
                })
            }
            _ => Err(Error::new(
                "expected an enum: a variant name, or a map of one entry from a variant name \
                 to its content"
                    .to_owned(),
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let len = value_len(&self.bytes[self.pos..]).map_err(Error::new)?;
        self.pos += len;
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}
