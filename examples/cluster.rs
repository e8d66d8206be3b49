//! The same job on several hosts through a NATS JetStream broker: this program starts a
//! local `nats-server -js` (Debian: `apt-get install nats-server`), starts two worker hosts —
//! itself again, with `SPYCHRO_BROKER` set, each serving with a local pool of two worker
//! processes — runs jobs through the broker, and stops everything.
//!
//! ```text
//! cargo run --release --features cluster --example cluster
//! ```
//!
//! On real machines: start the broker once, start this same binary on each host with
//! `SPYCHRO_BROKER=nats://broker:4222`, and run the caller anywhere that reaches the broker.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use spychro::Job;
use spychro::cluster::{Cluster, serve};

#[spychro::job]
fn square(x: u64) -> u64 {
    x * x
}

/// Counts the primes below `n`, slowly (about a millisecond of work for n = 20,000).
#[spychro::job]
fn primes_below(n: u64) -> u64 {
    (2..n)
        .filter(|&k| (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0))
        .count() as u64
}

/// Reports its progress and logs a line per item: both come back to the caller.
#[spychro::job]
fn chatty(x: u64, ctx: &spychro::Ctx) -> u64 {
    ctx.progress(0.5);
    log::info!("working on {x}");
    ctx.progress(1.0);
    x + 1
}

/// Crashes its process on 13: the item fails alone, on whichever host ran it.
#[spychro::job]
fn fragile(x: u64) -> u64 {
    if x == 13 {
        std::process::abort();
    }
    x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A worker host: serve the broker until stopped.
    if let Ok(url) = std::env::var("SPYCHRO_BROKER") {
        serve(&url, Some(2))?;
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("spychro-cluster-example-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let mut children: Vec<Child> = Vec::new();
    let broker = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not start nats-server ({e}): apt-get install nats-server"))?;
    children.push(broker);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            return Err("nats-server did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("broker: nats-server -js on {url}");
    for host in 0..2 {
        let child = Command::new(std::env::current_exe()?)
            .env("SPYCHRO_BROKER", &url)
            .process_group(0)
            .spawn()?;
        println!("host {host}: pid {}", child.id());
        children.push(child);
    }
    let result = run(&url);
    for mut c in children.into_iter().rev() {
        // SAFETY: kill(2) on a process group this program started.
        unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
        let _ = c.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::connect(url)?;
    let t = Instant::now();
    let squares = cluster.run(Job::new(square, 0..1_000_000u64).chunk_size(50_000))?;
    println!(
        "1,000,000 squares through the broker in {:?}: squares[999_999] = {}",
        t.elapsed(),
        squares[999_999]
    );
    let t = Instant::now();
    let counts = cluster.run(Job::new(primes_below, vec![20_000u64; 400]).chunk_size(10))?;
    println!(
        "400 prime counts (about 1 ms each) on 2 hosts x 2 workers in {:?}: {} each",
        t.elapsed(),
        counts[0]
    );
    // A stream: outputs in order as they come, the input read as batches go out, and the
    // hosts' logs and progress handed to this process's handlers.
    let (mut logs, mut hosts, mut progress) = (0, std::collections::BTreeSet::new(), 0);
    let mut sum = 0;
    for out in cluster.stream(
        Job::new(chatty, 0..1_000u64)
            .chunk_size(50)
            .on_log(|r| {
                logs += 1;
                hosts.insert(r.host.clone().unwrap_or_default());
            })
            .on_progress(|_, _, _| progress += 1),
    )? {
        sum += out?;
    }
    println!(
        "1,000 chatty items streamed: sum {sum}, {logs} log records from {} hosts, {progress} progress reports",
        hosts.len()
    );
    let outcomes = cluster.run(Job::new(fragile, 0..20u64).chunk_size(5).keep_going())?;
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err().map(|e| e.to_string()))
        .collect();
    println!(
        "20 fragile items: {} ok, failed: {failed:?}",
        outcomes.iter().filter(|o| o.is_ok()).count()
    );
    Ok(())
}
