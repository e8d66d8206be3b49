//! A small program for the integration tests: a spychro binary built from different code than
//! the tests, and a parent whose workers the tests can observe (and signal) from outside.
//!
//! ```text
//! spychro-probe run N PROCESSES   run `square` over 0..N multi-processed, print the sum
//! spychro-probe hang DIR P        P workers, each writes DIR/worker-<pid> and sleeps 60 s;
//!                                 on `Interrupted` print what this process sees of its
//!                                 children and workers, and exit 130 (1 on another error)
//! spychro-probe nested DIR P Q    a non-daemon pool of P workers, each writes DIR/outer-<pid>
//!                                 and runs a pool of Q `hang` workers (DIR/inner-<pid>);
//!                                 exits as `hang` does
//! spychro-probe release DIR P     P workers, each writes DIR/worker-<pid> and waits for
//!                                 DIR/release; then writes the run's outcome to DIR/after
//!                                 ("ok SUM", "interrupted SIGNAL", "error ...") and waits
//!                                 for DIR/exit (at most 60 s) before exiting 0
//! spychro-probe chatty N LINES    N items on 4 workers, each prints LINES long lines to
//!                                 stdout and to stderr (in pieces), returns a checksum;
//!                                 prints `result ITEM CHECKSUM` for each item
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[spychro::job]
fn square(x: u64) -> u64 {
    x * x
}

/// Creates `prefix<pid>` (the file's name is the worker's pid), atomically.
fn announce(prefix: &str) {
    let path = format!("{prefix}{}", std::process::id());
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, b"").expect("write the pid file");
    std::fs::rename(&tmp, &path).expect("publish the pid file");
}

/// Announces this worker, then sleeps far longer than any test waits.
#[spychro::job]
fn hang_item(prefix: String) -> u32 {
    announce(&prefix);
    std::thread::sleep(Duration::from_secs(60));
    std::process::id()
}

/// Announces this (non-daemonic) worker, then runs a pool of `q` hanging workers.
#[spychro::job]
fn nest_outer(dir: String, q: usize) -> u32 {
    announce(&format!("{dir}/outer-"));
    let prefix = format!("{dir}/inner-");
    let out = spychro::Job::new(hang_item, vec![prefix; q])
        .processes(q)
        .chunk_size(1)
        .run_multi_processed()
        .expect("the inner job runs");
    out.len() as u32
}

/// Waits (at most 60 s) for `path` to exist.
fn wait_for(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Announces this worker and waits for `DIR/release`.
#[spychro::job]
fn release_item(dir: String) -> u64 {
    announce(&format!("{dir}/worker-"));
    assert!(
        wait_for(&Path::new(&dir).join("release")),
        "release never came"
    );
    1
}

use suite::chatty_payload as payload;

/// Prints `lines` long lines to stdout and to stderr, each written in several pieces, and
/// returns a checksum of what it printed.
#[spychro::job]
fn chatty_item(item: u64, lines: &u64) -> u64 {
    let pid = std::process::id();
    let mut sum = 0u64;
    for line in 0..*lines {
        let text = payload(item, line);
        sum = sum.wrapping_mul(31).wrapping_add(text.len() as u64 + line);
        let (head, tail) = text.split_at(text.len() / 2);
        {
            let mut out = std::io::stdout().lock();
            write!(out, "out item={item} pid={pid} line={line} {head}").unwrap();
            out.flush().unwrap();
            writeln!(out, "{tail} end").unwrap();
        }
        {
            let mut err = std::io::stderr().lock();
            write!(err, "err item={item} pid={pid} line={line} ").unwrap();
            write!(err, "{head}").unwrap();
            writeln!(err, "{tail} end").unwrap();
        }
    }
    sum
}

/// The state of process `pid` from `/proc/PID/stat` ("R", "S", "Z", ...), or "gone".
fn proc_state(pid: u32) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?")
            .to_owned(),
        Err(_) => "gone".to_owned(),
    }
}

/// The pids announced in `dir` with `prefix`.
fn announced(dir: &Path, prefix: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_prefix(prefix)?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// Ends a run that was expected to be interrupted: on `Interrupted`, prints what this process
/// sees right after the run returned (its children, the state of each announced worker) and
/// exits 130; exits 1 on anything else.
fn end_interrupted<T>(result: Result<T, spychro::Error>, dir: &Path, prefixes: &[&str]) -> ! {
    match result {
        Err(spychro::Error::Interrupted { signal }) => {
            println!("interrupted by signal {signal}");
            let children = suite::children(std::process::id());
            println!(
                "children: [{}]",
                children
                    .iter()
                    .map(|p| format!("{p}:{}", proc_state(*p)))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            for prefix in prefixes {
                for pid in announced(dir, prefix) {
                    println!("{prefix}{pid}: {}", proc_state(pid));
                }
            }
            std::io::stdout().flush().unwrap();
            std::process::exit(130);
        }
        Err(e) => {
            println!("error: {e}");
            std::process::exit(1);
        }
        Ok(_) => {
            println!("finished without being interrupted");
            std::process::exit(1);
        }
    }
}

/// The mark of SIGINT (signal 2, bit 1) in the masks of `/proc/self/status`: "ignored",
/// "caught" or "default".
fn sigint_disposition() -> &'static str {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let mask = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    if mask("SigIgn:") & 2 != 0 {
        "ignored"
    } else if mask("SigCgt:") & 2 != 0 {
        "caught"
    } else {
        "default"
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: spychro-probe run N PROCESSES | hang DIR P | nested DIR P Q | release DIR P \
         | chatty N LINES"
    );
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |s: &str| -> u64 { s.parse().unwrap_or_else(|_| usage()) };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["run", n, p] => {
            let n: u64 = n.parse().expect("N");
            let p: usize = p.parse().expect("PROCESSES");
            let out = spychro::Job::new(square, 0..n)
                .processes(p)
                .run_multi_processed()
                .expect("the job runs");
            println!("{}", out.iter().sum::<u64>());
        }
        ["hang", dir, p] => {
            let p = num(p) as usize;
            let prefix = format!("{dir}/worker-");
            let result = spychro::Job::new(hang_item, vec![prefix; p])
                .processes(p)
                .chunk_size(1)
                .run_multi_processed();
            end_interrupted(result, Path::new(dir), &["worker-"]);
        }
        ["nested", dir, p, q] => {
            let (p, q) = (num(p) as usize, num(q) as usize);
            let result = spychro::Job::new(nest_outer, vec![dir.to_string(); p])
                .args(q)
                .processes(p)
                .chunk_size(1)
                .daemon(false)
                .run_multi_processed();
            end_interrupted(result, Path::new(dir), &["outer-", "inner-"]);
        }
        ["release", dir, p] => {
            let p = num(p) as usize;
            let dir = PathBuf::from(dir);
            let result = spychro::Job::new(release_item, vec![dir.display().to_string(); p])
                .processes(p)
                .chunk_size(1)
                .run_multi_processed();
            let outcome = match result {
                Ok(out) => format!("ok {}", out.iter().sum::<u64>()),
                Err(spychro::Error::Interrupted { signal }) => format!("interrupted {signal}"),
                Err(e) => format!("error {e}"),
            };
            let text = format!("{outcome}\nsigint {}\n", sigint_disposition());
            std::fs::write(dir.join("after.tmp"), text).unwrap();
            std::fs::rename(dir.join("after.tmp"), dir.join("after")).unwrap();
            if !wait_for(&dir.join("exit")) {
                std::process::exit(3);
            }
        }
        ["chatty", n, lines] => {
            let (n, lines) = (num(n), num(lines));
            let out = spychro::Job::new(chatty_item, 0..n)
                .args(lines)
                .processes(4)
                .run_multi_processed()
                .expect("the job runs");
            let mut stdout = std::io::stdout().lock();
            for (item, sum) in out.iter().enumerate() {
                writeln!(stdout, "result {item} {sum}").unwrap();
            }
        }
        _ => usage(),
    }
}
