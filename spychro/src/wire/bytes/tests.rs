//! Tests of the parent module.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::wire::codec::{decode, encode};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> Vec<u8> {
    let bytes = encode(value).unwrap();
    assert_eq!(&decode::<T>(&bytes).unwrap(), value);
    bytes
}

#[test]
fn a_byte_vector_is_one_blob() {
    let v: Vec<u8> = (0..=255).cycle().take(100_000).collect();
    let b = round_trip(&v);
    // bin32 marker, 4 length bytes, then the bytes themselves.
    assert_eq!(b[0], 0xc6);
    assert_eq!(b.len(), 5 + v.len());
    assert_eq!(&b[5..], &v[..]);
    assert_eq!(round_trip(&vec![200u8; 10]).len(), 2 + 10);
    // Empty, and sequences of other things, are what they always were.
    assert_eq!(round_trip(&Vec::<u8>::new()), [0x90]);
    assert_eq!(round_trip(&vec![1u64, 2, 3]), [0x93, 1, 2, 3]);
    round_trip(&vec!["a".to_owned(), "b".to_owned()]);
}

#[test]
fn a_byte_vector_read_by_a_deserialize_with_function_goes_through_it() {
    // The copy at once is for `Vec<u8>`'s own visitor only: another visitor of a `Vec<u8>`
    // sees the sequence, byte by byte.
    fn reversed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let mut v = Vec::<u8>::deserialize(d)?;
        v.reverse();
        Ok(v)
    }
    fn doubled<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    out.extend([b, b]);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Odd {
        #[serde(deserialize_with = "reversed")]
        r: Vec<u8>,
        #[serde(deserialize_with = "doubled")]
        d: Vec<u8>,
        plain: Vec<u8>,
    }
    let bytes = encode(&Odd {
        r: vec![1, 2, 3],
        d: vec![7, 8],
        plain: vec![200, 201],
    })
    .unwrap();
    assert_eq!(
        decode::<Odd>(&bytes).unwrap(),
        Odd {
            r: vec![3, 2, 1],
            d: vec![7, 7, 8, 8],
            plain: vec![200, 201],
        }
    );
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Shape {
    Unit,
    Newtype(Vec<u8>),
    Tuple(Vec<u8>, u8, Vec<u16>),
    Struct { data: Vec<u8>, name: String },
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Nested {
    id: u32,
    data: Vec<u8>,
    maybe: Option<Vec<u8>>,
    none: Option<Vec<u8>>,
    many: Vec<Vec<u8>>,
    deque: VecDeque<u8>,
    set: BTreeSet<u8>,
    map: BTreeMap<String, Vec<u8>>,
    keyed: BTreeMap<Vec<u8>, u8>,
    shapes: Vec<Shape>,
    array: [u8; 4],
    tuple: (u8, u8),
}

#[test]
fn byte_sequences_nested_anywhere_round_trip() {
    let n = Nested {
        id: 7,
        data: vec![1, 2, 3, 250],
        maybe: Some(vec![9; 300]),
        none: None,
        many: vec![vec![], vec![1], vec![2; 70_000]],
        deque: VecDeque::from(vec![4, 5, 6]),
        set: BTreeSet::from([3, 1, 2]),
        map: BTreeMap::from([("k".to_owned(), vec![0, 255])]),
        keyed: BTreeMap::from([(vec![1, 2], 3)]),
        shapes: vec![
            Shape::Unit,
            Shape::Newtype(vec![8; 20]),
            Shape::Tuple(vec![1, 2], 3, vec![4, 500]),
            Shape::Struct {
                data: vec![7; 5],
                name: "s".into(),
            },
        ],
        array: [1, 2, 3, 4],
        tuple: (5, 6),
    };
    let b = round_trip(&n);
    // The 70,000 bytes travelled as bytes, not as numbers.
    assert!(b.len() < 72_000, "{}", b.len());
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(untagged)]
enum TextOrBytes {
    Text(String),
    Bytes(Vec<u8>),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Inner {
    payload: Vec<u8>,
    label: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Outer {
    id: u8,
    #[serde(flatten)]
    inner: Inner,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(tag = "kind")]
enum Tagged {
    Blob { data: Vec<u8> },
}

/// What made rmp-serde's `BytesMode::ForceIterables` unusable: self-describing readers.
#[test]
fn untagged_flatten_and_tagged_readers_see_a_sequence() {
    round_trip(&TextOrBytes::Text("hi".into()));
    // Valid UTF-8 bytes, which a reader that saw bytes could take for a string.
    round_trip(&TextOrBytes::Bytes(b"hi".to_vec()));
    round_trip(&vec![
        TextOrBytes::Bytes(vec![0xff; 3]),
        TextOrBytes::Text("x".into()),
    ]);
    round_trip(&Outer {
        id: 1,
        inner: Inner {
            payload: b"abc".to_vec(),
            label: "l".into(),
        },
    });
    round_trip(&Tagged::Blob {
        data: vec![1, 2, 3],
    });
    let v: serde_json::Value = decode(&encode(&vec![1u8, 2, 3]).unwrap()).unwrap();
    assert_eq!(v, serde_json::json!([1, 2, 3]));
}

/// Asks for bytes, and accepts only bytes (as `serde_bytes::ByteBuf` prefers to).
#[derive(Debug, PartialEq)]
struct OnlyBytes(Vec<u8>);

impl Serialize for OnlyBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for OnlyBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OnlyBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<OnlyBytes, E> {
                Ok(OnlyBytes(v.to_vec()))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[test]
fn a_type_that_asks_for_bytes_gets_bytes() {
    round_trip(&OnlyBytes(vec![1, 2, 3]));
    // And a `Vec<u8>` reads what `serialize_bytes` wrote.
    let v: Vec<u8> = decode(&encode(&OnlyBytes(vec![4, 5])).unwrap()).unwrap();
    assert_eq!(v, [4, 5]);
}

/// A sequence whose elements start as bytes and then are not.
struct Mixed;

impl Serialize for Mixed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(4))?;
        seq.serialize_element(&1u8)?;
        seq.serialize_element(&2u8)?;
        seq.serialize_element(&300u16)?;
        seq.serialize_element(&vec![3u8, 4])?;
        seq.end()
    }
}

#[test]
fn a_sequence_that_stops_being_bytes_is_written_as_elements() {
    let v: serde_json::Value = decode(&encode(&Mixed).unwrap()).unwrap();
    assert_eq!(v, serde_json::json!([1, 2, 300, [3, 4]]));
}
