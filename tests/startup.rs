//! Workers that cannot start, refuse the job or never answer: each is an error that says why,
//! in bounded time, and leaves no process behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use spychro::{Error, Job};

#[spychro::job]
fn double(x: u32) -> u32 {
    2 * x
}

fn worker_error(err: Error) -> Box<spychro::WorkerError> {
    match err {
        Error::Worker(w) => w,
        other => panic!("not a worker error: {other}"),
    }
}

#[test]
fn a_missing_program_is_reported() {
    let err = Job::new(double, [1, 2])
        .worker_program("/nonexistent/spychro-worker")
        .run_multi_processed()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("could not start worker process `/nonexistent/spychro-worker`: "),
        "{text}"
    );
    assert!(text.contains("No such file or directory"), "{text}");
    assert_eq!(worker_error(err).pid(), None);
}

#[test]
fn a_program_that_exits_at_once_is_reported() {
    let err = Job::new(double, [1, 2])
        .processes(2)
        .worker_program("/bin/true")
        .run_multi_processed()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("(`/bin/true`) ended with exit code 0 before its handshake"),
        "{text}"
    );
    let pid = worker_error(err).pid().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

fn script(name: &str, body: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("spychro-{name}-{}.sh", std::process::id()));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_program_that_never_answers_times_out_and_is_killed() {
    let program = script("silent", "exec sleep 30");
    let started = Instant::now();
    let err = Job::new(double, [1, 2])
        .worker_program(&program)
        .start_timeout(Duration::from_millis(300))
        .run_multi_processed()
        .unwrap_err();
    let took = started.elapsed();
    let text = err.to_string();
    assert!(
        text.contains("did not complete its handshake within 300ms"),
        "{text}"
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let pid = worker_error(err).pid().unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the silent worker {pid} is still there"
    );
    std::fs::remove_file(program).unwrap();
}

#[test]
fn a_program_built_from_other_code_refuses_the_job() {
    let probe = env!("CARGO_BIN_EXE_spychro-probe");
    let err = Job::new(double, [1, 2])
        .processes(1)
        .worker_program(probe)
        .run_multi_processed()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("refused job `startup::double`"), "{text}");
    assert!(
        text.contains("this binary has no job named `startup::double`"),
        "{text}"
    );
    assert!(text.contains("built from different code"), "{text}");
}

#[test]
fn the_probe_binary_runs_its_own_job() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spychro-probe"))
        .args(["run", "1000", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let sum: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(sum, (0..1000u64).map(|x| x * x).sum::<u64>());
}

#[spychro::job]
fn pid_after(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

#[test]
fn a_large_pool_starts_every_worker_and_leaves_none() {
    // Twelve workers are started from several threads where there are cores for them.
    let pids = Job::new(pid_after, vec![40u64; 48])
        .processes(12)
        .run_multi_processed()
        .unwrap();
    let distinct: std::collections::HashSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 12, "{distinct:?}");
    for pid in distinct {
        assert!(!suite::alive(pid), "worker {pid} outlived its pool");
    }
    // And when none can start, the error says so.
    let err = Job::new(double, 0..100u32)
        .processes(12)
        .worker_program("/nonexistent/spychro-worker")
        .run_multi_processed()
        .unwrap_err();
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
}
