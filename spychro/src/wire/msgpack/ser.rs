//! Writes serde values as MessagePack straight into a `Vec<u8>`.
//!
//! Numbers take the smallest encoding; structs are arrays of their fields (by position);
//! enums are the variant's name, alone for a unit variant or as the key of a one-entry map
//! holding its content otherwise. A sequence or map of unknown length gets a 32-bit header
//! that is filled in when it ends.
//!
//! `None` is nil, and `Some(x)` is `x` itself, except where `x` would read back as `None`:
//! when `x` is nil too (`Some(None)`, `Some(())`, `Some` of a unit struct or of
//! `serde_json::Value::Null`) or is itself wrapped so. Such an `x` is wrapped in a marker, a
//! MessagePack `ext 8/16/32` of type [`SOME`] (`'S'`) whose payload is exactly `x`'s bytes:
//! `Some(None::<u8>)` is `c7 01 53 c0`, `Some(Some(None::<u8>))` is `c7 04 53 c7 01 53 c0`.
//! The reader turns a marker back into `Some` of its payload, so nested options come back as
//! they were sent. Every method of the serializer returns what it wrote ([`Written`]: nil or a
//! marker, or anything else), so `serialize_some` decides without reading the bytes back, and
//! for most types the answer is known when compiling: a plain `Some(5u8)` is still the one
//! byte `05` and costs no more than `5u8`.
//!
//! Values that nest deeper than [`MAX_DEPTH`] are refused, counted as the reader counts them
//! (markers included), so that nothing is sent that the reader would refuse.

use serde::ser::{self, Serialize};

use super::{Error, MAX_DEPTH, SOME, ext_header, too_deep};

/// The marker and width in bytes of an unsigned integer of 8 bits or more, by its bit length.
const UINT: [(u8, u8); 65] = {
    let mut t = [(0xcc, 1); 65];
    let mut bits = 9;
    while bits <= 64 {
        t[bits] = match bits {
            9..=16 => (0xcd, 2),
            17..=32 => (0xce, 4),
            _ => (0xcf, 8),
        };
        bits += 1;
    }
    t
};

/// What a value was written as, as far as a `Some` around it cares: every serializer method
/// returns it, so `serialize_some` knows without looking at the bytes, and for most types
/// knows at compile time (a `Some(5u8)` costs nothing more than `5u8`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Written {
    /// A value that reads back as itself.
    Value,
    /// Nil, or the marker of a `Some`: a `Some` around it must be marked too.
    Nil,
}

/// A MessagePack serializer appending to a buffer.
pub(crate) struct Serializer<'a> {
    out: &'a mut Vec<u8>,
    /// Levels of nesting open (see [`MAX_DEPTH`]), counted as the reader counts them.
    depth: u32,
}

impl<'a> Serializer<'a> {
    /// A serializer appending to `out`.
    #[inline]
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        Serializer { out, depth: 0 }
    }

    /// One level deeper: an array, a map or an enum variant with content.
    #[inline(always)]
    fn enter(&mut self) -> Result<(), Error> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep("a value cannot be sent"));
        }
        self.depth += 1;
        Ok(())
    }

    #[inline(always)]
    fn uint(&mut self, v: u64) {
        let out = &mut *self.out;
        out.reserve(9);
        let len = out.len();
        // SAFETY: `reserve(9)` made room for 9 bytes past `len`. A fixint stores one; a sized
        // integer stores its marker and 8 bytes, of which the `n` that encode it (its
        // big-endian low bytes, shifted to the front) become part of the vector.
        unsafe {
            let p = out.as_mut_ptr().add(len);
            if v < 0x80 {
                p.write(v as u8);
                out.set_len(len + 1);
                return;
            }
            let (marker, n) = UINT[64 - v.leading_zeros() as usize];
            p.write(marker);
            let n = usize::from(n);
            p.add(1)
                .cast::<[u8; 8]>()
                .write_unaligned((v << (64 - 8 * n)).to_be_bytes());
            out.set_len(len + 1 + n);
        }
    }

    #[inline(always)]
    fn int(&mut self, v: i64) {
        if v >= 0 {
            return self.uint(v as u64);
        }
        let out = &mut *self.out;
        if v >= -32 {
            put(out, 0, [v as u8]);
        } else if v >= i8::MIN as i64 {
            put(out, 0xd0, [v as u8]);
        } else if v >= i16::MIN as i64 {
            put(out, 0xd1, (v as i16).to_be_bytes());
        } else if v >= i32::MIN as i64 {
            put(out, 0xd2, (v as i32).to_be_bytes());
        } else {
            put(out, 0xd3, v.to_be_bytes());
        }
    }

    /// A header with a length: the fix form (`fix` marker plus length, below `fix_max`), or
    /// one of the three sized markers with an 8-, 16- or 32-bit length.
    #[inline(always)]
    fn header(
        &mut self,
        len: usize,
        fix: Option<(u8, usize)>,
        sized: [u8; 3],
    ) -> Result<(), Error> {
        let out = &mut *self.out;
        match fix {
            Some((marker, max)) if len < max => put(out, 0, [marker | len as u8]),
            _ if len <= u8::MAX as usize && sized[0] != 0 => put(out, sized[0], [len as u8]),
            _ if len <= u16::MAX as usize => put(out, sized[1], (len as u16).to_be_bytes()),
            _ => {
                let len = u32::try_from(len).map_err(|_| {
                    Error::new(format!("a length of {len} is above MessagePack's 2^32 - 1"))
                })?;
                put(out, sized[2], len.to_be_bytes());
            }
        }
        Ok(())
    }

    #[inline]
    fn str_header(&mut self, len: usize) -> Result<(), Error> {
        self.header(len, Some((0xa0, 32)), [0xd9, 0xda, 0xdb])
    }

    #[inline]
    fn array_header(&mut self, len: usize) -> Result<(), Error> {
        self.header(len, Some((0x90, 16)), [0, 0xdc, 0xdd])
    }

    #[inline]
    fn map_header(&mut self, len: usize) -> Result<(), Error> {
        self.header(len, Some((0x80, 16)), [0, 0xde, 0xdf])
    }

    #[inline]
    fn bin(&mut self, v: &[u8]) -> Result<(), Error> {
        self.header(v.len(), None, [0xc4, 0xc5, 0xc6])?;
        self.out.extend_from_slice(v);
        Ok(())
    }

    #[inline]
    fn string(&mut self, v: &str) -> Result<(), Error> {
        self.str_header(v.len())?;
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    /// A compound whose header says `len` elements (an array, or a map of `len` entries).
    #[inline]
    fn compound(&mut self, len: Option<usize>, map: bool) -> Result<Compound<'_, 'a>, Error> {
        self.enter()?;
        let unknown = match len {
            Some(len) if map => self.map_header(len).map(|()| None)?,
            Some(len) => self.array_header(len).map(|()| None)?,
            None => {
                // The 32-bit form, filled in by `end`.
                let at = self.out.len();
                self.out
                    .extend_from_slice(&[if map { 0xdf } else { 0xdd }, 0, 0, 0, 0]);
                Some(at)
            }
        };
        Ok(Compound {
            ser: self,
            announced: len.unwrap_or(0),
            unknown,
            count: 0,
        })
    }

    /// Puts the marker of a `Some` before the value written from `at` on: an `ext` of type
    /// [`SOME`] whose payload is that value.
    #[cold]
    #[inline(never)]
    fn wrap_some(&mut self, at: usize) -> Result<Written, Error> {
        // The value is nil, or the outermost of a chain of markers around a nil: with this
        // one, the reader enters a level for each.
        let mut chain = 1;
        let mut rest = &self.out[at..];
        while let Some(0xc7..=0xc9) = rest.first() {
            let Some((header, _, _)) = ext_header(rest) else {
                break;
            };
            chain += 1;
            rest = &rest[header..];
        }
        if self.depth + chain > MAX_DEPTH {
            return Err(too_deep("a value cannot be sent"));
        }
        let len = self.out.len() - at;
        let mut header = [0u8; 6];
        let n = if let Ok(len) = u8::try_from(len) {
            header[..3].copy_from_slice(&[0xc7, len, SOME]);
            3
        } else if let Ok(len) = u16::try_from(len) {
            let [a, b] = len.to_be_bytes();
            header[..4].copy_from_slice(&[0xc8, a, b, SOME]);
            4
        } else {
            let len = u32::try_from(len).map_err(|_| {
                Error::new(format!("a length of {len} is above MessagePack's 2^32 - 1"))
            })?;
            let [a, b, c, d] = len.to_be_bytes();
            header = [0xc9, a, b, c, d, SOME];
            6
        };
        self.out.splice(at..at, header[..n].iter().copied());
        Ok(Written::Nil)
    }

    /// The opening of an enum variant with content: a one-entry map keyed by its name, a
    /// level deeper (until the caller leaves it).
    #[inline]
    fn variant(&mut self, variant: &str) -> Result<(), Error> {
        self.enter()?;
        self.out.push(0x81);
        self.string(variant)
    }
}

/// Appends `marker` (unless it is 0: a fixint is its own marker) and `bytes`, with one room
/// check and fixed-size stores, where `extend_from_slice` would check and copy by a call.
#[inline(always)]
fn put<const N: usize>(out: &mut Vec<u8>, marker: u8, bytes: [u8; N]) {
    out.reserve(1 + N);
    let len = out.len();
    let m = usize::from(marker != 0);
    // SAFETY: `reserve(1 + N)` made room for 1 + N bytes past `len`; both stores stay within
    // it, and the `m + N` bytes they wrote (`m` is 0 or 1) become part of the vector.
    unsafe {
        let p = out.as_mut_ptr().add(len);
        p.write(marker);
        p.add(m).cast::<[u8; N]>().write_unaligned(bytes);
        out.set_len(len + m + N);
    }
}

/// The state of an array or map being written.
pub(crate) struct Compound<'s, 'a> {
    ser: &'s mut Serializer<'a>,
    /// Elements (or entries) the header announced.
    announced: usize,
    /// Where the header is, when the length was unknown and must be filled in at the end.
    unknown: Option<usize>,
    /// Elements (or entries) written.
    count: usize,
}

impl Compound<'_, '_> {
    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.count += 1;
        value.serialize(&mut *self.ser)?;
        Ok(())
    }

    /// Ends the array or map, leaving the `levels` of nesting it opened: 1, or 2 for the
    /// content of a variant (its one-entry map, then the array).
    #[inline]
    fn end(self, levels: u32) -> Result<Written, Error> {
        self.ser.depth -= levels;
        match self.unknown {
            Some(at) => {
                let count = u32::try_from(self.count).map_err(|_| {
                    Error::new(format!(
                        "{} elements are above MessagePack's 2^32 - 1",
                        self.count
                    ))
                })?;
                self.ser.out[at + 1..at + 5].copy_from_slice(&count.to_be_bytes());
                Ok(Written::Value)
            }
            None if self.count == self.announced => Ok(Written::Value),
            None => Err(Error::new(format!(
                "a value announced {} elements but gave {} (its Serialize impl is wrong)",
                self.announced, self.count
            ))),
        }
    }
}

/// Integers up to 64 bits: the smallest encoding of their value.
macro_rules! integers {
    ($($method:ident($ty:ty) $write:ident)*) => {$(
        #[inline]
        fn $method(self, v: $ty) -> Result<Written, Error> {
            #[allow(clippy::useless_conversion)]
            self.$write(v.into());
            Ok(Written::Value)
        }
    )*};
}

impl<'s, 'a> ser::Serializer for &'s mut Serializer<'a> {
    type Ok = Written;
    type Error = Error;
    type SerializeSeq = Compound<'s, 'a>;
    type SerializeTuple = Compound<'s, 'a>;
    type SerializeTupleStruct = Compound<'s, 'a>;
    type SerializeTupleVariant = Compound<'s, 'a>;
    type SerializeMap = Compound<'s, 'a>;
    type SerializeStruct = Compound<'s, 'a>;
    type SerializeStructVariant = Compound<'s, 'a>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<Written, Error> {
        self.out.push(if v { 0xc3 } else { 0xc2 });
        Ok(Written::Value)
    }
    integers! {
        serialize_i8(i8) int serialize_i16(i16) int serialize_i32(i32) int serialize_i64(i64) int
        serialize_u8(u8) uint serialize_u16(u16) uint serialize_u32(u32) uint serialize_u64(u64) uint
    }

    /// As a number when it fits 64 bits, else as 16 big-endian bytes.
    fn serialize_i128(self, v: i128) -> Result<Written, Error> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(v), _) => self.int(v),
            (_, Ok(v)) => self.uint(v),
            _ => self.bin(&v.to_be_bytes())?,
        }
        Ok(Written::Value)
    }
    fn serialize_u128(self, v: u128) -> Result<Written, Error> {
        match u64::try_from(v) {
            Ok(v) => self.uint(v),
            Err(_) => self.bin(&v.to_be_bytes())?,
        }
        Ok(Written::Value)
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<Written, Error> {
        put(self.out, 0xca, v.to_be_bytes());
        Ok(Written::Value)
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<Written, Error> {
        put(self.out, 0xcb, v.to_be_bytes());
        Ok(Written::Value)
    }
    fn serialize_char(self, v: char) -> Result<Written, Error> {
        self.string(v.encode_utf8(&mut [0; 4]))?;
        Ok(Written::Value)
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<Written, Error> {
        self.string(v)?;
        Ok(Written::Value)
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<Written, Error> {
        self.bin(v)?;
        Ok(Written::Value)
    }
    #[inline]
    fn serialize_none(self) -> Result<Written, Error> {
        self.serialize_unit()
    }
    /// `Some(x)` is `x`, unless `x` reads as `None` itself (it is nil, or wrapped already):
    /// then it is wrapped in a marker (see the module docs).
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Written, Error> {
        let at = self.out.len();
        match value.serialize(&mut *self)? {
            Written::Value => Ok(Written::Value),
            Written::Nil => self.wrap_some(at),
        }
    }
    #[inline]
    fn serialize_unit(self) -> Result<Written, Error> {
        self.out.push(0xc0);
        Ok(Written::Nil)
    }
    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Written, Error> {
        self.serialize_unit()
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Written, Error> {
        self.string(variant)?;
        Ok(Written::Value)
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Written, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Written, Error> {
        self.variant(variant)?;
        value.serialize(&mut *self)?;
        self.depth -= 1;
        Ok(Written::Value)
    }
    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'s, 'a>, Error> {
        self.compound(len, false)
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Compound<'s, 'a>, Error> {
        self.compound(Some(len), false)
    }
    #[inline]
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>, Error> {
        self.compound(Some(len), false)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>, Error> {
        self.variant(variant)?;
        self.compound(Some(len), false)
    }
    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'s, 'a>, Error> {
        self.compound(len, true)
    }
    #[inline]
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'s, 'a>, Error> {
        self.compound(Some(len), false)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>, Error> {
        self.variant(variant)?;
        self.compound(Some(len), false)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The sequence-like traits: each element is one more value of the array (a variant's
/// content ends two levels: the array and the variant's map around it).
macro_rules! elements {
    ($($trait:ident::$method:ident $levels:literal)*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = Written;
            type Error = Error;
            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            #[inline]
            fn end(self) -> Result<Written, Error> {
                Compound::end(self, $levels)
            }
        }
    )*};
}

elements! {
    SerializeSeq::serialize_element 1
    SerializeTuple::serialize_element 1
    SerializeTupleStruct::serialize_field 1
    SerializeTupleVariant::serialize_field 2
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = Written;
    type Error = Error;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.element(key)
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.ser)?;
        Ok(())
    }
    #[inline]
    fn end(self) -> Result<Written, Error> {
        Compound::end(self, 1)
    }
}

/// Fields go by position, so a field left out would shift every field after it.
fn skipped(field: &'static str) -> Error {
    Error::new(format!(
        "field `{field}` was skipped by `#[serde(skip_serializing_if)]`, but struct fields \
         travel by position, so the fields after it would be read into the wrong places: \
         remove the attribute from types sent between processes"
    ))
}

/// The struct-like traits: fields go by position, their names are not written (a struct
/// variant ends two levels, as a tuple variant does).
macro_rules! fields {
    ($($trait:ident $levels:literal)*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = Written;
            type Error = Error;
            #[inline]
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                _key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.element(value)
            }
            fn skip_field(&mut self, key: &'static str) -> Result<(), Error> {
                Err(skipped(key))
            }
            #[inline]
            fn end(self) -> Result<Written, Error> {
                Compound::end(self, $levels)
            }
        }
    )*};
}

fields! { SerializeStruct 1 SerializeStructVariant 2 }
