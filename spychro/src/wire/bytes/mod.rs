//! Byte sequences travel as one blob.
//!
//! serde hands a `Vec<u8>` (or a `VecDeque<u8>`, a `BTreeSet<u8>`, ...) to a serializer as a
//! sequence of separate `u8`s, so a plain MessagePack codec writes and reads every byte on
//! its own, about 100 times slower than copying it. [`Ser`] wraps a serializer and watches
//! every sequence of known length: while its elements are all `u8`, they are gathered and
//! written as one MessagePack `bin`; at the first element that is not, the sequence is
//! written as usual. Values that hold no byte sequence pass through unchanged, nested values
//! included. The reader (`msgpack::Deserializer`) hands a `bin` to whatever asks for a
//! sequence (or for any value) as a sequence of `u8`s, so `Vec<u8>` reads it; a type that
//! asks for bytes (`serde_bytes::ByteBuf`) gets them as bytes.
//!
//! A `bin` is not made a byte string to every reader (as rmp-serde's
//! `BytesMode::ForceIterables` would): `#[serde(flatten)]` would fail on it and an
//! `#[serde(untagged)]` enum could pick a `String` variant for it. Here such readers see a
//! sequence of numbers, which is what the value was.

mod exact;

use std::fmt;

use serde::ser::{self, Serialize, Serializer};

use exact::as_byte_vec;
pub(crate) use exact::byte_vec_as;

/// A serializer that writes sequences of `u8` as one blob.
pub(crate) struct Ser<S>(pub(crate) S);

/// A value serialized through [`Ser`], so that the values nested in it are too.
struct Wrapped<'a, T: ?Sized>(&'a T);

impl<T: ?Sized + Serialize> Serialize for Wrapped<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, s)
    }
}

/// Serializes `value` through [`Ser`]; a `Vec<u8>` is written as one blob at once.
#[inline(always)]
pub(crate) fn serialize<T: ?Sized + Serialize, S: Serializer>(
    value: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    // (An empty one stays an empty sequence, as the gathering writes it.)
    match as_byte_vec(value) {
        Some(bytes) if !bytes.is_empty() => s.serialize_bytes(bytes),
        _ => value.serialize(Ser(s)),
    }
}

macro_rules! forward_ser {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[inline]
        fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.0.$method($($arg),*)
        }
    )*};
}

impl<S: Serializer> Serializer for Ser<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Seq<S>;
    type SerializeTuple = Compound<S::SerializeTuple>;
    type SerializeTupleStruct = Compound<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<S::SerializeTupleVariant>;
    type SerializeMap = Compound<S::SerializeMap>;
    type SerializeStruct = Compound<S::SerializeStruct>;
    type SerializeStructVariant = Compound<S::SerializeStructVariant>;

    forward_ser! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Wrapped(value))
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Wrapped(value))
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Wrapped(value))
    }

    /// What `Vec<T>`, slices and most collections call: a tight loop for the common case of
    /// bytes, the usual elements otherwise.
    fn collect_seq<I>(self, iter: I) -> Result<S::Ok, S::Error>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let mut iter = iter.into_iter();
        let len = match iter.size_hint() {
            (lo, Some(hi)) if lo == hi => lo,
            _ => {
                let mut seq = self.0.serialize_seq(None)?;
                for item in iter {
                    ser::SerializeSeq::serialize_element(&mut seq, &Wrapped(&item))?;
                }
                return ser::SerializeSeq::end(seq);
            }
        };
        // Gathered in a buffer this thread keeps, whose pages are already mapped.
        let mut bytes = SCRATCH.with(|s| s.take());
        bytes.clear();
        bytes.reserve(len.min(64 << 20));
        let (bytes, other) = gather(&mut iter, bytes);
        let written = match other {
            None => write_bytes(self.0, &bytes),
            Some(item) => (|| {
                let mut seq = replay(self.0, len, &bytes)?;
                ser::SerializeSeq::serialize_element(&mut seq, &Wrapped(&item))?;
                for item in iter {
                    ser::SerializeSeq::serialize_element(&mut seq, &Wrapped(&item))?;
                }
                ser::SerializeSeq::end(seq)
            })(),
        };
        if bytes.capacity() <= SCRATCH_KEEP {
            SCRATCH.with(|s| s.set(bytes));
        }
        written
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<S>, S::Error> {
        Ok(match len {
            Some(len) => Seq::Bytes {
                ser: self.0,
                len,
                bytes: Vec::new(),
            },
            None => Seq::Open(self.0.serialize_seq(None)?),
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Compound)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Compound)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Compound)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Compound)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Compound)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Compound)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Writes a sequence whose elements were all bytes: one blob (an empty one as an empty array).
fn write_bytes<S: Serializer>(ser: S, bytes: &[u8]) -> Result<S::Ok, S::Error> {
    if bytes.is_empty() {
        ser.serialize_seq(Some(0)).and_then(ser::SerializeSeq::end)
    } else {
        ser.serialize_bytes(bytes)
    }
}

/// Not all bytes after all: starts the sequence as usual, with the bytes gathered so far as
/// its first elements.
fn replay<S: Serializer>(ser: S, len: usize, bytes: &[u8]) -> Result<S::SerializeSeq, S::Error> {
    let mut seq = ser.serialize_seq(Some(len))?;
    for b in bytes {
        ser::SerializeSeq::serialize_element(&mut seq, b)?;
    }
    Ok(seq)
}

/// Appends elements to `bytes` while they are bytes; returns the first that is not.
#[inline]
fn gather<I: Iterator>(iter: &mut I, mut bytes: Vec<u8>) -> (Vec<u8>, Option<I::Item>)
where
    I::Item: Serialize,
{
    // Through a small array, so that the loop over elements touches no `Vec` bookkeeping
    // (for `u8` elements it compiles to a plain copy loop).
    let mut block = [0u8; 4096];
    loop {
        let mut n = 0;
        while n < block.len() {
            let Some(item) = iter.next() else {
                bytes.extend_from_slice(&block[..n]);
                return (bytes, None);
            };
            match item.serialize(ByteProbe) {
                Ok(b) => block[n] = b,
                Err(_) => {
                    bytes.extend_from_slice(&block[..n]);
                    return (bytes, Some(item));
                }
            }
            n += 1;
        }
        bytes.extend_from_slice(&block);
    }
}

thread_local! {
    /// Where [`Ser::collect_seq`] gathers bytes (taken while in use, so never shared).
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The largest gathering buffer kept for the next sequence.
const SCRATCH_KEEP: usize = 4 << 20;

/// A sequence being written: gathered as bytes while every element is a `u8`.
pub(crate) enum Seq<S: Serializer> {
    Bytes {
        ser: S,
        len: usize,
        bytes: Vec<u8>,
    },
    Open(S::SerializeSeq),
    /// Only while switching from one to the other.
    Switching,
}

impl<S: Serializer> ser::SerializeSeq for Seq<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    #[inline]
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), S::Error> {
        if let Seq::Bytes { bytes, len, .. } = self {
            if let Ok(b) = value.serialize(ByteProbe) {
                if bytes.capacity() == 0 {
                    // The length is the sequence's own claim: trust it only so far.
                    bytes.reserve((*len).min(64 << 20));
                }
                bytes.push(b);
                return Ok(());
            }
            let Seq::Bytes { ser, len, bytes } = std::mem::replace(self, Seq::Switching) else {
                unreachable!("matched above");
            };
            *self = Seq::Open(replay(ser, len, &bytes)?);
        }
        match self {
            Seq::Open(seq) => seq.serialize_element(&Wrapped(value)),
            _ => Err(ser::Error::custom("a sequence was used after it failed")),
        }
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        match self {
            Seq::Bytes { ser, bytes, .. } => write_bytes(ser, &bytes),
            Seq::Open(seq) => seq.end(),
            Seq::Switching => Err(ser::Error::custom("a sequence was used after it failed")),
        }
    }
}

/// Serializes a `u8` to itself and anything else to an error, to tell bytes from the rest.
struct ByteProbe;

/// "Not a byte", from [`ByteProbe`].
#[derive(Debug)]
struct NotAByte;

impl fmt::Display for NotAByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a byte")
    }
}

impl std::error::Error for NotAByte {}

impl ser::Error for NotAByte {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotAByte
    }
}

macro_rules! refuse {
    ($($method:ident($($ty:ty),*);)*) => {$(
        #[inline]
        fn $method(self, $(_: $ty),*) -> Result<u8, NotAByte> {
            Err(NotAByte)
        }
    )*};
}

impl Serializer for ByteProbe {
    type Ok = u8;
    type Error = NotAByte;
    type SerializeSeq = ser::Impossible<u8, NotAByte>;
    type SerializeTuple = ser::Impossible<u8, NotAByte>;
    type SerializeTupleStruct = ser::Impossible<u8, NotAByte>;
    type SerializeTupleVariant = ser::Impossible<u8, NotAByte>;
    type SerializeMap = ser::Impossible<u8, NotAByte>;
    type SerializeStruct = ser::Impossible<u8, NotAByte>;
    type SerializeStructVariant = ser::Impossible<u8, NotAByte>;

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<u8, NotAByte> {
        Ok(v)
    }

    refuse! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<u8, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<u8, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<u8, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotAByte> {
        Err(NotAByte)
    }
}

/// A compound value (tuple, map, struct, variant) whose elements go through [`Ser`].
pub(crate) struct Compound<C>(C);

macro_rules! compound {
    ($trait:ident, $method:ident) => {
        impl<C: ser::$trait> ser::$trait for Compound<C> {
            type Ok = C::Ok;
            type Error = C::Error;

            #[inline]
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), C::Error> {
                self.0.$method(&Wrapped(value))
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    };
    ($trait:ident, $method:ident, keyed) => {
        impl<C: ser::$trait> ser::$trait for Compound<C> {
            type Ok = C::Ok;
            type Error = C::Error;

            #[inline]
            fn $method<T: ?Sized + Serialize>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), C::Error> {
                self.0.$method(key, &Wrapped(value))
            }

            fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
                self.0.skip_field(key)
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    };
}

compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeStruct, serialize_field, keyed);
compound!(SerializeStructVariant, serialize_field, keyed);

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), C::Error> {
        self.0.serialize_key(&Wrapped(key))
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), C::Error> {
        self.0.serialize_value(&Wrapped(value))
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

#[cfg(test)]
mod tests;
