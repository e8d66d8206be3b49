//! Every serde shape a same-process round trip keeps comes back the same from all three modes
//! (processes, threads, this thread); shapes that cannot travel are the same clear error in
//! all three, never a changed value.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use spychro::{FailureKind, Job};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meters(f64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum External {
    Dot,
    Pair(u8, i64),
    Named {
        name: String,
        tags: Vec<Option<i32>>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
enum Internal {
    Circle { radius: f64 },
    Square { side: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    Number(i64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Int(u64),
    Text(String),
    List(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Flat {
    id: u32,
    #[serde(flatten)]
    rest: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Zoo {
    nested: Vec<Option<Option<u8>>>,
    unit_option: Vec<Option<()>>,
    unit_struct: Option<Unit>,
    unit: (),
    meters: Meters,
    external: Vec<External>,
    internal: Vec<Internal>,
    adjacent: Vec<Adjacent>,
    untagged: Vec<Untagged>,
    flat: Flat,
    by_number: HashMap<u32, String>,
    by_pair: BTreeMap<(i8, char), bool>,
    by_enum: BTreeMap<Side, u8>,
    wide: (i128, u128, i128, u128),
    floats: Vec<u64>,
    json: serde_json::Value,
    json_null: Option<serde_json::Value>,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Side {
    Left,
    Right,
}

fn zoo(seed: u8) -> Zoo {
    Zoo {
        nested: vec![None, Some(None), Some(Some(seed))],
        unit_option: vec![None, Some(())],
        unit_struct: Some(Unit),
        unit: (),
        meters: Meters(-0.0),
        external: vec![
            External::Dot,
            External::Pair(seed, -5_000_000_000),
            External::Named {
                name: "n".repeat(seed as usize),
                tags: vec![Some(-1), None],
            },
        ],
        internal: vec![
            Internal::Circle { radius: 1.5 },
            Internal::Square { side: seed as u32 },
        ],
        adjacent: vec![Adjacent::Number(-7), Adjacent::Text("t".into())],
        untagged: vec![
            Untagged::Int(u64::MAX),
            Untagged::Text("text".into()),
            Untagged::List(vec![1, 2, seed]),
        ],
        flat: Flat {
            id: 9,
            rest: (0..5).map(|i| (format!("k{i}"), -i)).collect(),
        },
        by_number: (0..4).map(|i| (i, i.to_string())).collect(),
        by_pair: [((-1, 'é'), true), ((2, 'x'), false)].into(),
        by_enum: [(Side::Left, 1), (Side::Right, seed)].into(),
        wide: (i128::MIN, u128::MAX, -1, u64::MAX as u128 + 1),
        // Bit patterns, so that NaN compares: NaN, -0.0, infinities, a subnormal.
        floats: [
            f64::NAN,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 2.0,
        ]
        .iter()
        .map(|f| f.to_bits())
        .collect(),
        json: serde_json::json!({"a": [null, 1, {"b": null}], "c": "d", "e": -2.5}),
        json_null: Some(serde_json::Value::Null),
        bytes: vec![0, 255, seed],
    }
}

/// Sends the zoo through, and its float bit patterns through `f64`s.
#[spychro::job]
fn echo(z: Zoo) -> (Zoo, Vec<f64>) {
    let floats = z.floats.iter().map(|&b| f64::from_bits(b)).collect();
    (z, floats)
}

#[test]
fn every_shape_comes_back_the_same_in_every_mode() {
    let items: Vec<Zoo> = (0..20).map(zoo).collect();
    let processes = Job::new(echo, items.clone())
        .processes(2)
        .run_multi_processed()
        .unwrap();
    let threads = Job::new(echo, items.clone()).run_multi_threaded().unwrap();
    let single = Job::new(echo, items.clone())
        .run_single_processed()
        .unwrap();
    for (mode, outs) in [
        ("processes", &processes),
        ("threads", &threads),
        ("single", &single),
    ] {
        for (sent, (got, floats)) in items.iter().zip(outs.iter()) {
            assert_eq!(got, sent, "{mode}");
            let bits: Vec<u64> = floats.iter().map(|f| f.to_bits()).collect();
            assert_eq!(bits, sent.floats, "{mode}: float bits");
        }
    }
}

/// A field that is skipped when serializing but read back: fields travel by position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Shifty {
    a: u8,
    #[serde(skip_serializing)]
    b: u8,
    #[serde(default)]
    c: u8,
}

#[spychro::job]
fn take_shifty(s: Shifty) -> (u8, u8, u8) {
    (s.a, s.b, s.c)
}

#[test]
fn a_struct_whose_fields_do_not_line_up_is_the_same_clear_error_in_every_mode() {
    let item = Shifty { a: 1, b: 2, c: 3 };
    let run = |mode: &str| {
        let job = Job::new(take_shifty, [item.clone()]).keep_going();
        let outcomes = match mode {
            "processes" => job.processes(1).run_multi_processed(),
            "threads" => job.run_multi_threaded(),
            _ => job.run_single_processed(),
        };
        outcomes.unwrap().remove(0)
    };
    for mode in ["processes", "threads", "single"] {
        let failure = run(mode).unwrap_err();
        match failure.kind() {
            FailureKind::DeserializeItem { message } => {
                assert!(message.contains("Shifty"), "{mode}: {message}");
                assert!(message.contains("skip"), "{mode}: {message}");
            }
            other => panic!("{mode}: {other:?}"),
        }
    }
}

/// A value nested 400 levels deep (past the 128-level limit).
#[spychro::job]
fn deep(levels: usize) -> serde_json::Value {
    let mut v = serde_json::Value::Null;
    for _ in 0..levels {
        v = serde_json::Value::Array(vec![v]);
    }
    v
}

#[test]
fn a_value_nested_too_deep_is_the_same_clear_error_in_every_mode() {
    for mode in ["processes", "threads", "single"] {
        let job = Job::new(deep, [100usize, 400]).keep_going();
        let outcomes = match mode {
            "processes" => job.processes(1).run_multi_processed(),
            "threads" => job.run_multi_threaded(),
            _ => job.run_single_processed(),
        }
        .unwrap();
        assert!(outcomes[0].is_ok(), "{mode}: 100 levels travel");
        let failure = outcomes[1].as_ref().unwrap_err();
        assert!(
            matches!(failure.kind(), FailureKind::SerializeOutput { message } if message.contains("128")),
            "{mode}: {failure}"
        );
    }
}
