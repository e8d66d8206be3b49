//! A thousand multi-processed jobs in a loop in one process leak nothing: open fds, threads and
//! child processes are back to what they were after the first job, and no zombie is left.
//! (One test alone in this binary, so that nothing else moves the counts.)

use std::time::Instant;

use spychro::Job;

#[spychro::job]
fn tiny(x: u32) -> u32 {
    x + 1
}

#[spychro::job]
fn fails_at_two(x: u32) -> u32 {
    assert_ne!(x, 2, "item two fails");
    x
}

/// What this process holds: open fds, threads, children (running or zombie).
#[derive(Debug, PartialEq, Eq)]
struct Held {
    fds: usize,
    threads: usize,
    children: Vec<u32>,
}

fn held() -> Held {
    let count = |dir: &str| std::fs::read_dir(dir).unwrap().count();
    Held {
        fds: count("/proc/self/fd"),
        threads: count("/proc/self/task"),
        children: suite::children(std::process::id()),
    }
}

fn one_job() {
    let out = Job::new(tiny, 0..4u32)
        .processes(1)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, [1, 2, 3, 4]);
}

#[test]
fn a_thousand_jobs_leave_fds_threads_and_children_as_they_were() {
    one_job();
    let baseline = held();
    assert_eq!(
        baseline.children, [0u32; 0],
        "children after the warm-up job"
    );

    let started = Instant::now();
    for _ in 0..1000 {
        one_job();
    }
    let took = started.elapsed();
    let after = held();
    eprintln!(
        "1000 jobs in {took:?} ({:?} each): baseline {baseline:?}, after {after:?}",
        took / 1000
    );
    assert_eq!(after, baseline, "after 1000 jobs");

    // The other ways a run ends: an item fails (workers killed at once), a stream is dropped
    // before its end. (A failure is slower: with RUST_BACKTRACE set, the worker resolves a
    // backtrace for the panic.)
    let started = Instant::now();
    for i in 0..50 {
        let mut stream = Job::new(tiny, 0..1000u32)
            .processes(1)
            .stream_multi_processed()
            .unwrap();
        assert_eq!(stream.next().unwrap().unwrap(), 1);
        drop(stream);
        if i % 5 != 0 {
            continue;
        }
        let err = Job::new(fails_at_two, 0..4u32)
            .processes(1)
            .chunk_size(1)
            .run_multi_processed()
            .unwrap_err();
        assert_eq!(err.item().map(|f| f.index()), Some(2), "{err}");
    }
    let took = started.elapsed();
    let after = held();
    eprintln!(
        "50 dropped streams and 10 failed jobs in {took:?}: baseline {baseline:?}, after {after:?}"
    );
    assert_eq!(
        after, baseline,
        "after 50 dropped streams and 10 failed jobs"
    );
}
