//! Outputs as items finish (`Results::unordered`), in every mode, and threaded streams that
//! hand outputs over while a slow item still runs: each output once, with its index; a slow
//! item holds back nothing behind it; failures and the end as in input order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use spychro::{Error, Job};

/// Set by the test to let `held` items finish (threaded runs share this process's memory).
static RELEASE: AtomicBool = AtomicBool::new(false);

/// Returns `x`; the item `x == hold` waits until the test releases it (at most 20 s, and
/// then returns `u64::MAX` so that a test that never released it fails).
#[spychro::job]
fn held(x: u64, hold: &u64) -> u64 {
    if x == *hold {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !RELEASE.load(Ordering::SeqCst) {
            if Instant::now() > deadline {
                return u64::MAX;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    x
}

#[spychro::job]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[spychro::job]
fn fail_at(x: u64, bad: &u64) -> Result<u64, String> {
    if x == *bad {
        Err(format!("{x} is bad"))
    } else {
        Ok(x)
    }
}

/// Checks that `got` holds every index of `0..n` once, with output `f(index)`.
fn each_once(mut got: Vec<(u64, u64)>, n: u64, f: impl Fn(u64) -> u64) {
    got.sort_unstable();
    let expected: Vec<(u64, u64)> = (0..n).map(|i| (i, f(i))).collect();
    assert_eq!(got, expected);
}

#[test]
fn processes_hand_over_outputs_as_items_finish() {
    let mut items = vec![1500u64];
    items.extend([1u64; 30]);
    let got: Vec<(u64, u64)> = Job::new(nap, items.clone())
        .processes(2)
        .chunk_size(1)
        .stream_multi_processed()
        .unwrap()
        .unordered()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got.len(), 31);
    // Only the few items its worker had queued behind it (before it showed itself slow)
    // wait for it; the rest come out first.
    let at = got.iter().position(|&(i, _)| i == 0).unwrap();
    assert!(at >= 20, "the slow item held back the others: {got:?}");
    each_once(got, 31, |i| items[i as usize]);
}

#[test]
fn threads_hand_over_outputs_as_items_finish_while_one_is_held() {
    RELEASE.store(false, Ordering::SeqCst);
    let mut results = Job::new(held, 0..40u64)
        .args(0)
        .processes(2)
        .stream_multi_threaded()
        .unwrap()
        .unordered();
    // Item 0 waits for the release: the others come out meanwhile.
    let before: Vec<(u64, u64)> = results.by_ref().take(39).map(|r| r.unwrap()).collect();
    assert!(before.iter().all(|&(i, _)| i != 0), "{before:?}");
    RELEASE.store(true, Ordering::SeqCst);
    let rest: Vec<(u64, u64)> = results.map(|r| r.unwrap()).collect();
    assert_eq!(rest, [(0, 0)], "the held item was not timed out");
    let mut all = before;
    all.extend(rest);
    each_once(all, 40, |i| i);
}

#[test]
fn a_threaded_stream_in_order_hands_over_what_precedes_a_held_item() {
    RELEASE.store(false, Ordering::SeqCst);
    let mut results = Job::new(held, 0..40u64)
        .args(20)
        .processes(2)
        .stream_multi_threaded()
        .unwrap();
    let first: Vec<u64> = results.by_ref().take(20).map(|r| r.unwrap()).collect();
    assert_eq!(first, (0..20).collect::<Vec<_>>());
    RELEASE.store(true, Ordering::SeqCst);
    let rest: Vec<u64> = results.map(|r| r.unwrap()).collect();
    assert_eq!(rest, (20..40).collect::<Vec<_>>());
}

#[test]
fn single_processed_unordered_is_input_order_with_indices() {
    let got: Vec<(u64, u64)> = Job::new(nap, vec![3u64, 1, 2])
        .stream_single_processed()
        .unwrap()
        .unordered()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got, [(0, 3), (1, 1), (2, 2)]);
}

#[test]
fn a_failure_ends_unordered_outputs_in_every_mode_unless_keeping_going() {
    for mode in ["processes", "threads", "single"] {
        let job = || Job::new(fail_at, 0..50u64).args(25);
        let results = match mode {
            "processes" => job().processes(2).stream_multi_processed(),
            "threads" => job().processes(2).stream_multi_threaded(),
            _ => job().stream_single_processed(),
        }
        .unwrap();
        let all: Vec<Result<(u64, u64), Error>> = results.unordered().collect();
        let last = all.last().unwrap();
        match last {
            Err(Error::Item(f)) => assert_eq!(f.index(), 25, "{mode}"),
            other => panic!("{mode}: the failure should end the outputs, got {other:?}"),
        }
        let oks: Vec<(u64, u64)> = all[..all.len() - 1]
            .iter()
            .map(|r| *r.as_ref().unwrap())
            .collect();
        assert!(
            oks.iter().all(|&(i, o)| i == o && i != 25),
            "{mode}: {oks:?}"
        );

        let kept: Vec<Result<(u64, u64), Error>> = match mode {
            "processes" => job().keep_going().processes(2).stream_multi_processed(),
            "threads" => job().keep_going().processes(2).stream_multi_threaded(),
            _ => job().keep_going().stream_single_processed(),
        }
        .unwrap()
        .unordered()
        .collect();
        assert_eq!(kept.len(), 50, "{mode}");
        let failed: Vec<u64> = kept
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| e.item().unwrap().index())
            .collect();
        assert_eq!(failed, [25], "{mode}");
        let good: Vec<(u64, u64)> = kept.into_iter().filter_map(Result::ok).collect();
        assert_eq!(good.len(), 49);
    }
}

#[test]
fn turning_unordered_half_way_loses_nothing() {
    let mut results = Job::new(nap, vec![1u64; 200])
        .processes(2)
        .stream_multi_processed()
        .unwrap();
    let first: Vec<u64> = results.by_ref().take(50).map(|r| r.unwrap()).collect();
    assert_eq!(first.len(), 50);
    let rest: Vec<(u64, u64)> = results.unordered().map(|r| r.unwrap()).collect();
    let mut indices: Vec<u64> = rest.iter().map(|&(i, _)| i).collect();
    indices.sort_unstable();
    assert_eq!(indices, (50..200).collect::<Vec<_>>());
}
