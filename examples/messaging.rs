//! Seeing what workers do while a multi-process job runs: the two messaging examples of the
//! Python module "Responsive Multiprocessing" (`multiprocessWithMessaging`), in Rust, with its
//! pid-tagged logging and progress within items.
//!
//! ```text
//! cargo run --release --example messaging
//! ```
//!
//! 1. **Progress messages.** Each item sends `(fraction, text)` tuples through its
//!    `ctx: &Ctx<(f64, String)>` (the original's `msg_handler.send_message((0.4, "another part
//!    of the message"))`); the `on_message` handler prints each with the pid of the worker that
//!    sent it. The job also logs with `log::info!`, and an `on_log` handler prints each record
//!    as `pid-PID LEVEL text` (the original's `log(pid, level, text)` callback).
//! 2. **Ongoing aggregation.** Each item measures how long it took and sends that `Duration`;
//!    the `on_message` handler adds it to a local `total_duration` as the messages arrive, so
//!    the total is known while the job runs, not only from the outputs at the end. The handler
//!    is a plain `FnMut` closure borrowing local variables: no `Send`, `Arc` or `Mutex`. Each
//!    item also reports its progress with `ctx.progress(...)`, which an `on_progress` handler
//!    counts. (`.progress(true)` would also draw it in a progress bar, as the `gzcheck` example
//!    does; it is left out here because these handlers print, and a handler's `println!` is
//!    not written above the bar.)
//!
//! Handlers run on the caller's thread while the job runs; everything an item sends reaches
//! them before that item's output is returned.

use std::time::{Duration, Instant};

use spychro::{Ctx, Job};

/// Renders one part of some larger work, telling the caller how far it has got, in the
/// caller's own words.
#[spychro::job]
fn render_part(part: u32, ctx: &Ctx<(f64, String)>) -> u32 {
    log::info!("starting part {part}");
    let steps = [
        (0.1, "read the input"),
        (0.4, "another part of the message"),
        (1.0, "wrote the output"),
    ];
    for (fraction, text) in steps {
        std::thread::sleep(Duration::from_millis(5));
        ctx.send((fraction, format!("part {part}: {text}")));
    }
    part * 10
}

/// Works for `ms` milliseconds, in four steps, and sends how long that really took.
#[spychro::job]
fn timed_work(ms: u64, ctx: &Ctx<Duration>) -> Duration {
    let start = Instant::now();
    for step in 1..=4 {
        std::thread::sleep(Duration::from_millis(ms) / 4);
        ctx.progress(step as f64 / 4.0);
    }
    if ms >= 40 {
        log::warn!("item {} is slow: {ms} ms", ctx.index());
    }
    let duration = start.elapsed();
    ctx.send(duration);
    duration
}

fn main() -> Result<(), spychro::Error> {
    // The original's `log(pid, level, text)` callback: workers' `log` records go here instead
    // of to a logger.
    let print_log = |r: &spychro::WorkerLog| println!("pid-{} {} {}", r.pid, r.level, r.message);

    println!("1. progress messages, (fraction, text), from 3 items on 3 processes");
    let outputs = Job::new(render_part, 1..=3u32)
        .processes(3)
        .on_log(print_log)
        .on_message(|pid, (progress, text): (f64, String)| {
            println!("Got message {text:?} from pid {pid}: progress is {progress:?}");
        })
        .run_multi_processed()?;
    println!("outputs: {outputs:?}");

    println!();
    println!("2. ongoing aggregation of durations, from 12 items on 4 processes");
    let work_ms = [10, 20, 30, 40, 10, 20, 30, 10, 20, 10, 20, 30u64];
    let mut total_duration = Duration::ZERO;
    let mut progress_reports = 0;
    let started = Instant::now();
    let durations = Job::new(timed_work, work_ms)
        .processes(4)
        .on_log(print_log)
        .on_progress(|_pid, _item, _fraction| progress_reports += 1)
        .on_message(|pid, duration: Duration| {
            total_duration += duration;
            println!("pid {pid}: took {duration:.2?}, total so far {total_duration:.2?}");
        })
        .run_multi_processed()?;
    let wall = started.elapsed();

    // The outputs say the same, but only once the whole job is done.
    assert_eq!(total_duration, durations.iter().sum::<Duration>());
    assert_eq!(progress_reports, 4 * work_ms.len());
    println!(
        "Total processing duration is {:.3} seconds, in {:.3} seconds of wall time",
        total_duration.as_secs_f64(),
        wall.as_secs_f64(),
    );
    println!("{progress_reports} progress reports, 4 per item");
    Ok(())
}
