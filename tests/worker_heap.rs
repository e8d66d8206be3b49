//! A worker keeps the memory its job frees for the next item instead of handing it back to
//! the kernel at once (glibc's thresholds start where its own rule would end, see
//! `spychro/src/sys/heap.rs`), and hands it back once idle after a job ends. Observed from the
//! worker's own page-fault count and resident memory, and from outside through `/proc`.

use std::time::{Duration, Instant};

use spychro::{Job, Pool};

/// 16 KiB blocks: small enough for the heap under any threshold.
const BLOCK: usize = 16 * 1024;

/// Fills `blocks` blocks of 16 KiB (16 MiB for 1,024), frees them all, and returns the page
/// faults the filling took and the worker's resident memory after the free (KiB).
#[spychro::job]
fn churn(blocks: usize) -> (i64, u64) {
    let before = minor_faults();
    let held: Vec<Vec<u8>> = (0..blocks).map(|i| vec![i as u8 | 1; BLOCK]).collect();
    let faults = minor_faults() - before;
    assert_eq!(
        held.iter().map(|b| u64::from(b[BLOCK - 1])).sum::<u64>() % 2,
        blocks as u64 % 2
    );
    drop(held);
    (faults, resident_kib(std::process::id()))
}

#[spychro::job]
fn worker_pid(_: u32) -> u32 {
    std::process::id()
}

fn minor_faults() -> i64 {
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage.ru_minflt
    }
}

/// Resident memory of process `pid` in KiB (`/proc/<pid>/statm`), 0 if it is gone.
fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

#[test]
fn freed_memory_is_reused_by_the_next_item_and_handed_back_when_idle() {
    let pool = Pool::builder().processes(1).start().unwrap();
    let worker = pool.pids()[0];
    let out = Job::new(churn, vec![1024usize; 4])
        .chunk_size(1)
        .on(&pool)
        .run()
        .unwrap();
    // The first item faults its 16 MiB in (~4,096 pages); later ones find it in the heap.
    assert!(out[0].0 >= 2_000, "first item: {out:?}");
    for (i, &(faults, _)) in out.iter().enumerate().skip(1) {
        assert!(
            faults < 400,
            "item {i} took {faults} page faults again: {out:?}"
        );
    }
    // Kept after the free...
    let kept = out[3].1;
    assert!(
        kept >= 16 * 1024,
        "worker resident after the free: {kept} KiB"
    );
    // ...and handed back once the worker has been idle a second after the job ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = resident_kib(worker);
        if now + 12 * 1024 < kept {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker {worker} still holds {now} KiB (had {kept} KiB)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The same worker serves on.
    assert_eq!(Job::new(worker_pid, [0]).on(&pool).run().unwrap(), [worker]);
    pool.close();
    pool.join();
}
