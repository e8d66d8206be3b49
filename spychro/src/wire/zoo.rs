//! A zoo of serde shapes, each sent through the codec (`codec::encode`, then `codec::decode`,
//! `Values::next`, `Values::decode_into` and `Values::skip`) and compared with what was sent.
//! Where a shape cannot travel by position, the test says so and checks that it is an error
//! that says why, never a different value.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::codec::{Sink, Values, decode, encode, encode_into, value_len};

impl<T> Sink<T> for Vec<T> {
    fn push(&mut self, value: T) {
        Vec::push(self, value);
    }
}

/// Sends `value` every way the codec reads, and checks it comes back as it was; returns the
/// bytes.
#[track_caller]
fn same<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> Vec<u8> {
    let bytes = encode(value).unwrap_or_else(|e| panic!("encode {value:?}: {e}"));
    let back: T = decode(&bytes).unwrap_or_else(|e| panic!("decode {value:?} ({bytes:x?}): {e}"));
    assert_eq!(&back, value, "{bytes:x?}");
    assert_eq!(value_len(&bytes), Ok(bytes.len()), "value_len of {value:?}");

    // Laid back to back with others, read by one decoder, in turn and in a batch.
    let mut batch = Vec::new();
    for _ in 0..3 {
        encode_into(&mut batch, value).unwrap();
        encode_into(&mut batch, &7u8).unwrap();
    }
    let mut values = Values::new(&batch);
    for _ in 0..3 {
        assert_eq!(values.next::<T>().unwrap().as_ref(), Ok(value));
        assert_eq!(values.next::<u8>().unwrap(), Ok(7));
    }
    assert!(values.rest().is_empty());
    let mut values = Values::new(&batch);
    assert_eq!(values.skip().unwrap(), &bytes[..]);
    let mut sink: Vec<u8> = Vec::new();
    assert_eq!(values.decode_into(1, &mut sink), Ok((1, None)));
    let mut sink: Vec<T> = Vec::new();
    assert_eq!(values.decode_into(1, &mut sink), Ok((1, None)));
    assert_eq!(sink.as_slice(), std::slice::from_ref(value));
    // Read as the wrong type, it is stepped over and the next value still reads.
    assert_eq!(values.next::<u8>().unwrap(), Ok(7));
    if values.next::<Vec<String>>().unwrap().is_err() {
        assert_eq!(values.next::<u8>().unwrap(), Ok(7));
    }
    bytes
}

/// `same` for each value.
#[track_caller]
fn all<T: Serialize + DeserializeOwned + PartialEq + Debug>(values: impl IntoIterator<Item = T>) {
    for v in values {
        same(&v);
    }
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct UnitStruct;

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Newtype(u32);

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct NewtypeOfOption(Option<()>);

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct TupleStruct(i8, String, Option<Option<u8>>, UnitStruct);

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Fields {
    a: u8,
    maybe: Option<Option<()>>,
    unit: (),
    unit_struct: UnitStruct,
    json: Option<Value>,
}

#[test]
fn options_units_and_newtypes() {
    all([None, Some(None), Some(Some(None)), Some(Some(Some(3u8)))]);
    all([None, Some(None), Some(Some(0u8))]);
    all([None, Some(())]);
    all([None, Some(UnitStruct)]);
    all([None, Some(PhantomData::<u8>)]);
    same(&());
    same(&UnitStruct);
    same(&PhantomData::<String>);
    same(&Newtype(u32::MAX));
    all([None, Some(Newtype(0))]);
    all([NewtypeOfOption(None), NewtypeOfOption(Some(()))]);
    all([
        None,
        Some(NewtypeOfOption(None)),
        Some(NewtypeOfOption(Some(()))),
    ]);
    same(&TupleStruct(-1, "t".into(), Some(None), UnitStruct));
    same(&(Some(()), None::<()>, Some(None::<u8>), ()));
    same(&vec![Some(()), None, Some(())]);
    same(&vec![None, Some(None), Some(Some(1u16))]);
    for maybe in [None, Some(None), Some(Some(()))] {
        for json in [None, Some(Value::Null), Some(json!([null]))] {
            same(&Fields {
                a: 1,
                maybe,
                unit: (),
                unit_struct: UnitStruct,
                json,
            });
        }
    }
    // Plain options cost what their values do.
    assert_eq!(same(&Some(5u8)), [5]);
    assert_eq!(same(&Some(Newtype(5))), [5]);
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
enum External {
    Unit,
    Newtype(Option<()>),
    Tuple(u8, Option<Option<u8>>),
    Struct { a: Option<()>, b: String },
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(tag = "t")]
enum Internal {
    Unit,
    Struct { a: Option<Option<u8>>, b: () },
    Newtype(Fields),
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    Newtype(Option<()>),
    Tuple(u8, Option<Option<u8>>),
    UnitContent(()),
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(untagged)]
enum Untagged {
    Number(u64),
    Text(String),
    Pair(bool, Option<Option<()>>),
    List(Vec<Option<()>>),
    Nothing(Option<()>),
}

fn fields(maybe: Option<Option<()>>) -> Fields {
    Fields {
        a: 9,
        maybe,
        unit: (),
        unit_struct: UnitStruct,
        json: Some(Value::Null),
    }
}

#[test]
fn enums_in_every_representation() {
    all([
        External::Unit,
        External::Newtype(None),
        External::Newtype(Some(())),
        External::Tuple(1, Some(None)),
        External::Struct {
            a: Some(()),
            b: "b".into(),
        },
    ]);
    all([None, Some(External::Unit), Some(External::Newtype(None))]);
    all([
        Internal::Unit,
        Internal::Struct {
            a: Some(None),
            b: (),
        },
        Internal::Struct { a: None, b: () },
        Internal::Newtype(fields(Some(None))),
        Internal::Newtype(fields(Some(Some(())))),
    ]);
    all([
        Adjacent::Newtype(None),
        Adjacent::Newtype(Some(())),
        Adjacent::Tuple(2, Some(None)),
        Adjacent::UnitContent(()),
    ]);
    all([
        Untagged::Number(u64::MAX),
        Untagged::Text("x".into()),
        Untagged::Pair(true, None),
        Untagged::Pair(true, Some(None)),
        Untagged::Pair(false, Some(Some(()))),
        Untagged::List(vec![None, Some(())]),
        Untagged::Nothing(None),
        Untagged::Nothing(Some(())),
    ]);
}

/// Not lossless: an adjacently tagged enum writes a unit variant as a struct of its tag
/// alone, which by position is one field short of the tag and content it reads back. It is an
/// error that says so (serde_json, which writes names, reads it).
#[test]
fn an_adjacently_tagged_unit_variant_is_refused() {
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    #[serde(tag = "t", content = "c")]
    enum Adj {
        Unit,
        Newtype(u8),
    }
    same(&Adj::Newtype(1));
    let err = decode::<Adj>(&encode(&Adj::Unit).unwrap()).unwrap_err();
    for part in [
        "`Adj`",
        "(t, c)",
        "holds 1",
        "content = \"c\"",
        "`()` field",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
}

/// Not lossless: serde reads the struct variants of adjacently tagged and untagged enums by
/// field name only (it gives them no way to read an array), and structs travel as arrays of
/// their fields. Each is an error, not another value. (An untagged enum with a later variant
/// that takes a sequence, such as `Other(serde_json::Value)`, would take the array instead:
/// see the module docs of `msgpack::de`.)
#[test]
fn struct_variants_read_by_name_only_are_refused() {
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    #[serde(tag = "t", content = "c")]
    enum Adj {
        S { a: u8 },
    }
    let err = decode::<Adj>(&encode(&Adj::S { a: 1 }).unwrap()).unwrap_err();
    assert!(
        err.contains("invalid type: sequence, expected struct variant Adj::S"),
        "{err}"
    );
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    #[serde(untagged)]
    enum Un {
        S { a: u8 },
    }
    let err = decode::<Un>(&encode(&Un::S { a: 1 }).unwrap()).unwrap_err();
    assert!(err.contains("did not match any variant"), "{err}");
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Inner {
    x: Option<Option<u8>>,
    y: Option<()>,
    payload: Vec<u8>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Flattened {
    id: u32,
    #[serde(flatten)]
    inner: Inner,
    #[serde(flatten)]
    rest: BTreeMap<String, Option<Value>>,
}

#[test]
fn flatten() {
    for (x, y) in [(None, None), (Some(None), Some(())), (Some(Some(4)), None)] {
        same(&Flattened {
            id: 1,
            inner: Inner {
                x,
                y,
                payload: vec![1, 2, 3],
            },
            rest: BTreeMap::from([
                ("none".to_owned(), None),
                ("null".to_owned(), Some(Value::Null)),
                ("list".to_owned(), Some(json!([null, {}]))),
            ]),
        });
    }
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Clone)]
enum Key {
    Plain,
    Number(u32),
    Pair(i8, String),
}

#[test]
fn maps_with_keys_that_are_not_strings() {
    same(&HashMap::from([
        (1u32, "a".to_owned()),
        (u32::MAX, "b".to_owned()),
    ]));
    same(&BTreeMap::from([(-1i64, 1u8), (i64::MIN, 2)]));
    same(&BTreeMap::from([
        ((1u8, "x".to_owned()), vec![1u8]),
        ((2, "y".into()), vec![]),
    ]));
    same(&HashMap::from([
        (Key::Plain, 0u8),
        (Key::Number(7), 1),
        (Key::Pair(-1, "p".into()), 2),
    ]));
    same(&BTreeMap::from([
        (None, 0u8),
        (Some(None), 1),
        (Some(Some(())), 2),
    ]));
    same(&BTreeMap::from([(u128::MAX, 'm'), (0, '0')]));
    same(&BTreeMap::from([(vec![1u8, 2], true), (vec![], false)]));
    same(&BTreeMap::from([('k', UnitStruct)]));
    same(&BTreeMap::from([(true, ()), (false, ())]));
}

#[test]
fn wide_integers_at_their_extremes() {
    all([
        0i128,
        -1,
        i128::MIN,
        i128::MAX,
        i64::MIN as i128 - 1,
        u64::MAX as i128 + 1,
    ]);
    all([0u128, u128::MAX, u64::MAX as u128, u64::MAX as u128 + 1]);
    all([None, Some(i128::MIN)]);
    same(&(
        i8::MIN,
        i16::MIN,
        i32::MIN,
        i64::MIN,
        u8::MAX,
        u16::MAX,
        u32::MAX,
        u64::MAX,
    ));
}

/// Floats compared by their bits, so NaN (and its sign and payload) and -0.0 count.
#[derive(Serialize, Deserialize, Debug)]
struct Floats(f32, f64);

impl PartialEq for Floats {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits() && self.1.to_bits() == other.1.to_bits()
    }
}

#[test]
fn floats_keep_their_bits() {
    let f32s = [
        0.0,
        -0.0,
        1.5,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7fc0_1234),
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::MAX,
        f32::EPSILON,
    ];
    let f64s = [
        0.0,
        -0.0,
        -2.25,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff8_0000_dead_beef),
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        f64::from_bits(1),
        f64::MIN,
        f64::EPSILON,
    ];
    for (&a, &b) in f32s.iter().zip(&f64s) {
        same(&Floats(a, b));
        let back: Option<Floats> = decode(&encode(&Some(Floats(a, b))).unwrap()).unwrap();
        assert_eq!(back, Some(Floats(a, b)));
    }
}

#[test]
fn chars_and_strings() {
    all(['a', 'é', '\0', '\u{10ffff}', '🦀']);
    all([
        String::new(),
        "ascii".into(),
        "ünïcødé 🦀".into(),
        "x".repeat(70_000),
    ]);
}

/// Bytes written and read as bytes (as `serde_bytes::ByteBuf` does).
#[derive(PartialEq, Debug)]
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Blob, A::Error> {
                let mut v = Vec::new();
                while let Some(b) = s.next_element()? {
                    v.push(b);
                }
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[test]
fn byte_sequences_and_blobs() {
    all([
        vec![],
        vec![0u8],
        vec![255u8; 300],
        (0..=255).collect::<Vec<u8>>(),
    ]);
    all([Blob(vec![]), Blob(vec![1, 2, 3]), Blob(vec![9; 70_000])]);
    all([None, Some(Blob(vec![])), Some(Blob(vec![0]))]);
    all([None, Some(Vec::<u8>::new()), Some(vec![0xc0])]);
    same(&vec![vec![1u8], vec![], vec![0xc0, 0xc7]]);
    same(&[0xc0u8, 0xc1, 0xc7, 0xff]);
}

#[test]
fn json_values() {
    let v = json!({
        "null": null,
        "nested": [null, [null, [null]], {}, {"a": null, "b": [[], {}]}],
        "numbers": [0, 1, -1, u64::MAX, i64::MIN, 0.5, -1e300],
        "text": "t",
        "flags": [true, false],
    });
    same(&v);
    all([Value::Null, json!([]), json!({}), json!([[[[]]]])]);
    all([None, Some(Value::Null), Some(json!(null)), Some(v.clone())]);
    all([None, Some(None), Some(Some(Value::Null))]);
    same(&vec![Some(Value::Null), None, Some(json!([null]))]);
    same(&BTreeMap::from([("k".to_owned(), Some(Value::Null))]));
}
