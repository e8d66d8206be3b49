//! A 10M-item input runs in bounded memory: the parent's peak resident memory does not grow
//! with the number of items. (One test alone in this binary, so that nothing else moves the
//! peak.)

use spychro::Job;

#[spychro::job]
fn plus_one(x: u64) -> u64 {
    x + 1
}

fn stream_sum(n: u64) -> u64 {
    Job::new(plus_one, 0..n)
        .processes(2)
        .stream_multi_processed()
        .unwrap()
        .map(|r| r.unwrap())
        .fold(0u64, u64::wrapping_add)
}

#[test]
fn ten_million_items_stream_in_bounded_memory() {
    // The first million sets up buffers, allocator pools and thread stacks.
    assert_eq!(stream_sum(1_000_000), (1..=1_000_000u64).sum::<u64>());
    let before = suite::status_kib("VmHWM").expect("VmHWM in /proc/self/status");

    let n = 10_000_000u64;
    assert_eq!(stream_sum(n), n * (n + 1) / 2);
    let after = suite::status_kib("VmHWM").unwrap();

    // Holding the 10M outputs alone would take 80 MB; the stream's window is far smaller.
    let grew_mib = (after - before) as f64 / 1024.0;
    assert!(
        grew_mib < 24.0,
        "peak RSS grew by {grew_mib:.1} MiB over 10M items ({before} KiB -> {after} KiB)"
    );
    eprintln!("peak RSS {before} KiB -> {after} KiB over 10M streamed items");
}
