//! What a job computes, in every mode: order, types, extra arguments, pool size, and the
//! equality of single-processed, multi-threaded and multi-processed runs.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use spychro::Job;

#[spychro::job]
fn times_two_plus_one(x: u64) -> u64 {
    2 * x + 1
}

#[test]
fn job_is_still_an_ordinary_function() {
    assert_eq!(times_two_plus_one(20), 41);
    let mapped: Vec<u64> = (0..3).map(*times_two_plus_one).collect();
    assert_eq!(mapped, [1, 3, 5]);
}

#[test]
fn order_is_kept_over_100k_items() {
    let out = Job::new(times_two_plus_one, 0..100_000u64)
        .processes(3)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out.len(), 100_000);
    for (i, &x) in out.iter().enumerate() {
        assert_eq!(x, 2 * i as u64 + 1, "item {i}");
    }
}

/// The vector a run returns is sized once, for the whole input: items already sent when
/// collecting begins count too, so it is never regrown (copied, its memory doubled) at the end.
#[test]
fn a_collected_vector_is_allocated_once_for_every_item() {
    for n in [1_000u64, 300_000] {
        let out = Job::new(times_two_plus_one, 0..n)
            .processes(2)
            .run_multi_processed()
            .unwrap();
        assert_eq!(out.len() as u64, n);
        assert_eq!(out.capacity() as u64, n, "{n} items");
        assert_eq!(out[n as usize - 1], 2 * (n - 1) + 1);
    }
}

#[test]
fn order_is_kept_with_one_item_per_message() {
    let out = Job::new(times_two_plus_one, 0..2_000u64)
        .processes(2)
        .chunk_size(1)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, (0..2_000u64).map(|x| 2 * x + 1).collect::<Vec<_>>());
}

/// Item 0 waits until item 1, which the other worker runs, has finished, so that the outputs
/// after item 0 reach the caller before it does.
#[spychro::job]
fn first_waits_for_second(x: u64, dir: PathBuf) -> (u64, bool) {
    let marker = dir.join("second-done");
    if x == 1 {
        std::fs::write(&marker, b"").unwrap();
    }
    let mut waited = false;
    if x == 0 {
        let until = Instant::now() + Duration::from_secs(20);
        while !marker.exists() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
        waited = marker.exists();
    }
    (2 * x + 1, waited)
}

#[test]
fn order_is_kept_when_later_items_finish_first() {
    let dir = fresh_dir("later-first");
    let out = Job::new(first_waits_for_second, 0..5_000u64)
        .args(dir.clone())
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert!(out[0].1, "item 0 did not see item 1 finish first");
    let values: Vec<u64> = out.iter().map(|o| o.0).collect();
    assert_eq!(values, (0..5_000u64).map(|x| 2 * x + 1).collect::<Vec<_>>());
    std::fs::remove_dir_all(dir).unwrap();
}

/// What a worker's stdin is, and what reading it gives.
#[spychro::job]
fn read_stdin(_: u32) -> (String, usize) {
    use std::io::Read;
    let target = std::fs::read_link("/proc/self/fd/0")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("unreadable: {e}"));
    let mut buf = Vec::new();
    let n = std::io::stdin().read_to_end(&mut buf).unwrap_or(usize::MAX);
    (target, n)
}

#[test]
fn a_workers_stdin_is_empty_whatever_the_caller_passed_it() {
    let out = Job::new(read_stdin, 0..2u32)
        .processes(2)
        .chunk_size(1)
        .run_multi_processed()
        .unwrap();
    for (target, n) in out {
        assert_eq!(target, "/dev/null");
        assert_eq!(n, 0);
    }
}

#[spychro::job]
fn nothing(_: u64) {}

#[test]
fn jobs_without_an_output_collect_one_unit_per_item() {
    let out = Job::new(nothing, 0..50_000u64)
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out.len(), 50_000);
}

#[test]
fn empty_input_gives_empty_output() {
    let none: Vec<u64> = Vec::new();
    assert!(
        Job::new(times_two_plus_one, none.clone())
            .run_multi_processed()
            .unwrap()
            .is_empty()
    );
    assert!(
        Job::new(times_two_plus_one, none)
            .run_multi_threaded()
            .unwrap()
            .is_empty()
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Circle { r: f64 },
    Rect(f64, f64),
    Dot,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Drawing {
    name: String,
    shapes: Vec<Shape>,
    tags: BTreeMap<String, Option<u32>>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Summary {
    name: String,
    area: f64,
    kinds: Vec<String>,
    longest_tag: Option<String>,
}

#[spychro::job]
fn summarize(d: Drawing) -> Summary {
    let area = d
        .shapes
        .iter()
        .map(|s| match s {
            Shape::Circle { r } => std::f64::consts::PI * r * r,
            Shape::Rect(w, h) => w * h,
            Shape::Dot => 0.0,
        })
        .sum();
    let kinds = d
        .shapes
        .iter()
        .map(|s| match s {
            Shape::Circle { .. } => "circle".to_string(),
            Shape::Rect(..) => "rect".to_string(),
            Shape::Dot => "dot".to_string(),
        })
        .collect();
    let longest_tag = d.tags.keys().max_by_key(|k| k.len()).cloned();
    Summary {
        name: d.name.to_uppercase(),
        area,
        kinds,
        longest_tag,
    }
}

fn drawings(n: usize) -> Vec<Drawing> {
    (0..n)
        .map(|i| Drawing {
            name: format!("drawing-{i}"),
            shapes: (0..i % 5)
                .map(|k| match k % 3 {
                    0 => Shape::Circle { r: k as f64 },
                    1 => Shape::Rect(i as f64, 2.0),
                    _ => Shape::Dot,
                })
                .collect(),
            tags: (0..i % 3)
                .map(|k| ("t".repeat(k + 1), (k % 2 == 0).then_some(k as u32)))
                .collect(),
        })
        .collect()
}

#[test]
fn user_structs_and_enums_round_trip() {
    let input = drawings(500);
    let expected: Vec<Summary> = input.iter().cloned().map(*summarize).collect();
    let out = Job::new(summarize, input)
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, expected);
    assert_eq!(out[7].name, "DRAWING-7");
    assert_eq!(out[7].kinds, ["circle", "rect"]);
    assert_eq!(out[7].longest_tag.as_deref(), Some("t"));
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Table {
    weights: Vec<u64>,
}

#[spychro::job]
fn weigh(x: u64, factor: u64, table: &Table, label: String) -> (String, u64) {
    let w = table.weights[x as usize % table.weights.len()];
    (label, x * factor + w)
}

#[spychro::job]
fn add(x: u64, y: u64) -> u64 {
    x + y
}

#[test]
fn extra_arguments_are_given_once() {
    let table = Table {
        weights: vec![100, 200, 300],
    };
    let out = Job::new(weigh, 0..10u64)
        .args((3, table.clone(), "w".to_string()))
        .processes(2)
        .run_multi_processed()
        .unwrap();
    let expected: Vec<(String, u64)> = (0..10u64)
        .map(|x| ("w".to_string(), 3 * x + table.weights[x as usize % 3]))
        .collect();
    assert_eq!(out, expected);

    let out = Job::new(add, [1, 2, 3])
        .args(10)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, [11, 12, 13]);
}

#[spychro::job]
fn maybe_halve(x: i64) -> Result<i64, String> {
    if x % 2 != 0 {
        return Err(format!("{x} is odd"));
    }
    Ok(x / 2)
}

#[test]
fn modes_agree_on_outputs() {
    let input: Vec<Drawing> = drawings(300);
    let single = Job::new(summarize, input.clone())
        .run_single_processed()
        .unwrap();
    let threaded = Job::new(summarize, input.clone())
        .processes(3)
        .run_multi_threaded()
        .unwrap();
    let multi = Job::new(summarize, input)
        .processes(3)
        .run_multi_processed()
        .unwrap();
    assert_eq!(single, threaded);
    assert_eq!(single, multi);
}

#[test]
fn modes_agree_on_errors() {
    let input: Vec<i64> = (0..200).map(|i| if i == 137 { 5 } else { 2 * i }).collect();
    let single = Job::new(maybe_halve, input.clone())
        .run_single_processed()
        .unwrap_err();
    let threaded = Job::new(maybe_halve, input.clone())
        .processes(2)
        .run_multi_threaded()
        .unwrap_err();
    let multi = Job::new(maybe_halve, input)
        .processes(2)
        .run_multi_processed()
        .unwrap_err();
    let me = std::process::id();
    let describe = |e: &spychro::Error| {
        let f = e.item().expect("an item failure");
        (
            f.index(),
            f.item_debug().map(str::to_owned),
            f.kind().clone(),
            f.job(),
        )
    };
    assert_eq!(describe(&single), describe(&threaded));
    assert_eq!(describe(&single), describe(&multi));
    assert_eq!(describe(&single).0, 137);
    assert_eq!(single.item().unwrap().message(), "5 is odd");
    assert_eq!(single.item().unwrap().pid(), me);
    assert_eq!(threaded.item().unwrap().pid(), me);
    assert_ne!(multi.item().unwrap().pid(), me);
    assert!(multi.item().unwrap().job().ends_with("::maybe_halve"));
}

/// Records this worker's pid in `dir`, then waits until `expected` distinct pids are there (or
/// 20 s pass), so that no worker can take a second item before every worker has one.
#[spychro::job]
fn check_in(dir: PathBuf, expected: usize) -> u32 {
    let pid = std::process::id();
    std::fs::write(dir.join(pid.to_string()), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(&dir).unwrap().count() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    pid
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spychro-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn pool_size_is_honoured() {
    for n in [1usize, 3] {
        let dir = fresh_dir(&format!("pool-{n}"));
        let pids = Job::new(check_in, vec![dir.clone(); n])
            .args(n)
            .processes(n)
            .chunk_size(1)
            .run_multi_processed()
            .unwrap();
        let distinct: HashSet<u32> = pids.iter().copied().collect();
        assert_eq!(distinct.len(), n, "pids {pids:?}");
        assert!(!distinct.contains(&std::process::id()));
        // Every worker was reaped when the run returned.
        for pid in distinct {
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "worker {pid} still exists"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn streams_deliver_in_order_and_can_stop_early() {
    let mut it = Job::new(times_two_plus_one, 0u64..)
        .processes(2)
        .stream_multi_processed()
        .unwrap();
    for i in 0..50_000u64 {
        assert_eq!(it.next().unwrap().unwrap(), 2 * i + 1);
    }
    // Dropping the stream of an endless input stops its workers.
    drop(it);

    let threaded: Vec<u64> = Job::new(times_two_plus_one, 0u64..)
        .stream_multi_threaded()
        .unwrap()
        .take(5)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(threaded, [1, 3, 5, 7, 9]);
}

#[spychro::job]
fn nap_then(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// With one item per batch, a worker that has the next batch already and finished a short one
/// holds its output back for a moment, to send it with the next ones; never behind a long
/// item (a timer sends it): the outputs of the 50 quick items before a 3 s one all reach the
/// stream while the long one still runs.
#[test]
fn an_output_held_back_is_not_kept_waiting_by_a_long_item_after_it() {
    let mut naps = vec![0u64; 50];
    naps.extend([3_000, 0]);
    let started = Instant::now();
    let mut outputs = Job::new(nap_then, naps)
        .processes(1)
        .chunk_size(1)
        .stream_multi_processed()
        .unwrap();
    for i in 0..50 {
        assert_eq!(outputs.next().unwrap().unwrap(), 0, "output {i}");
    }
    let quick = started.elapsed();
    assert!(
        quick < Duration::from_millis(2_000),
        "the quick items' outputs came after {quick:?}, with the long item's"
    );
    assert_eq!(outputs.next().unwrap().unwrap(), 3_000);
    assert!(started.elapsed() >= Duration::from_millis(3_000));
    assert_eq!(outputs.next().unwrap().unwrap(), 0);
    assert!(outputs.next().is_none());
}

/// Byte vectors, alone or inside other values, as the main thing a job moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Chunk {
    name: String,
    data: Vec<u8>,
}

#[spychro::job]
fn reverse_bytes(mut c: Chunk) -> (Vec<u8>, Chunk) {
    let checksum = c
        .data
        .iter()
        .map(|&b| b as u64)
        .sum::<u64>()
        .to_le_bytes()
        .to_vec();
    c.data.reverse();
    (checksum, c)
}

#[test]
fn byte_vectors_cross_whole_and_in_order() {
    let chunks: Vec<Chunk> = (0..12u32)
        .map(|i| Chunk {
            name: format!("chunk {i}"),
            // Up to 3 MiB, bytes of every value.
            data: (0..(i as usize * 256 * 1024 + i as usize))
                .map(|k| (k * 31 + i as usize) as u8)
                .collect(),
        })
        .collect();
    let out = Job::new(reverse_bytes, chunks.clone())
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out.len(), chunks.len());
    for ((checksum, got), sent) in out.iter().zip(&chunks) {
        let sum: u64 = sent.data.iter().map(|&b| b as u64).sum();
        assert_eq!(checksum, &sum.to_le_bytes());
        assert_eq!(got.name, sent.name);
        assert!(got.data.iter().eq(sent.data.iter().rev()), "{}", sent.name);
    }
}
