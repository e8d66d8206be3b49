//! How values are laid out on the wire: MessagePack (see `msgpack`), compact (structs as
//! arrays of their fields) and self-describing, so `untagged` enums, `flatten` and
//! `serde_json::Value` work, and a custom error's message survives to the caller.
//!
//! Because every value says where it ends, the items (and outputs) of a batch are laid back
//! to back with no length of their own: [`Values`] reads them in turn with one decoder, and
//! [`value_len`] finds a value's end without decoding it, to step over one that failed or to
//! pick one item out of a batch. Byte sequences are written as one blob (see `bytes`).

use serde::{Serialize, de::DeserializeOwned};

use super::bytes;
pub(crate) use super::msgpack::value_len;
use super::msgpack::{Deserializer, Serializer};

/// Appends `value`'s encoding to `buf`; on failure `buf` is left as it was.
#[inline(always)]
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
) -> Result<(), String> {
    let at = buf.len();
    match bytes::serialize(value, &mut Serializer::new(&mut *buf)) {
        Ok(_) => Ok(()),
        Err(e) => {
            buf.truncate(at);
            Err(e.to_string())
        }
    }
}

/// Encodes `value` into a new buffer.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    encode_into(&mut buf, value)?;
    Ok(buf)
}

/// Decodes a value that must fill `bytes` exactly.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut values = Values::new(bytes);
    let value = values.next::<T>()??;
    match values.rest().len() {
        0 => Ok(value),
        rest => Err(format!("{rest} bytes are left over after the value")),
    }
}

/// Where [`Values::decode_into`] puts what it decodes.
pub(crate) trait Sink<T> {
    fn push(&mut self, value: T);
}

/// Reads MessagePack values laid back to back, one decoder for all of them.
pub(crate) struct Values<'a> {
    bytes: &'a [u8],
    de: Deserializer<'a>,
}

impl<'a> Values<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Values {
            bytes,
            de: Deserializer::new(bytes),
        }
    }

    /// Where the next value starts.
    pub(crate) fn position(&self) -> usize {
        self.de.position()
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.bytes[self.position().min(self.bytes.len())..]
    }

    /// Decodes the next value. `Ok(Err(message))`: the value is well formed but is not a `T`
    /// (the reader has stepped over it); `Err(message)`: the bytes are not MessagePack, so
    /// the values after this one cannot be found.
    #[inline(always)]
    #[allow(clippy::should_implement_trait)] // fallible in two ways; not an `Iterator`
    pub(crate) fn next<T: DeserializeOwned>(&mut self) -> Result<Result<T, String>, String> {
        let start = self.position();
        match T::deserialize(&mut self.de) {
            Ok(value) => Ok(Ok(value)),
            Err(e) => Err(e).or_else(|e| self.step_over(start, e)),
        }
    }

    /// After a value at `start` failed to decode with `e`: moves past it, if it is whole.
    #[cold]
    fn step_over<T>(
        &mut self,
        start: usize,
        e: super::msgpack::Error,
    ) -> Result<Result<T, String>, String> {
        let len = value_len(&self.bytes[start.min(self.bytes.len())..])?;
        self.de.set_position(start + len);
        Ok(Err(e.to_string()))
    }

    /// Decodes up to `n` values into `sink`. Returns how many it decoded and, if it stopped
    /// early, why the next one is not a `T` (the reader has stepped over it); `Err` when the
    /// bytes are not MessagePack.
    ///
    /// Not inlined, and reading through a deserializer of its own, so that for simple types
    /// the loop keeps its position and the sink's count in registers.
    #[inline(never)]
    pub(crate) fn decode_into<T: DeserializeOwned, S: Sink<T>>(
        &mut self,
        n: usize,
        sink: &mut S,
    ) -> Result<(usize, Option<String>), String> {
        let mut de = Deserializer::at(self.bytes, self.position());
        for decoded in 0..n {
            let start = de.position();
            match T::deserialize(&mut de) {
                Ok(value) => sink.push(value),
                Err(e) => return self.stopped_at(start, e).map(|m| (decoded, Some(m))),
            }
        }
        self.de.set_position(de.position());
        Ok((n, None))
    }

    /// After the value at `start` failed to decode with `e`: moves past it, if it is whole,
    /// and says why it failed.
    #[cold]
    fn stopped_at(&mut self, start: usize, e: super::msgpack::Error) -> Result<String, String> {
        let len = value_len(&self.bytes[start.min(self.bytes.len())..])?;
        self.de.set_position(start + len);
        Ok(e.to_string())
    }

    /// Moves past the value that starts at `start` (after a reader gave up inside it),
    /// if it is whole.
    pub(crate) fn resume_after(&mut self, start: usize) -> Result<(), String> {
        let len = value_len(&self.bytes[start.min(self.bytes.len())..])?;
        self.de.set_position(start + len);
        Ok(())
    }

    /// Steps over the next value without decoding it.
    pub(crate) fn skip(&mut self) -> Result<&'a [u8], String> {
        let start = self.position().min(self.bytes.len());
        let len = value_len(&self.bytes[start..])?;
        self.de.set_position(start + len);
        Ok(&self.bytes[start..start + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes encoded as one MessagePack `bin`.
    struct Blob(Vec<u8>);
    impl Serialize for Blob {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    #[test]
    fn custom_messages_survive() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("not today"))
            }
        }
        let mut buf = vec![1, 2];
        assert!(
            encode_into(&mut buf, &Refuses)
                .unwrap_err()
                .contains("not today")
        );
        assert_eq!(buf, [1, 2]);
        assert!(decode::<u8>(&encode(&300u32).unwrap()).is_err());
        assert!(decode::<u8>(&[1, 2]).unwrap_err().contains("left over"));
    }

    #[derive(Serialize)]
    enum Shape {
        Dot,
        Line(f32, f64),
        Named {
            name: String,
            tags: Vec<Option<i64>>,
        },
    }

    #[derive(Serialize)]
    struct Everything {
        a: u8,
        b: i16,
        c: u32,
        d: i64,
        e: u64,
        f: bool,
        s: String,
        long: String,
        bytes: Blob,
        shapes: Vec<Shape>,
        map: std::collections::BTreeMap<String, Vec<u16>>,
        unit: (),
        nothing: Option<u8>,
    }

    fn everything(n: usize) -> Everything {
        Everything {
            a: 200,
            b: -300,
            c: 70_000,
            d: -5_000_000_000,
            e: u64::MAX,
            f: true,
            s: "short".into(),
            long: "x".repeat(70_000 * n),
            bytes: Blob(vec![7u8; 300 * n]),
            shapes: vec![
                Shape::Dot,
                Shape::Line(1.5, -2.25),
                Shape::Named {
                    name: "n".repeat(40),
                    tags: vec![Some(-1), None, Some(i64::MIN)],
                },
            ],
            map: (0..20 * n)
                .map(|i| (i.to_string(), vec![i as u16; i]))
                .collect(),
            unit: (),
            nothing: None,
        }
    }

    #[test]
    fn value_len_steps_over_every_kind_of_value() {
        for n in [0, 1, 2] {
            let one = encode(&everything(n)).unwrap();
            assert_eq!(value_len(&one), Ok(one.len()));
            let mut two = one.clone();
            two.extend_from_slice(&one);
            assert_eq!(value_len(&two), Ok(one.len()));
            // Any strict prefix is not a whole value.
            for cut in [0, 1, one.len() / 3, one.len() / 2, one.len() - 1] {
                assert!(value_len(&one[..cut]).is_err(), "cut at {cut}");
            }
        }
        for v in [
            0i64,
            -1,
            -33,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            i64::MIN,
            i64::MAX,
        ] {
            let b = encode(&v).unwrap();
            assert_eq!(value_len(&b), Ok(b.len()));
        }
        // Lies about lengths are caught, not believed.
        assert!(value_len(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(value_len(&[0xc6, 0xff, 0xff, 0xff, 0xff, 1]).is_err());
        assert!(value_len(&[0xc1]).is_err());
    }

    /// `levels` arrays, each holding the next, around a null, built without recursion.
    fn nested(levels: usize) -> serde_json::Value {
        (0..levels).fold(serde_json::Value::Null, |v, _| {
            serde_json::Value::Array(vec![v])
        })
    }

    /// On a thread with a 2 MiB stack (a spawned thread's default), in the build `cargo
    /// test` makes: a value nested deeper than the limit is refused with an error on both
    /// sides, without running out of stack; one well within it travels.
    #[test]
    fn deep_values_are_refused_before_the_stack_runs_out() {
        let run = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let deep = nested(400);
                let err = encode(&deep).unwrap_err();
                assert!(err.contains("128"), "{err}");
                let mut bytes = vec![0x91u8; 400];
                bytes.push(0xc0);
                let err = decode::<serde_json::Value>(&bytes).unwrap_err();
                assert!(err.contains("128"), "{err}");
                // A buffering reader (an untagged enum) takes more stack per level.
                #[derive(serde::Deserialize, Debug)]
                #[serde(untagged)]
                enum Any {
                    #[allow(dead_code)]
                    Value(serde_json::Value),
                }
                let err = decode::<Any>(&bytes).unwrap_err();
                assert!(err.contains("128"), "{err}");

                let fine = nested(100);
                let back: serde_json::Value = decode(&encode(&fine).unwrap()).unwrap();
                assert_eq!(back, fine);
            })
            .unwrap();
        run.join().unwrap();
    }

    #[test]
    fn values_read_back_to_back_and_step_over_a_bad_one() {
        let mut buf = Vec::new();
        encode_into(&mut buf, &1u64).unwrap();
        encode_into(&mut buf, &"not a number").unwrap();
        encode_into(&mut buf, &vec![1u64, 2, 3]).unwrap();
        encode_into(&mut buf, &Some(4u64)).unwrap();
        encode_into(&mut buf, &5u64).unwrap();
        let mut v = Values::new(&buf);
        assert_eq!(v.next::<u64>(), Ok(Ok(1)));
        assert!(v.next::<u64>().unwrap().is_err());
        assert!(v.next::<u64>().unwrap().is_err());
        // Option peeks at a marker; the next value must still read right.
        assert_eq!(v.next::<Option<u64>>(), Ok(Ok(Some(4))));
        assert_eq!(v.next::<u64>(), Ok(Ok(5)));
        assert!(v.rest().is_empty());

        let mut v = Values::new(&buf);
        assert_eq!(v.skip().unwrap(), &buf[..1]);
        assert_eq!(v.skip().unwrap(), encode(&"not a number").unwrap());
        assert_eq!(v.next::<Vec<u64>>(), Ok(Ok(vec![1, 2, 3])));

        // Garbage is a framing error, not an item error.
        let mut v = Values::new(&[0xc1, 1]);
        assert!(v.next::<u64>().is_err());
    }
}
