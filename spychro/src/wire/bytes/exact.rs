//! A `Vec<u8>` recognised by its type, so that it travels as one copy.
//!
//! The gathering in [`Ser`](super::Ser) and the reader's `bin` already make a `Vec<u8>` one
//! blob on the wire, but serde still walks it a byte at a time on both sides: `Vec<u8>`
//! serializes as a sequence of `u8`s, and deserializes through a visitor that pushes one `u8`
//! after another. For the exact type `Vec<u8>` (a job's item or output, or any value nested
//! in one), these two functions skip serde's walk: the writer copies the slice, the reader
//! copies the blob into a new vector (only for the visitor `Vec<u8>`'s own `Deserialize`
//! uses: a `deserialize_with` function's own visitor still sees the sequence). Types are compared with `typeid` (a `TypeId` for types
//! that need not be `'static`, by the author of serde); every other type goes the usual way.
//! Hand-written because no crate offers this specialization; the two `unsafe` casts below
//! are sound because the types were just found identical.

use std::any::TypeId;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};

/// `value`'s bytes, when `T` is `Vec<u8>`.
#[inline(always)]
pub(crate) fn as_byte_vec<T: ?Sized>(value: &T) -> Option<&[u8]> {
    if typeid::of::<T>() != typeid::of::<Vec<u8>>() {
        return None;
    }
    // SAFETY: `T` is `Vec<u8>` (same `TypeId`), so `value` points to a `Vec<u8>`; `T` is
    // then sized and the pointer thin, and the cast only forgets a type equality.
    let v: &Vec<u8> = unsafe { &*(value as *const T).cast::<Vec<u8>>() };
    Some(v.as_slice())
}

/// What visitor `V` would make of `blob`, when `V` is the one `Vec<u8>`'s own `Deserialize`
/// uses (so that a `deserialize_with` function's visitor of a `Vec<u8>` still runs); `None`
/// (nothing done) for any other visitor.
#[inline(always)]
pub(crate) fn byte_vec_as<'de, V: Visitor<'de>>(blob: &[u8]) -> Option<V::Value> {
    if typeid::of::<V>() != vec_visitor() || typeid::of::<V::Value>() != typeid::of::<Vec<u8>>() {
        return None;
    }
    let v = std::mem::ManuallyDrop::new(blob.to_vec());
    // SAFETY: `V::Value` is `Vec<u8>` (same `TypeId`): reading the vector as a `V::Value`
    // moves it (the original is `ManuallyDrop`, so it is not dropped twice).
    Some(unsafe { std::ptr::read((&*v as *const Vec<u8>).cast::<V::Value>()) })
}

/// The type of the visitor that `Vec<u8>`'s `Deserialize` hands to a deserializer, found
/// once by asking it to deserialize from a deserializer that only notes the visitor's type.
fn vec_visitor() -> TypeId {
    static ID: OnceLock<TypeId> = OnceLock::new();
    *ID.get_or_init(|| {
        let mut seen = None;
        let _ = Vec::<u8>::deserialize(Probe(&mut seen));
        // Never equal to a visitor's type, should serde ever not ask for a value.
        seen.unwrap_or_else(typeid::of::<Probe<'static>>)
    })
}

/// A deserializer that notes the type of the visitor it is given, and fails.
struct Probe<'a>(&'a mut Option<TypeId>);

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        *self.0 = Some(typeid::of::<V>());
        Err(serde::de::Error::custom("a probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}
