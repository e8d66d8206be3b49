//! A persistent `Pool`: start the worker processes once, then run many jobs on them. It shows
//! jobs of different `#[job]` functions run one after another on the same workers, a job
//! spawned in the background while the caller (and another job) goes on, a single call with
//! `submit`, outputs taken in the order they finish with `unordered`, and a job awaited in a
//! tokio runtime (spychro needs none: the pool's own thread wakes the task), then the pool's
//! insights (items, time busy, idle and starting per worker).
//!
//! ```text
//! cargo run --release --example pool
//! ```

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use spychro::{Job, Pool};

#[spychro::job]
fn square(x: u64) -> u64 {
    x * x
}

#[spychro::job]
fn count_words(line: String) -> usize {
    line.split_whitespace().count()
}

/// Works for `ms` milliseconds (a stand-in for slow work) and says which worker it ran on.
#[spychro::job]
fn which_worker(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

/// Works for `ms` milliseconds and returns them.
#[spychro::job]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let pool = Pool::builder().processes(4).start()?;
    let pids = pool.pids();
    println!("-- a pool of {} workers: {pids:?}", pool.processes());

    println!("-- three jobs of three functions, one after another");
    let squares = Job::new(square, 0..100_000u64).on(&pool).run()?;
    println!(
        "square over 100000 numbers: the last is {}",
        squares[99_999]
    );
    let lines = ["the quick brown fox", "jumps over", "the lazy dog"].map(String::from);
    let words = Job::new(count_words, lines).on(&pool).run()?;
    println!("count_words: {words:?}");
    let served: BTreeSet<u32> = Job::new(which_worker, vec![10u64; 16])
        .on(&pool)
        .run()?
        .into_iter()
        .collect();
    println!("which_worker: 16 items ran on {served:?}");
    assert!(served.is_subset(&pids.iter().copied().collect()));
    assert_eq!(pool.pids(), pids);
    println!("the same workers served every job: {:?}", pool.pids());

    println!("-- a job in the background");
    let spawned = Instant::now();
    let slow = Job::new(nap, vec![50u64; 40]).on(&pool).spawn()?;
    // Another job on the same pool is not queued behind all of the slow one.
    let quick = Job::new(square, 0..1000u64).on(&pool).run()?;
    println!(
        "a quick job ran meanwhile (sum {}) in {:?}; the slow one is finished: {}",
        quick.iter().sum::<u64>(),
        spawned.elapsed(),
        slow.is_finished()
    );
    let mut rounds = 0;
    while !slow.is_finished() {
        rounds += 1; // the caller's own work goes here (a stand-in: 20 ms of sleep)
        std::thread::sleep(Duration::from_millis(20));
    }
    let naps = slow.wait()?;
    println!(
        "the slow job ({} naps of 50 ms) ended after {:?} and {rounds} rounds of other work",
        naps.len(),
        spawned.elapsed()
    );

    println!("-- a single call");
    let call = pool.submit(square, 12)?;
    println!("submit(square, 12) -> {}", call.wait()?);

    println!("-- outputs in the order they finish");
    let job = Job::new(nap, vec![400u64, 20, 250, 100])
        .on(&pool)
        .spawn()?;
    let mut order = Vec::new();
    for out in job.unordered() {
        let (index, ms) = out?;
        println!("item {index} ({ms} ms) finished");
        order.push(index);
    }
    assert_eq!(order, [1, 3, 2, 0]);

    println!("-- two jobs awaited in a tokio runtime");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (sum, naps) = runtime.block_on(async {
        let squares = Job::new(square, 0..1000u64).on(&pool).spawn()?;
        let naps = Job::new(nap, vec![50u64; 4]).on(&pool).spawn()?;
        let (squares, naps) = tokio::join!(squares, naps);
        Ok::<_, spychro::Error>((squares?.iter().sum::<u64>(), naps?))
    })?;
    println!("awaited: sum of squares {sum}, naps {naps:?}");
    assert_eq!(sum, (0..1000u64).map(|x| x * x).sum::<u64>());

    assert_eq!(pool.pids(), pids);
    println!("-- how the workers spent their time: {}", pool.insights());
    pool.close();
    pool.join();
    println!(
        "-- closed after {:?}, the same {} workers throughout; workers left: {:?}",
        started.elapsed(),
        pids.len(),
        pool.pids()
    );
    Ok(())
}
