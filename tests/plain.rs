//! Plain jobs: jobs whose item and output types are `Plain` (numbers, arrays of them, types
//! that implement it) move their items and outputs through memory shared with each worker
//! instead of serializing them. Everything a job promises holds for them too: the same
//! outputs, in order, every failure, crash and timeout named by its item, items of a lost
//! worker run again elsewhere, streams, and persistent pools side by side with other jobs.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spychro::{FailureKind, Job, JobFn, Plain, Pool};

#[spychro::job]
fn widen(x: u8) -> u64 {
    u64::from(x) * 1_000_003
}

#[spychro::job]
fn narrow(x: u64) -> u8 {
    (x % 251) as u8
}

#[spychro::job]
fn grow(x: u16) -> [u64; 4] {
    let x = u64::from(x);
    [x, x * x, x + 7, u64::MAX - x]
}

#[spychro::job]
fn odd(x: [u8; 3]) -> [u8; 5] {
    [x[2], x[1], x[0], x[0] ^ x[1], x[1].wrapping_add(x[2])]
}

#[spychro::job]
fn float(x: f64) -> f64 {
    if x.is_nan() { x } else { x * 0.5 - 1.0 }
}

#[spychro::job]
fn nothing(_x: u32) {}

/// 8 KiB items: a batch holds at most a quarter of a worker's region (128 of them).
#[spychro::job]
fn total(block: [[u64; 32]; 32]) -> u64 {
    block
        .iter()
        .flatten()
        .fold(0u64, |a, &v| a.wrapping_mul(31).wrapping_add(v))
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

// SAFETY: two f64s, no padding; every bit pattern is a valid Point.
unsafe impl Plain for Point {}

#[spychro::job]
fn mirror(p: Point) -> Point {
    Point { x: p.y, y: -p.x }
}

#[spychro::job]
fn label(x: u64) -> String {
    format!("#{x}")
}

#[spychro::job]
fn pair(x: u32) -> (u32, u32) {
    (x, x + 1)
}

#[test]
fn plain_sizes_are_found_for_plain_types_only() {
    fn sizes<F: JobFn>(_: F) -> (Option<usize>, Option<usize>) {
        F::plain_sizes()
    }
    assert_eq!(sizes(widen), (Some(1), Some(8)));
    assert_eq!(sizes(grow), (Some(2), Some(32)));
    assert_eq!(sizes(odd), (Some(3), Some(5)));
    assert_eq!(sizes(nothing), (Some(4), Some(0)));
    assert_eq!(sizes(mirror), (Some(16), Some(16)));
    assert_eq!(sizes(total), (Some(8192), Some(8)));
    assert_eq!(sizes(label), (Some(8), None));
    assert_eq!(sizes(pair), (Some(4), None));
}

#[test]
fn plain_jobs_of_every_shape_give_what_one_process_gives() {
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    assert_eq!(
        Job::new(widen, bytes.clone())
            .processes(2)
            .run_multi_processed()
            .unwrap(),
        bytes.iter().map(|&b| widen(b)).collect::<Vec<_>>()
    );
    assert_eq!(
        Job::new(narrow, 0..300_000u64)
            .processes(2)
            .run_multi_processed()
            .unwrap(),
        (0..300_000u64).map(*narrow).collect::<Vec<_>>()
    );
    assert_eq!(
        Job::new(grow, 0..u16::MAX)
            .processes(3)
            .run_multi_processed()
            .unwrap(),
        (0..u16::MAX).map(*grow).collect::<Vec<_>>()
    );
    let triples: Vec<[u8; 3]> = (0..70_000u32)
        .map(|i| [i as u8, (i >> 8) as u8, (i * 31) as u8])
        .collect();
    assert_eq!(
        Job::new(odd, triples.clone())
            .processes(2)
            .run_multi_processed()
            .unwrap(),
        triples.iter().map(|&t| odd(t)).collect::<Vec<_>>()
    );
    // Floats keep every bit, NaN payloads and signed zeros included.
    let floats: Vec<f64> = (0..50_000u64)
        .map(|i| match i % 5 {
            0 => f64::from_bits(0x7ff8_0000_0000_0000 | i),
            1 => -0.0,
            _ => i as f64 / 3.0,
        })
        .collect();
    let got = Job::new(float, floats.clone())
        .processes(2)
        .run_multi_processed()
        .unwrap();
    let want: Vec<u64> = floats.iter().map(|&f| float(f).to_bits()).collect();
    assert_eq!(got.iter().map(|f| f.to_bits()).collect::<Vec<_>>(), want);
    assert_eq!(
        Job::new(nothing, 0..10_000u32)
            .processes(2)
            .run_multi_processed()
            .unwrap()
            .len(),
        10_000
    );
    // 24 MiB of items through two 4 MiB regions: slots are given back and taken again.
    let blocks: Vec<[[u64; 32]; 32]> = (0..3_000u64)
        .map(|i| std::array::from_fn(|r| std::array::from_fn(|c| i * 1024 + (r * 32 + c) as u64)))
        .collect();
    assert_eq!(
        Job::new(total, blocks.clone())
            .processes(2)
            .run_multi_processed()
            .unwrap(),
        blocks.iter().map(|&b| total(b)).collect::<Vec<_>>()
    );
    let points: Vec<Point> = (0..40_000)
        .map(|i| Point {
            x: f64::from(i),
            y: -f64::from(i) / 2.0,
        })
        .collect();
    assert_eq!(
        Job::new(mirror, points.clone())
            .processes(2)
            .run_multi_processed()
            .unwrap(),
        points.iter().map(|&p| mirror(p)).collect::<Vec<_>>()
    );
}

#[spychro::job]
fn picky(x: u64) -> Result<u64, String> {
    if x % 1000 == 999 {
        return Err(format!("{x} is not welcome"));
    }
    if x % 1777 == 5 {
        panic!("{x} made me panic");
    }
    Ok(x * 3)
}

#[test]
fn failures_in_plain_batches_are_their_own_items() {
    let outcomes = Job::new(picky, 0..20_000u64)
        .processes(2)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    assert_eq!(outcomes.len(), 20_000);
    let mut failed = 0;
    for (i, o) in outcomes.iter().enumerate() {
        let x = i as u64;
        if x % 1000 == 999 || x % 1777 == 5 {
            failed += 1;
            let f = o.as_ref().expect_err("should fail");
            assert_eq!(f.index(), x);
            assert_eq!(f.item_debug(), Some(x.to_string().as_str()));
            match f.kind() {
                FailureKind::Returned { message } => {
                    assert_eq!(message, &format!("{x} is not welcome"))
                }
                FailureKind::Panicked { message, .. } => {
                    assert_eq!(message, &format!("{x} made me panic"))
                }
                other => panic!("item {x}: {other:?}"),
            }
        } else {
            assert_eq!(*o.as_ref().unwrap(), x * 3, "item {x}");
        }
    }
    assert_eq!(failed, 20 + 12);
    // Without keep_going, a failure stops the job (the lowest index among those seen by
    // then: which ones that are depends on the workers' timing).
    let err = Job::new(picky, 0..20_000u64)
        .processes(2)
        .run_multi_processed()
        .unwrap_err();
    let f = err.item().expect("an item failed");
    assert!(f.index() % 1000 == 999 || f.index() % 1777 == 5, "{err}");
    assert_eq!(f.item_debug(), Some(f.index().to_string().as_str()));
}

/// Aborts its worker the first time it sees `at` (a marker file records that it did).
#[spychro::job]
fn crash_once(x: u64, at: u64, marker: PathBuf) -> u64 {
    if x == at && std::fs::create_dir(&marker).is_ok() {
        std::process::abort();
    }
    x + 1
}

#[spychro::job]
fn crash_at(x: u64, at: u64) -> u64 {
    if x == at {
        std::process::abort();
    }
    x + 1
}

#[test]
fn a_crash_in_a_plain_batch_names_its_item_and_the_rest_run_again() {
    let outcomes = Job::new(crash_at, 0..30_000u64)
        .args(12_345)
        .processes(2)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    let f = outcomes[12_345].as_ref().unwrap_err();
    assert!(
        matches!(f.kind(), FailureKind::Crashed { .. }),
        "{:?}",
        f.kind()
    );
    assert_eq!(f.item_debug(), Some("12345"));
    for (i, o) in outcomes.iter().enumerate() {
        if i != 12_345 {
            assert_eq!(*o.as_ref().unwrap(), i as u64 + 1, "item {i}");
        }
    }
    // Retried: the items the lost worker held, sent again from the caller's copy, all run.
    let marker = std::env::temp_dir().join(format!("spychro-plain-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir(&marker);
    let outputs = Job::new(crash_once, 0..30_000u64)
        .args((7_777, marker.clone()))
        .processes(2)
        .retries(1)
        .run_multi_processed()
        .unwrap();
    assert!(marker.exists(), "item 7777 never ran");
    let _ = std::fs::remove_dir(&marker);
    assert_eq!(outputs, (1..=30_000u64).collect::<Vec<_>>());
}

#[spychro::job]
fn stall_at(x: u32, at: u32) -> u32 {
    if x == at {
        std::thread::sleep(Duration::from_secs(20));
    }
    x * 2
}

#[test]
fn a_plain_item_past_its_timeout_is_named() {
    let limit = Duration::from_millis(300);
    let outcomes = Job::new(stall_at, 0..5_000u32)
        .args(2_500)
        .processes(2)
        .timeout(limit)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    let f = outcomes[2_500].as_ref().unwrap_err();
    assert!(
        matches!(f.kind(), FailureKind::TimedOut { .. }),
        "{:?}",
        f.kind()
    );
    assert_eq!(f.item_debug(), Some("2500"));
    for (i, o) in outcomes.iter().enumerate() {
        if i != 2_500 {
            assert_eq!(*o.as_ref().unwrap(), i as u32 * 2, "item {i}");
        }
    }
}

#[test]
fn plain_streams_arrive_in_order() {
    let mut next = 0u64;
    for out in Job::new(narrow, 0..400_000u64)
        .processes(2)
        .stream_multi_processed()
        .unwrap()
    {
        assert_eq!(out.unwrap(), narrow(next), "output {next}");
        next += 1;
    }
    assert_eq!(next, 400_000);
}

#[test]
fn a_pool_runs_plain_and_serialized_jobs_side_by_side() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let plain = Job::new(narrow, 0..100_000u64).on(&pool).stream().unwrap();
    let words = Job::new(label, 0..20_000u64).on(&pool).stream().unwrap();
    let wide = Job::new(grow, 0..30_000u16).on(&pool).run().unwrap();
    assert_eq!(wide, (0..30_000u16).map(*grow).collect::<Vec<_>>());
    let got: Vec<u8> = plain.map(Result::unwrap).collect();
    assert_eq!(got, (0..100_000u64).map(*narrow).collect::<Vec<_>>());
    let got: Vec<String> = words.map(Result::unwrap).collect();
    assert_eq!(got, (0..20_000u64).map(*label).collect::<Vec<_>>());
    pool.close();
    pool.join();
}
