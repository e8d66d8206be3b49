//! A fork server: workers copied from it are this process's children, take the caller's
//! environment and directory at each start, crash and are attributed like executed ones, and
//! nothing is left behind when it is dropped or when its caller dies.
//!
//! The server serves the whole process, so these tests take turns (`SERIAL`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use spychro::{ExitStatus, FailureKind, ForkServer, Job, Process};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const PROBE: &str = env!("CARGO_BIN_EXE_spychro-probe");

/// Where a worker came from, as it sees itself: its pid, its parent, and whether its
/// process started as a fork server (the environment the kernel keeps from a process's
/// `execve`, which a copy shares with its server).
#[spychro::job]
fn origin(_: u32) -> (u32, u32, bool) {
    let environ = std::fs::read("/proc/self/environ").unwrap_or_default();
    let copied = environ
        .split(|&b| b == 0)
        .any(|e| e.starts_with(b"SPYCHRO_FORK_SERVER="));
    (
        std::process::id(),
        std::os::unix::process::parent_id(),
        copied,
    )
}

#[test]
fn workers_are_copied_from_the_server_as_children_of_the_caller() {
    let _turn = serial();
    let server = ForkServer::start().unwrap();
    let me = std::process::id();
    assert!(suite::alive(server.pid()));
    assert_eq!(suite::children(me), vec![server.pid()]);
    let out = Job::new(origin, 0..8u32)
        .processes(2)
        .chunk_size(1)
        .run_multi_processed()
        .unwrap();
    for &(pid, parent, copied) in &out {
        assert!(copied, "worker {pid} was not copied from the server");
        assert_eq!(parent, me, "worker {pid}'s parent");
        assert_ne!(pid, server.pid());
    }
    let mut pids: Vec<u32> = out.iter().map(|o| o.0).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 2, "{out:?}");
    // The workers were reaped by this process: only the server is left...
    assert_eq!(suite::children(me), vec![server.pid()]);
    let server_pid = server.pid();
    drop(server);
    // ...and it is gone (reaped) once dropped.
    assert!(!suite::alive(server_pid));
    assert_eq!(suite::children(me), Vec::<u32>::new());
    // Without a server, workers are executed again.
    let out = Job::new(origin, 0..2u32)
        .processes(1)
        .run_multi_processed()
        .unwrap();
    assert!(out.iter().all(|o| !o.2 && o.1 == me), "{out:?}");
}

#[test]
fn a_large_pool_is_copied_a_few_requests_at_a_time() {
    let _turn = serial();
    let server = ForkServer::start().unwrap();
    let me = std::process::id();
    let pool = spychro::Pool::builder().processes(20).start().unwrap();
    let pids = pool.pids();
    assert_eq!(pids.len(), 20);
    for &pid in &pids {
        // Read from outside: the environment the kernel keeps from the process's start.
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(
            environ
                .split(|&b| b == 0)
                .any(|e| e.starts_with(b"SPYCHRO_FORK_SERVER=")),
            "worker {pid} was not copied from the server"
        );
    }
    let mut children = suite::children(me);
    children.retain(|c| *c != server.pid());
    let mut sorted = pids.clone();
    sorted.sort_unstable();
    assert_eq!(children, sorted);
    drop(pool);
    drop(server);
    assert_eq!(suite::children(me), Vec::<u32>::new());
}

#[test]
fn only_one_server_at_a_time() {
    let _turn = serial();
    let first = ForkServer::start().unwrap();
    let err = ForkServer::start().unwrap_err();
    assert!(matches!(err, spychro::Error::Misuse(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("a fork server (pid {}) already", first.pid())),
        "{err}"
    );
    drop(first);
    let second = ForkServer::start().unwrap();
    assert!(suite::alive(second.pid()));
}

/// The variable `SPYCHRO_TEST_MARK` and the working directory, as a worker sees them.
#[spychro::job]
fn surroundings(_: u32) -> (Option<String>, String) {
    (
        std::env::var("SPYCHRO_TEST_MARK").ok(),
        std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
    )
}

#[test]
fn workers_take_the_callers_environment_and_directory_at_each_start() {
    let _turn = serial();
    let server = ForkServer::start().unwrap();
    let before = std::env::current_dir().unwrap();
    let dir = std::env::temp_dir().join(format!("spychro-fs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    // Set after the server started: the copies must see them anyway.
    // SAFETY: the tests of this file take turns; no other thread reads the environment now.
    unsafe { std::env::set_var("SPYCHRO_TEST_MARK", "first") };
    std::env::set_current_dir(&dir).unwrap();
    let first = Job::new(surroundings, 0..2u32)
        .processes(1)
        .run_multi_processed();
    // SAFETY: as above.
    unsafe { std::env::set_var("SPYCHRO_TEST_MARK", "second") };
    std::env::set_current_dir(&before).unwrap();
    let second = Job::new(surroundings, 0..2u32)
        .processes(1)
        .run_multi_processed();
    // SAFETY: as above.
    unsafe { std::env::remove_var("SPYCHRO_TEST_MARK") };
    let third = Job::new(surroundings, 0..1u32)
        .processes(1)
        .run_multi_processed();
    drop(server);
    let _ = std::fs::remove_dir(&dir);
    let dir = dir.display().to_string();
    let before = before.display().to_string();
    assert!(
        first
            .unwrap()
            .iter()
            .all(|s| s.0.as_deref() == Some("first") && s.1 == dir),
        "{dir}"
    );
    assert!(
        second
            .unwrap()
            .iter()
            .all(|s| s.0.as_deref() == Some("second") && s.1 == before)
    );
    assert_eq!(third.unwrap(), vec![(None, before)]);
}

/// Aborts on 3; returns its pid otherwise.
#[spychro::job]
fn abort_on_three(x: u32) -> u32 {
    if x == 3 {
        std::process::abort();
    }
    std::process::id()
}

#[test]
fn a_copied_worker_that_crashes_is_blamed_and_replaced_by_another_copy() {
    let _turn = serial();
    let server = ForkServer::start().unwrap();
    let out = Job::new(abort_on_three, 0..6u32)
        .processes(1)
        .chunk_size(1)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    drop(server);
    for (i, o) in out.iter().enumerate() {
        if i == 3 {
            let f = o.as_ref().unwrap_err();
            assert_eq!(f.index(), 3);
            match f.kind() {
                FailureKind::Crashed { status, .. } => {
                    assert_eq!(*status, ExitStatus::Signal(libc::SIGABRT))
                }
                other => panic!("not a crash: {other:?}"),
            }
        } else {
            assert!(o.is_ok(), "item {i}: {o:?}");
        }
    }
    // The items after it ran in another process (items finished just before the crash may
    // have run again there: at least once).
    let crashed = out[3].as_ref().unwrap_err().pid();
    assert!(out[4..].iter().all(|o| *o.as_ref().unwrap() != crashed));
}

/// Allocates and touches `mib` MiB.
#[spychro::job]
fn allocate_mib(mib: usize) -> usize {
    let v = vec![1u8; mib << 20];
    v.iter().map(|&b| b as usize).sum::<usize>() >> 20
}

#[test]
fn a_copied_worker_gets_its_memory_limit() {
    let _turn = serial();
    let server = ForkServer::start().unwrap();
    let out = Job::new(allocate_mib, [1usize, 4096, 2])
        .processes(1)
        .memory_limit(1 << 30)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    drop(server);
    assert_eq!(out[0].as_ref().ok(), Some(&1));
    assert_eq!(out[2].as_ref().ok(), Some(&2));
    match out[1].as_ref().unwrap_err().kind() {
        FailureKind::OutOfMemory { limit, .. } => assert_eq!(*limit, 1 << 30),
        other => panic!("not out of memory: {other:?}"),
    }
}

#[test]
fn a_process_is_copied_from_the_server_too() {
    let _turn = serial();
    let server = ForkServer::start().unwrap();
    let me = std::process::id();
    let mut process = Process::new(origin, 7u32);
    process.start().unwrap();
    let (pid, parent, copied) = process.join().unwrap();
    drop(server);
    assert!(copied);
    assert_eq!(parent, me);
    assert!(!suite::alive(pid));
}

#[test]
fn a_killed_server_is_passed_over_and_workers_are_executed() {
    let _turn = serial();
    let server = ForkServer::start().unwrap();
    let pid = server.pid();
    // SAFETY: kill takes a pid and a signal; the server is our unreaped child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let out = Job::new(origin, 0..4u32)
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert!(out.iter().all(|o| !o.2), "{out:?}");
    drop(server);
    assert_eq!(suite::children(std::process::id()), Vec::<u32>::new());
}

#[test]
fn copied_workers_output_is_forwarded_and_nothing_is_left() {
    let _turn = serial();
    let out = std::process::Command::new(PROBE)
        .arg("fork-server-output")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let workers: Vec<u32> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("workers "))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    for (x, pid) in (1..=2).zip(&workers) {
        assert!(
            stdout.contains(&format!("[worker {pid}] shout {x}\n")),
            "{stdout}"
        );
        assert!(
            stderr.contains(&format!("[worker {pid}] whisper {x}\n")),
            "{stderr}"
        );
    }
    assert!(stdout.contains("children: []\n"), "{stdout}");
}

#[test]
fn the_server_ends_when_its_caller_is_killed() {
    use std::io::BufRead;
    let _turn = serial();
    let mut probe = std::process::Command::new(PROBE)
        .arg("fork-server-orphan")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(probe.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "server PID squares [1, 4, 9]"
    let rest = line
        .strip_prefix("server ")
        .unwrap_or_else(|| panic!("{line}"));
    let (pid, squares) = rest.split_once(' ').unwrap();
    assert_eq!(squares.trim(), "squares [1, 4, 9]");
    let server: u32 = pid.parse().unwrap();
    assert!(suite::alive(server));
    probe.kill().unwrap();
    probe.wait().unwrap();
    // It sees its socket end and exits; it is not this process's child (the init process or
    // a subreaper reaps it), so its end is watched for.
    let deadline = Instant::now() + Duration::from_secs(10);
    while suite::alive(server) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        !suite::alive(server),
        "the fork server {server} outlived its caller"
    );
}

#[test]
fn a_fork_of_the_caller_executes_its_workers_and_leaves_the_server_to_the_caller() {
    let _turn = serial();
    let out = std::process::Command::new(PROBE)
        .arg("fork-server-fork")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("child: parents ok true copied [false, false]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("child exited 0\n"), "{stdout}");
    assert!(
        stdout.contains("parent: parents ok true copied [true, true]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("server alive true\n"), "{stdout}");
}

#[test]
fn a_closed_stdout_of_the_caller_is_dev_null_in_copied_and_executed_workers() {
    let _turn = serial();
    for (how, copied) in [("fork-server", true), ("executed", false)] {
        let out = std::process::Command::new(PROBE)
            .args(["closed-stdout", how])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let want = format!(r#"ran: copied [({copied}, "/dev/null"), ({copied}, "/dev/null")]"#);
        assert!(stderr.contains(&want), "{how}: {stderr}");
    }
}

#[test]
fn the_server_does_not_hold_the_callers_stdout() {
    use std::io::Read;
    let _turn = serial();
    let mut probe = std::process::Command::new(PROBE)
        .arg("fork-server-release")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = probe.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    // The pipe ends while the probe (and its server) still run.
    let text = rx.recv_timeout(Duration::from_secs(20));
    let running = probe.try_wait().unwrap().is_none();
    probe.kill().unwrap();
    probe.wait().unwrap();
    let text = text.expect("the caller's stdout stayed open after it let go of it");
    assert!(text.contains("squares [1, 4]"), "{text}");
    assert!(text.contains("inherited pipe ended: true\n"), "{text}");
    assert!(running);
}
