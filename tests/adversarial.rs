//! Jobs that misbehave around their items rather than in them: an output whose `Serialize`
//! panics or whose `Drop` blocks or panics, an item whose `Deserialize` panics, a job that closes the
//! worker's descriptors, forks a copy that lingers, sends a message above the frame limit, or
//! blocks on a caller that is busy in a handler. Each is one item's clear failure (or no
//! failure at all), the rest are delivered, and nothing hangs or runs again and again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use spychro::{Ctx, FailureKind, Job};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spychro-adv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Records that item `x` ran (once per run, in any process).
fn record_run(dir: &Path, x: u32) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::fs::write(dir.join(format!("{x}-{}-{nanos}", std::process::id())), b"").unwrap();
}

/// How many times item `x` ran.
fn runs_of(dir: &Path, x: u32) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{x}-"))
        })
        .count()
}

/// An output whose `Serialize` panics for 7.
#[derive(Debug, Deserialize, PartialEq)]
struct Grenade(u32);

impl Serialize for Grenade {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 7 {
            panic!("grenade {} went off", self.0);
        }
        s.serialize_newtype_struct("Grenade", &self.0)
    }
}

#[spychro::job]
fn throw(x: u32, dir: &Path) -> Grenade {
    record_run(dir, x);
    Grenade(x)
}

#[test]
fn an_output_whose_serialize_panics_fails_once_and_the_rest_are_delivered() {
    let dir = fresh_dir("serialize");
    let outcomes = Job::new(throw, 0..40u32)
        .args(dir.clone())
        .processes(2)
        .retries(0)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    assert_eq!(outcomes.len(), 40);
    for (i, o) in outcomes.iter().enumerate() {
        if i == 7 {
            let f = o.as_ref().unwrap_err();
            assert_eq!(f.index(), 7);
            assert!(
                matches!(f.kind(), FailureKind::SerializeOutput { message } if message.contains("grenade 7 went off")),
                "{f}"
            );
        } else {
            assert_eq!(o.as_ref().unwrap(), &Grenade(i as u32));
        }
    }
    assert_eq!(runs_of(&dir, 7), 1, "item 7 ran once");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Closes every descriptor above stderr (the worker's socket among them) for item 5.
#[spychro::job]
fn close_everything(x: u32, dir: &Path) -> u32 {
    record_run(dir, x);
    if x == 5 {
        for fd in 3..1024 {
            // SAFETY: none needed for correctness here: closing descriptors this job does not
            // own is exactly the misbehaviour under test.
            unsafe { libc::close(fd) };
        }
    }
    x
}

#[test]
fn a_job_that_closes_the_workers_socket_fails_once_named_and_the_rest_are_delivered() {
    let dir = fresh_dir("close");
    let started = Instant::now();
    let outcomes = Job::new(close_everything, 0..40u32)
        .args(dir.clone())
        .processes(2)
        .retries(0)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    for (i, o) in outcomes.iter().enumerate() {
        if i == 5 {
            let f = o.as_ref().unwrap_err();
            assert!(matches!(f.kind(), FailureKind::Crashed { .. }), "{f}");
            assert!(f.message().contains("socket"), "{f}");
        } else {
            assert_eq!(o.as_ref().ok(), Some(&(i as u32)), "item {i}");
        }
    }
    // Once in its batch, and once more alone to tell it from the items whose outputs were
    // waiting with it; never again and again.
    assert!(
        runs_of(&dir, 5) <= 2,
        "item 5 ran {} times",
        runs_of(&dir, 5)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An output whose `Drop` blocks for a minute when it holds 3.
#[derive(Debug, Serialize, Deserialize)]
struct Sticky(u32);

impl Drop for Sticky {
    fn drop(&mut self) {
        if self.0 == 3 && spychro::current_process().name != "MainProcess" {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}

#[spychro::job]
fn sticky(x: u32) -> Sticky {
    Sticky(x)
}

#[test]
fn a_timeout_covers_the_outputs_drop() {
    let started = Instant::now();
    let outcomes = Job::new(sticky, 0..8u32)
        .processes(2)
        .timeout(Duration::from_millis(700))
        .keep_going()
        .run_multi_processed()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let f = outcomes[3].as_ref().unwrap_err();
    assert!(matches!(f.kind(), FailureKind::TimedOut { .. }), "{f}");
    assert!(f.message().contains("after the job returned"), "{f}");
    for (i, o) in outcomes.iter().enumerate().filter(|(i, _)| *i != 3) {
        assert_eq!(o.as_ref().unwrap().0, i as u32);
    }
}

/// An item whose `Deserialize` panics for 4 (only where it is decoded: in the worker, and in
/// the caller when it describes a failed item).
#[derive(Debug, Serialize)]
struct Mine(u32);

impl<'de> Deserialize<'de> for Mine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let x = u32::deserialize(d)?;
        if x == 4 {
            panic!("mine {x} went off");
        }
        Ok(Mine(x))
    }
}

#[spychro::job]
fn step_on(m: Mine) -> u32 {
    m.0
}

#[test]
fn an_item_whose_deserialize_panics_fails_with_the_message_and_the_caller_does_not_panic() {
    let outcomes = Job::new(step_on, (0..10).map(Mine))
        .processes(2)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    let f = outcomes[4].as_ref().unwrap_err();
    assert!(
        matches!(f.kind(), FailureKind::DeserializeItem { message } if message.contains("mine 4 went off")),
        "{f}"
    );
    for (i, o) in outcomes.iter().enumerate().filter(|(i, _)| *i != 4) {
        assert_eq!(o.as_ref().ok(), Some(&(i as u32)));
    }
}

/// An output whose `Drop` panics when it holds a multiple of 10.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Brittle(u32);

impl Drop for Brittle {
    fn drop(&mut self) {
        if self.0.is_multiple_of(10) && spychro::current_process().name != "MainProcess" {
            panic!("brittle {} broke", self.0);
        }
    }
}

/// A step of an item panics for some items of one batch: the item's `Deserialize` (4), the
/// job (7, 17, 27, 37) and the output's `Drop` (0, 10, 20, 30). (A `Serialize` that panics
/// is `Grenade`'s test above.)
#[spychro::job]
fn all_steps(m: Mine) -> Brittle {
    if m.0 % 10 == 7 {
        panic!("job {} gave up", m.0);
    }
    Brittle(m.0)
}

/// One batch of 40 items where items panic at every step: each fails alone with what
/// panicked, and every other item of the batch is delivered.
#[test]
fn panics_at_every_step_of_one_batch_fail_their_items_alone() {
    let outcomes = Job::new(all_steps, (0..40).map(Mine))
        .processes(1)
        .chunk_size(40)
        .keep_going()
        .run_multi_processed()
        .unwrap();
    assert_eq!(outcomes.len(), 40);
    for (i, o) in outcomes.iter().enumerate() {
        let i = i as u32;
        match o {
            Ok(b) => {
                assert!(
                    i != 4 && i % 10 != 7 && !i.is_multiple_of(10),
                    "item {i} succeeded"
                );
                assert_eq!(b.0, i);
                // Dropped here, in the caller: it does not panic.
            }
            Err(f) => {
                let text = f.to_string();
                match i {
                    4 => assert!(
                        matches!(f.kind(), FailureKind::DeserializeItem { message } if message.contains("mine 4 went off")),
                        "{text}"
                    ),
                    _ if i % 10 == 7 => assert!(
                        matches!(f.kind(), FailureKind::Panicked { message, .. } if message == &format!("job {i} gave up")),
                        "{text}"
                    ),
                    _ if i.is_multiple_of(10) => assert!(
                        matches!(f.kind(), FailureKind::Panicked { message, .. } if message.contains(&format!("dropping the job's output panicked: brittle {i} broke"))),
                        "{text}"
                    ),
                    _ => panic!("item {i} failed: {text}"),
                }
            }
        }
    }
}

/// Item 2 forks a copy of the worker that sleeps 15 s holding the socket (and writes its pid),
/// then aborts the worker.
#[spychro::job]
fn fork_then_abort(x: u32, dir: &Path) -> u32 {
    if x == 2 {
        // SAFETY: the copy only sleeps and exits; it touches no lock another thread may hold
        // (write and sleep are plain system calls).
        match unsafe { libc::fork() } {
            0 => {
                let _ = std::fs::write(dir.join("copy"), std::process::id().to_string());
                std::thread::sleep(Duration::from_secs(15));
                // SAFETY: ends the copy without running anything of the worker's.
                unsafe { libc::_exit(0) };
            }
            _ => {
                std::thread::sleep(Duration::from_millis(100));
                std::process::abort();
            }
        }
    }
    x
}

#[test]
fn a_crash_is_seen_at_once_even_when_a_forked_copy_holds_the_socket() {
    let dir = fresh_dir("fork");
    let started = Instant::now();
    let outcomes = Job::new(fork_then_abort, 0..6u32)
        .args(dir.clone())
        .processes(2)
        .timeout(Duration::from_secs(30))
        .keep_going()
        .run_multi_processed()
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "reported after {took:?}");
    let f = outcomes[2].as_ref().unwrap_err();
    assert!(
        matches!(
            f.kind(),
            FailureKind::Crashed {
                status: spychro::ExitStatus::Signal(6),
                ..
            }
        ),
        "{f}"
    );
    let copy: u32 = std::fs::read_to_string(dir.join("copy"))
        .unwrap()
        .parse()
        .unwrap();
    // The copy was in the worker's process group: it ended with it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while suite::alive(copy) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !suite::alive(copy),
        "the forked copy {copy} is still running"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 1 sends a message above the 1 GiB frame limit.
#[spychro::job]
fn shout(x: u32, ctx: &Ctx<Vec<u8>>) -> u32 {
    if x == 1 {
        ctx.send(vec![7u8; (1 << 30) + (1 << 20)]);
    } else {
        ctx.send(vec![x as u8; 10]);
    }
    x
}

#[test]
fn a_message_above_the_frame_limit_fails_its_item_and_the_others_go_on() {
    let mut got = Vec::new();
    let outcomes = Job::new(shout, 0..4u32)
        .processes(2)
        .keep_going()
        .on_message(|_, m: Vec<u8>| got.push(m.len()))
        .run_multi_processed()
        .unwrap();
    let f = outcomes[1].as_ref().unwrap_err();
    assert!(
        f.message().contains("Ctx::send") && f.message().contains("limit"),
        "{f}"
    );
    for i in [0usize, 2, 3] {
        assert_eq!(outcomes[i].as_ref().ok(), Some(&(i as u32)));
    }
    assert_eq!(got, [10, 10, 10]);
}

/// Sends a lot while the caller's handler is busy: the worker blocks on a full socket.
#[spychro::job]
fn chatter(x: u32, ctx: &Ctx<Vec<u8>>) -> u32 {
    for _ in 0..400 {
        ctx.send(vec![x as u8; 4096]);
    }
    x
}

#[test]
fn time_spent_waiting_for_a_busy_caller_is_not_the_items() {
    let mut first = true;
    let started = Instant::now();
    let out = Job::new(chatter, 0..2u32)
        .processes(1)
        .timeout(Duration::from_secs(1))
        .on_message(|_, _m: Vec<u8>| {
            if std::mem::take(&mut first) {
                std::thread::sleep(Duration::from_secs(3));
            }
        })
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, [0, 1]);
    assert!(started.elapsed() >= Duration::from_secs(3));
}
