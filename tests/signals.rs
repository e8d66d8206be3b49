//! Real signals to a real caller (`spychro-probe`, run as a child in its own process group):
//! SIGINT and SIGTERM interrupt a run at once and leave no worker behind, a caller killed with
//! SIGKILL leaves no orphan, a non-daemon tree goes down whole, heavy worker output keeps the
//! protocol and its lines whole, and the caller's SIGINT disposition is back after a run.
//! The same for a `Supervisor`'s actors (SIGINT, SIGTERM, SIGKILL to a supervising caller),
//! and its input read from the caller's real, piped stdin.
//!
//! Items sleep 60 s (or wait for a file), so each bound of a few seconds below proves that the
//! teardown did not wait for them. Measured times are printed (`--nocapture` shows them).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const PROBE: &str = env!("CARGO_BIN_EXE_spychro-probe");
/// How long workers may take to start and announce themselves on a loaded machine.
const START: Duration = Duration::from_secs(20);
/// The bound on a teardown (the issue asks for 500 ms on an idle machine; CI is a noisy
/// 2-core machine running tests in parallel).
const TEARDOWN: Duration = Duration::from_secs(3);

/// A fresh, empty directory for one test.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spychro-signals-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `cond` every 2 ms until it holds, at most `limit`: how long it took, or `None`.
fn poll_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Like [`poll_until`], and panics naming `what` when it never holds.
fn wait_until(what: &str, limit: Duration, cond: impl FnMut() -> bool) -> Duration {
    poll_until(limit, cond).unwrap_or_else(|| panic!("{what}: not so after {limit:?}"))
}

/// Waits (at most `limit`) for every one of `pids` to be gone (a zombie counts as gone), and
/// panics describing those still running when they are not.
fn wait_gone(what: &str, pids: &[u32], limit: Duration) -> Duration {
    if let Some(took) = poll_until(limit, || pids.iter().all(|&p| !suite::alive(p))) {
        return took;
    }
    let left: Vec<String> = pids
        .iter()
        .filter(|&&p| suite::alive(p))
        .map(|&p| describe(p))
        .collect();
    panic!(
        "{what}: still running after {limit:?}:\n{}",
        left.join("\n")
    );
}

/// A process as `/proc` shows it: state, parent, and each thread's name and state.
fn describe(pid: u32) -> String {
    let Some(fields) = stat_fields(pid) else {
        return format!("{pid}: gone");
    };
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .map(|t| {
                    let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                    let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                    let state = stat
                        .rsplit_once(')')
                        .and_then(|(_, r)| r.split_whitespace().next())
                        .unwrap_or("?")
                        .to_owned();
                    format!("{} {state}", comm.trim())
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{pid}: state {}, parent {}, threads [{}]",
        fields[0],
        fields[1],
        threads.join(", ")
    )
}

/// The pids announced in `dir` as files named `<prefix><pid>`.
fn announced(dir: &Path, prefix: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(prefix)?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// Waits for exactly `n` pids announced with `prefix`.
fn wait_announced(dir: &Path, prefix: &str, n: usize) -> Vec<u32> {
    wait_until(
        &format!("{n} workers announced as {prefix}PID"),
        START,
        || announced(dir, prefix).len() >= n,
    );
    let pids = announced(dir, prefix);
    assert_eq!(pids.len(), n, "more workers than items: {pids:?}");
    pids
}

/// Fields of `/proc/PID/stat` after the command name: state, ppid, pgrp, ...
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

fn group_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}

/// A signal mask of `/proc/PID/status` (`SigIgn`, `SigCgt`, ...).
fn signal_mask(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    u64::from_str_radix(value.trim(), 16).unwrap()
}

/// SIGINT's bit in a signal mask.
const SIGINT_BIT: u64 = 1 << (2 - 1);

/// Sends `signal` (a name such as `INT`) to `target` (a pid, or `-PGID` for a group) with
/// kill(1): the root package has no libc or nix dependency.
fn send(signal: &str, target: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), "--", target])
        .stdin(Stdio::null())
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{signal} -- {target}: {status}");
}

/// A running `spychro-probe`, leader of its own process group. Dropping it kills the group and
/// removes its directory.
struct Probe {
    child: Child,
    pid: u32,
    dir: PathBuf,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    status: Option<ExitStatus>,
}

fn reader(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

impl Probe {
    /// Starts `spychro-probe ARGS`; with `ignore_sigint`, through a shell that sets SIGINT to
    /// SIG_IGN first, which the probe inherits across exec (as from `nohup`-style launchers).
    fn start(dir: &Path, args: &[&str], ignore_sigint: bool) -> Probe {
        let mut cmd = if ignore_sigint {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "trap '' INT; exec \"$0\" \"$@\"", PROBE]);
            cmd
        } else {
            Command::new(PROBE)
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().expect("start spychro-probe");
        let pid = child.id();
        let stdout = reader(child.stdout.take().unwrap());
        let stderr = reader(child.stderr.take().unwrap());
        Probe {
            child,
            pid,
            dir: dir.to_owned(),
            stdout,
            stderr,
            status: None,
        }
    }

    /// Waits for the probe to end, at most `limit`; returns how it ended and how long it took.
    fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.status = Some(status);
                return (status, start.elapsed());
            }
            if start.elapsed() > limit {
                let (out, err) = self.kill_and_collect();
                panic!(
                    "spychro-probe {} did not exit within {limit:?}\nstdout:\n{out}\nstderr:\n{err}",
                    self.pid
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn kill_and_collect(&mut self) -> (String, String) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid)])
            .status();
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
        self.output()
    }

    /// What the probe wrote (after it ended).
    fn output(&self) -> (String, String) {
        let take = |rx: &mpsc::Receiver<String>| {
            rx.recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| "<output pipe still open after 10 s>".into())
        };
        (take(&self.stdout), take(&self.stderr))
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.pid)])
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // After a failed test, workers that outlived the probe would run on (and spin) for
        // the rest of their item: end the ones it announced that still run the probe.
        let prefixes = if self.dir.is_dir() {
            &["worker-", "outer-", "inner-", "actor-", "resident-"][..]
        } else {
            &[]
        };
        for prefix in prefixes {
            for pid in announced(&self.dir, prefix) {
                let argv0 = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if suite::alive(pid) && argv0.split(|&b| b == 0).next() == Some(PROBE.as_bytes()) {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Checks that each announced worker is a child of `parent` in a process group of its own.
fn assert_workers_of(parent: u32, workers: &[u32]) {
    let children = suite::children(parent);
    for &w in workers {
        assert!(
            children.contains(&w),
            "worker {w} is not a child of {parent} ({children:?})"
        );
        assert!(suite::alive(w), "worker {w} is not running");
        let group = group_of(w).unwrap();
        assert_ne!(group, parent, "worker {w} is in its caller's process group");
    }
}

/// Checks the probe's report after `Interrupted`: the signal, no child left (running or
/// zombie), and each announced worker gone from `/proc` (killed and reaped) when the run
/// returned.
fn assert_interrupted_report(stdout: &str, signal: i32, prefix: &str, workers: &[u32]) {
    assert!(
        stdout.contains(&format!("interrupted by signal {signal}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("children: []\n"),
        "the caller still had children when the run returned:\n{stdout}"
    );
    let lines: HashMap<&str, &str> = stdout.lines().filter_map(|l| l.split_once(": ")).collect();
    for &w in workers {
        let state = lines
            .get(format!("{prefix}{w}").as_str())
            .unwrap_or_else(|| panic!("no report on worker {w}:\n{stdout}"));
        assert_eq!(
            *state, "gone",
            "worker {w} was not reaped when the run returned:\n{stdout}"
        );
    }
}

/// SIGINT to the group, or SIGTERM to the caller alone, while `P` items hang.
fn interrupt_hanging_job(name: &str, signal: &str, signum: i32, to_group: bool) {
    let dir = fresh_dir(name);
    let mut probe = Probe::start(&dir, &["hang", dir.to_str().unwrap(), "3"], false);
    let workers = wait_announced(&dir, "worker-", 3);
    assert_workers_of(probe.pid, &workers);

    let target = if to_group {
        format!("-{}", probe.pid)
    } else {
        probe.pid.to_string()
    };
    // Timed from before kill(1) starts: an upper bound on signal-to-exit.
    let sent = Instant::now();
    send(signal, &target);
    probe.wait_exit(Duration::from_secs(10));
    let took = sent.elapsed();
    let status = probe.status.unwrap();
    eprintln!("SIG{signal} to {target}: the caller returned Interrupted and exited {took:?} after");
    let (stdout, stderr) = probe.output();
    assert_eq!(
        status.code(),
        Some(130),
        "{status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_interrupted_report(&stdout, signum, "worker-", &workers);
    assert!(took < TEARDOWN, "interrupted exit took {took:?}");
    for &w in &workers {
        assert!(
            !Path::new(&format!("/proc/{w}")).exists(),
            "worker {w} is still in /proc after its caller exited"
        );
    }
}

#[test]
fn sigint_to_the_callers_group_interrupts_at_once_and_leaves_no_worker() {
    interrupt_hanging_job("sigint", "INT", 2, true);
}

#[test]
fn sigterm_to_the_caller_interrupts_at_once_and_leaves_no_worker() {
    interrupt_hanging_job("sigterm", "TERM", 15, false);
}

/// Whether `pid`'s main thread is asleep in a futex wait (a condition variable's): state `S`,
/// and a `futex` wait channel where the kernel names it (it shows `0` when it does not).
fn main_thread_asleep_in_futex(pid: u32) -> bool {
    let task = format!("/proc/{pid}/task/{pid}");
    let state = std::fs::read_to_string(format!("{task}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()?.to_owned()));
    let wchan = std::fs::read_to_string(format!("{task}/wchan")).unwrap_or_default();
    state.as_deref() == Some("S") && (wchan.contains("futex") || wchan.trim() == "0")
}

/// SIGINT to the group, or SIGTERM to the caller alone, while two jobs spawned on a persistent
/// `Pool` hang (one item each, one on each of its two workers) and the caller waits on their
/// handles: only the pool holds workers, no `run_*` is in progress.
fn interrupt_pool_jobs(name: &str, signal: &str, signum: i32, to_group: bool) {
    let dir = fresh_dir(name);
    let mut probe = Probe::start(&dir, &["pool", dir.to_str().unwrap()], false);
    let workers = wait_announced(&dir, "worker-", 2);
    assert_workers_of(probe.pid, &workers);
    // Each job's item has started, each on a worker of the pool.
    let mut running = wait_announced(&dir, "a-", 1);
    running.extend(wait_announced(&dir, "b-", 1));
    running.sort_unstable();
    assert_eq!(running, workers, "each job runs on a worker of its own");
    // The caller is past its announcements and asleep on the first handle's condition
    // variable, inside `wait` (a signal before that would take SIGINT's default action).
    let waiting = dir.join("waiting");
    wait_until("the caller waits on its jobs", START, || {
        waiting.exists() && main_thread_asleep_in_futex(probe.pid)
    });
    assert_eq!(announced(&dir, "caller-"), [probe.pid]);

    let target = if to_group {
        format!("-{}", probe.pid)
    } else {
        probe.pid.to_string()
    };
    let sent = Instant::now();
    send(signal, &target);
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    let took = sent.elapsed();
    let (stdout, stderr) = probe.output();
    let report = format!("{status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(status.code(), Some(0), "{report}");
    for job in ["a", "b"] {
        assert!(
            stdout.contains(&format!("job {job}: interrupted {signum}\n")),
            "job {job} did not end with Interrupted by {signum}:\n{report}"
        );
    }
    // The workers were killed and reaped before the handles returned, and the pool is over.
    assert!(stdout.contains("children: []\n"), "{report}");
    assert!(stdout.contains("pool workers: []\n"), "{report}");
    assert!(
        stdout.contains("submit after: refused: ") && stdout.contains("start a new one"),
        "{report}"
    );
    eprintln!(
        "SIG{signal} to {target}: both pool jobs returned Interrupted, caller exited {took:?} after"
    );
    assert!(took < TEARDOWN, "interrupted exit took {took:?}");
    wait_gone("the pool's workers", &workers, TEARDOWN);
}

#[test]
fn sigint_to_the_callers_group_ends_every_pool_job_and_leaves_no_worker() {
    interrupt_pool_jobs("pool-sigint", "INT", 2, true);
}

#[test]
fn sigterm_to_the_caller_ends_every_pool_job_and_leaves_no_worker() {
    interrupt_pool_jobs("pool-sigterm", "TERM", 15, false);
}

/// A job that closed its worker's socket cannot be told by it that its caller died: the worker
/// then watches its parent as a process. The caller is stopped while the job closes the socket
/// (so that it cannot end the worker itself first), then SIGKILLed: the worker still goes.
#[test]
fn a_worker_whose_socket_a_job_closed_still_exits_when_its_caller_is_killed() {
    let dir = fresh_dir("closed-sigkill");
    let mut probe = Probe::start(&dir, &["hang-closed", dir.to_str().unwrap()], false);
    let workers = wait_announced(&dir, "worker-", 1);
    assert_workers_of(probe.pid, &workers);
    send("STOP", &probe.pid.to_string());
    std::fs::write(dir.join("close"), b"").unwrap();
    let closed = wait_announced(&dir, "closed-", 1);
    assert_eq!(closed, workers);

    let killed = Instant::now();
    probe.child.kill().unwrap();
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    assert_eq!(status.signal(), Some(9), "{status}");
    let took = wait_gone(
        "the worker whose socket was closed",
        &workers,
        TEARDOWN + Duration::from_secs(2),
    );
    eprintln!(
        "caller SIGKILLed: the worker without its socket was gone {:?} after the kill",
        killed.elapsed()
    );
    assert!(
        took < TEARDOWN,
        "the worker outlived its caller by {took:?}"
    );
}

#[test]
fn workers_exit_when_their_caller_is_killed() {
    let dir = fresh_dir("sigkill");
    let mut probe = Probe::start(&dir, &["hang", dir.to_str().unwrap(), "3"], false);
    let workers = wait_announced(&dir, "worker-", 3);
    assert_workers_of(probe.pid, &workers);

    let killed = Instant::now();
    probe.child.kill().unwrap();
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    assert_eq!(status.signal(), Some(9), "{status}");
    let took = wait_gone(
        "the workers of the SIGKILLed caller",
        &workers,
        TEARDOWN + Duration::from_secs(2),
    );
    let since_kill = killed.elapsed();
    eprintln!("caller SIGKILLed: its workers were gone {since_kill:?} after the kill");
    assert!(
        since_kill < TEARDOWN,
        "workers outlived their caller by {took:?}"
    );
}

#[test]
fn sigint_tears_down_a_whole_non_daemon_tree() {
    let dir = fresh_dir("nested");
    let d = dir.to_str().unwrap();
    let mut probe = Probe::start(&dir, &["nested", d, "2", "2"], false);
    let outer = wait_announced(&dir, "outer-", 2);
    let inner = wait_announced(&dir, "inner-", 4);
    assert_workers_of(probe.pid, &outer);
    for &w in &inner {
        let parent = parent_of(w).unwrap();
        assert!(
            outer.contains(&parent),
            "inner worker {w} has parent {parent}, not an outer worker {outer:?}"
        );
        assert_ne!(group_of(w), Some(probe.pid));
    }

    let sent = Instant::now();
    send("INT", &format!("-{}", probe.pid));
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    let took = sent.elapsed();
    let (stdout, stderr) = probe.output();
    assert_eq!(
        status.code(),
        Some(130),
        "{status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_interrupted_report(&stdout, 2, "outer-", &outer);
    wait_gone(
        "the inner workers of the killed outer workers",
        &inner,
        TEARDOWN + Duration::from_secs(2),
    );
    let tree = sent.elapsed();
    eprintln!(
        "SIGINT to a non-daemon tree: caller exited after {took:?}, whole tree gone after {tree:?}"
    );
    assert!(took < TEARDOWN, "interrupted exit took {took:?}");
    assert!(tree < TEARDOWN, "the tree took {tree:?} to go");
    for &w in outer.iter().chain(&inner) {
        assert!(!suite::alive(w), "{w} is still running");
    }
}

/// Starts `release DIR 2` and waits for its two workers.
fn start_release(name: &str, ignore_sigint: bool) -> (Probe, Vec<u32>) {
    let dir = fresh_dir(name);
    let probe = Probe::start(
        &dir,
        &["release", dir.to_str().unwrap(), "2"],
        ignore_sigint,
    );
    let workers = wait_announced(&dir, "worker-", 2);
    (probe, workers)
}

/// Waits for the probe's report written after its run returned.
fn after_run(probe: &Probe) -> String {
    let after = probe.dir.join("after");
    wait_until("the run has returned", Duration::from_secs(10), || {
        after.exists()
    });
    std::fs::read_to_string(after).unwrap()
}

#[test]
fn the_default_sigint_disposition_is_back_after_a_run() {
    let (mut probe, _) = start_release("default-ok", false);
    assert_ne!(
        signal_mask(probe.pid, "SigCgt") & SIGINT_BIT,
        0,
        "SIGINT is not caught while the run is in progress"
    );
    std::fs::write(probe.dir.join("release"), b"").unwrap();
    assert_eq!(after_run(&probe), "ok 2\nsigint default\n");
    assert_eq!(signal_mask(probe.pid, "SigCgt") & SIGINT_BIT, 0);
    assert_eq!(signal_mask(probe.pid, "SigIgn") & SIGINT_BIT, 0);

    send("INT", &format!("-{}", probe.pid));
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    assert_eq!(status.signal(), Some(2), "SIGINT after the run: {status}");
}

#[test]
fn the_default_sigint_disposition_is_back_after_an_interrupted_run() {
    let (mut probe, workers) = start_release("default-interrupted", false);
    send("INT", &format!("-{}", probe.pid));
    assert_eq!(after_run(&probe), "interrupted 2\nsigint default\n");
    for &w in &workers {
        assert!(!suite::alive(w), "worker {w} is still running");
    }

    send("INT", &format!("-{}", probe.pid));
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    assert_eq!(status.signal(), Some(2), "SIGINT after the run: {status}");
}

#[test]
fn an_ignored_sigint_stays_ignored_during_and_after_a_run() {
    let (mut probe, _) = start_release("ignored-ok", true);
    assert_ne!(
        signal_mask(probe.pid, "SigIgn") & SIGINT_BIT,
        0,
        "SIGINT is not ignored while the run is in progress"
    );
    // Sent before the items are released: had it not been ignored, the run would have been
    // interrupted (or the caller killed) before it could complete.
    send("INT", &format!("-{}", probe.pid));
    std::fs::write(probe.dir.join("release"), b"").unwrap();
    assert_eq!(after_run(&probe), "ok 2\nsigint ignored\n");

    send("INT", &format!("-{}", probe.pid));
    std::fs::write(probe.dir.join("exit"), b"").unwrap();
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn an_ignored_sigint_stays_ignored_after_a_run_interrupted_by_sigterm() {
    let (mut probe, workers) = start_release("ignored-sigterm", true);
    send("TERM", &probe.pid.to_string());
    assert_eq!(after_run(&probe), "interrupted 15\nsigint ignored\n");
    for &w in &workers {
        assert!(!suite::alive(w), "worker {w} is still running");
    }

    send("INT", &format!("-{}", probe.pid));
    std::fs::write(probe.dir.join("exit"), b"").unwrap();
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status}");
}

use suite::chatty_payload as payload;

/// The probe's checksum of one item's lines.
fn checksum(item: u64, lines: u64) -> u64 {
    (0..lines).fold(0u64, |sum, line| {
        sum.wrapping_mul(31)
            .wrapping_add(payload(item, line).len() as u64 + line)
    })
}

#[test]
fn heavy_worker_output_keeps_results_right_and_lines_whole() {
    const ITEMS: u64 = 32;
    const LINES: u64 = 200;
    // stdout and stderr into one pipe: the strictest case for lines cut or spliced.
    let (read, write) = std::io::pipe().unwrap();
    let mut child = Command::new(PROBE)
        .args(["chatty", &ITEMS.to_string(), &LINES.to_string()])
        .stdin(Stdio::null())
        .stdout(write.try_clone().unwrap())
        .stderr(write)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let output = reader(read);
    let limit = Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the chatty job did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = started.elapsed();
    let text = output.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status}");

    let mut seen: HashMap<(String, u64, u64), usize> = HashMap::new();
    let mut results = HashMap::new();
    let mut bytes = 0usize;
    for line in text.lines() {
        bytes += line.len() + 1;
        let short = || format!("{}…", line.chars().take(200).collect::<String>());
        if let Some(rest) = line.strip_prefix("result ") {
            let (item, sum) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("{}", short()));
            results.insert(item.parse::<u64>().unwrap(), sum.parse::<u64>().unwrap());
            continue;
        }
        let (prefix_pid, rest) = line
            .strip_prefix("[worker ")
            .and_then(|l| l.split_once("] "))
            .unwrap_or_else(|| panic!("a line without its worker prefix: {}", short()));
        let fields: Vec<&str> = rest.splitn(5, ' ').collect();
        let [stream, item, pid, number, body] = fields[..] else {
            panic!("a malformed forwarded line: {}", short());
        };
        let field = |f: &str, key: &str| -> u64 {
            f.strip_prefix(key)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in: {}", short()))
        };
        let (item, pid, number) = (
            field(item, "item="),
            field(pid, "pid="),
            field(number, "line="),
        );
        assert!(stream == "out" || stream == "err", "{}", short());
        assert_eq!(
            prefix_pid,
            pid.to_string(),
            "prefix of another worker: {}",
            short()
        );
        assert_eq!(
            body,
            format!("{} end", payload(item, number)),
            "a cut or spliced line: {}",
            short()
        );
        *seen.entry((stream.to_owned(), item, number)).or_default() += 1;
    }
    for stream in ["out", "err"] {
        for item in 0..ITEMS {
            for line in 0..LINES {
                let n = seen.get(&(stream.to_owned(), item, line)).copied();
                assert_eq!(n, Some(1), "{stream} line {line} of item {item}");
            }
        }
    }
    assert_eq!(seen.len() as u64, 2 * ITEMS * LINES);
    for item in 0..ITEMS {
        assert_eq!(
            results.get(&item),
            Some(&checksum(item, LINES)),
            "item {item}"
        );
    }
    assert_eq!(results.len() as u64, ITEMS);
    eprintln!(
        "heavy output: {} lines ({:.1} MiB) forwarded whole, {ITEMS} results right, in {took:?}",
        seen.len(),
        bytes as f64 / (1 << 20) as f64
    );
}

/// Waits for the probe's `DIR/ready`.
fn wait_ready(dir: &Path) {
    let ready = dir.join("ready");
    wait_until("the probe is ready", START, || ready.exists());
}

#[test]
fn a_signal_kills_the_workers_of_a_held_stream_at_once_and_takes_its_default_action() {
    let dir = fresh_dir("held");
    let mut probe = Probe::start(&dir, &["held", dir.to_str().unwrap()], false);
    wait_ready(&dir);
    let workers = suite::children(probe.pid);
    assert_eq!(workers.len(), 2, "{workers:?}");
    // The program is not inside spychro (it sleeps holding the stream) and never handled
    // SIGINT: it ends as it would without spychro, and its workers do not wait for it.
    send("INT", &probe.pid.to_string());
    let (status, took) = probe.wait_exit(TEARDOWN);
    assert_eq!(status.signal(), Some(2), "{status}");
    let gone = wait_gone("the held stream's workers", &workers, TEARDOWN);
    eprintln!("held stream: the caller ended by SIGINT in {took:?}, its workers within {gone:?}");
}

#[test]
fn a_held_stream_reports_interrupted_at_once_with_its_workers_already_killed() {
    let dir = fresh_dir("handled");
    let mut probe = Probe::start(&dir, &["handled", dir.to_str().unwrap()], false);
    wait_ready(&dir);
    let workers = suite::children(probe.pid);
    assert_eq!(workers.len(), 2, "{workers:?}");
    send("INT", &probe.pid.to_string());
    let (status, _) = probe.wait_exit(Duration::from_secs(20));
    let (out, err) = probe.output();
    assert_eq!(status.code(), Some(0), "{status}\n{out}\n{err}");
    // Killed by the signal handler itself, while the program was elsewhere (not yet reaped:
    // zombies, or gone).
    for line in out.lines().filter(|l| l.starts_with("worker-")) {
        assert!(
            line.ends_with(": Z") || line.ends_with(": gone"),
            "a worker was still running after the signal: {line}\n{out}"
        );
    }
    assert!(out.contains("workers: 2\n"), "{out}");
    // Outputs were waiting, yet the next call reports the signal, and then the end.
    assert!(out.contains("next: interrupted 2\n"), "{out}");
    assert!(out.contains("next again: true\n"), "{out}");
    // The program's own handler ran too.
    assert!(out.contains("handled 1\n"), "{out}");
    wait_gone("the stream's workers", &workers, TEARDOWN);
}

/// The pids the probe's jobs announced as started descendants.
fn descendants_of(dir: &Path) -> Vec<u32> {
    let mut all = announced(dir, "sleep-");
    all.extend(announced(dir, "orphan-"));
    all
}

/// Kills what a test left running on purpose.
fn kill_pids(pids: &[u32]) {
    for p in pids {
        let _ = Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .status();
    }
}

#[test]
fn no_process_started_by_a_job_outlives_the_run() {
    let dir = fresh_dir("descendants");
    let mut probe = Probe::start(
        &dir,
        &["descendants", dir.to_str().unwrap(), "return"],
        false,
    );
    let (status, _) = probe.wait_exit(Duration::from_secs(30));
    let (out, _) = probe.output();
    assert!(
        status.success() && out.contains("ran: Ok(2)"),
        "{status}\n{out}"
    );
    let left = descendants_of(&dir);
    assert_eq!(
        left.len(),
        4,
        "two sleeps and two detached orphans: {left:?}"
    );
    let took = wait_gone("processes the jobs started", &left, TEARDOWN);
    eprintln!("descendants ended with their workers within {took:?}");
}

#[test]
fn processes_started_by_a_job_are_left_running_when_asked() {
    let dir = fresh_dir("keep");
    let mut probe = Probe::start(&dir, &["descendants", dir.to_str().unwrap(), "keep"], false);
    let (status, _) = probe.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let started = descendants_of(&dir);
    assert_eq!(started.len(), 4, "{started:?}");
    std::thread::sleep(Duration::from_millis(300));
    let alive: Vec<u32> = started
        .iter()
        .copied()
        .filter(|&p| suite::alive(p))
        .collect();
    kill_pids(&started);
    assert_eq!(
        alive, started,
        "kill_descendants(false) must leave them running"
    );
}

#[test]
fn no_process_started_by_a_job_outlives_a_caller_killed_with_sigkill() {
    let dir = fresh_dir("descendants-kill");
    let mut probe = Probe::start(&dir, &["descendants", dir.to_str().unwrap(), "hang"], false);
    let workers = wait_announced(&dir, "worker-", 2);
    wait_until("the jobs' descendants started", START, || {
        descendants_of(&dir).len() == 4
    });
    let started = descendants_of(&dir);
    send("KILL", &probe.pid.to_string());
    probe.wait_exit(Duration::from_secs(10));
    let mut all = workers.clone();
    all.extend(&started);
    let took = wait_gone("the workers and what their jobs started", &all, TEARDOWN);
    kill_pids(&started);
    eprintln!("caller SIGKILLed: workers and their descendants gone within {took:?}");
}

#[test]
fn a_long_line_is_forwarded_whole_with_its_bytes_unchanged() {
    const BYTES: usize = 300_000;
    let out = Command::new(PROBE)
        .args(["longline", &BYTES.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let expected: String = (0..BYTES)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let (prefix, rest) = text
        .strip_prefix("[worker ")
        .and_then(|t| t.split_once("] "))
        .expect("the line has its worker prefix");
    assert!(prefix.parse::<u32>().is_ok(), "{prefix}");
    assert_eq!(
        rest.len(),
        BYTES + 1,
        "one line, one prefix, no byte added or lost"
    );
    assert!(rest == format!("{expected}\n"), "the line's bytes changed");
}

#[test]
fn a_pool_that_cannot_get_descriptors_says_so() {
    let out = Command::new(PROBE)
        .arg("nofile")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("error: "), "{text}");
    assert!(text.contains("ulimit -n"), "{text}");
    assert!(!text.contains("worker_program"), "{text}");
}

#[test]
fn the_programs_own_handler_sees_every_signal_while_runs_come_and_go() {
    let out = Command::new(PROBE)
        .args(["storm", "300"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [_, sent, _, handled, _, interrupted] = fields[..] else {
        panic!("{text}");
    };
    let (sent, handled): (u64, u64) = (sent.parse().unwrap(), handled.parse().unwrap());
    assert!(sent > 50, "{text}");
    assert_eq!(
        sent, handled,
        "signals the program's handler missed: {text}"
    );
    eprintln!("signal storm: {sent} SIGTERMs, every one handled; {interrupted} runs interrupted");
}

/// Starts `supervisor DIR` and waits for its three actors and its resident, each announced
/// after a round trip through the supervisor (so the caller is inside `supervise`, routing,
/// with its signal handler installed); returns the probe, the actors and the resident.
fn start_supervisor(name: &str) -> (Probe, Vec<u32>, u32) {
    let dir = fresh_dir(name);
    let probe = Probe::start(&dir, &["supervisor", dir.to_str().unwrap()], false);
    let actors = wait_announced(&dir, "actor-", 3);
    let resident = wait_announced(&dir, "resident-", 1)[0];
    assert!(dir.join("waiting").exists());
    assert_eq!(announced(&dir, "caller-"), [probe.pid]);
    let mut all = actors.clone();
    all.push(resident);
    assert_workers_of(probe.pid, &all);
    assert_eq!(
        suite::children(probe.pid).len(),
        4,
        "the caller has other children than its 4 processes"
    );
    assert_ne!(
        signal_mask(probe.pid, "SigCgt") & SIGINT_BIT,
        0,
        "SIGINT is not caught while the supervisor routes"
    );
    (probe, actors, resident)
}

/// The pids the probe printed as `pids: [A, B, ...]`, sorted.
fn printed_pids(stdout: &str) -> Vec<u32> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pids: "))
        .unwrap_or_else(|| panic!("no `pids:` line:\n{stdout}"));
    let mut pids: Vec<u32> = line
        .trim_matches(['[', ']'])
        .split(", ")
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap_or_else(|_| panic!("{line}")))
        .collect();
    pids.sort_unstable();
    pids
}

/// SIGINT to the group, or SIGTERM to the caller alone, while a supervisor's three actors
/// serve for 60 s and its resident waits for messages.
fn interrupt_supervisor(name: &str, signal: &str, signum: i32, to_group: bool) {
    let (mut probe, actors, resident) = start_supervisor(name);
    let mut all = actors.clone();
    all.push(resident);
    all.sort_unstable();

    let target = if to_group {
        format!("-{}", probe.pid)
    } else {
        probe.pid.to_string()
    };
    let sent = Instant::now();
    send(signal, &target);
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    let took = sent.elapsed();
    let (stdout, stderr) = probe.output();
    let report = format!("{status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(status.code(), Some(0), "{report}");
    assert!(
        stdout.contains(&format!("supervise: interrupted {signum}\n")),
        "supervise did not return Interrupted by {signum}:\n{report}"
    );
    // Every process was killed and reaped before `supervise` returned.
    assert!(stdout.contains("children: []\n"), "{report}");
    assert_eq!(
        printed_pids(&stdout),
        all,
        "the supervisor's pids are not the processes that announced themselves:\n{report}"
    );
    for &a in &actors {
        assert!(
            stdout.contains(&format!("actor-{a}: gone\n")),
            "actor {a} was not reaped when supervise returned:\n{report}"
        );
    }
    assert!(
        stdout.contains(&format!("resident-{resident}: gone\n")),
        "the resident {resident} was not reaped when supervise returned:\n{report}"
    );
    eprintln!(
        "SIG{signal} to {target}: supervise returned Interrupted, caller exited {took:?} after"
    );
    assert!(took < TEARDOWN, "interrupted exit took {took:?}");
    wait_gone("the supervisor's processes", &all, TEARDOWN);
}

#[test]
fn sigint_to_the_callers_group_interrupts_a_supervisor_and_leaves_no_process() {
    interrupt_supervisor("supervisor-sigint", "INT", 2, true);
}

#[test]
fn sigterm_to_the_caller_interrupts_a_supervisor_and_leaves_no_process() {
    interrupt_supervisor("supervisor-sigterm", "TERM", 15, false);
}

#[test]
fn a_supervisors_processes_exit_when_their_caller_is_killed() {
    let (mut probe, actors, resident) = start_supervisor("supervisor-sigkill");
    let mut all = actors.clone();
    all.push(resident);

    let killed = Instant::now();
    send("KILL", &probe.pid.to_string());
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    assert_eq!(status.signal(), Some(9), "{status}");
    let took = wait_gone(
        "the processes of the SIGKILLed supervisor",
        &all,
        TEARDOWN + Duration::from_secs(2),
    );
    let since_kill = killed.elapsed();
    eprintln!(
        "supervising caller SIGKILLed: its processes were gone {since_kill:?} after the kill"
    );
    assert!(
        since_kill < TEARDOWN,
        "the supervisor's processes outlived their caller by {took:?}"
    );
}

/// SIGTERM to the caller while its object handler runs on the supervisor's routing thread,
/// busy until spychro's signal handler has killed every process and they were reaped (an
/// ordinary handler doing slow work when Ctrl-C comes): `supervise` must still return
/// `Interrupted`.
///
/// It returns `Supervisor(Failed { .. ended with signal 9 (SIGKILL) .. })` instead: the routing
/// loop (`hub.rs`, `run_hub`) checks `guard.fired()` only right after `poll`; when the handler
/// returns, the same round's 100 ms check finds the processes that the signal handler killed
/// gone, `member_ended` → `failed` records the first as the supervisor's fatal error, and the
/// next round returns it before it polls again. (The same happens, less often, when the signal
/// comes while the loop reads a busy process's frames: 3 runs in 100 with three processes
/// broadcasting as fast as they can.) With a restart policy the killed processes are restarted
/// first.
#[test]
fn sigterm_while_a_supervisor_handler_runs_is_reported_as_interrupted() {
    let dir = fresh_dir("supervisor-handler");
    let mut probe = Probe::start(&dir, &["supervisor-handler", dir.to_str().unwrap()], false);
    let caller = wait_announced(&dir, "handling-", 1);
    assert_eq!(caller, [probe.pid]);
    let members = suite::children(probe.pid);
    assert_eq!(members.len(), 4, "{members:?}");
    assert_workers_of(probe.pid, &members);

    let sent = Instant::now();
    send("TERM", &probe.pid.to_string());
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    let took = sent.elapsed();
    let (stdout, stderr) = probe.output();
    let report = format!("{status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(status.code(), Some(0), "{report}");
    assert!(!stdout.contains("handler: "), "{report}");
    assert!(stdout.contains("children: []\n"), "{report}");
    assert_eq!(printed_pids(&stdout), members, "{report}");
    assert!(
        stdout.contains("supervise: interrupted 15\n"),
        "supervise did not return Interrupted by 15:\n{report}"
    );
    assert!(took < TEARDOWN, "interrupted exit took {took:?}");
    wait_gone("the supervisor's processes", &members, TEARDOWN);
}

/// A signal during a later, unrelated run must not kill a process that merely got the pid of
/// a supervised process that ended long before: here a `sleep 60` in a process group of its
/// own, started after the supervisor was dropped, with that pid (root only: the probe sets
/// /proc/sys/kernel/ns_last_pid; elsewhere the test says so and passes).
///
/// It is killed: the supervisor registers each process with the signal handler's table of
/// groups to kill (`Guard::watch`), but unregisters it (`Guard::unwatch`) only when the 100 ms
/// check finds it ended (`member_ended(i, Some(guard))`). A process whose end is seen on its
/// link (`read_member` → `member_ended(i, None)`, the usual way, also for a removed one), or
/// one ended by `end_all` (a failure, an interruption, `terminate`, drop), stays in the table
/// after it was reaped; the next SIGINT or SIGTERM while any run holds a `Guard` sends SIGKILL
/// to the process group with that number, whoever has it then. (The table also fills up: 4096
/// slots.)
#[test]
fn a_signal_never_kills_a_process_that_got_the_pid_of_an_ended_supervised_process() {
    let dir = fresh_dir("supervisor-stale");
    let mut probe = Probe::start(&dir, &["supervisor-stale", dir.to_str().unwrap()], false);
    wait_until("the run started (or the pid was not reused)", START, || {
        !announced(&dir, "worker-").is_empty() || matches!(probe.child.try_wait(), Ok(Some(_)))
    });
    if announced(&dir, "worker-").is_empty() {
        let (status, _) = probe.wait_exit(Duration::from_secs(10));
        let (stdout, stderr) = probe.output();
        assert!(
            status.success() && stdout.contains("other: pid not reused"),
            "{status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        eprintln!(
            "not checked: the pid could not be reused here ({})",
            stdout.trim()
        );
        return;
    }
    let worker = announced(&dir, "worker-");
    let other: Vec<u32> = suite::children(probe.pid)
        .into_iter()
        .filter(|p| !worker.contains(p))
        .collect();
    assert_eq!(other.len(), 1, "{other:?}");
    assert!(suite::alive(other[0]));
    assert_eq!(group_of(other[0]), Some(other[0]), "in a group of its own");

    send("INT", &format!("-{}", probe.pid));
    let (status, _) = probe.wait_exit(Duration::from_secs(10));
    let (stdout, stderr) = probe.output();
    let report = format!("{status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(status.code(), Some(0), "{report}");
    assert!(stdout.contains("supervise: finished\n"), "{report}");
    assert!(
        stdout.contains(&format!("other {}: the member's pid\n", other[0])),
        "{report}"
    );
    assert!(stdout.contains("run: interrupted 2\n"), "{report}");
    assert!(
        stdout.contains("other: running\n"),
        "the signal killed an unrelated process:\n{report}"
    );
}

/// A running `spychro-probe` (leader of its own process group) whose stdin is a pipe the test
/// writes to, and whose stdout is read as it comes. Dropping it kills the group.
struct Typist {
    child: Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    /// What the probe wrote to stdout so far, and whether the pipe has ended.
    stdout: Arc<Mutex<(String, bool)>>,
    stderr: mpsc::Receiver<String>,
    ended: bool,
}

impl Typist {
    fn start(args: &[&str]) -> Typist {
        let mut child = Command::new(PROBE)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start spychro-probe");
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = Arc::new(Mutex::new((String::new(), false)));
        let mut pipe = child.stdout.take().unwrap();
        let sink = Arc::clone(&stdout);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut bytes = Vec::new();
            loop {
                let n = pipe.read(&mut buf).unwrap_or(0);
                bytes.extend_from_slice(&buf[..n]);
                let mut shared = sink.lock().unwrap();
                shared.0 = String::from_utf8_lossy(&bytes).into_owned();
                if n == 0 {
                    shared.1 = true;
                    return;
                }
            }
        });
        let stderr = reader(child.stderr.take().unwrap());
        Typist {
            child,
            pid,
            stdin,
            stdout,
            stderr,
            ended: false,
        }
    }

    /// What the probe wrote to stdout so far.
    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().0.clone()
    }

    /// Waits (at most [`START`]) until stdout satisfies `cond`, and returns it.
    fn wait_stdout(&self, what: &str, mut cond: impl FnMut(&str) -> bool) -> String {
        poll_until(START, || cond(&self.stdout())).unwrap_or_else(|| {
            panic!(
                "{what}: not so after {START:?}; stdout so far:\n{}",
                self.stdout()
            )
        });
        self.stdout()
    }

    /// Writes `text` to the probe's stdin.
    fn type_text(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes the probe's stdin: it reads end of file.
    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits (at most `limit`) for the probe to exit and its stdout to end; returns how it
    /// exited, how long that took, its stdout and its stderr.
    fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration, String, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > limit {
                self.kill();
                panic!(
                    "spychro-probe {} did not exit within {limit:?}\nstdout:\n{}",
                    self.pid,
                    self.stdout()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let took = start.elapsed();
        self.ended = true;
        let closed = poll_until(Duration::from_secs(10), || self.stdout.lock().unwrap().1);
        assert!(
            closed.is_some(),
            "the probe's stdout is still open 10 s after it exited"
        );
        let stderr = self
            .stderr
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| "<stderr still open after 10 s>".into());
        (status, took, self.stdout(), stderr)
    }

    fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid)])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.ended = true;
    }
}

impl Drop for Typist {
    fn drop(&mut self) {
        if !self.ended {
            self.kill();
        }
    }
}

/// The prompts `asker A question Q? ` on `stdout`, in the order they were printed, and the
/// text without them (prompts end without a newline: what is printed next follows them).
fn split_prompts(stdout: &str) -> (Vec<(u32, u32)>, String) {
    let mut prompts = Vec::new();
    let mut rest = String::new();
    let mut s = stdout;
    while let Some(at) = s.find("asker ") {
        rest.push_str(&s[..at]);
        let after = &s[at + "asker ".len()..];
        let Some(end) = after.find("? ") else {
            // A prompt still being written.
            rest.push_str(&s[at..]);
            s = "";
            break;
        };
        let (a, q) = after[..end]
            .split_once(" question ")
            .unwrap_or_else(|| panic!("a malformed prompt in:\n{stdout}"));
        prompts.push((a.parse().unwrap(), q.parse().unwrap()));
        s = &after[end + 2..];
    }
    rest.push_str(s);
    (prompts, rest)
}

/// The answers printed (`answer A Q TEXT`), in order.
fn answers(rest: &str) -> Vec<((u32, u32), String)> {
    rest.lines()
        .filter_map(|l| l.strip_prefix("answer "))
        .map(|l| {
            let mut f = l.splitn(3, ' ');
            let a = f.next().unwrap().parse().unwrap();
            let q = f.next().unwrap().parse().unwrap();
            ((a, q), f.next().unwrap_or_default().to_owned())
        })
        .collect()
}

/// How many `chat I` lines the probe printed.
fn chats(rest: &str) -> usize {
    rest.lines().filter(|l| l.starts_with("chat ")).count()
}

/// Checks the probe's stdout after it read `lines`, one per prompt: each prompt printed once,
/// one at a time, each asker's first question before its second; the k-th prompt answered with
/// the k-th line, every line exactly once; the chatter's 20 objects; `done`; no child left.
/// Returns the supervisor's pids.
fn check_answered(stdout: &str, lines: &[&str]) -> Vec<u32> {
    let (prompts, rest) = split_prompts(stdout);
    let mut asked = prompts.clone();
    asked.sort_unstable();
    assert_eq!(
        asked,
        [(1, 1), (1, 2), (2, 1), (2, 2)],
        "each question asked exactly once:\n{stdout}"
    );
    for a in [1, 2] {
        let first = prompts.iter().position(|p| *p == (a, 1)).unwrap();
        let second = prompts.iter().position(|p| *p == (a, 2)).unwrap();
        assert!(first < second, "asker {a} asked out of order:\n{stdout}");
    }
    let got = answers(&rest);
    let want: Vec<((u32, u32), String)> = prompts
        .iter()
        .zip(lines)
        .map(|(p, l)| (*p, l.to_string()))
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        got_sorted, want_sorted,
        "the k-th prompt must get the k-th line, each line exactly once:\n{stdout}"
    );
    let mut texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    texts.sort_unstable();
    let mut typed = lines.to_vec();
    typed.sort_unstable();
    assert_eq!(texts, typed, "{stdout}");
    for i in 0..20 {
        assert_eq!(
            rest.lines().filter(|l| *l == format!("chat {i}")).count(),
            1,
            "chat {i}:\n{stdout}"
        );
    }
    assert_eq!(chats(&rest), 20, "{stdout}");
    // Nothing else: whole lines, in this order at the end.
    for line in rest.lines() {
        assert!(
            line.starts_with("answer ")
                || line.starts_with("chat ")
                || line == "done"
                || line == "children: []"
                || line.starts_with("pids: "),
            "an unexpected line {line:?} in:\n{stdout}"
        );
    }
    assert!(rest.contains("done\nchildren: []\npids: "), "{stdout}");
    let pids = printed_pids(&rest);
    assert_eq!(pids.len(), 3, "{stdout}");
    pids
}

const LINES: [&str; 4] = ["ann lee", "bob", "cid kim", "dee"];

#[test]
fn supervisor_input_comes_from_the_callers_piped_stdin_one_prompt_at_a_time() {
    let mut probe = Typist::start(&["supervisor-input"]);
    for (k, line) in LINES.iter().enumerate() {
        // The k-th prompt was printed (flushed, without a newline), and no other prompt comes
        // before it is answered; the first time, the chatter's objects were all handled while
        // the prompt waited for its line.
        let stdout = probe.wait_stdout(&format!("prompt {}", k + 1), |out| {
            let (prompts, rest) = split_prompts(out);
            prompts.len() > k && (k > 0 || chats(&rest) == 20)
        });
        let (prompts, _) = split_prompts(&stdout);
        assert_eq!(
            prompts.len(),
            k + 1,
            "a prompt was asked before the one before it was answered:\n{stdout}"
        );
        let asking = prompts[k];
        probe.type_text(&format!("{line}\n"));
        probe.wait_stdout(&format!("the answer to {asking:?}"), |out| {
            answers(&split_prompts(out).1).contains(&(asking, line.to_string()))
        });
    }
    probe.close_stdin();
    let (status, took, stdout, stderr) = probe.wait_exit(START);
    assert_eq!(status.code(), Some(0), "{status}\n{stdout}\n{stderr}");
    let pids = check_answered(&stdout, &LINES);
    eprintln!(
        "typed input: 4 prompts answered in order, the caller exited {took:?} after stdin closed"
    );
    wait_gone("the supervisor's processes", &pids, TEARDOWN);
}

#[test]
fn supervisor_input_read_from_a_pipe_closed_before_any_prompt_answers_each_line_once() {
    let mut probe = Typist::start(&["supervisor-input"]);
    probe.type_text(&LINES.map(|l| format!("{l}\n")).concat());
    probe.close_stdin();
    let (status, _, stdout, stderr) = probe.wait_exit(START);
    assert_eq!(status.code(), Some(0), "{status}\n{stdout}\n{stderr}");
    let pids = check_answered(&stdout, &LINES);
    wait_gone("the supervisor's processes", &pids, TEARDOWN);
}

/// Checks the probe's stdout after its stdin ended after one line: the first prompt got the
/// line (its answer printed, unless `answered` is false: the supervisor may end before the
/// answer comes back), a later prompt found the input ended, and `supervise` failed naming
/// that asker, with no child left. Returns the supervisor's pids.
fn check_ended_early(stdout: &str, report: &str, answered: bool) -> Vec<u32> {
    let (prompts, rest) = split_prompts(stdout);
    assert!(prompts.len() >= 2, "{report}");
    let got = answers(&rest);
    let want = [(prompts[0], "only line".to_string())];
    if answered || !got.is_empty() {
        assert_eq!(got, want, "{report}");
    }
    let error = rest
        .lines()
        .find_map(|l| l.strip_prefix("supervise: error "))
        .unwrap_or_else(|| panic!("supervise did not fail:\n{report}"));
    assert!(error.contains("standard input ended"), "{report}");
    // It names an asker whose prompt found the input ended.
    assert!(
        prompts[1..]
            .iter()
            .any(|(a, _)| error.contains(&format!("process Asker (id {a}"))),
        "{report}"
    );
    assert!(!rest.lines().any(|l| l == "done"), "{report}");
    assert!(rest.contains("children: []\n"), "{report}");
    let pids = printed_pids(&rest);
    assert_eq!(pids.len(), 3, "{report}");
    pids
}

#[test]
fn supervisor_input_that_ends_early_is_an_error_not_a_hang() {
    let mut probe = Typist::start(&["supervisor-input"]);
    probe.type_text("only line\n");
    // The line was answered and the next prompt is waiting on stdin when it ends.
    probe.wait_stdout("the line answered and the next prompt asked", |out| {
        let (prompts, rest) = split_prompts(out);
        prompts.len() >= 2 && answers(&rest).len() == 1
    });
    let closed = Instant::now();
    probe.close_stdin();
    let (status, _, stdout, stderr) = probe.wait_exit(START);
    let took = closed.elapsed();
    let report = format!("{status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(status.code(), Some(0), "{report}");
    let pids = check_ended_early(&stdout, &report, true);
    eprintln!(
        "input ended early: supervise failed and the caller exited {took:?} after stdin closed"
    );
    assert!(
        took < TEARDOWN,
        "the caller exited {took:?} after stdin closed"
    );
    wait_gone("the supervisor's processes", &pids, TEARDOWN);
}

#[test]
fn supervisor_input_from_a_pipe_closed_after_one_line_is_an_error_not_a_hang() {
    let mut probe = Typist::start(&["supervisor-input"]);
    probe.type_text("only line\n");
    probe.close_stdin();
    let (status, _, stdout, stderr) = probe.wait_exit(START);
    let report = format!("{status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(status.code(), Some(0), "{report}");
    let pids = check_ended_early(&stdout, &report, false);
    wait_gone("the supervisor's processes", &pids, TEARDOWN);
}
