//! Faults inside items: crashes of every kind, a worker killed from outside, items that never
//! end, memory exhaustion. Each becomes a clear failure of exactly that item, the worker is
//! replaced, and with `keep_going` every other item still completes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use spychro::{Error, ExitStatus, FailureKind, ItemError, Job};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spychro-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Returns `(x, pid)`, except for the items it is told to break.
#[spychro::job]
fn fragile(x: u32) -> (u32, u32) {
    match x {
        5 => std::process::abort(),
        9 => std::process::exit(3),
        // SAFETY: none; this writes through a null pointer on purpose, to crash the worker.
        13 => unsafe { std::ptr::null_mut::<u8>().write_volatile(1) },
        _ => {}
    }
    (x, std::process::id())
}

fn crash_status(o: &Result<(u32, u32), ItemError>) -> ExitStatus {
    match o.as_ref().unwrap_err().kind() {
        FailureKind::Crashed { status, .. } => *status,
        other => panic!("not a crash: {other:?}"),
    }
}

#[test]
fn crashes_fail_their_item_and_the_rest_complete() {
    let outcomes = Job::new(fragile, 0..30u32)
        .processes(2)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    assert_eq!(outcomes.len(), 30);
    assert_eq!(crash_status(&outcomes[5]), ExitStatus::Signal(6));
    assert_eq!(crash_status(&outcomes[9]), ExitStatus::Code(3));
    assert_eq!(crash_status(&outcomes[13]), ExitStatus::Signal(11));
    let f = outcomes[13].as_ref().unwrap_err();
    assert_eq!(f.index(), 13);
    assert!(
        f.to_string()
            .contains("died with signal 11 (SIGSEGV) while running it"),
        "{f}"
    );
    let mut pids = HashSet::new();
    for (i, o) in outcomes.iter().enumerate() {
        if [5, 9, 13].contains(&i) {
            continue;
        }
        let (x, pid) = o.as_ref().unwrap();
        assert_eq!(*x as usize, i);
        pids.insert(*pid);
    }
    // Three crashes: at least the replacements served the rest, and every worker is gone.
    assert!(pids.len() >= 2, "{pids:?}");
    for pid in pids {
        assert!(gone(pid), "worker {pid} outlived the run");
    }
}

/// One item per batch: a worker holds quick items' outputs back for a moment while the next
/// batch waits (see `worker/held.rs`). A crash still fails exactly its own item, and the
/// outputs that were held when the worker died come from the items running again elsewhere.
#[test]
fn crashes_fail_exactly_their_item_when_outputs_were_held_back() {
    let outcomes = Job::new(fragile, 0..300u32)
        .processes(2)
        .chunk_size(1)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    assert_eq!(outcomes.len(), 300);
    assert_eq!(crash_status(&outcomes[5]), ExitStatus::Signal(6));
    assert_eq!(crash_status(&outcomes[9]), ExitStatus::Code(3));
    assert_eq!(crash_status(&outcomes[13]), ExitStatus::Signal(11));
    for (i, o) in outcomes.iter().enumerate() {
        if ![5, 9, 13].contains(&i) {
            assert_eq!(
                o.as_ref().map(|&(x, _)| x as usize).ok(),
                Some(i),
                "item {i}"
            );
        }
    }
}

#[test]
fn the_first_crash_stops_the_job_by_default() {
    let err = Job::new(fragile, 0..30u32)
        .processes(2)
        .run_multi_processed()
        .unwrap_err();
    // Whichever planted crash a worker reached first stops the job.
    let f = err.item().unwrap();
    let expected = match f.index() {
        5 => ExitStatus::Signal(6),
        9 => ExitStatus::Code(3),
        13 => ExitStatus::Signal(11),
        other => panic!("item {other} did not crash"),
    };
    assert!(
        matches!(f.kind(), FailureKind::Crashed { status, .. } if *status == expected),
        "{f}"
    );
}

/// Item `victim` publishes its pid and waits to be killed; the others return their pid.
#[spychro::job]
fn wait_for_killer(x: u32, victim: u32, dir: &Path) -> u32 {
    if x == victim {
        let tmp = dir.join("victim.tmp");
        std::fs::write(&tmp, std::process::id().to_string()).unwrap();
        std::fs::rename(tmp, dir.join("victim")).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    }
    std::process::id()
}

#[test]
fn a_worker_killed_from_outside_fails_its_item_and_is_replaced() {
    let dir = fresh_dir("killed");
    let killer = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let file = dir.join("victim");
            while !file.exists() {
                assert!(Instant::now() < deadline, "the victim never started");
                std::thread::sleep(Duration::from_millis(5));
            }
            let pid = std::fs::read_to_string(file).unwrap();
            let status = std::process::Command::new("kill")
                .args(["-KILL", pid.trim()])
                .status()
                .unwrap();
            assert!(status.success());
            pid.trim().parse::<u32>().unwrap()
        })
    };
    let outcomes = Job::new(wait_for_killer, 0..40u32)
        .args((7, dir.clone()))
        .processes(1)
        .chunk_size(1)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    let victim = killer.join().unwrap();
    let f = outcomes[7].as_ref().unwrap_err();
    assert_eq!(f.pid(), victim);
    assert!(
        matches!(
            f.kind(),
            FailureKind::Crashed {
                status: ExitStatus::Signal(9),
                ..
            }
        ),
        "{f}"
    );
    // One worker: it ran the items before the victim; a single replacement ran the rest. The
    // outputs the victim's worker still held back when it was killed (at most 2 ms of them,
    // `worker/held.rs`) were never answered, so those items ran again on the replacement.
    let before: HashSet<u32> = outcomes[..7].iter().map(|o| *o.as_ref().unwrap()).collect();
    let after: HashSet<u32> = outcomes[8..].iter().map(|o| *o.as_ref().unwrap()).collect();
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(!after.contains(&victim));
    assert!(
        before.is_subset(&HashSet::from([victim, *after.iter().next().unwrap()])),
        "{before:?} {after:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[spychro::job]
fn spin_at(x: u32, stuck: u32) -> u32 {
    if x == stuck {
        #[allow(clippy::empty_loop)]
        loop {}
    }
    x
}

#[test]
fn an_item_past_its_timeout_fails_and_its_worker_is_replaced() {
    let limit = Duration::from_millis(400);
    let started = Instant::now();
    let outcomes = Job::new(spin_at, 0..20u32)
        .args(11)
        .processes(2)
        .timeout(limit)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    let took = started.elapsed();
    let f = outcomes[11].as_ref().unwrap_err();
    match f.kind() {
        FailureKind::TimedOut {
            limit: l, elapsed, ..
        } => {
            assert_eq!(*l, limit);
            assert!(*elapsed >= limit, "{elapsed:?}");
            assert!(*elapsed < limit + Duration::from_secs(1), "{elapsed:?}");
        }
        other => panic!("not a timeout: {other:?}"),
    }
    assert!(
        gone(f.pid()),
        "the timed-out worker {} is still there",
        f.pid()
    );
    for (i, o) in outcomes.iter().enumerate() {
        if i != 11 {
            assert_eq!(*o.as_ref().unwrap() as usize, i);
        }
    }
    eprintln!("timeout of {limit:?}: item failed, job done in {took:?}");
    assert!(took < limit + Duration::from_secs(5), "{took:?}");
}

#[test]
fn the_whole_job_stops_at_its_deadline() {
    let started = Instant::now();
    let err = Job::new(spin_at, 0..4u32)
        .args(2)
        .processes(2)
        .deadline(Duration::from_millis(300))
        .run_multi_processed()
        .unwrap_err();
    match err {
        Error::DeadlineExceeded { limit, completed } => {
            assert_eq!(limit, Duration::from_millis(300));
            assert!(completed <= 2, "{completed}");
        }
        other => panic!("not a deadline: {other}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Aborts the first time it sees item `x` (remembered by a marker file), succeeds after.
#[spychro::job]
fn crash_once(x: u32, dir: &Path) -> u32 {
    let marker = dir.join(x.to_string());
    if x % 4 == 1 && !marker.exists() {
        std::fs::write(&marker, b"").unwrap();
        std::process::abort();
    }
    x * 10
}

#[test]
fn retries_run_a_crashed_item_again() {
    let dir = fresh_dir("retries");
    let out = Job::new(crash_once, 0..12u32)
        .args(dir.clone())
        .processes(2)
        .retries(1)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, (0..12).map(|x| x * 10).collect::<Vec<_>>());

    let dir2 = fresh_dir("no-retries");
    let err = Job::new(crash_once, 0..12u32)
        .args(dir2.clone())
        .processes(2)
        .run_multi_processed()
        .unwrap_err();
    // Items 1, 5 and 9 crash on their first run; whichever crashed first stops the job.
    assert_eq!(err.item().unwrap().index() % 4, 1, "{err}");
    for d in [dir, dir2] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[spychro::job]
fn always_abort(_: u32) -> u32 {
    std::process::abort()
}

#[test]
fn retries_give_up_and_say_how_many_times() {
    let err = Job::new(always_abort, [0u32])
        .processes(1)
        .retries(2)
        .run_multi_processed()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("(tried 3 times)"), "{text}");
}

#[spychro::job]
fn pid_of(_: u32) -> u32 {
    std::process::id()
}

#[test]
fn workers_are_recycled_after_their_share_of_items() {
    let pids = Job::new(pid_of, 0..20u32)
        .processes(2)
        .max_items_per_worker(5)
        .run_multi_processed()
        .unwrap();
    let mut per_pid = std::collections::HashMap::new();
    for p in &pids {
        *per_pid.entry(*p).or_insert(0) += 1;
    }
    assert!(per_pid.values().all(|&n| n <= 5), "{per_pid:?}");
    assert!(per_pid.len() >= 4, "{per_pid:?}");
}

#[spychro::job]
fn allocate_mib(mib: usize) -> usize {
    let v = vec![7u8; mib << 20];
    v.iter().step_by(4096).map(|&b| b as usize).sum()
}

#[test]
fn memory_exhaustion_is_reported_as_out_of_memory() {
    let outcomes = Job::new(allocate_mib, [1usize, 8192, 2])
        .processes(1)
        .memory_limit(1 << 30)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
    let f = outcomes[1].as_ref().unwrap_err();
    match f.kind() {
        FailureKind::OutOfMemory { limit, message } => {
            assert_eq!(*limit, 1 << 30);
            assert!(
                message.contains("memory allocation of 8589934592 bytes failed"),
                "{message}"
            );
        }
        other => panic!("not out of memory: {other:?}"),
    }
}

#[spychro::job]
fn start_inner_pool(x: u64) -> String {
    match Job::new(pid_of, [1u32]).processes(1).run_multi_processed() {
        Ok(_) => format!("{x}: nested pool ran"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn daemonic_workers_may_not_start_pools_but_non_daemonic_ones_may() {
    let out = Job::new(start_inner_pool, [1u64])
        .processes(1)
        .run_multi_processed()
        .unwrap();
    assert!(
        out[0].starts_with("cannot start processes inside a daemonic worker or process"),
        "{}",
        out[0]
    );
    let out = Job::new(start_inner_pool, [1u64])
        .processes(1)
        .daemon(false)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out[0], "1: nested pool ran");
}

#[spychro::job]
fn odd_or_fail(x: u32) -> Result<u32, String> {
    if x.is_multiple_of(3) {
        Err(format!("{x} is a multiple of 3"))
    } else {
        Ok(x)
    }
}

#[test]
fn keep_going_gives_every_outcome_in_every_mode() {
    let expected: Vec<Result<u32, String>> = (0..50u32)
        .map(|x| {
            if x.is_multiple_of(3) {
                Err(format!("{x} is a multiple of 3"))
            } else {
                Ok(x)
            }
        })
        .collect();
    let simplify = |v: Vec<Result<u32, ItemError>>| -> Vec<Result<u32, String>> {
        v.into_iter()
            .enumerate()
            .map(|(i, o)| {
                o.map_err(|e| {
                    assert_eq!(e.index() as usize, i);
                    e.message().to_owned()
                })
            })
            .collect()
    };
    let mut seen = Vec::new();
    let multi = Job::new(odd_or_fail, 0..50u32)
        .processes(2)
        .keep_going()
        .on_failure(|f| seen.push(f.index()))
        .run_multi_processed()
        .unwrap();
    seen.sort_unstable();
    assert_eq!(seen, (0..50).step_by(3).collect::<Vec<u64>>());
    assert_eq!(simplify(multi), expected);
    let single = Job::new(odd_or_fail, 0..50u32)
        .keep_going()
        .run_single_processed()
        .unwrap();
    assert_eq!(simplify(single), expected);
    let threaded = Job::new(odd_or_fail, 0..50u32)
        .keep_going()
        .run_multi_threaded()
        .unwrap();
    assert_eq!(simplify(threaded), expected);

    // Streams keep going too.
    let errors = Job::new(odd_or_fail, 0..50u32)
        .keep_going()
        .stream_multi_processed()
        .unwrap()
        .filter(|r| matches!(r, Err(Error::Item(_))))
        .count();
    assert_eq!(errors, 17);
}

/// A worker program that runs this test binary, after killing itself (SIGKILL, before the
/// handshake) as `kill_if` (a shell condition) says.
fn wrapper(dir: &Path, kill_if: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let real = std::env::current_exe().unwrap();
    let script = dir.join("worker.sh");
    let d = dir.display();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch {d}/started-$$\nif {kill_if}; then kill -9 $$; fi\nexec {} \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[spychro::job]
fn triple(x: u32) -> u32 {
    x * 3
}

/// `triple`, taking long enough that a replacement worker comes up before the run ends (a
/// worker still starting when a run ends is killed, not waited for).
#[spychro::job]
fn slow_triple(x: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(15));
    x * 3
}

#[test]
fn a_worker_killed_before_its_handshake_is_started_again() {
    let dir = fresh_dir("killed-start");
    let d = dir.display();
    let script = wrapper(&dir, &format!("mkdir {d}/killed 2>/dev/null"));
    let out = Job::new(slow_triple, 0..20u32)
        .processes(2)
        .worker_program(&script)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, (0..20).map(|x| x * 3).collect::<Vec<_>>());
    let started = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("started-")
        })
        .count();
    assert!(
        started >= 3,
        "one worker was killed and another started: {started}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn workers_killed_before_their_handshake_again_and_again_end_the_run_with_what_happened() {
    let dir = fresh_dir("killed-always");
    let script = wrapper(&dir, "true");
    let err = Job::new(triple, 0..4u32)
        .processes(2)
        .worker_program(&script)
        .run_multi_processed()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("was killed by signal 9 (SIGKILL) before its handshake"),
        "{err}"
    );
    assert!(err.contains("workers in a row"), "{err}");
    assert!(
        !err.contains("does not run spychro's worker entry"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Aborts its worker on item 3, once (a marker directory records that it did).
#[spychro::job]
fn crash_on_three(x: u32, marker: PathBuf) -> u32 {
    std::thread::sleep(Duration::from_millis(5));
    if x == 3 && std::fs::create_dir(&marker).is_ok() {
        std::process::abort();
    }
    x * 3
}

#[test]
fn a_worker_still_starting_when_the_run_ends_is_killed_not_waited_for() {
    use std::os::unix::fs::PermissionsExt;
    let dir = fresh_dir("slow-start");
    let d = dir.display();
    let real = std::env::current_exe().unwrap();
    // The worker started in place of the one that crashed sleeps 5 s before it becomes one;
    // the other worker runs the rest.
    let script = dir.join("worker.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ -e {d}/crashed ]; then echo $$ > {d}/slow-pid; sleep 5; fi\n\
             exec {} \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let started = Instant::now();
    let out = Job::new(crash_on_three, 0..40u32)
        .args(dir.join("crashed"))
        .processes(2)
        .keep_going()
        .worker_program(&script)
        .run_multi_processed()
        .unwrap();
    let took = started.elapsed();
    assert!(out[3].is_err(), "{:?}", out[3]);
    for (i, o) in out.iter().enumerate().filter(|(i, _)| *i != 3) {
        assert_eq!(*o.as_ref().unwrap(), i as u32 * 3);
    }
    // (Asked to stop, it would have been waited for 2 s before being killed.)
    assert!(
        took < Duration::from_secs(1),
        "the run waited for the worker still starting: {took:?}"
    );
    let pid: u32 = std::fs::read_to_string(dir.join("slow-pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        gone(pid),
        "the worker still starting ({pid}) outlived the run"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
