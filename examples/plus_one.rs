//! The quick start: `plus_one` over a million items, in a pool of worker processes, on
//! threads, and in this process, with the wall time of each.
//!
//! ```text
//! cargo run --release --example plus_one [ITEMS] [PROCESSES]
//! ```

use std::time::Instant;

use spychro::Job;

#[spychro::job]
fn plus_one(x: u64) -> u64 {
    x + 1
}

fn main() -> Result<(), spychro::Error> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let processes: Option<usize> = args.next().and_then(|a| a.parse().ok());

    assert_eq!(plus_one(3), 4); // still an ordinary function

    let job = || match processes {
        Some(p) => Job::new(plus_one, 0..n).processes(p),
        None => Job::new(plus_one, 0..n),
    };

    let t = Instant::now();
    let multi = job().run_multi_processed()?;
    let multi_time = t.elapsed();

    let t = Instant::now();
    let threaded = job().run_multi_threaded()?;
    let threaded_time = t.elapsed();

    let t = Instant::now();
    let single = job().run_single_processed()?;
    let single_time = t.elapsed();

    assert_eq!(multi, single);
    assert_eq!(threaded, single);
    assert_eq!(multi.last(), Some(&n));
    println!("{n} items of plus_one:");
    println!("  multi-processed  {multi_time:>10.2?}");
    println!("  multi-threaded   {threaded_time:>10.2?}");
    println!("  single-processed {single_time:>10.2?}");
    Ok(())
}
