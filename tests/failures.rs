//! Item failures: panics, returned errors, crashes and serialization failures each become an
//! error naming the item and the worker, and no worker outlives the run.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use spychro::{ExitStatus, FailureKind, Job};

#[spychro::job]
fn explode_at(x: u32, bad: u32) -> u32 {
    if x == bad {
        panic!("item {x} exploded");
    }
    x
}

fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_panic_names_the_item_message_and_location() {
    let err = Job::new(explode_at, 0..1000u32)
        .args(613)
        .processes(2)
        .run_multi_processed()
        .unwrap_err();
    let f = err.item().expect("an item failure");
    assert_eq!(f.index(), 613);
    assert_eq!(f.item_debug(), Some("613"));
    assert_ne!(f.pid(), std::process::id());
    match f.kind() {
        FailureKind::Panicked {
            message, location, ..
        } => {
            assert_eq!(message, "item 613 exploded");
            let at = location.as_deref().unwrap();
            assert!(at.starts_with("tests/failures.rs:"), "{at}");
        }
        other => panic!("not a panic: {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("item 613 (613)"), "{text}");
    assert!(text.contains("panicked at tests/failures.rs:"), "{text}");
    assert!(text.contains(&format!("process {}", f.pid())), "{text}");
    // The failing worker is gone and reaped.
    assert!(gone(f.pid()));
}

#[spychro::job]
fn parse_number(s: String) -> Result<u64, std::num::ParseIntError> {
    s.parse::<u64>()
}

#[test]
fn a_returned_error_names_the_item() {
    let items: Vec<String> = (0..50)
        .map(|i| {
            if i == 31 {
                "thirty-one".into()
            } else {
                i.to_string()
            }
        })
        .collect();
    let err = Job::new(parse_number, items)
        .processes(2)
        .run_multi_processed()
        .unwrap_err();
    let f = err.item().unwrap();
    assert_eq!(f.index(), 31);
    assert_eq!(f.item_debug(), Some("\"thirty-one\""));
    assert_eq!(
        f.kind(),
        &FailureKind::Returned {
            message: "invalid digit found in string".into()
        }
    );
}

#[spychro::job]
fn abort_at(x: u32, bad: u32) -> u32 {
    if x == bad {
        std::process::abort();
    }
    x
}

#[spychro::job]
fn exit_at(x: u32, bad: u32) -> u32 {
    if x == bad {
        std::process::exit(3);
    }
    x
}

#[test]
fn a_crashing_worker_fails_its_item_with_the_signal_or_code() {
    let err = Job::new(abort_at, 0..20u32)
        .args(9)
        .processes(2)
        .chunk_size(1)
        .run_multi_processed()
        .unwrap_err();
    let f = err.item().unwrap();
    assert_eq!(f.index(), 9);
    match f.kind() {
        FailureKind::Crashed { status, .. } => assert_eq!(*status, ExitStatus::Signal(6)),
        other => panic!("not a crash: {other:?}"),
    }
    assert!(err.to_string().contains("signal 6 (SIGABRT)"), "{err}");

    let err = Job::new(exit_at, 0..20u32)
        .args(4)
        .processes(2)
        .chunk_size(1)
        .run_multi_processed()
        .unwrap_err();
    let f = err.item().unwrap();
    assert_eq!(f.index(), 4);
    assert!(
        matches!(
            f.kind(),
            FailureKind::Crashed {
                status: ExitStatus::Code(3),
                ..
            }
        ),
        "{f}"
    );
}

/// Serializes and deserializes as a `u32`, except that 13 refuses to serialize and 7 refuses
/// to deserialize.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Picky(u32);

impl Serialize for Picky {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 13 {
            return Err(serde::ser::Error::custom("13 is unlucky"));
        }
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Picky {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        if v == 7 {
            return Err(serde::de::Error::custom("7 is not welcome"));
        }
        Ok(Picky(v))
    }
}

#[spychro::job]
fn picky_in(x: Picky) -> u32 {
    x.0
}

#[spychro::job]
fn picky_out(x: u32) -> Picky {
    Picky(x)
}

fn failure_of(err: spychro::Error) -> (u64, FailureKind) {
    let f = err
        .item()
        .unwrap_or_else(|| panic!("not an item failure: {err}"));
    (f.index(), f.kind().clone())
}

#[test]
fn an_item_that_fails_to_serialize_names_the_item() {
    let items: Vec<Picky> = (8..20).map(Picky).collect();
    for err in [
        Job::new(picky_in, items.clone())
            .processes(2)
            .run_multi_processed()
            .unwrap_err(),
        Job::new(picky_in, items.clone())
            .run_single_processed()
            .unwrap_err(),
        Job::new(picky_in, items).run_multi_threaded().unwrap_err(),
    ] {
        assert!(err.to_string().contains("(Picky(13))"), "{err}");
        let (index, kind) = failure_of(err);
        assert_eq!(index, 5);
        assert!(
            matches!(&kind, FailureKind::SerializeItem { message } if message.contains("13 is unlucky")),
            "{kind:?}"
        );
    }
}

#[test]
fn an_item_that_fails_to_deserialize_in_the_worker_names_the_item() {
    let err = Job::new(picky_in, (0..10).map(Picky))
        .processes(2)
        .run_multi_processed()
        .unwrap_err();
    let (index, kind) = failure_of(err);
    assert_eq!(index, 7);
    assert!(
        matches!(&kind, FailureKind::DeserializeItem { message } if message.contains("7 is not welcome")),
        "{kind:?}"
    );
}

#[test]
fn an_output_that_fails_to_serialize_or_deserialize_names_the_item() {
    let err = Job::new(picky_out, 10..20u32)
        .processes(2)
        .run_multi_processed()
        .unwrap_err();
    let (index, kind) = failure_of(err);
    assert_eq!(index, 3);
    assert!(
        matches!(&kind, FailureKind::SerializeOutput { message } if message.contains("13 is unlucky")),
        "{kind:?}"
    );

    let err = Job::new(picky_out, 0..10u32)
        .processes(2)
        .run_multi_processed()
        .unwrap_err();
    let (index, kind) = failure_of(err);
    assert_eq!(index, 7);
    assert!(
        matches!(&kind, FailureKind::DeserializeOutput { message } if message.contains("7 is not welcome")),
        "{kind:?}"
    );
}

/// Items and outputs travel back to back in one message: one that does not decode must not
/// cost the items after it in the same batch.
#[test]
fn a_value_that_does_not_decode_fails_alone_in_its_batch() {
    let outcomes = Job::new(picky_in, (0..100).map(Picky))
        .processes(2)
        .chunk_size(50)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    assert_eq!(outcomes.len(), 100);
    for (i, o) in outcomes.iter().enumerate() {
        match o {
            Err(f) if i == 7 => assert!(
                matches!(f.kind(), FailureKind::DeserializeItem { .. }),
                "{f}"
            ),
            Err(f) if i == 13 => {
                assert!(matches!(f.kind(), FailureKind::SerializeItem { .. }), "{f}")
            }
            Ok(v) if i != 7 && i != 13 => assert_eq!(*v, i as u32),
            other => panic!("item {i}: {other:?}"),
        }
    }

    let outcomes = Job::new(picky_out, 0..100u32)
        .processes(2)
        .chunk_size(50)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    assert_eq!(outcomes.len(), 100);
    for (i, o) in outcomes.iter().enumerate() {
        match o {
            Err(f) if i == 7 || i == 13 => assert_eq!(
                f.kind().to_string().contains("unlucky"),
                i == 13,
                "item {i}: {f}"
            ),
            Ok(Picky(v)) if i != 7 && i != 13 => assert_eq!(*v, i as u32),
            other => panic!("item {i}: {other:?}"),
        }
    }
}

#[test]
fn an_error_leaves_no_worker_behind() {
    let dir = std::env::temp_dir().join(format!("spychro-failures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let err = Job::new(record_pid_then_fail, 0..200u32)
        .args(dir.clone())
        .processes(3)
        .chunk_size(1)
        .run_multi_processed()
        .unwrap_err();
    assert_eq!(err.item().unwrap().index(), 150);
    let pids: Vec<u32> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    assert!(!pids.is_empty() && pids.len() <= 3, "{pids:?}");
    for pid in pids {
        assert!(gone(pid), "worker {pid} outlived the run");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[spychro::job]
fn record_pid_then_fail(x: u32, dir: std::path::PathBuf) -> u32 {
    std::fs::write(dir.join(std::process::id().to_string()), b"").unwrap();
    assert!(x != 150, "planned failure");
    x
}

#[spychro::job]
fn nap_ms(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

#[test]
fn the_deadline_holds_in_every_mode() {
    use std::time::{Duration, Instant};
    for mode in ["single", "threads", "processes"] {
        let job = spychro::Job::new(nap_ms, vec![100u64; 40])
            .processes(2)
            .deadline(Duration::from_millis(300));
        let started = Instant::now();
        let result = match mode {
            "single" => job.run_single_processed(),
            "threads" => job.run_multi_threaded(),
            _ => job.run_multi_processed(),
        };
        let took = started.elapsed();
        assert!(
            matches!(result, Err(spychro::Error::DeadlineExceeded { .. })),
            "{mode}: {result:?}"
        );
        assert!(took < Duration::from_millis(1500), "{mode}: took {took:?}");
    }
}
