//! spychro's benchmark suite: every workload on spychro and on each peer, side by side, with
//! the same pool size, in one run. See BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench suite                     # the full suite (a few minutes)
//! cargo bench --bench suite -- --smoke          # seconds: tiny sizes, one run each (CI)
//! cargo bench --bench suite -- --processes 4 --only tiny,cpu --runs 3
//! ```
//!
//! Each measured run is a fresh process: this binary started again with `--child` (spychro,
//! rayon, procspawn) or `python3 bench/python_pool.py` (Python's `multiprocessing.Pool`). The
//! child times the whole pool life (start, items, shut down; call instead times each call on
//! a pool started beforehand and reports their median and percentiles), takes CPU time as
//! `getrusage(RUSAGE_SELF) + getrusage(RUSAGE_CHILDREN)` deltas around the same span (every
//! peer reaps its workers before the span ends), reads its own peak RSS (`VmHWM`) at the end,
//! and prints one line of JSON. This parent checks every run's outputs against a checksum it
//! computes itself, interleaves the peers run by run (so that a noisy moment hits them
//! alike), prints the table and writes `target/bench/suite.json`.
//!
//! The suite fails (exit status 1) only when a run errors or produces wrong outputs; targets
//! are reported, never enforced.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde_json::{Value, json};
use spychro::Job;

/// The jobs, in a module of their own (a `#[job]` name is a constant). Each calls the same
/// plain function that rayon and procspawn call.
mod jobs {
    #[spychro::job]
    pub fn plus_one(x: u64) -> u64 {
        super::plus_one_work(x)
    }

    #[spychro::job]
    pub fn spin(x: u64, iters: u64) -> u64 {
        super::spin_work(x, iters)
    }

    #[spychro::job]
    pub fn bump(v: Vec<u8>) -> Vec<u8> {
        super::bump_work(v)
    }

    #[spychro::job]
    pub fn nap(ms: u64) -> u32 {
        super::nap_work(ms)
    }
}

/// The files workload: its tree, its job and its peers' runs.
#[path = "suite/files.rs"]
mod files;

/// The supervised processes of the route and hop workloads.
mod actors {
    use serde::{Deserialize, Serialize};
    use spychro::{Actor, Fail, Flow, Letter, Link, Served};

    #[derive(Debug, Clone, Serialize, Deserialize, spychro::Message)]
    pub enum Bench {
        Value(u64),
        Done,
        Ping(u64),
        Pong(u64),
    }

    /// route: waits for its `peers`, sends 1..=n to them in turn and `Done` to each, and
    /// sums what it receives until every other has said `Done`.
    #[derive(Serialize, Deserialize)]
    pub struct Blaster {
        pub n: u64,
        pub peers: usize,
        pub sum: u64,
        pub done: usize,
    }

    #[spychro::actor]
    impl Actor for Blaster {
        type Message = Bench;
        fn run(&mut self, link: &mut Link<Bench>) -> Result<(), Fail> {
            let me = link.id();
            let others: Vec<u64> = loop {
                let ids = link.get_ids("Blaster")?;
                if ids.len() == self.peers {
                    break ids.into_iter().filter(|&i| i != me).collect();
                }
                link.serve_for(self, std::time::Duration::from_millis(1))?;
            };
            for i in 1..=self.n {
                link.send_to(others[i as usize % others.len()], Bench::Value(i))?;
            }
            for &o in &others {
                link.send_to(o, Bench::Done)?;
            }
            let all = others.len();
            let served =
                link.serve_until(self, std::time::Duration::from_secs(60), |b| b.done == all)?;
            if served != Served::Done {
                return Err(format!("not every Done came: {served:?}").into());
            }
            link.send_object(&self.sum)?;
            Ok(())
        }
        fn handle(&mut self, letter: Letter<Bench>, _: &mut Link<Bench>) -> Result<Flow, Fail> {
            match letter.message {
                Bench::Value(v) => self.sum = self.sum.wrapping_add(v),
                Bench::Done => self.done += 1,
                other => return Err(format!("unexpected {other:?}").into()),
            }
            Ok(Flow::Continue)
        }
    }

    /// hop: sends Ping(i) and waits for Pong(i), `n` times after a warm-up, timing each.
    #[derive(Serialize, Deserialize)]
    pub struct Pinger {
        pub n: u64,
        pub warmup: u64,
        pub next: u64,
        pub to: u64,
        pub sum: u64,
        pub latencies: Vec<f64>,
        #[serde(skip)]
        pub sent: Option<std::time::Instant>,
    }

    #[spychro::actor]
    impl Actor for Pinger {
        type Message = Bench;
        fn run(&mut self, link: &mut Link<Bench>) -> Result<(), Fail> {
            self.to = *link.get_ids("Ponger")?.first().ok_or("no Ponger")?;
            self.next = 1;
            self.sent = Some(std::time::Instant::now());
            link.send_to(self.to, Bench::Ping(1))?;
            while link.serve_for(self, std::time::Duration::from_secs(60))? == Served::TimeUp {}
            link.send_object(&(self.sum, std::mem::take(&mut self.latencies)))?;
            Ok(())
        }
        fn handle(&mut self, letter: Letter<Bench>, link: &mut Link<Bench>) -> Result<Flow, Fail> {
            let Bench::Pong(i) = letter.message else {
                return Err("expected a Pong".into());
            };
            if let Some(t) = self.sent.take()
                && i > self.warmup
            {
                self.latencies.push(t.elapsed().as_secs_f64());
                self.sum += i - self.warmup;
            }
            if i == self.n + self.warmup {
                return Ok(Flow::Stop);
            }
            self.sent = Some(std::time::Instant::now());
            link.send_to(self.to, Bench::Ping(i + 1))?;
            Ok(Flow::Continue)
        }
    }

    /// hop: answers every Ping.
    #[derive(Serialize, Deserialize)]
    pub struct Ponger;

    #[spychro::actor]
    impl Actor for Ponger {
        type Message = Bench;
        const RESIDENT: bool = true;
        fn handle(&mut self, letter: Letter<Bench>, link: &mut Link<Bench>) -> Result<Flow, Fail> {
            if let Bench::Ping(i) = letter.message {
                link.send_to(letter.from, Bench::Pong(i))?;
            }
            Ok(Flow::Continue)
        }
    }
}

/// Items per batch of the cluster-tiny workload.
#[cfg(feature = "cluster")]
const CLUSTER_TINY_BATCH: usize = 50_000;
/// Items per batch of the cluster-cpu workload (~20 ms of work a batch: each batch costs the
/// broker, the host and the caller about half a millisecond of CPU, shared here with the
/// workers; BENCHMARKS.md has the curve).
#[cfg(feature = "cluster")]
const CLUSTER_CPU_BATCH: usize = 20;

/// The route workload's processes.
const ROUTE_PROCESSES: u64 = 4;

fn plus_one_work(x: u64) -> u64 {
    x + 1
}

/// The cpu workload: `iters` xorshift64 steps from a seed. Each step depends on the last, and
/// the result is returned and checked, so none of it can be optimised away.
fn spin_work(seed: u64, iters: u64) -> u64 {
    let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
    if s == 0 {
        s = 1;
    }
    for _ in 0..iters {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
    }
    s
}

/// The payload workload: every byte plus one (wrapping), in the buffer it came in.
fn bump_work(mut v: Vec<u8>) -> Vec<u8> {
    for b in &mut v {
        *b = b.wrapping_add(1);
    }
    v
}

/// rayon's indexed ranges are of usize (its u64 ranges cannot be split by index).
fn plus_one_usize(x: usize) -> u64 {
    plus_one_work(x as u64)
}

fn nap_work(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

fn main() {
    // procspawn's workers are this program started again and enter here; spychro's workers
    // never reach `main` (spychro needs no setup line).
    procspawn::init();
    // A cluster host of the cluster workloads: this program, started with the broker's address.
    #[cfg(feature = "cluster")]
    if let Ok(url) = std::env::var("SPYCHRO_SUITE_BROKER") {
        let n = std::env::var("SPYCHRO_SUITE_HOST_WORKERS")
            .ok()
            .and_then(|n| n.parse().ok());
        if let Err(e) = spychro::cluster::serve(&url, n) {
            eprintln!("suite cluster host: {e}");
            std::process::exit(1);
        }
        return;
    }
    // `cargo bench` passes `--bench`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let code = if args.first().map(String::as_str) == Some("--child") {
        child::main(&args[1..])
    } else {
        parent::main(&args)
    };
    std::process::exit(code);
}

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    Tiny,
    Unbatched,
    Cpu,
    Payload,
    Start,
    Stream,
    /// Many small jobs one after another: one reused `Pool` against a pool per job.
    Reuse,
    /// The round trip of one submitted call on a warm pool.
    Call,
    /// A supervisor's routing: 4 processes sending each other small messages.
    Route,
    /// The tiny workload through a NATS JetStream broker to two hosts, against the local pool.
    ClusterTiny,
    /// The cpu workload through the broker, against the local pool.
    ClusterCpu,
    /// A supervisor's one-hop round trip: ping-pong between two processes through it.
    Hop,
    /// The SHA-256 of every file of a generated tree, from a warm page cache (files.rs).
    Files,
    Idle,
}

impl Workload {
    const MEASURED: [Workload; 13] = [
        Workload::Tiny,
        Workload::Unbatched,
        Workload::Cpu,
        Workload::Payload,
        Workload::Files,
        Workload::Start,
        Workload::Stream,
        Workload::Reuse,
        Workload::Call,
        Workload::Route,
        Workload::Hop,
        Workload::ClusterTiny,
        Workload::ClusterCpu,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::Tiny => "tiny",
            Workload::Unbatched => "unbatched",
            Workload::Cpu => "cpu",
            Workload::Payload => "payload",
            Workload::Start => "start",
            Workload::Stream => "stream",
            Workload::Reuse => "reuse",
            Workload::Call => "call",
            Workload::Route => "route",
            Workload::ClusterTiny => "cluster-tiny",
            Workload::ClusterCpu => "cluster-cpu",
            Workload::Hop => "hop",
            Workload::Files => "files",
            Workload::Idle => "idle",
        }
    }

    fn parse(s: &str) -> Option<Workload> {
        Workload::MEASURED
            .into_iter()
            .chain([Workload::Idle])
            .find(|w| w.name() == s)
    }
}

/// The size of one workload's runs, given to every child.
#[derive(Clone, Debug)]
struct Size {
    /// Items (reuse: items per job; call: calls).
    items: u64,
    /// reuse: jobs run one after another (1 elsewhere).
    jobs: u64,
    /// Payload bytes per item.
    bytes: usize,
    /// cpu: xorshift steps per item (Rust peers; Python has its own, calibrated the same way).
    iters: u64,
    /// procspawn, which has no batching of its own: items per spawn (tiny, stream); the
    /// `spychro-fixed` peer's chunk size (tiny, reuse).
    chunk: u64,
}

/// Sum of `(i + 1) * out[i]`, wrapping: the order-sensitive checksum of u64 outputs.
fn weighted(outputs: &[u64]) -> u64 {
    outputs.iter().enumerate().fold(0u64, |acc, (i, &v)| {
        acc.wrapping_add((i as u64 + 1).wrapping_mul(v))
    })
}

/// The payload checksum: sum of `(i + 1) * (len + every 4099th byte)`, wrapping.
fn payload_checksum<B: AsRef<[u8]>>(outputs: &[B]) -> u64 {
    outputs.iter().enumerate().fold(0u64, |acc, (i, out)| {
        let out = out.as_ref();
        let sampled: u64 = out.iter().step_by(4099).map(|&b| u64::from(b)).sum();
        acc.wrapping_add((i as u64 + 1).wrapping_mul(out.len() as u64 + sampled))
    })
}

/// Payload item `i`: bytes `(i + j) mod 256`.
fn payload_item(i: u64, bytes: usize) -> Vec<u8> {
    (0..bytes).map(|j| (i as usize + j) as u8).collect()
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`, ...).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Proportional set size of a process, in KiB (shared pages divided among their sharers).
fn pss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("Pss:")?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// User and system CPU seconds of this process (all threads) and of its reaped children.
fn cpu_now() -> (f64, f64) {
    fn get(who: libc::c_int) -> (f64, f64) {
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage writes into the struct we own; `who` is a valid constant.
        let rc = unsafe { libc::getrusage(who, &mut ru) };
        assert_eq!(rc, 0, "getrusage failed");
        let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        (secs(ru.ru_utime), secs(ru.ru_stime))
    }
    let me = get(libc::RUSAGE_SELF);
    let kids = get(libc::RUSAGE_CHILDREN);
    (me.0 + kids.0, me.1 + kids.1)
}

/// The measured side: one run of one workload on one peer, in this process.
mod child {
    use super::*;

    /// Marks the result line on stdout.
    pub const MARKER: &str = "@@suite-result ";

    struct Opts {
        workload: Workload,
        peer: String,
        processes: usize,
        size: Size,
    }

    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut workload = None;
        let mut peer = None;
        let mut processes = 2;
        let mut size = Size {
            items: 1000,
            jobs: 1,
            bytes: 1 << 20,
            iters: 1000,
            chunk: 1000,
        };
        let mut it = args.iter();
        if let Some(w) = it.next() {
            workload = Workload::parse(w);
        }
        while let Some(flag) = it.next() {
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            let num = || {
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{flag} {value}: {e}"))
            };
            match flag.as_str() {
                "--peer" => peer = Some(value.clone()),
                "--processes" => processes = num()? as usize,
                "--items" => size.items = num()?,
                "--jobs" => size.jobs = num()?.max(1),
                "--bytes" => size.bytes = num()? as usize,
                "--iters" => size.iters = num()?,
                "--chunk" => size.chunk = num()?.max(1),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        Ok(Opts {
            workload: workload.ok_or("--child WORKLOAD: unknown or missing workload")?,
            peer: peer.ok_or("--peer is required")?,
            processes,
            size,
        })
    }

    /// `--child WORKLOAD --peer spychro|rayon|procspawn [--processes N --items N ...]`:
    /// prints one result line and returns the exit status.
    pub fn main(args: &[String]) -> i32 {
        let opts = match parse(args) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("suite --child: {e}");
                return 2;
            }
        };
        let result = match opts.workload {
            Workload::Idle => idle(&opts),
            Workload::Call => call(&opts),
            Workload::Route => route(&opts),
            Workload::ClusterTiny | Workload::ClusterCpu => cluster(&opts),
            Workload::Hop => hop(&opts),
            _ => measure(&opts),
        };
        match result {
            Ok(v) => {
                println!("{MARKER}{v}");
                0
            }
            Err(e) => {
                eprintln!(
                    "suite --child {} --peer {}: {e}",
                    opts.workload.name(),
                    opts.peer
                );
                1
            }
        }
    }

    /// What a timed run hands back for checking.
    enum Outputs {
        U64(Vec<u64>),
        Bytes(Vec<Vec<u8>>),
        /// stream: items seen, and how many were wrong or out of order.
        Streamed {
            count: u64,
            bad: u64,
        },
    }

    fn measure(o: &Opts) -> Result<Value, String> {
        let n = o.size.items;
        let p = o.processes;
        // Inputs that must exist before the clock starts (the others are ranges).
        let payload: Vec<Vec<u8>> = if o.workload == Workload::Payload {
            (0..n).map(|i| payload_item(i, o.size.bytes)).collect()
        } else {
            Vec::new()
        };
        let paths = if o.workload == Workload::Files {
            files::gather(n)?
        } else {
            Vec::new()
        };
        // start: a fork server started before the clock, for the peer that uses one.
        let server = if o.peer == "spychro-forkserver" {
            if o.workload != Workload::Start {
                return Err("spychro-forkserver runs the start workload only".into());
            }
            Some(spychro::ForkServer::start().map_err(|e| e.to_string())?)
        } else {
            None
        };
        let (u0, s0) = cpu_now();
        let t0 = Instant::now();
        let outputs = match o.peer.as_str() {
            _ if o.workload == Workload::Files => files::run(&o.peer, p, paths).map(Outputs::U64),
            "spychro" => spychro_run(o, payload, None),
            // The same, with the batch size fixed (`--chunk`) instead of adaptive.
            "spychro-fixed" => spychro_run(o, payload, Some(o.size.chunk as usize)),
            "spychro-forkserver" => spychro_run(o, payload, None),
            // reuse: a pool of its own for every job (`run_multi_processed`).
            "spychro-per-job" => spychro_per_job(o),
            "rayon" => rayon_run(o, payload),
            "procspawn" => procspawn_run(o, payload),
            other => Err(format!("unknown peer {other}")),
        }?;
        let wall = t0.elapsed().as_secs_f64();
        let (u1, s1) = cpu_now();
        drop(server);
        let checksum = match &outputs {
            Outputs::U64(v) => weighted(v),
            Outputs::Bytes(v) => payload_checksum(v),
            Outputs::Streamed { count, bad: 0 } => *count,
            Outputs::Streamed { bad, .. } => {
                return Err(format!("{bad} streamed outputs were wrong or out of order"));
            }
        };
        let items = match o.workload {
            Workload::Start => p as u64,
            Workload::Reuse => n * o.size.jobs,
            _ => n,
        };
        Ok(json!({
            "items": items,
            "wall_s": wall,
            "user_s": u1 - u0,
            "sys_s": s1 - s0,
            "checksum": checksum,
            "peak_rss_kib": status_kib(std::process::id(), "VmHWM"),
        }))
    }

    fn spychro_run(
        o: &Opts,
        payload: Vec<Vec<u8>>,
        chunk: Option<usize>,
    ) -> Result<Outputs, String> {
        let (n, p) = (o.size.items, o.processes);
        let err = |e: spychro::Error| e.to_string();
        if chunk.is_some() && !matches!(o.workload, Workload::Tiny | Workload::Reuse) {
            return Err("spychro-fixed runs the tiny and reuse workloads only".into());
        }
        Ok(match o.workload {
            Workload::Tiny => Outputs::U64(match chunk {
                None => Job::new(jobs::plus_one, 0..n)
                    .processes(p)
                    .run_multi_processed()
                    .map_err(err)?,
                Some(c) => Job::new(jobs::plus_one, 0..n)
                    .processes(p)
                    .chunk_size(c)
                    .run_multi_processed()
                    .map_err(err)?,
            }),
            Workload::Unbatched => Outputs::U64(
                Job::new(jobs::plus_one, 0..n)
                    .processes(p)
                    .chunk_size(1)
                    .run_multi_processed()
                    .map_err(err)?,
            ),
            Workload::Cpu => Outputs::U64(
                Job::new(jobs::spin, 0..n)
                    .args(o.size.iters)
                    .processes(p)
                    .run_multi_processed()
                    .map_err(err)?,
            ),
            Workload::Payload => Outputs::Bytes(
                Job::new(jobs::bump, payload)
                    .processes(p)
                    .run_multi_processed()
                    .map_err(err)?,
            ),
            Workload::Start => Outputs::U64(
                Job::new(jobs::plus_one, 0..p as u64)
                    .processes(p)
                    .chunk_size(1)
                    .run_multi_processed()
                    .map_err(err)?,
            ),
            Workload::Stream => {
                let (mut count, mut bad) = (0u64, 0u64);
                let outputs = Job::new(jobs::plus_one, 0..n)
                    .processes(p)
                    .stream_multi_processed()
                    .map_err(err)?;
                for out in outputs {
                    count += 1;
                    if out.map_err(err)? != count {
                        bad += 1;
                    }
                }
                Outputs::Streamed { count, bad }
            }
            // One pool, started (and waited for) inside the timed span, runs every job; it
            // is closed and joined (its workers reaped) before the span ends.
            Workload::Reuse => {
                let pool = spychro::Pool::builder().processes(p).start().map_err(err)?;
                let mut all = Vec::with_capacity((n * o.size.jobs) as usize);
                for j in 0..o.size.jobs {
                    let items = j * n..(j + 1) * n;
                    let outs = match chunk {
                        None => Job::new(jobs::plus_one, items).on(&pool).run(),
                        Some(c) => Job::new(jobs::plus_one, items)
                            .chunk_size(c)
                            .on(&pool)
                            .run(),
                    }
                    .map_err(err)?;
                    all.extend(outs);
                }
                pool.close();
                pool.join();
                Outputs::U64(all)
            }
            Workload::Call
            | Workload::Route
            | Workload::Hop
            | Workload::ClusterTiny
            | Workload::ClusterCpu
            | Workload::Files
            | Workload::Idle => unreachable!(),
        })
    }

    /// reuse, the other way: every job starts (and shuts down) a pool of its own.
    fn spychro_per_job(o: &Opts) -> Result<Outputs, String> {
        if o.workload != Workload::Reuse {
            return Err("spychro-per-job runs the reuse workload only".into());
        }
        let (n, p) = (o.size.items, o.processes);
        let mut all = Vec::with_capacity((n * o.size.jobs) as usize);
        for j in 0..o.size.jobs {
            let outs = Job::new(jobs::plus_one, j * n..(j + 1) * n)
                .processes(p)
                .run_multi_processed()
                .map_err(|e| e.to_string())?;
            all.extend(outs);
        }
        Ok(Outputs::U64(all))
    }

    /// reuse and call are about spychro's `Pool` (and Python's): no rayon or procspawn run.
    fn spychro_and_python_only(o: &Opts) -> Result<(), String> {
        match o.workload {
            Workload::Reuse | Workload::Call => Err(format!(
                "{} has no {} run (spychro and Python only)",
                o.peer,
                o.workload.name()
            )),
            _ => Ok(()),
        }
    }

    fn rayon_run(o: &Opts, payload: Vec<Vec<u8>>) -> Result<Outputs, String> {
        spychro_and_python_only(o)?;
        let (n, p) = (o.size.items, o.processes);
        // A pool per run, like every other peer (creating one takes microseconds).
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(p)
            .build()
            .map_err(|e| e.to_string())?;
        let iters = o.size.iters;
        Ok(pool.install(|| match o.workload {
            Workload::Tiny => Outputs::U64(
                (0..n as usize)
                    .into_par_iter()
                    .map(plus_one_usize)
                    .collect(),
            ),
            // One item per task: the nearest thing to one item per message.
            Workload::Unbatched => Outputs::U64(
                (0..n as usize)
                    .into_par_iter()
                    .with_max_len(1)
                    .map(plus_one_usize)
                    .collect(),
            ),
            Workload::Cpu => Outputs::U64(
                (0..n as usize)
                    .into_par_iter()
                    .map(|x| spin_work(x as u64, iters))
                    .collect(),
            ),
            Workload::Payload => Outputs::Bytes(payload.into_par_iter().map(bump_work).collect()),
            Workload::Start => Outputs::U64(
                (0..p)
                    .into_par_iter()
                    .with_max_len(1)
                    .map(plus_one_usize)
                    .collect(),
            ),
            // rayon has no ordered streaming: windows of 64Ki items, consumed in order.
            Workload::Stream => {
                let (mut count, mut bad) = (0u64, 0u64);
                let mut buf = Vec::new();
                let mut start = 0;
                while start < n as usize {
                    let end = (start + 65_536).min(n as usize);
                    (start..end)
                        .into_par_iter()
                        .map(plus_one_usize)
                        .collect_into_vec(&mut buf);
                    for &v in &buf {
                        count += 1;
                        if v != count {
                            bad += 1;
                        }
                    }
                    start = end;
                }
                Outputs::Streamed { count, bad }
            }
            Workload::Reuse
            | Workload::Call
            | Workload::Route
            | Workload::Hop
            | Workload::ClusterTiny
            | Workload::ClusterCpu
            | Workload::Files
            | Workload::Idle => {
                unreachable!()
            }
        }))
    }

    /// Runs `f` over `items` on a procspawn pool, one spawn per item, at most `window` spawns
    /// in flight (each holds a few file descriptors until joined), handing each output to
    /// `sink` in input order.
    fn spawn_window<A, R>(
        pool: &procspawn::Pool,
        items: impl Iterator<Item = A>,
        f: fn(A) -> R,
        window: usize,
        mut sink: impl FnMut(R),
    ) -> Result<(), String>
    where
        A: serde::Serialize + serde::de::DeserializeOwned,
        R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    {
        let mut pending = VecDeque::with_capacity(window);
        let join = |h: procspawn::JoinHandle<R>| h.join().map_err(|e| e.to_string());
        for item in items {
            if pending.len() >= window {
                sink(join(pending.pop_front().unwrap())?);
            }
            pending.push_back(pool.spawn(item, f));
        }
        while let Some(h) = pending.pop_front() {
            sink(join(h)?);
        }
        Ok(())
    }

    fn procspawn_run(o: &Opts, payload: Vec<Vec<u8>>) -> Result<Outputs, String> {
        spychro_and_python_only(o)?;
        let (n, p) = (o.size.items, o.processes);
        let pool = procspawn::Pool::new(p).map_err(|e| e.to_string())?;
        const WINDOW: usize = 64;
        let mut out = Vec::new();
        let outputs = match o.workload {
            // No batching in procspawn: chunks made by hand, Vec<u64> in and out.
            Workload::Tiny => {
                let c = o.size.chunk;
                let chunks = (0..n)
                    .step_by(c as usize)
                    .map(|s| (s..(s + c).min(n)).collect::<Vec<u64>>());
                let f: fn(Vec<u64>) -> Vec<u64> = |v| v.into_iter().map(plus_one_work).collect();
                spawn_window(&pool, chunks, f, WINDOW, |r| out.extend(r))?;
                Outputs::U64(out)
            }
            Workload::Unbatched => {
                spawn_window(&pool, 0..n, plus_one_work, WINDOW, |r| out.push(r))?;
                Outputs::U64(out)
            }
            Workload::Cpu => {
                let items = (0..n).map(|x| (x, o.size.iters));
                let f: fn((u64, u64)) -> u64 = |(x, iters)| spin_work(x, iters);
                spawn_window(&pool, items, f, WINDOW, |r| out.push(r))?;
                Outputs::U64(out)
            }
            // At most one spawn in flight per worker: `Pool::spawn` sends the arguments
            // before it returns, and a 1 MiB send blocks until a worker reads it, while a
            // worker's monitor thread blocks handing back its result until that result is
            // joined (a rendezvous channel). Spawning further ahead deadlocks.
            Workload::Payload => {
                let mut outs = Vec::with_capacity(payload.len());
                spawn_window(&pool, payload.into_iter(), bump_work, p, |r| outs.push(r))?;
                Outputs::Bytes(outs)
            }
            Workload::Start => {
                spawn_window(&pool, 0..p as u64, plus_one_work, WINDOW, |r| out.push(r))?;
                Outputs::U64(out)
            }
            Workload::Stream => {
                let c = o.size.chunk;
                let chunks = (0..n)
                    .step_by(c as usize)
                    .map(|s| (s..(s + c).min(n)).collect::<Vec<u64>>());
                let f: fn(Vec<u64>) -> Vec<u64> = |v| v.into_iter().map(plus_one_work).collect();
                let (mut count, mut bad) = (0u64, 0u64);
                // A window of two chunks per worker keeps memory bounded.
                spawn_window(&pool, chunks, f, 2 * p, |r| {
                    for v in r {
                        count += 1;
                        if v != count {
                            bad += 1;
                        }
                    }
                })?;
                Outputs::Streamed { count, bad }
            }
            Workload::Reuse
            | Workload::Call
            | Workload::Route
            | Workload::Hop
            | Workload::ClusterTiny
            | Workload::ClusterCpu
            | Workload::Files
            | Workload::Idle => {
                unreachable!()
            }
        };
        // Joins, then kills and reaps the workers (so their CPU time is counted).
        pool.shutdown();
        Ok(outputs)
    }

    /// Worker memory: a pool of `processes` (at least 2) workers, one of them sleeping in an
    /// item (the job allocates nothing), the others idle; every worker's VmRSS and Pss is
    /// read from /proc while the item sleeps.
    fn idle(o: &Opts) -> Result<Value, String> {
        let p = o.processes.max(2);
        let me = std::process::id();
        let read = move || {
            let workers: Vec<Value> = suite::children(me)
                .into_iter()
                .map(|pid| {
                    json!({
                        "pid": pid,
                        "rss_kib": status_kib(pid, "VmRSS"),
                        "pss_kib": pss_kib(pid),
                    })
                })
                .collect();
            workers
        };
        let workers = match o.peer.as_str() {
            "spychro" => {
                // spychro starts every worker (and waits for its handshake) before the job's
                // first item; 300 ms into a 600 ms item, all are up and all but one idle.
                let reader = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    read()
                });
                Job::new(jobs::nap, [600u64])
                    .processes(p)
                    .run_multi_processed()
                    .map_err(|e| e.to_string())?;
                reader.join().map_err(|_| "reader panicked".to_string())?
            }
            "procspawn" => {
                let pool = procspawn::Pool::new(p).map_err(|e| e.to_string())?;
                // Every worker up and through one item first.
                spawn_window(&pool, 0..4 * p as u64, plus_one_work, 64, |_| ())?;
                let h = pool.spawn(600u64, nap_work);
                std::thread::sleep(Duration::from_millis(300));
                let workers = read();
                h.join().map_err(|e| e.to_string())?;
                pool.shutdown();
                workers
            }
            other => return Err(format!("no idle measurement for peer {other}")),
        };
        Ok(json!({
            "workers": workers,
            "parent_rss_kib": status_kib(me, "VmRSS"),
        }))
    }

    /// Calls made on the warm pool before any is timed (Python does as many).
    const CALL_WARMUP: u64 = 20;

    /// call: the round trip of one call, `pool.submit(plus_one, x)?.wait()?`, on a pool
    /// started beforehand and warmed up (every worker through a job, then `CALL_WARMUP`
    /// calls), `items` times one after another, each timed on its own. CPU time is taken
    /// from before the first timed call to after the pool is closed and joined (its workers
    /// are reaped only then, so their start-up and warm-up are in it too: a few ms).
    fn call(o: &Opts) -> Result<Value, String> {
        if o.peer != "spychro" {
            return Err(format!(
                "{} has no call run (spychro and Python only)",
                o.peer
            ));
        }
        let (n, p) = (o.size.items, o.processes);
        let err = |e: spychro::Error| e.to_string();
        let pool = spychro::Pool::builder().processes(p).start().map_err(err)?;
        Job::new(jobs::plus_one, 0..4 * p as u64)
            .chunk_size(1)
            .on(&pool)
            .run()
            .map_err(err)?;
        for x in 0..CALL_WARMUP {
            let out = pool.submit(jobs::plus_one, x).map_err(err)?.wait();
            if out.map_err(err)? != x + 1 {
                return Err(format!("warm-up call of {x} gave a wrong output"));
            }
        }
        let mut latencies = Vec::with_capacity(n as usize);
        let mut outputs = Vec::with_capacity(n as usize);
        let (u0, s0) = cpu_now();
        let t0 = Instant::now();
        for x in 0..n {
            let t = Instant::now();
            let out = pool
                .submit(jobs::plus_one, x)
                .map_err(err)?
                .wait()
                .map_err(err)?;
            latencies.push(t.elapsed().as_secs_f64());
            outputs.push(out);
        }
        let wall = t0.elapsed().as_secs_f64();
        pool.close();
        pool.join();
        let (u1, s1) = cpu_now();
        let mut v = latency_summary(latencies);
        v["items"] = json!(n);
        v["wall_s"] = json!(wall);
        v["user_s"] = json!(u1 - u0);
        v["sys_s"] = json!(s1 - s0);
        v["checksum"] = json!(weighted(&outputs));
        v["peak_rss_kib"] = json!(status_kib(std::process::id(), "VmHWM"));
        Ok(v)
    }

    /// cluster-tiny, cluster-cpu: the tiny or cpu workload, either on the local pool
    /// (`--peer spychro`, `run_multi_processed`) or through a `nats-server -js` this run
    /// starts, to two hosts (this program again) of `processes / 2` workers each (`--peer
    /// spychro-cluster`), timed from the job's start to its end, after a warm-up job that
    /// brings both hosts up.
    fn cluster(o: &Opts) -> Result<Value, String> {
        let base = if o.workload == Workload::ClusterTiny {
            Workload::Tiny
        } else {
            Workload::Cpu
        };
        if o.peer == "spychro" {
            return measure(&Opts {
                workload: base,
                peer: "spychro".into(),
                processes: o.processes,
                size: o.size.clone(),
            });
        }
        #[cfg(feature = "cluster")]
        {
            through_broker(o, base)
        }
        #[cfg(not(feature = "cluster"))]
        {
            let _ = base;
            Err("the cluster workloads need --features cluster".into())
        }
    }

    #[cfg(feature = "cluster")]
    fn through_broker(o: &Opts, base: Workload) -> Result<Value, String> {
        use std::os::unix::process::CommandExt;
        let dir = std::env::temp_dir().join(format!("spychro-suite-nats-{}", std::process::id()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let url = format!("nats://127.0.0.1:{port}");
        let mut children = vec![
            Command::new("nats-server")
                .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .map_err(|e| format!("nats-server: {e}"))?,
        ];
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t.elapsed() > Duration::from_secs(20) {
                return Err("nats-server did not listen".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        for _ in 0..2 {
            children.push(
                Command::new(&exe)
                    .env("SPYCHRO_SUITE_BROKER", &url)
                    .env(
                        "SPYCHRO_SUITE_HOST_WORKERS",
                        (o.processes / 2).max(1).to_string(),
                    )
                    .process_group(0)
                    .spawn()
                    .map_err(|e| e.to_string())?,
            );
        }
        let result = (|| {
            let err = |e: spychro::Error| e.to_string();
            let cluster = spychro::cluster::Cluster::connect(&url).map_err(err)?;
            // Warm-up: both hosts' pools up and serving.
            cluster
                .run(Job::new(jobs::plus_one, 0..64u64).chunk_size(1))
                .map_err(err)?;
            let n = o.size.items;
            let (u0, s0) = cpu_now();
            let t0 = Instant::now();
            let outputs = if base == Workload::Tiny {
                cluster
                    .run(Job::new(jobs::plus_one, 0..n).chunk_size(CLUSTER_TINY_BATCH))
                    .map_err(err)?
            } else {
                cluster
                    .run(
                        Job::new(jobs::spin, 0..n)
                            .args(o.size.iters)
                            .chunk_size(CLUSTER_CPU_BATCH),
                    )
                    .map_err(err)?
            };
            let wall = t0.elapsed().as_secs_f64();
            let (u1, s1) = cpu_now();
            Ok(json!({
                "items": n,
                "wall_s": wall,
                "user_s": u1 - u0,
                "sys_s": s1 - s0,
                "checksum": weighted(&outputs),
                "peak_rss_kib": status_kib(std::process::id(), "VmHWM"),
            }))
        })();
        for c in children.iter_mut().rev() {
            // SAFETY: kill(2) on a process group this run started.
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    /// route: `ROUTE_PROCESSES` supervised processes, each sending 1..=n to the others in
    /// turn; timed from the supervisor's `join` (every process started and waiting for the
    /// others' ids) to its end. The checksum is the sum of everything received.
    fn route(o: &Opts) -> Result<Value, String> {
        if o.peer != "spychro" {
            return Err(format!("{} has no route run (spychro only)", o.peer));
        }
        let n = o.size.items;
        let mut sums = Vec::new();
        let mut s = spychro::Supervisor::<actors::Bench>::new();
        for _ in 0..ROUTE_PROCESSES {
            s.add(actors::Blaster {
                n,
                peers: ROUTE_PROCESSES as usize,
                sum: 0,
                done: 0,
            });
        }
        s.on_object(|_, sum: u64| sums.push(sum));
        s.start().map_err(|e| e.to_string())?;
        let (u0, s0) = cpu_now();
        let t0 = Instant::now();
        s.join().map_err(|e| e.to_string())?;
        let wall = t0.elapsed().as_secs_f64();
        let (u1, s1) = cpu_now();
        drop(s);
        Ok(json!({
            "items": n * ROUTE_PROCESSES,
            "wall_s": wall,
            "user_s": u1 - u0,
            "sys_s": s1 - s0,
            "checksum": sums.iter().fold(0u64, |a, &b| a.wrapping_add(b)),
            "peak_rss_kib": status_kib(std::process::id(), "VmHWM"),
        }))
    }

    /// hop: a ping-pong through the supervisor between two processes, each round trip timed
    /// in the pinging process, after 100 untimed ones.
    fn hop(o: &Opts) -> Result<Value, String> {
        if o.peer != "spychro" {
            return Err(format!("{} has no hop run (spychro only)", o.peer));
        }
        let n = o.size.items;
        let mut got: Vec<(u64, Vec<f64>)> = Vec::new();
        let mut s = spychro::Supervisor::<actors::Bench>::new();
        s.add(actors::Ponger);
        s.add(actors::Pinger {
            n,
            warmup: 100,
            next: 0,
            to: 0,
            sum: 0,
            latencies: Vec::new(),
            sent: None,
        });
        s.on_object(|_, v: (u64, Vec<f64>)| got.push(v));
        s.start().map_err(|e| e.to_string())?;
        let (u0, s0) = cpu_now();
        let t0 = Instant::now();
        s.join().map_err(|e| e.to_string())?;
        let wall = t0.elapsed().as_secs_f64();
        let (u1, s1) = cpu_now();
        drop(s);
        let (sum, latencies) = got.pop().ok_or("the pinger sent no latencies")?;
        let mut v = latency_summary(latencies);
        v["items"] = json!(n);
        v["wall_s"] = json!(wall);
        v["user_s"] = json!(u1 - u0);
        v["sys_s"] = json!(s1 - s0);
        v["checksum"] = json!(sum);
        v["peak_rss_kib"] = json!(status_kib(std::process::id(), "VmHWM"));
        Ok(v)
    }

    /// Per-call latencies in µs: the median (of the middle two for an even count), mean, and
    /// nearest-rank percentiles (the same as `bench/python_pool.py`).
    fn latency_summary(mut seconds: Vec<f64>) -> Value {
        seconds.sort_by(f64::total_cmp);
        let n = seconds.len();
        let us = |s: f64| s * 1e6;
        let rank = |q: f64| us(seconds[((q * n as f64).ceil() as usize).clamp(1, n) - 1]);
        if n == 0 {
            return json!({});
        }
        let median = if n % 2 == 1 {
            seconds[n / 2]
        } else {
            (seconds[n / 2 - 1] + seconds[n / 2]) / 2.0
        };
        json!({
            "median_us": us(median),
            "p90_us": rank(0.9),
            "p99_us": rank(0.99),
            "min_us": us(seconds[0]),
            "max_us": us(seconds[n - 1]),
            "mean_us": us(seconds.iter().sum::<f64>() / n as f64),
        })
    }
}

/// The orchestrating side: runs the children, checks, prints, writes JSON.
mod parent {
    use super::*;

    struct Config {
        smoke: bool,
        processes: usize,
        runs: Option<usize>,
        only: Option<Vec<Workload>>,
        json: PathBuf,
        python: Option<String>,
        timeout: Duration,
    }

    const USAGE: &str = "\
usage: cargo bench --bench suite -- [--smoke] [--processes N] [--runs N]
                                   [--only tiny,unbatched,cpu,payload,files,start,stream,reuse,call,idle]
                                   [--json PATH] [--python PYTHON | --no-python]";

    fn parse(args: &[String]) -> Result<Config, String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut c = Config {
            smoke: false,
            processes: std::thread::available_parallelism().map_or(1, |n| n.get()),
            runs: None,
            only: None,
            json: root.join("target/bench/suite.json"),
            python: Some("python3".into()),
            timeout: Duration::from_secs(300),
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--smoke" => c.smoke = true,
                "--processes" => {
                    c.processes = value()?.parse().map_err(|e| format!("--processes: {e}"))?;
                    if c.processes == 0 {
                        return Err("--processes must be at least 1".into());
                    }
                }
                "--runs" => {
                    c.runs = Some(value()?.parse().map_err(|e| format!("--runs: {e}"))?);
                }
                "--only" => {
                    let list = value()?
                        .split(',')
                        .map(|w| Workload::parse(w).ok_or(format!("unknown workload {w}")))
                        .collect::<Result<Vec<_>, _>>()?;
                    c.only = Some(list);
                }
                "--json" => c.json = PathBuf::from(value()?),
                "--python" => c.python = Some(value()?.clone()),
                "--no-python" => c.python = None,
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown option {other}")),
            }
        }
        if c.smoke {
            c.timeout = Duration::from_secs(60);
        }
        Ok(c)
    }

    /// One peer of one workload.
    #[derive(Clone)]
    struct Peer {
        /// As shown in the table and JSON.
        label: String,
        kind: PeerKind,
    }

    #[derive(Clone)]
    enum PeerKind {
        Rust(&'static str),
        Python {
            method: &'static str,
            chunksize: String,
        },
    }

    impl Peer {
        fn rust(name: &'static str, label: impl Into<String>) -> Peer {
            Peer {
                label: label.into(),
                kind: PeerKind::Rust(name),
            }
        }

        fn python(method: &'static str, chunksize: &str, label: impl Into<String>) -> Peer {
            Peer {
                label: label.into(),
                kind: PeerKind::Python {
                    method,
                    chunksize: chunksize.into(),
                },
            }
        }

        fn is_spychro(&self) -> bool {
            matches!(self.kind, PeerKind::Rust("spychro"))
        }
    }

    /// A workload's plan: sizes, runs, peers, and the expected checksums.
    struct Plan {
        workload: Workload,
        size: Size,
        runs: usize,
        peers: Vec<Peer>,
        what: &'static str,
    }

    struct Calibration {
        iters: u64,
        item_s: f64,
    }

    /// Iterations of `spin_work` that take about `target` here, and the measured time of one
    /// such item (median).
    fn calibrate(target: Duration, samples: usize) -> Calibration {
        let time = |iters: u64| {
            let t = Instant::now();
            std::hint::black_box(spin_work(std::hint::black_box(1), iters));
            t.elapsed()
        };
        let mut iters = 1_000u64;
        while time(iters) < Duration::from_millis(20) && iters < 1 << 40 {
            iters *= 4;
        }
        // The fastest of a few tries is the one least disturbed by other processes.
        let took = (0..5).map(|_| time(iters)).min().unwrap();
        let iters = ((iters as f64 * target.as_secs_f64() / took.as_secs_f64()) as u64).max(1);
        let mut times: Vec<f64> = (0..samples)
            .map(|i| {
                let t = Instant::now();
                std::hint::black_box(spin_work(std::hint::black_box(i as u64), iters));
                t.elapsed().as_secs_f64()
            })
            .collect();
        Calibration {
            iters,
            item_s: median(&mut times),
        }
    }

    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }

    /// A child's result line.
    struct RunResult {
        wall_s: f64,
        cpu_s: f64,
        peak_rss_kib: Option<u64>,
        json: Value,
    }

    /// Runs a command with a time limit and returns its stdout; an error if it fails.
    fn run_command(mut cmd: Command, limit: Duration) -> Result<String, String> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("could not start: {e}"))?;
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        match status {
            Some(s) if s.success() => Ok(stdout),
            Some(s) => Err(format!("{s}; stderr:\n{}", stderr.trim_end())),
            None => Err(format!(
                "ran past {limit:?} and was killed; stderr:\n{}",
                stderr.trim_end()
            )),
        }
    }

    fn last_json(stdout: &str, marker: &str) -> Result<Value, String> {
        let line = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(marker))
            .ok_or_else(|| format!("no result line in its output:\n{stdout}"))?;
        serde_json::from_str(line).map_err(|e| format!("bad result line {line:?}: {e}"))
    }

    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/python_pool.py")
    }

    fn rust_child(workload: Workload, peer: &str, processes: usize, size: &Size) -> Command {
        let exe = std::env::current_exe().expect("this program's path");
        let mut cmd = Command::new(exe);
        cmd.args(["--child", workload.name(), "--peer", peer])
            .args(["--processes", &processes.to_string()])
            .args(["--items", &size.items.to_string()])
            .args(["--jobs", &size.jobs.to_string()])
            .args(["--bytes", &size.bytes.to_string()])
            .args(["--iters", &size.iters.to_string()])
            .args(["--chunk", &size.chunk.to_string()]);
        cmd
    }

    fn python_child(
        python: &str,
        workload: Workload,
        method: &str,
        chunksize: &str,
        processes: usize,
        size: &Size,
        py_iters: u64,
    ) -> Command {
        let mut cmd = Command::new(python);
        cmd.arg(script())
            .arg(workload.name())
            .args(["--method", method, "--chunksize", chunksize])
            .args(["--processes", &processes.to_string()])
            .args(["--items", &size.items.to_string()])
            .args(["--jobs", &size.jobs.to_string()])
            .args(["--size", &size.bytes.to_string()])
            .args(["--iters", &py_iters.to_string()]);
        if workload == Workload::Files {
            cmd.arg("--dir").arg(files::data_dir(size.items));
        }
        cmd
    }

    /// The checksum a correct run produces.
    fn expected(workload: Workload, size: &Size, iters: u64, processes: usize) -> u64 {
        let n = size.items;
        match workload {
            Workload::Tiny | Workload::Unbatched | Workload::Call | Workload::ClusterTiny => {
                weighted(&(1..=n).collect::<Vec<_>>())
            }
            // Job j runs items j * n .. (j + 1) * n: all the outputs, in order, are 1..=jobs * n.
            Workload::Reuse => weighted(&(1..=n * size.jobs).collect::<Vec<_>>()),
            Workload::Start => weighted(&(1..=processes as u64).collect::<Vec<_>>()),
            Workload::Cpu | Workload::ClusterCpu => {
                weighted(&(0..n).map(|x| spin_work(x, iters)).collect::<Vec<_>>())
            }
            // One item at a time: no need to hold 200 MiB here.
            Workload::Payload => (0..n).fold(0u64, |acc, i| {
                let out = bump_work(payload_item(i, size.bytes));
                let one = payload_checksum(&[out]); // (0 + 1) * (len + sampled bytes)
                acc.wrapping_add((i + 1).wrapping_mul(one))
            }),
            Workload::Stream => n,
            // Each process sends 1..=n; the receivers' sums add up to this.
            Workload::Route => ROUTE_PROCESSES.wrapping_mul(n * (n + 1) / 2),
            // Pong i for i in 1..=n.
            Workload::Hop => n * (n + 1) / 2,
            // Computed while the tree is prepared (files::prepare), before the runs.
            Workload::Files => unreachable!("the files checksum comes from files::prepare"),
            Workload::Idle => 0,
        }
    }

    /// One measured run of `peer`, checked.
    fn run_once(
        c: &Config,
        plan: &Plan,
        peer: &Peer,
        py_iters: u64,
        expect: (u64, u64),
    ) -> Result<RunResult, String> {
        let (cmd, want, marker) = match &peer.kind {
            PeerKind::Rust(name) => (
                rust_child(plan.workload, name, c.processes, &plan.size),
                expect.0,
                child::MARKER,
            ),
            PeerKind::Python { method, chunksize } => (
                python_child(
                    c.python.as_deref().unwrap(),
                    plan.workload,
                    method,
                    chunksize,
                    c.processes,
                    &plan.size,
                    py_iters,
                ),
                expect.1,
                "",
            ),
        };
        let stdout = run_command(cmd, c.timeout)?;
        let v = last_json(&stdout, marker)?;
        let got = v["checksum"].as_u64();
        if got != Some(want) {
            return Err(format!(
                "wrong outputs: checksum {} where {want} was expected",
                v["checksum"]
            ));
        }
        let f = |k: &str| v[k].as_f64().ok_or(format!("no {k} in {v}"));
        Ok(RunResult {
            // call: the run's median latency of one call stands for its wall time.
            wall_s: if latency(plan.workload) {
                f("median_us")? / 1e6
            } else {
                f("wall_s")?
            },
            cpu_s: f("user_s")? + f("sys_s")?,
            peak_rss_kib: v["peak_rss_kib"].as_u64(),
            json: v,
        })
    }

    /// A peer's runs, summarised.
    struct Summary {
        label: String,
        spychro: bool,
        median_wall_s: f64,
        median_cpu_s: f64,
        peak_rss_kib: Option<u64>,
        runs: Vec<Value>,
        error: Option<String>,
    }

    fn plans(c: &Config, cal: &Calibration, python: bool) -> Vec<Plan> {
        let p = c.processes;
        let s = c.smoke;
        let runs = |full: usize| c.runs.unwrap_or(if s { 1 } else { full });
        let pick = |full: u64, smoke: u64| if s { smoke } else { full };
        let size = |items: u64| Size {
            items,
            jobs: 1,
            bytes: 0,
            iters: 0,
            chunk: 1,
        };
        let mut plans = Vec::new();
        let py = |method: &'static str, chunksize: &str, note: &str| {
            Peer::python(method, chunksize, format!("python {method} {note}"))
        };
        // Python's `map`, fork and spawn, with its default chunk size and with 1.
        let py_maps = |chunk: u64| {
            ["fork", "spawn"]
                .into_iter()
                .flat_map(|method| {
                    [
                        py(
                            method,
                            "default",
                            &format!("map (default chunksize: {chunk})"),
                        ),
                        py(method, "1", "map (chunksize 1)"),
                    ]
                })
                .collect::<Vec<_>>()
        };
        let with_python = |mut peers: Vec<Peer>, extra: Vec<Peer>| {
            if python {
                peers.extend(extra);
            }
            peers
        };

        // tiny
        let n = pick(1_000_000, 20_000);
        let chunk = n.div_ceil(4 * p as u64).max(1);
        plans.push(Plan {
            workload: Workload::Tiny,
            size: Size { chunk, ..size(n) },
            runs: runs(7),
            what: "x + 1 over u64, batched: per-item overhead",
            peers: with_python(
                vec![
                    Peer::rust("spychro", "spychro (adaptive batches)"),
                    Peer::rust("spychro-fixed", format!("spychro (chunk_size {chunk})")),
                    Peer::rust("rayon", "rayon (threads)"),
                    Peer::rust("procspawn", format!("procspawn ({chunk} items/spawn)")),
                ],
                vec![
                    py(
                        "fork",
                        "default",
                        &format!("map (default chunksize: {chunk})"),
                    ),
                    py(
                        "spawn",
                        "default",
                        &format!("map (default chunksize: {chunk})"),
                    ),
                ],
            ),
        });

        // unbatched
        let n = pick(20_000, 500);
        plans.push(Plan {
            workload: Workload::Unbatched,
            size: size(n),
            runs: runs(5),
            what: "x + 1, one item per message: round-trip latency",
            peers: with_python(
                vec![
                    Peer::rust("spychro", "spychro (chunk_size 1)"),
                    Peer::rust("rayon", "rayon (1 item/task)"),
                    Peer::rust("procspawn", "procspawn (1 item/spawn)"),
                ],
                vec![
                    py("fork", "1", "map (chunksize 1)"),
                    py("spawn", "1", "map (chunksize 1)"),
                ],
            ),
        });

        // cpu
        let n = pick(400, 20);
        let py_chunk = n.div_ceil(4 * p as u64).max(1);
        plans.push(Plan {
            workload: Workload::Cpu,
            size: Size {
                iters: cal.iters,
                ..size(n)
            },
            runs: runs(5),
            what: "~1 ms of xorshift per item: parallel efficiency",
            peers: with_python(
                vec![
                    Peer::rust("spychro", "spychro (adaptive batches)"),
                    Peer::rust("rayon", "rayon (threads)"),
                    Peer::rust("procspawn", "procspawn (1 item/spawn)"),
                ],
                py_maps(py_chunk),
            ),
        });

        // payload
        let n = pick(200, 8);
        let py_chunk = n.div_ceil(4 * p as u64).max(1);
        plans.push(Plan {
            workload: Workload::Payload,
            size: Size {
                bytes: 1 << 20,
                ..size(n)
            },
            runs: runs(5),
            what: "1 MiB Vec<u8> in, 1 MiB out: bytes moved per second",
            peers: with_python(
                vec![
                    Peer::rust("spychro", "spychro (adaptive batches)"),
                    Peer::rust("rayon", "rayon (threads)"),
                    Peer::rust("procspawn", "procspawn (1 item/spawn)"),
                ],
                py_maps(py_chunk),
            ),
        });

        // files
        let n = pick(files::FULL_FILES, files::SMOKE_FILES);
        let py_chunk = n.div_ceil(4 * p as u64).max(1);
        plans.push(Plan {
            workload: Workload::Files,
            size: size(n),
            // Short runs (about 0.1 s on 2 cores with SHA extensions): more of them than cpu's.
            runs: runs(9),
            what: "SHA-256 of every file of a generated tree (warm page cache): files hashed/s",
            peers: with_python(
                vec![
                    Peer::rust("spychro", "spychro (adaptive batches)"),
                    Peer::rust("rayon", "rayon (threads, par_iter)"),
                ],
                vec![py(
                    "fork",
                    "default",
                    &format!("map (default chunksize: {py_chunk})"),
                )],
            ),
        });

        // start
        plans.push(Plan {
            workload: Workload::Start,
            size: size(p as u64),
            runs: runs(15),
            what: "create a pool, one item per worker, shut down: start-up latency",
            peers: with_python(
                vec![
                    Peer::rust("spychro", "spychro"),
                    Peer::rust(
                        "spychro-forkserver",
                        "spychro, fork server started beforehand",
                    ),
                    Peer::rust("rayon", "rayon (threads)"),
                    Peer::rust("procspawn", "procspawn"),
                ],
                vec![py("fork", "1", "Pool"), py("spawn", "1", "Pool")],
            ),
        });

        // stream
        let n = pick(10_000_000, 100_000);
        plans.push(Plan {
            workload: Workload::Stream,
            size: Size {
                chunk: 10_000,
                ..size(n)
            },
            runs: runs(3),
            what: "x + 1 through an iterator, checked in order: parent memory stays flat",
            peers: with_python(
                vec![
                    Peer::rust("spychro", "spychro (stream_multi_processed)"),
                    Peer::rust("rayon", "rayon (windows of 64Ki)"),
                    Peer::rust("procspawn", "procspawn (10000 items/spawn)"),
                ],
                vec![
                    py("fork", "default", "imap (chunksize 10000)"),
                    py("spawn", "default", "imap (chunksize 10000)"),
                ],
            ),
        });

        // reuse
        let (jobs, n) = (pick(1_000, 20), 100u64);
        let py_chunk = n.div_ceil(4 * p as u64).max(1);
        plans.push(Plan {
            workload: Workload::Reuse,
            size: Size {
                jobs,
                chunk: py_chunk,
                ..size(n)
            },
            runs: runs(5),
            what: "many small jobs one after another: one reused pool vs a pool per job",
            peers: with_python(
                vec![
                    Peer::rust("spychro", "spychro (one reused Pool)"),
                    Peer::rust(
                        "spychro-fixed",
                        format!("spychro (reused Pool, chunk_size {py_chunk})"),
                    ),
                    Peer::rust("spychro-per-job", "spychro (a pool per job)"),
                ],
                ["fork", "spawn"]
                    .into_iter()
                    .map(|method| {
                        py(
                            method,
                            "default",
                            &format!("reused Pool, map (chunksize {py_chunk})"),
                        )
                    })
                    .collect(),
            ),
        });

        // call
        let n = pick(2_000, 50);
        plans.push(Plan {
            workload: Workload::Call,
            size: size(n),
            runs: runs(5),
            what: "one submitted call's round trip on a warm pool (latency per call)",
            peers: with_python(
                vec![Peer::rust("spychro", "spychro (submit + wait)")],
                vec![py("fork", "1", "apply_async().get()")],
            ),
        });

        // route: every process sends n messages, spread over the others, and a last word to
        // each; the throughput counts messages routed.
        let n = pick(100_000, 1_000);
        plans.push(Plan {
            workload: Workload::Route,
            size: size(n),
            runs: runs(5),
            what: "a supervisor of 4 processes sending each other small messages (routed/s)",
            peers: vec![Peer::rust("spychro", "spychro (Supervisor, 4 processes)")],
        });

        // hop
        let n = pick(5_000, 100);
        plans.push(Plan {
            workload: Workload::Hop,
            size: size(n),
            runs: runs(5),
            what: "one message and its answer between two supervised processes (latency)",
            peers: vec![Peer::rust("spychro", "spychro (Supervisor, ping-pong)")],
        });

        // cluster-tiny, cluster-cpu (with the cluster feature only: they need nats-server)
        if cfg!(feature = "cluster") {
            let n = pick(1_000_000, 20_000);
            plans.push(Plan {
                workload: Workload::ClusterTiny,
                size: size(n),
                runs: runs(5),
                what: "x + 1 over u64 through a NATS JetStream broker to 2 hosts vs the local pool",
                peers: vec![
                    Peer::rust("spychro", "spychro (local pool)"),
                    Peer::rust("spychro-cluster", "spychro (broker, 2 hosts)"),
                ],
            });
            let n = pick(400, 20);
            plans.push(Plan {
                workload: Workload::ClusterCpu,
                size: Size {
                    iters: cal.iters,
                    ..size(n)
                },
                runs: runs(5),
                what: "~1 ms items through the broker to 2 hosts vs the local pool",
                peers: vec![
                    Peer::rust("spychro", "spychro (local pool)"),
                    Peer::rust("spychro-cluster", "spychro (broker, 2 hosts)"),
                ],
            });
        }

        if let Some(only) = &c.only {
            plans.retain(|p| only.contains(&p.workload));
        }
        plans
    }

    fn fmt_time(s: f64) -> String {
        if s >= 1.0 {
            format!("{s:.2} s")
        } else if s >= 1e-3 {
            format!("{:.1} ms", s * 1e3)
        } else {
            format!("{:.0} µs", s * 1e6)
        }
    }

    fn fmt_rate(r: f64, unit: &str) -> String {
        if r >= 1e6 {
            format!("{:.2} M{unit}/s", r / 1e6)
        } else if r >= 1e3 {
            format!("{:.1} k{unit}/s", r / 1e3)
        } else {
            format!("{r:.1} {unit}/s")
        }
    }

    fn fmt_mib(kib: Option<u64>) -> String {
        kib.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    }

    /// The throughput column: items per second, or MiB moved (in + out) per second.
    /// reuse: jobs per second (each job `items` items).
    fn throughput(plan: &Plan, wall: f64) -> (f64, String) {
        let items = plan.size.items as f64;
        match plan.workload {
            Workload::Payload => {
                let mib = 2.0 * items * plan.size.bytes as f64 / (1 << 20) as f64;
                (mib / wall, format!("{:.0} MiB/s", mib / wall))
            }
            Workload::Reuse => {
                let jobs = plan.size.jobs as f64;
                (jobs / wall, fmt_rate(jobs / wall, "jobs"))
            }
            Workload::Route => {
                let sent = items * ROUTE_PROCESSES as f64;
                (sent / wall, fmt_rate(sent / wall, "msgs"))
            }
            _ => (items / wall, fmt_rate(items / wall, "items")),
        }
    }

    /// The workloads timed per round trip (the wall column is a median latency).
    fn latency(w: Workload) -> bool {
        matches!(w, Workload::Call | Workload::Hop)
    }

    fn throughput_unit(w: Workload) -> &'static str {
        match w {
            Workload::Payload => "MiB/s (in + out)",
            Workload::Reuse => "jobs/s",
            Workload::Call => "calls/s, one at a time (median over runs)",
            Workload::Route => "routed messages/s",
            Workload::Hop => "round trips/s, one at a time (median over runs)",
            _ => "items/s",
        }
    }

    /// The median over a peer's runs of items per second of wall time.
    fn runs_rate(runs: &[Value]) -> f64 {
        let mut v: Vec<f64> = runs
            .iter()
            .filter_map(|r| Some(r["items"].as_f64()? / r["wall_s"].as_f64()?))
            .collect();
        median(&mut v)
    }

    /// The median over a peer's runs of a number each run reported (`p90_us`, ...).
    fn runs_median(runs: &[Value], key: &str) -> f64 {
        let mut v: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
        median(&mut v)
    }

    const HEADER: [&str; 7] = [
        "workload",
        "peer",
        "median wall",
        "throughput",
        "spychro speed-up",
        "CPU s / 1M items",
        "peak RSS (parent)",
    ];

    fn row(cells: &[String], widths: &[usize]) -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i < 2 {
                let _ = write!(s, "{c:<w$}  ");
            } else {
                let _ = write!(s, "{c:>w$}  ");
            }
        }
        s.trim_end().to_string()
    }

    fn print_header(widths: &[usize]) {
        let h: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
        println!("{}", row(&h, widths));
        println!("{}", "-".repeat(widths.iter().sum::<usize>() + 2 * 6));
    }

    pub fn main(args: &[String]) -> i32 {
        let c = match parse(args) {
            Ok(c) => c,
            Err(e) if e.is_empty() => {
                println!("{USAGE}");
                return 0;
            }
            Err(e) => {
                eprintln!("suite: {e}\n{USAGE}");
                return 2;
            }
        };
        let started = Instant::now();
        let mut failures: Vec<String> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

        // Python: present, and its cpu-loop calibration.
        let mut python_version = None;
        let mut py_cal = Calibration {
            iters: 0,
            item_s: f64::NAN,
        };
        if let Some(py) = &c.python {
            let mut cmd = Command::new(py);
            cmd.arg(script()).args(["calibrate", "--target-ms", "1.0"]);
            match run_command(cmd, Duration::from_secs(60)).and_then(|out| last_json(&out, "")) {
                Ok(v) => {
                    python_version = v["python"].as_str().map(String::from);
                    py_cal.iters = v["iters"].as_u64().unwrap_or(1);
                    py_cal.item_s = v["item_s"].as_f64().unwrap_or(f64::NAN);
                }
                Err(e) => {
                    let note =
                        format!("Python peers skipped: `{py}` could not run the script: {e}");
                    eprintln!("suite: {note}");
                    notes.push(note);
                }
            }
        }
        let python = python_version.is_some();

        let cal = calibrate(Duration::from_millis(1), if c.smoke { 5 } else { 41 });
        println!(
            "spychro benchmark suite ({} mode): pool size {} on {cpus} CPUs; python {}",
            if c.smoke { "smoke" } else { "full" },
            c.processes,
            python_version.as_deref().unwrap_or("absent"),
        );
        println!(
            "cpu workload: {} xorshift steps per item in Rust ({} each), {} in Python ({} each)",
            cal.iters,
            fmt_time(cal.item_s),
            py_cal.iters,
            fmt_time(py_cal.item_s),
        );
        if c.smoke {
            println!(
                "smoke mode: tiny sizes, one run each; timings mean nothing, outputs are checked"
            );
        }
        println!();

        let plans = plans(&c, &cal, python);
        let mut report = Vec::new();
        let mut all: Vec<(Workload, Vec<Summary>)> = Vec::new();
        let label_width = plans
            .iter()
            .flat_map(|p| &p.peers)
            .map(|p| p.label.chars().count())
            .max()
            .unwrap_or(0);
        let widths = [9, label_width, 11, 14, 16, 16, 17];
        print_header(&widths);
        let mut files_tree = None;
        for plan in &plans {
            let expect = if plan.workload == Workload::Files {
                // The tree is made (or reused) and every file read once: a warm cache.
                match files::prepare(plan.size.items) {
                    Ok(tree) => {
                        notes.push(tree.note());
                        let sum = tree.checksum;
                        files_tree = Some(tree);
                        (sum, sum)
                    }
                    Err(e) => {
                        let msg = format!("files: preparing the tree: {e}");
                        eprintln!("suite: FAILED {msg}");
                        failures.push(msg);
                        continue;
                    }
                }
            } else {
                (
                    expected(plan.workload, &plan.size, cal.iters, c.processes),
                    expected(plan.workload, &plan.size, py_cal.iters, c.processes),
                )
            };
            let mut results: Vec<Vec<RunResult>> = plan.peers.iter().map(|_| Vec::new()).collect();
            let mut errors: Vec<Option<String>> = plan.peers.iter().map(|_| None).collect();
            // Run-major order: run r of every peer, then run r + 1.
            for _ in 0..plan.runs {
                for (i, peer) in plan.peers.iter().enumerate() {
                    if errors[i].is_some() {
                        continue;
                    }
                    match run_once(&c, plan, peer, py_cal.iters, expect) {
                        Ok(r) => results[i].push(r),
                        Err(e) => {
                            let msg = format!("{} on {}: {e}", plan.workload.name(), peer.label);
                            eprintln!("suite: FAILED {msg}");
                            failures.push(msg);
                            errors[i] = Some(e);
                        }
                    }
                }
            }
            let summaries: Vec<Summary> = plan
                .peers
                .iter()
                .zip(results)
                .zip(errors)
                .map(|((peer, runs), error)| {
                    let mut walls: Vec<f64> = runs.iter().map(|r| r.wall_s).collect();
                    let mut cpus: Vec<f64> = runs.iter().map(|r| r.cpu_s).collect();
                    Summary {
                        label: peer.label.clone(),
                        spychro: peer.is_spychro(),
                        median_wall_s: median(&mut walls),
                        median_cpu_s: median(&mut cpus),
                        peak_rss_kib: runs.iter().filter_map(|r| r.peak_rss_kib).max(),
                        runs: runs.into_iter().map(|r| r.json).collect(),
                        error,
                    }
                })
                .collect();
            let spychro_wall = summaries
                .iter()
                .find(|s| s.spychro)
                .map_or(f64::NAN, |s| s.median_wall_s);
            let mut peers_json = Vec::new();
            for s in &summaries {
                let mut items = (plan.size.items * plan.size.jobs) as f64;
                if plan.workload == Workload::Route {
                    items *= ROUTE_PROCESSES as f64;
                }
                let ratio = s.median_wall_s / spychro_wall;
                let (mut rate, mut rate_text) = throughput(plan, s.median_wall_s);
                let cpu_per_m = s.median_cpu_s / items * 1e6;
                // call: the wall column is the median latency of one call, the throughput
                // column its p90 (both medians over runs); calls/s in the JSON.
                let p90_us = runs_median(&s.runs, "p90_us");
                if latency(plan.workload) {
                    rate = runs_rate(&s.runs);
                    rate_text = format!("p90 {}", fmt_time(p90_us / 1e6));
                }
                let cells = if s.error.is_some() {
                    vec![
                        plan.workload.name().to_string(),
                        s.label.clone(),
                        "FAILED".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                    ]
                } else {
                    vec![
                        plan.workload.name().to_string(),
                        s.label.clone(),
                        fmt_time(s.median_wall_s),
                        if plan.workload == Workload::Start {
                            "-".into()
                        } else {
                            rate_text
                        },
                        if s.spychro {
                            "1.00".into()
                        } else {
                            format!("{ratio:.2}")
                        },
                        match plan.workload {
                            Workload::Start => format!("{:.1} ms/run", s.median_cpu_s * 1e3),
                            Workload::Reuse => {
                                format!("{}/job", fmt_time(s.median_cpu_s / plan.size.jobs as f64))
                            }
                            Workload::Call => format!("{}/call", fmt_time(s.median_cpu_s / items)),
                            Workload::Hop => format!("{}/trip", fmt_time(s.median_cpu_s / items)),
                            _ => format!("{cpu_per_m:.3}"),
                        },
                        fmt_mib(s.peak_rss_kib),
                    ]
                };
                println!("{}", row(&cells, &widths));
                peers_json.push(json!({
                    "peer": s.label,
                    "median_wall_s": s.median_wall_s,
                    "throughput": rate,
                    "throughput_unit": throughput_unit(plan.workload),
                    "spychro_speedup": ratio,
                    "median_latency_us": latency(plan.workload).then_some(s.median_wall_s * 1e6),
                    "p90_latency_us": latency(plan.workload).then_some(p90_us),
                    "per_job_s": (plan.workload == Workload::Reuse).then_some(s.median_wall_s / plan.size.jobs as f64),
                    "median_cpu_s": s.median_cpu_s,
                    "cpu_s_per_million_items": cpu_per_m,
                    "parent_peak_rss_kib": s.peak_rss_kib,
                    "runs": s.runs,
                    "error": s.error,
                }));
            }
            if plan.workload == Workload::Reuse {
                for s in summaries.iter().filter(|s| s.error.is_none()) {
                    notes.push(format!(
                        "reuse: {} takes {} per job of {} items",
                        s.label,
                        fmt_time(s.median_wall_s / plan.size.jobs as f64),
                        plan.size.items,
                    ));
                }
            }
            if latency(plan.workload) {
                for s in summaries.iter().filter(|s| s.error.is_none()) {
                    notes.push(format!(
                        "{}: {}: median {}, p90 {}, p99 {} per round trip (medians over runs)",
                        plan.workload.name(),
                        s.label,
                        fmt_time(s.median_wall_s),
                        fmt_time(runs_median(&s.runs, "p90_us") / 1e6),
                        fmt_time(runs_median(&s.runs, "p99_us") / 1e6),
                    ));
                }
            }
            if plan.workload == Workload::Files
                && let Some(tree) = &files_tree
            {
                for s in summaries.iter().filter(|s| s.error.is_none()) {
                    notes.push(tree.rate_note(&s.label, s.median_wall_s));
                }
            }
            if plan.workload == Workload::Cpu {
                // Parallel efficiency: throughput over what `processes` cores would do with no
                // overhead, each peer against one item's serial time in its own language.
                for s in &summaries {
                    let serial = if s.label.starts_with("python") {
                        py_cal.item_s
                    } else {
                        cal.item_s
                    };
                    let ideal = c.processes as f64 / serial;
                    let rate = plan.size.items as f64 / s.median_wall_s;
                    if s.error.is_none() {
                        notes.push(format!(
                            "cpu parallel efficiency of {}: {:.2} ({} items/s of an ideal {})",
                            s.label,
                            rate / ideal,
                            fmt_rate(rate, "").trim_end_matches("/s").trim(),
                            fmt_rate(ideal, "").trim_end_matches("/s").trim(),
                        ));
                    }
                }
            }
            println!();
            report.push(json!({
                "workload": plan.workload.name(),
                "what": plan.what,
                "items": plan.size.items,
                "jobs": (plan.workload == Workload::Reuse).then_some(plan.size.jobs),
                "item_bytes": if plan.workload == Workload::Payload { Some(plan.size.bytes) } else { None },
                "runs": plan.runs,
                "peers": peers_json,
            }));
            all.push((plan.workload, summaries));
        }

        // Worker memory.
        let mut idle_json = Vec::new();
        let mut spychro_idle_kib = None;
        let want_idle = c.only.as_ref().is_none_or(|o| o.contains(&Workload::Idle));
        if want_idle {
            println!(
                "worker memory: pool of {} workers, one sleeping in an item, the others idle",
                c.processes.max(2)
            );
            println!(
                "{:<38}  {:>16}  {:>16}  {:>14}",
                "peer", "idle worker RSS", "idle worker Pss", "parent RSS"
            );
            let mut idle_peers: Vec<(String, Command)> = ["spychro", "procspawn"]
                .iter()
                .map(|p| {
                    (
                        p.to_string(),
                        rust_child(
                            Workload::Idle,
                            p,
                            c.processes,
                            &Size {
                                items: 1,
                                jobs: 1,
                                bytes: 0,
                                iters: 0,
                                chunk: 1,
                            },
                        ),
                    )
                })
                .collect();
            if python {
                for method in ["fork", "spawn"] {
                    let mut cmd = Command::new(c.python.as_deref().unwrap());
                    cmd.arg(script())
                        .args(["idle", "--method", method])
                        .args(["--processes", &c.processes.max(2).to_string()]);
                    idle_peers.push((format!("python {method} Pool"), cmd));
                }
            }
            for (label, cmd) in idle_peers {
                let marker = if label.starts_with("python") {
                    ""
                } else {
                    child::MARKER
                };
                match run_command(cmd, c.timeout).and_then(|out| last_json(&out, marker)) {
                    Ok(v) => {
                        let workers = v["workers"].as_array().cloned().unwrap_or_default();
                        let min_of = |k: &str| workers.iter().filter_map(|w| w[k].as_u64()).min();
                        let (rss, pss) = (min_of("rss_kib"), min_of("pss_kib"));
                        if workers.is_empty() || rss.is_none() {
                            let msg = format!("idle on {label}: no worker found: {v}");
                            eprintln!("suite: FAILED {msg}");
                            failures.push(msg);
                            continue;
                        }
                        if label == "spychro" {
                            spychro_idle_kib = rss;
                        }
                        println!(
                            "{label:<38}  {:>16}  {:>16}  {:>14}",
                            fmt_mib(rss),
                            fmt_mib(pss),
                            fmt_mib(v["parent_rss_kib"].as_u64())
                        );
                        idle_json.push(json!({
                            "peer": label,
                            "idle_worker_rss_kib": rss,
                            "idle_worker_pss_kib": pss,
                            "parent_rss_kib": v["parent_rss_kib"],
                            "workers": workers,
                        }));
                    }
                    Err(e) => {
                        let msg = format!("idle on {label}: {e}");
                        eprintln!("suite: FAILED {msg}");
                        failures.push(msg);
                    }
                }
            }
            println!();
        }

        // Targets.
        let targets = targets(&c, &all, spychro_idle_kib);
        println!(
            "targets{}:",
            if c.smoke {
                " (smoke mode: shown, not judged)"
            } else {
                ""
            }
        );
        for t in &targets {
            let verdict = match t["met"].as_bool() {
                _ if c.smoke => "-",
                _ if t["info"].as_bool() == Some(true) => "info",
                Some(true) => "MET",
                Some(false) => "MISSED",
                None => "n/a",
            };
            println!(
                "  {verdict:<6} {}: {}",
                t["target"].as_str().unwrap_or(""),
                t["measured"].as_str().unwrap_or("")
            );
        }
        if !notes.is_empty() {
            println!();
            for n in &notes {
                println!("note: {n}");
            }
        }

        let doc = json!({
            "suite": "spychro benchmark suite (benches/suite.rs)",
            "mode": if c.smoke { "smoke" } else { "full" },
            "processes": c.processes,
            "cpus": cpus,
            "python": python_version,
            "cpu_calibration": {
                "rust_iters": cal.iters, "rust_item_s": cal.item_s,
                "python_iters": py_cal.iters, "python_item_s": py_cal.item_s,
            },
            "workloads": report,
            "worker_memory": idle_json,
            "targets": targets,
            "notes": notes,
            "failures": failures,
            "elapsed_s": started.elapsed().as_secs_f64(),
        });
        if let Some(dir) = c.json.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::write(&c.json, serde_json::to_string_pretty(&doc).unwrap()) {
            Ok(()) => println!(
                "\nwrote {} ({:.0} s in all)",
                c.json.display(),
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("suite: could not write {}: {e}", c.json.display());
                failures.push(format!("writing {}: {e}", c.json.display()));
            }
        }
        if failures.is_empty() {
            0
        } else {
            eprintln!("suite: {} failure(s):", failures.len());
            for f in &failures {
                eprintln!("  {f}");
            }
            1
        }
    }

    /// The issue's targets, with what was measured.
    fn targets(c: &Config, all: &[(Workload, Vec<Summary>)], idle_kib: Option<u64>) -> Vec<Value> {
        let find = |w: Workload| all.iter().find(|(x, _)| *x == w).map(|(_, s)| s);
        let ok = |s: &&Summary| s.error.is_none() && s.median_wall_s.is_finite();
        // spychro's speed over a peer's (a wall-time ratio), for the peers whose label has
        // every one of `parts`.
        let speedups = |w: Workload, parts: &[&str]| -> Vec<(String, f64)> {
            let Some(sums) = find(w) else {
                return Vec::new();
            };
            let Some(sp) = sums.iter().filter(ok).find(|s| s.spychro) else {
                return Vec::new();
            };
            sums.iter()
                .filter(ok)
                .filter(|s| parts.iter().all(|p| s.label.contains(p)))
                .map(|s| (s.label.clone(), s.median_wall_s / sp.median_wall_s))
                .collect()
        };
        let mut out = Vec::new();
        let mut push = |target: &str, needed: f64, got: Vec<(String, f64)>, unit: &str| {
            let measured = if got.is_empty() {
                "not measured".to_string()
            } else {
                got.iter()
                    .map(|(l, v)| format!("{v:.2}{unit} vs {l}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let met = if got.is_empty() {
                None
            } else {
                Some(got.iter().all(|(_, v)| *v >= needed))
            };
            out.push(
                json!({ "target": target, "required": needed, "measured": measured, "met": met }),
            );
        };
        push(
            "tiny: >= 10x the items/s of Python Pool.map, default chunking",
            10.0,
            speedups(Workload::Tiny, &["python", "default chunksize"]),
            "x",
        );
        push(
            "unbatched: >= 5x Python map with chunksize=1",
            5.0,
            speedups(Workload::Unbatched, &["python", "chunksize 1"]),
            "x",
        );
        push(
            "unbatched: >= 20x procspawn",
            20.0,
            speedups(Workload::Unbatched, &["procspawn"]),
            "x",
        );
        // cpu: spychro's throughput over rayon's is rayon's wall over spychro's.
        push(
            "cpu: >= 0.95 of rayon's throughput",
            0.95,
            speedups(Workload::Cpu, &["rayon"]),
            "",
        );
        // files: the same ratio, hashing every file of the tree.
        push(
            "files: >= 0.95 of rayon's throughput",
            0.95,
            speedups(Workload::Files, &["rayon"]),
            "",
        );
        push(
            "start: faster than Python's fork Pool",
            1.0,
            speedups(Workload::Start, &["python fork"]),
            "x",
        );
        push(
            "start: >= 20x faster than Python's spawn Pool",
            20.0,
            speedups(Workload::Start, &["python spawn"]),
            "x",
        );
        push(
            "reuse: one reused Pool >= 20x faster than a pool per job",
            20.0,
            speedups(Workload::Reuse, &["pool per job"]),
            "x",
        );
        push(
            "reuse: one reused Pool >= 5x faster than Python's reused Pool (fork)",
            5.0,
            speedups(Workload::Reuse, &["python fork"]),
            "x",
        );
        // Round two (the second performance issue): closer to the machine's limits.
        push(
            "round two: tiny >= 20x the items/s of Python Pool.map, default chunking",
            20.0,
            speedups(Workload::Tiny, &["python", "default chunksize"]),
            "x",
        );
        push(
            "round two: stream >= 2x procspawn",
            2.0,
            speedups(Workload::Stream, &["procspawn"]),
            "x",
        );
        let mut pools = speedups(Workload::Payload, &["python"]);
        pools.extend(speedups(Workload::Payload, &["procspawn"]));
        push(
            "round two: payload >= 2x the fastest other process pool (plain Vec<u8>)",
            2.0,
            pools,
            "x",
        );
        push(
            "round two: cpu >= 0.98 of rayon's throughput",
            0.98,
            speedups(Workload::Cpu, &["rayon"]),
            "",
        );
        // Latency targets: "required" is the upper bound, in µs, of spychro's median.
        let latency_target = |w: Workload, bound: f64, what: &str| {
            let us = find(w)
                .and_then(|s| s.iter().find(|s| s.spychro && s.error.is_none()))
                .map(|s| s.median_wall_s * 1e6);
            json!({
                "target": what,
                "required": bound,
                "measured": us.map_or("not measured".into(), |us| format!("{us:.1} µs")),
                "met": us.map(|us| us < bound),
            })
        };
        out.push(latency_target(
            Workload::Call,
            100.0,
            "call: median round trip of Pool::submit(..).wait() < 100 µs",
        ));
        // Executed workers: shown beside the target, which is judged with a fork server
        // (a worker that executes the binary cannot answer sooner than ~1 ms here).
        let mut executed = latency_target(
            Workload::Start,
            1500.0,
            "start + run + stop with executed workers (round two's 1.5 ms is judged below, \
             with a fork server)",
        );
        executed["info"] = json!(true);
        out.push(executed);
        // The same with a fork server started beforehand (`spychro::ForkServer`).
        let forked = find(Workload::Start)
            .and_then(|s| {
                s.iter()
                    .find(|s| s.label.contains("fork server") && s.error.is_none())
            })
            .map(|s| s.median_wall_s * 1e6);
        out.push(json!({
            "target": "round two: start + run + stop <= 1.5 ms (workers from a fork server)",
            "required": 1500.0,
            "measured": forked.map_or("not measured".into(), |us| format!("{us:.1} µs")),
            "met": forked.map(|us| us < 1500.0),
        }));
        let unbatched = find(Workload::Unbatched)
            .and_then(|s| s.iter().find(|s| s.spychro && s.error.is_none()))
            .map(|s| runs_rate(&s.runs));
        out.push(json!({
            "target": "round two: unbatched >= 1,000,000 items/s",
            "required": 1_000_000.0,
            "measured": unbatched.map_or("not measured".into(), |r| format!("{r:.0} items/s")),
            "met": unbatched.map(|r| r >= 1_000_000.0),
        }));
        // route: routed messages per second, at least.
        let route = find(Workload::Route)
            .and_then(|s| s.iter().find(|s| s.spychro && s.error.is_none()))
            .map(|s| runs_rate(&s.runs));
        out.push(json!({
            "target": "route: a supervisor routes >= 300,000 messages/s between 4 processes",
            "required": 300_000.0,
            "measured": route.map_or("not measured".into(), |r| format!("{:.0} messages/s", r)),
            "met": route.map(|r| r >= 300_000.0),
        }));
        // cluster: the broker's throughput over the local pool's (a wall-time ratio).
        let local_over = |w: Workload| -> Option<f64> {
            let s = find(w)?;
            let local = s.iter().find(|s| s.spychro && s.error.is_none())?;
            let remote = s
                .iter()
                .find(|s| s.label.contains("broker") && s.error.is_none())?;
            Some(local.median_wall_s / remote.median_wall_s)
        };
        if cfg!(feature = "cluster") {
            let cpu = local_over(Workload::ClusterCpu);
            out.push(json!({
                "target": "cluster-cpu: >= 0.9 of the local pool's throughput",
                "required": 0.9,
                "measured": cpu.map_or("not measured".into(), |r| format!("{r:.2}")),
                "met": cpu.map(|r| r >= 0.9),
            }));
            let tiny = find(Workload::ClusterTiny)
                .and_then(|s| {
                    s.iter()
                        .find(|s| s.label.contains("broker") && s.error.is_none())
                })
                .map(|s| runs_rate(&s.runs));
            out.push(json!({
                "target": "cluster-tiny: >= 1,000,000 items/s through the broker",
                "required": 1_000_000.0,
                "measured": tiny.map_or("not measured".into(), |r| format!("{r:.0} items/s")),
                "met": tiny.map(|r| r >= 1_000_000.0),
            }));
        }
        out.push(latency_target(
            Workload::Hop,
            50.0,
            "hop: median one-hop round trip between supervised processes < 50 µs",
        ));
        // Memory targets: "required" is the upper bound, in MiB.
        let stream_rss = find(Workload::Stream)
            .and_then(|s| s.iter().find(|s| s.spychro && s.error.is_none()))
            .and_then(|s| s.peak_rss_kib);
        let mem = |kib: Option<u64>, limit: f64, what: &str| {
            let mib = kib.map(|k| k as f64 / 1024.0);
            json!({
                "target": what,
                "required": limit,
                "measured": mib.map_or("not measured".into(), |m| format!("{m:.1} MiB")),
                "met": mib.map(|m| m < limit),
            })
        };
        out.push(mem(
            stream_rss,
            100.0,
            "stream: spychro parent peak RSS < 100 MiB for 10M items",
        ));
        out.push(mem(idle_kib, 8.0, "an idle spychro worker < 8 MiB RSS"));
        if c.smoke {
            // Smoke sizes say nothing about the targets.
            for t in &mut out {
                t["met"] = Value::Null;
            }
        }
        out
    }
}
