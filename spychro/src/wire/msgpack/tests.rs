//! Tests of the parent module.
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::*;

fn write<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.serialize(&mut Serializer::new(&mut out)).unwrap();
    out
}

fn read<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut de = Deserializer::new(bytes);
    let value = T::deserialize(&mut de)?;
    assert_eq!(de.position(), bytes.len(), "the whole value was read");
    Ok(value)
}

/// Round-trips through our codec, and checks that rmp-serde (the reference MessagePack
/// implementation for serde) reads our bytes as the same value and writes bytes we read.
fn conforms<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let ours = write(value);
    assert_eq!(&read::<T>(&ours).unwrap(), value, "our round trip");
    assert_eq!(value_len(&ours), Ok(ours.len()), "value_len agrees");
    let theirs: T = rmp_serde::from_slice(&ours).unwrap();
    assert_eq!(&theirs, value, "rmp-serde reads what we wrote");
    let theirs = rmp_serde::to_vec(value).unwrap();
    assert_eq!(
        &read::<T>(&theirs).unwrap(),
        value,
        "we read what rmp-serde wrote"
    );
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
        impl serde::de::Visitor<'_> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Point {
    x: i32,
    y: f64,
    label: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Unit;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Meters(f32);

#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum Shape {
    Dot,
    Circle(f64),
    Line(Point, Point),
    Poly { points: Vec<Point>, closed: bool },
}

#[test]
fn numbers_take_every_width_and_conform() {
    for v in [
        0u64,
        1,
        127,
        128,
        255,
        256,
        65_535,
        65_536,
        1 << 32,
        u64::MAX,
    ] {
        conforms(&v);
    }
    for v in [
        0i64,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32_768,
        -32_769,
        i32::MIN as i64 - 1,
        i64::MIN,
        i64::MAX,
    ] {
        conforms(&v);
    }
    assert_eq!(write(&5u64), [5]);
    assert_eq!(write(&-5i8), [0xfb]);
    assert_eq!(write(&300u16), [0xcd, 1, 44]);
    conforms(&(
        1.5f32,
        -2.25f64,
        f64::MAX,
        u8::MAX,
        i8::MIN,
        u16::MAX,
        i16::MIN,
    ));
    conforms(&(u32::MAX, i32::MIN, true, false, 'x', 'é'));
    // A number read as a narrower type that cannot hold it is an error, not a wrap.
    assert!(read::<u8>(&write(&300u32)).is_err());
    assert!(read::<u64>(&write(&-1i64)).is_err());
    assert_eq!(read::<i16>(&write(&-300i64)).unwrap(), -300);
    assert_eq!(read::<f64>(&write(&7u8)).unwrap(), 7.0);
}

#[test]
fn wide_integers_round_trip() {
    for v in [
        0i128,
        -1,
        i64::MIN as i128,
        u64::MAX as i128,
        i128::MIN,
        i128::MAX,
    ] {
        assert_eq!(read::<i128>(&write(&v)).unwrap(), v);
    }
    for v in [0u128, u64::MAX as u128, u64::MAX as u128 + 1, u128::MAX] {
        assert_eq!(read::<u128>(&write(&v)).unwrap(), v);
    }
}

#[test]
fn strings_bytes_and_containers_at_every_header_size() {
    for n in [0, 1, 31, 32, 255, 256, 65_535, 65_536, 70_000] {
        conforms(&"é".repeat(n / 2));
        conforms(&"a".repeat(n));
        conforms(&vec![7u16; n]);
        conforms(
            &(0..n as u32)
                .map(|i| (i, i % 3 == 0))
                .collect::<BTreeMap<_, _>>(),
        );
        let blob = Blob(vec![9u8; n]);
        assert_eq!(read::<Blob>(&write(&blob)).unwrap(), blob);
        // Bytes asked for as a sequence (as `Vec<u8>` does) come as one.
        assert_eq!(read::<Vec<u8>>(&write(&blob)).unwrap(), blob.0);
    }
    // A borrowed &str reads without a copy.
    let bytes = write("borrowed");
    let mut de = Deserializer::new(&bytes);
    let s: &str = Deserialize::deserialize(&mut de).unwrap();
    assert_eq!(s, "borrowed");
}

#[test]
fn structs_enums_options_and_units_conform() {
    conforms(&Point {
        x: -4,
        y: 0.5,
        label: "p".into(),
    });
    conforms(&Unit);
    conforms(&Meters(3.5));
    conforms(&((), Some(1u8), None::<String>, Some(Some(2u8))));
    conforms(&vec![
        Shape::Dot,
        Shape::Circle(2.0),
        Shape::Line(
            Point {
                x: 1,
                y: 2.0,
                label: String::new(),
            },
            Point {
                x: 3,
                y: 4.0,
                label: "end".into(),
            },
        ),
        Shape::Poly {
            points: vec![],
            closed: true,
        },
    ]);
    let map: HashMap<String, Vec<Option<Shape>>> =
        [("a".to_owned(), vec![None, Some(Shape::Dot)])].into();
    conforms(&map);
    conforms(&std::time::Duration::from_millis(1500));
    conforms(&std::net::IpAddr::from([127, 0, 0, 1]));
}

/// Round-trips through our codec only: rmp-serde writes `Some(x)` as `x`, so for an `x`
/// that is nil itself (`None`, `()`, a unit struct, `Value::Null`) it is as lossy as our
/// codec was, and is left out of the comparison.
fn round_trips<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> Vec<u8> {
    let ours = write(value);
    assert_eq!(
        &read::<T>(&ours).unwrap(),
        value,
        "our round trip of {ours:x?}"
    );
    assert_eq!(value_len(&ours), Ok(ours.len()), "value_len agrees");
    ours
}

/// A chain of options as deep as its value: each level that holds `None` below it is a
/// marker around the level below.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Chain(Option<Box<Chain>>);

fn chain(levels: usize) -> Chain {
    (0..levels).fold(Chain(None), |c, _| Chain(Some(Box::new(c))))
}

#[test]
fn options_holding_nil_like_values_are_not_lost() {
    for v in [None, Some(None), Some(Some(7u8))] {
        round_trips(&v);
    }
    for v in [None, Some(None), Some(Some(None)), Some(Some(Some(7u8)))] {
        round_trips(&v);
    }
    round_trips(&Some(()));
    round_trips(&None::<()>);
    round_trips(&Some(Unit));
    round_trips(&Some(serde_json::Value::Null));
    round_trips(&None::<serde_json::Value>);
    round_trips(&vec![Some(None), None, Some(Some(1u8)), Some(None)]);
    let four: Option<Option<Option<Option<()>>>> = Some(Some(Some(None)));
    round_trips(&four);
    round_trips(&Some(Some(Some(Some(())))));
    // Readers that buffer a value first (internally tagged and untagged enums), or that
    // take any value, see the `Some` too.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    #[serde(tag = "t")]
    enum Tagged {
        A {
            x: Option<Option<u8>>,
            y: Option<()>,
        },
    }
    round_trips(&Tagged::A {
        x: Some(None),
        y: Some(()),
    });
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    #[serde(untagged)]
    enum Untagged {
        A(Option<Option<Option<u8>>>),
    }
    for v in [None, Some(None), Some(Some(None)), Some(Some(Some(1)))] {
        round_trips(&Untagged::A(v));
    }
    let v = Some(serde_json::Value::Null);
    let any: Option<serde_json::Value> = read(&write(&vec![v.clone()]))
        .map(|mut a: Vec<_>| a.remove(0))
        .unwrap();
    assert_eq!(any, v);
    // Plain values keep their one-byte encodings.
    assert_eq!(write(&Some(5u8)), [5]);
    assert_eq!(write(&None::<u8>), [0xc0]);
    assert_eq!(write(&Some(Some(5u8))), [5]);
    // The marker, as the module docs of `ser` show it.
    assert_eq!(write(&Some(None::<u8>)), [0xc7, 1, SOME, 0xc0]);
    let two = [0xc7, 4, SOME, 0xc7, 1, SOME, 0xc0];
    assert_eq!(write(&Some(Some(None::<u8>))), two);
    // A payload over 255 bytes takes the 16-bit header (85 markers of 3 bytes, then 4).
    let wide = round_trips(&chain(100));
    assert_eq!(wide.len(), 85 * 3 + 15 * 4 + 1);
    assert_eq!(
        wide[..4],
        [0xc8, 1, 56, SOME],
        "a payload of 316 - 4 = 312 bytes"
    );
}

#[test]
fn unknown_lengths_are_filled_in() {
    // `flatten` writes a map whose length serde does not know.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Outer {
        id: u32,
        #[serde(flatten)]
        rest: BTreeMap<String, u32>,
    }
    let value = Outer {
        id: 1,
        rest: (0..40).map(|i| (format!("k{i}"), i)).collect(),
    };
    let bytes = write(&value);
    assert_eq!(bytes[0], 0xdf, "a 32-bit map header, filled in at the end");
    assert_eq!(read::<Outer>(&bytes).unwrap(), value);
    assert_eq!(value_len(&bytes), Ok(bytes.len()));
}

#[test]
fn a_skipped_field_is_refused_by_name() {
    #[derive(Serialize)]
    struct Sparse {
        a: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        b: Option<u8>,
        c: u8,
    }
    let mut out = Vec::new();
    let err = Sparse {
        a: 1,
        b: None,
        c: 3,
    }
    .serialize(&mut Serializer::new(&mut out))
    .unwrap_err();
    assert!(err.to_string().contains("field `b`"), "{err}");
    assert!(
        write(&Sparse {
            a: 1,
            b: Some(2),
            c: 3
        })
        .len()
            == 4
    );
}

/// Struct fields travel by position: a field one side leaves out would shift the rest.
#[test]
fn struct_fields_that_do_not_line_up_are_refused_by_name() {
    // Left out when written: `c` would get `b`'s value and `c` its default.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct S {
        a: u8,
        #[serde(skip_serializing)]
        b: u8,
        #[serde(default)]
        c: u8,
    }
    let err = read::<S>(&write(&S { a: 1, b: 2, c: 3 }))
        .unwrap_err()
        .to_string();
    for part in [
        "struct `S`",
        "(a, b, c)",
        "holds 2",
        "skip_serializing",
        "#[serde(skip)]",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    // The same without a default: serde's own error, and why.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct NoDefault {
        a: u8,
        #[serde(skip_serializing)]
        b: u8,
        c: u8,
    }
    let err = read::<NoDefault>(&write(&NoDefault { a: 1, b: 2, c: 3 }))
        .unwrap_err()
        .to_string();
    for part in [
        "invalid length 2",
        "struct `NoDefault`",
        "(a, b, c)",
        "holds 2",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    // Left out when written, and the next field's value is not even of the right type.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Typed {
        a: u8,
        #[serde(skip_serializing)]
        b: String,
        c: u8,
    }
    let err = read::<Typed>(&write(&Typed {
        a: 1,
        b: "b".into(),
        c: 3,
    }))
    .unwrap_err()
    .to_string();
    for part in ["struct `Typed`", "(a, b, c)", "holds 2"] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    // Written but not read back: one value too many.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct D {
        a: u8,
        #[serde(skip_deserializing)]
        b: u8,
        c: u8,
    }
    let err = read::<D>(&write(&D { a: 1, b: 2, c: 3 }))
        .unwrap_err()
        .to_string();
    for part in ["struct `D`", "(a, c)", "holds 3", "skip_deserializing"] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    // The same for a struct variant.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum E {
        V {
            a: u8,
            #[serde(skip_serializing)]
            b: u8,
            #[serde(default)]
            c: u8,
        },
    }
    let err = read::<E>(&write(&E::V { a: 1, b: 2, c: 3 }))
        .unwrap_err()
        .to_string();
    for part in ["struct variant `E::V`", "(a, b, c)", "holds 2"] {
        assert!(err.contains(part), "{part:?} in {err}");
    }

    // What lines up still reads: fields skipped on both sides, defaults for a whole
    // value, aliases (which serde lists among the fields), flatten, tuple structs.
    #[derive(Serialize, Deserialize, PartialEq, Debug, Default)]
    #[serde(default)]
    struct Fine {
        a: u8,
        #[serde(skip)]
        b: u8,
        #[serde(alias = "see", alias = "sea")]
        c: Vec<u8>,
        d: Option<Option<()>>,
    }
    let fine = Fine {
        a: 1,
        b: 0,
        c: vec![3],
        d: Some(None),
    };
    assert_eq!(read::<Fine>(&write(&fine)).unwrap(), fine);
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Flat {
        id: u8,
        #[serde(flatten)]
        fine: Fine,
    }
    let flat = Flat { id: 9, fine };
    assert_eq!(read::<Flat>(&write(&flat)).unwrap(), flat);
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Pair(u8, #[serde(skip)] u8, String);
    let pair = Pair(1, 0, "x".into());
    assert_eq!(read::<Pair>(&write(&pair)).unwrap(), pair);
    // A struct written as a map (by another writer) reads by name.
    let p = Point {
        x: 1,
        y: 2.0,
        label: "m".into(),
    };
    assert_eq!(
        read::<Point>(&rmp_serde::to_vec_named(&p).unwrap()).unwrap(),
        p
    );
}

#[test]
fn a_wrong_length_from_a_serialize_impl_is_an_error() {
    struct Liar;
    impl Serialize for Liar {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut seq = s.serialize_seq(Some(3))?;
            seq.serialize_element(&1u8)?;
            seq.end()
        }
    }
    let mut out = Vec::new();
    let err = Liar.serialize(&mut Serializer::new(&mut out)).unwrap_err();
    assert!(err.to_string().contains("announced 3"), "{err}");
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum List {
    Cons(Box<List>),
    Nil,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum Tree {
    Node { next: Option<Box<Tree>> },
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
#[serde(untagged)]
enum Mix {
    Arr(Vec<Mix>),
    Opt(Chain),
}

/// The writer refuses a value exactly when the reader would: at the first level past
/// `MAX_DEPTH`, however the levels are made.
#[test]
fn writer_and_reader_agree_on_the_depth_limit() {
    fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(
        what: &str,
        make: impl Fn(usize) -> T,
        levels_each: usize,
    ) {
        let max = MAX_DEPTH as usize / levels_each;
        let bytes = round_trips(&make(max));
        // Anything that reads any value counts the same levels.
        read::<serde_json::Value>(&bytes).unwrap();
        let mut out = Vec::new();
        let err = make(max + 1)
            .serialize(&mut Serializer::new(&mut out))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot be sent") && err.contains("128"),
            "{what}: {err}"
        );
        // One level more than the writer allows, made by hand, is refused by the reader.
        let deeper = [&[0x91][..], &bytes].concat();
        let err = read::<serde_json::Value>(&deeper).unwrap_err().to_string();
        assert!(
            err.contains("cannot be read") && err.contains("128"),
            "{what}: {err}"
        );
    }
    let arrays = |n| (0..n).fold(serde_json::Value::Null, |v, _| serde_json::json!([v]));
    check("arrays", arrays, 1);
    let maps = |n| (0..n).fold(serde_json::json!(1), |v, _| serde_json::json!({"k": v}));
    check("maps", maps, 1);
    check("markers", chain, 1);
    let list = |n| (0..n).fold(List::Nil, |l, _| List::Cons(Box::new(l)));
    check("newtype variants", list, 1);
    let tree = |n: usize| {
        let leaf = Tree::Node { next: None };
        (1..n).fold(leaf, |t, _| Tree::Node {
            next: Some(Box::new(t)),
        })
    };
    check("struct variants", tree, 2);
    // Arrays around a chain of markers, read through a buffering (untagged) reader.
    let mix = |n: usize| (10..n).fold(Mix::Opt(chain(10)), |m, _| Mix::Arr(vec![m]));
    check("arrays around markers", mix, 1);
}

#[test]
fn bad_input_is_an_error_never_a_panic() {
    assert!(read::<u64>(&[]).is_err());
    assert!(read::<u64>(&[0xcf, 1, 2]).is_err());
    assert!(read::<String>(&[0xa3, b'a']).is_err());
    assert!(read::<String>(&[0xa2, 0xff, 0xfe]).is_err(), "not UTF-8");
    assert!(read::<Vec<u8>>(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(read::<u8>(&[0xc1]).is_err());
    assert!(read::<u8>(&[0xd4, 1, 2]).is_err(), "extension values");
    // Deep nesting is refused before the stack runs out.
    let deep = vec![0x91u8; 100_000];
    let err = read::<serde_json::Value>(&deep).unwrap_err();
    assert!(err.to_string().contains("nest"), "{err}");
    // So is deep nesting of the markers that wrap a `Some` (see `ser`).
    let n = 100_000;
    let mut deep = Vec::with_capacity(7 * n);
    for j in 0..n {
        deep.push(0xc9);
        deep.extend_from_slice(&(6 * (n - 1 - j) as u32 + 1).to_be_bytes());
        deep.push(SOME);
    }
    deep.push(0xc0);
    assert_eq!(value_len(&deep), Ok(deep.len()));
    let err = read::<serde_json::Value>(&deep).unwrap_err();
    assert!(err.to_string().contains("nest"), "{err}");
    // A marker of a `Some` must hold exactly one value; other extensions are refused.
    assert!(read::<Option<()>>(&[0xc7, 2, SOME, 0xc0, 0xc0]).is_err());
    assert!(read::<Option<()>>(&[0xc7, 1, SOME]).is_err());
    assert!(read::<Option<()>>(&[0xc7, 0, SOME, 0xc0]).is_err());
    assert!(read::<Option<()>>(&[0xc7, 1, b'T', 0xc0]).is_err());
    assert!(read::<serde_json::Value>(&[0xc7, 1, b'T', 0xc0]).is_err());
    assert_eq!(
        read::<Option<()>>(&[0xc7, 1, SOME, 0xc0]).unwrap(),
        Some(())
    );
    // Random bytes, read as a self-describing value.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20_000 {
        let bytes: Vec<u8> = (0..(x % 24))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = serde_json::Value::deserialize(&mut Deserializer::new(&bytes));
        let _ = Shape::deserialize(&mut Deserializer::new(&bytes));
    }
}
