//! `Process` and `ProcessList` with real child processes: names, results, exit codes in
//! Python's convention, timeouts, signals, panics, daemonic and non-daemonic drops.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use spychro::{Error, Process, ProcessList};

fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[spychro::job]
fn describe(n: u64) -> (String, u32, u64) {
    let me = spychro::current_process();
    (me.name, me.pid, n * 2)
}

#[test]
fn a_process_runs_its_function_and_returns_its_value() {
    let mut p = Process::new(describe, 21);
    let default_name = p.get_name().to_owned();
    assert!(default_name.starts_with("Process-"), "{default_name}");
    assert_eq!(p.exit_code(), None);
    assert!(!p.is_alive());
    p.start().unwrap();
    let pid = p.pid().unwrap();
    assert_ne!(pid, std::process::id());
    let (name, child_pid, value) = p.join().unwrap();
    assert_eq!(
        (name.as_str(), child_pid, value),
        (default_name.as_str(), pid, 42)
    );
    assert_eq!(p.exit_code(), Some(0));
    assert!(!p.is_alive());
    assert!(!exists(pid));

    let mut named = Process::new(describe, 1).name("my_service");
    named.start().unwrap();
    assert_eq!(named.join().unwrap().0, "my_service");
    // Names count up per program.
    let a: u64 = Process::new(describe, 0).get_name()[8..].parse().unwrap();
    let b: u64 = Process::new(describe, 0).get_name()[8..].parse().unwrap();
    assert_eq!(b, a + 1);
}

#[spychro::job]
fn exit_with(code: i32) {
    std::process::exit(code)
}

#[spychro::job]
fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn exit_codes_follow_pythons_convention() {
    let mut ok = Process::new(exit_with, 0);
    let mut three = Process::new(exit_with, 3);
    let mut killed = Process::new(sleep_ms, 60_000);
    let mut terminated = Process::new(sleep_ms, 60_000);
    for p in [&mut ok, &mut three] {
        p.start().unwrap();
    }
    killed.start().unwrap();
    terminated.start().unwrap();
    assert!(killed.is_alive() && terminated.is_alive());
    killed.kill();
    terminated.terminate();
    let _ = ok.join();
    let err = three.join().unwrap_err();
    assert!(err.to_string().contains("exit code 3"), "{err}");
    assert!(killed.join().is_err());
    assert!(terminated.join().is_err());
    assert_eq!(ok.exit_code(), Some(0));
    assert_eq!(three.exit_code(), Some(3));
    assert_eq!(killed.exit_code(), Some(-9));
    assert_eq!(terminated.exit_code(), Some(-15));
}

#[test]
fn join_timeout_waits_at_most_that_long() {
    let mut p = Process::new(sleep_ms, 400);
    p.start().unwrap();
    let started = Instant::now();
    assert_eq!(p.join_timeout(Duration::from_millis(50)).unwrap(), None);
    assert!(started.elapsed() < Duration::from_millis(350));
    assert!(p.is_alive());
    assert_eq!(p.join_timeout(Duration::from_secs(20)).unwrap(), Some(400));
    assert_eq!(p.exit_code(), Some(0));
}

#[spychro::job]
fn explode(x: u32) -> u32 {
    panic!("process {x} exploded")
}

#[test]
fn a_panicking_process_exits_with_1_and_join_says_why() {
    let mut p = Process::new(explode, 5).name("fragile");
    p.start().unwrap();
    let err = p.join().unwrap_err();
    let f = err.item().expect("the panic as an item failure");
    assert_eq!(f.message(), "process 5 exploded");
    assert_eq!(f.item_debug(), Some("fragile"));
    assert_eq!(p.exit_code(), Some(1));
}

#[spychro::job]
fn write_after(path: PathBuf, ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    std::fs::write(path, b"done").unwrap();
}

#[test]
fn dropping_a_daemon_kills_it_and_dropping_a_non_daemon_waits() {
    let dir = std::env::temp_dir().join(format!("spychro-proc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let mut daemon = Process::with_args(write_after, dir.join("daemon"), 300);
    daemon.start().unwrap();
    let pid = daemon.pid().unwrap();
    drop(daemon);
    assert!(!exists(pid), "the daemon {pid} outlived its handle");
    std::thread::sleep(Duration::from_millis(400));
    assert!(!dir.join("daemon").exists());

    let mut waited = Process::with_args(write_after, dir.join("waited"), 200).daemon(false);
    waited.start().unwrap();
    drop(waited);
    assert!(
        dir.join("waited").exists(),
        "dropping a non-daemon must wait for it"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[spychro::job]
fn nested_pool(n: u64) -> Result<u64, String> {
    let mut inner = Process::new(sleep_ms, n);
    inner.start().map_err(|e| e.to_string())?;
    inner.join().map_err(|e| e.to_string())
}

#[test]
fn only_non_daemonic_processes_may_start_children() {
    let mut daemon = Process::new(nested_pool, 1);
    daemon.start().unwrap();
    let err = daemon.join().unwrap_err();
    assert!(
        err.to_string()
            .contains("daemonic workers may not have children"),
        "{err}"
    );
    let mut parent = Process::new(nested_pool, 5).daemon(false);
    parent.start().unwrap();
    assert_eq!(parent.join().unwrap(), 5);
}

#[test]
fn a_process_list_starts_joins_and_signals_together() {
    let mut list = ProcessList::new();
    for code in [0, 2, 4] {
        list.add(Process::new(exit_with, code));
    }
    list.add(Process::new(sleep_ms, 60_000).name("sleeper"));
    assert_eq!(list.len(), 4);
    list.start().unwrap();
    let pids: Vec<u32> = list.pids().into_iter().map(Option::unwrap).collect();
    assert!(list.is_alive());
    // The three quick ones end (and are reaped by their watchers) before the signal: a
    // SIGTERM that came first would be their exit status instead.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while pids[..3].iter().any(|&p| exists(p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the quick processes did not end"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    list.terminate();
    let codes = list.join().unwrap();
    assert_eq!(codes, [Some(0), Some(2), Some(4), Some(-15)]);
    assert!(!list.is_alive());
    assert!(pids.iter().all(|&p| !exists(p)));

    let mut list = ProcessList::new();
    list.add(Process::new(sleep_ms, 60_000));
    list.add(Process::new(sleep_ms, 60_000));
    list.start().unwrap();
    list.kill();
    assert_eq!(list.join().unwrap(), [Some(-9), Some(-9)]);
}

#[test]
fn starting_twice_or_joining_unstarted_is_a_clear_error() {
    let mut p = Process::new(sleep_ms, 1);
    assert!(matches!(p.join(), Err(Error::Misuse(m)) if m.contains("not running")));
    p.start().unwrap();
    assert!(matches!(p.start(), Err(Error::Misuse(m)) if m.contains("already started")));
    assert_eq!(p.join().unwrap(), 1);
}

/// Forks a copy of itself that sleeps 15 s holding the process's socket, then returns.
#[spychro::job]
fn fork_and_return(x: u64) -> (u64, u32) {
    // SAFETY: the copy only sleeps and exits.
    let copy = unsafe { libc::fork() };
    if copy == 0 {
        std::thread::sleep(Duration::from_secs(15));
        // SAFETY: ends the copy without running anything of the process's.
        unsafe { libc::_exit(0) };
    }
    (x, copy as u32)
}

#[test]
fn a_lingering_forked_copy_does_not_delay_join() {
    let mut p = Process::new(fork_and_return, 5);
    p.start().unwrap();
    let started = Instant::now();
    let (x, copy) = p.join().unwrap();
    assert_eq!(x, 5);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "join waited {:?} for the copy",
        started.elapsed()
    );
    // The copy was in the process's group: it ended with it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while suite::alive(copy) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!suite::alive(copy), "the copy {copy} outlived its process");
}

#[test]
fn a_process_that_exits_says_it_ended_before_returning() {
    let mut p = Process::new(exit_with, 0).name("quitter");
    p.start().unwrap();
    let err = p.join().unwrap_err().to_string();
    assert!(err.contains("process quitter (pid "), "{err}");
    assert!(
        err.contains("ended with exit code 0 while its function ran, before returning a result"),
        "{err}"
    );
    assert!(err.contains("std::process::exit"), "{err}");
    assert!(!err.contains("idle"), "{err}");
    assert_eq!(p.exit_code(), Some(0));
}

#[test]
fn joining_after_join_timeout_took_the_value_is_a_clear_error() {
    let mut p = Process::new(sleep_ms, 1);
    p.start().unwrap();
    assert_eq!(p.join_timeout(Duration::from_secs(20)).unwrap(), Some(1));
    match p.join() {
        Err(Error::Misuse(m)) => assert!(m.contains("joined already"), "{m}"),
        other => panic!("expected a misuse error, got {other:?}"),
    }
    assert_eq!(p.exit_code(), Some(0));
}

#[test]
fn is_alive_and_exit_code_need_no_mut_and_join_all_keeps_values_and_failures() {
    let mut list = ProcessList::new();
    list.add(Process::new(sleep_ms, 200).name("napper"));
    list.add(Process::new(exit_with, 4).name("four"));
    list.start().unwrap();
    let shared: &ProcessList = &list;
    assert!(shared.is_alive());
    let joined = list.join_all();
    assert_eq!(joined[0].name(), "napper");
    assert_eq!(joined[0].exit_code(), Some(0));
    assert_eq!(joined[1].exit_code(), Some(4));
    assert!(joined[1].error().is_some());
    let mut joined = joined.into_iter();
    assert_eq!(joined.next().unwrap().value::<u64>().unwrap(), 200);
    assert!(!list.is_alive());
}

#[test]
fn a_process_has_its_own_start_timeout() {
    let mut p = Process::new(sleep_ms, 1).start_timeout(Duration::from_secs(5));
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 1);
}
