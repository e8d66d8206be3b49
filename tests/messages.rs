//! Messages, logs, panic reports and progress from jobs reach the caller's handlers while the
//! job runs: in order, before the item's output, without deadlock, and the same way in every
//! mode.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use spychro::{Ctx, Error, Job};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Step {
    item: u32,
    seq: u32,
}

/// Sends `x % 7 + 1` numbered messages, then returns `x`.
#[spychro::job]
fn stepper(x: u32, ctx: &Ctx<Step>) -> u32 {
    for seq in 0..x % 7 + 1 {
        ctx.send(Step { item: x, seq });
    }
    x
}

#[test]
fn messages_arrive_in_order_and_before_their_item_output() {
    let seen: RefCell<Vec<(u32, Step)>> = RefCell::new(Vec::new());
    let results = Job::new(stepper, 0..300u32)
        .processes(3)
        .on_message(|pid, step: Step| seen.borrow_mut().push((pid, step)))
        .stream_multi_processed()
        .unwrap();
    let mut delivered = 0;
    for out in results {
        let x = out.unwrap();
        // Every message of this item was handled before its output got here.
        let n = seen.borrow().iter().filter(|(_, s)| s.item == x).count() as u32;
        assert_eq!(n, x % 7 + 1, "item {x}");
        delivered += 1;
    }
    assert_eq!(delivered, 300);
    let seen = seen.into_inner();
    assert_eq!(
        seen.len(),
        (0..300u32).map(|x| x as usize % 7 + 1).sum::<usize>()
    );
    // Per item, in the order sent, and all from the one worker that ran it.
    let mut per_item: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
    for (pid, s) in &seen {
        per_item.entry(s.item).or_default().push((*pid, s.seq));
    }
    for (item, msgs) in per_item {
        let seqs: Vec<u32> = msgs.iter().map(|m| m.1).collect();
        assert_eq!(seqs, (0..item % 7 + 1).collect::<Vec<_>>(), "item {item}");
        assert!(msgs.iter().all(|m| m.0 == msgs[0].0));
        assert_ne!(msgs[0].0, std::process::id());
    }
}

#[test]
fn the_same_messages_reach_the_handler_in_every_mode() {
    fn collect(mode: &str) -> Vec<Step> {
        let mut got = Vec::new();
        let job = Job::new(stepper, 0..40u32).on_message(|_, s: Step| got.push(s));
        match mode {
            "single" => job.run_single_processed().unwrap(),
            "threads" => job.processes(3).run_multi_threaded().unwrap(),
            _ => job.processes(3).run_multi_processed().unwrap(),
        };
        // Items interleave across workers; within an item the order is kept.
        got.sort_by_key(|s| s.item);
        got
    }
    let single = collect("single");
    assert_eq!(
        single.len(),
        (0..40u32).map(|x| x as usize % 7 + 1).sum::<usize>()
    );
    assert_eq!(collect("threads"), single);
    assert_eq!(collect("processes"), single);
}

#[spychro::job]
fn log_many(n: u32) -> u32 {
    for i in 0..n {
        log::info!("record {i}");
    }
    log::debug!("not sent at info level");
    n
}

#[test]
fn a_hundred_thousand_log_records_do_not_deadlock() {
    let mut count = 0u32;
    let mut last = None;
    let mut items = std::collections::HashSet::new();
    let out = Job::new(log_many, [100_000u32, 10])
        .processes(2)
        .on_log(|r| {
            count += 1;
            items.insert(r.item);
            assert_eq!(r.level, log::Level::Info);
            assert_eq!(r.target, "messages");
            if r.item == Some(0) {
                last = Some(r.message.clone());
            }
        })
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, [100_000, 10]);
    assert_eq!(count, 100_010);
    assert_eq!(last.as_deref(), Some("record 99999"));
    assert_eq!(items, [Some(0), Some(1)].into_iter().collect());
}

#[spychro::job]
fn fine_grained(n: u32, ctx: &Ctx) -> u32 {
    for i in 1..=n {
        ctx.progress(i as f64 / n as f64);
    }
    n
}

#[test]
fn progress_inside_an_item_reaches_the_handler() {
    let mut last: HashMap<u64, f64> = HashMap::new();
    let mut pids = std::collections::HashSet::new();
    Job::new(fine_grained, [4u32, 8, 2])
        .processes(2)
        .progress(true)
        .on_progress(|pid, item, f| {
            pids.insert(pid);
            let before = last.insert(item, f).unwrap_or(0.0);
            assert!(f >= before, "progress went back for item {item}");
        })
        .run_multi_processed()
        .unwrap();
    assert_eq!(last.len(), 3);
    assert!(last.values().all(|&f| f == 1.0));
    assert!(!pids.contains(&std::process::id()));
}

#[spychro::job]
fn panic_at(x: u32, bad: u32) -> u32 {
    assert_ne!(x, bad, "bad item");
    x
}

#[test]
fn panic_reports_name_the_item_and_location() {
    let mut reports = Vec::new();
    let outcomes = Job::new(panic_at, 0..20u32)
        .args(13)
        .processes(2)
        .keep_going()
        .on_panic(|r| reports.push(r.clone()))
        .run_multi_processed()
        .unwrap();
    assert_eq!(outcomes.iter().filter(|o| o.is_err()).count(), 1);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r.index, 13);
    assert!(r.message.contains("bad item"), "{}", r.message);
    assert!(
        r.location
            .as_deref()
            .unwrap()
            .starts_with("tests/messages.rs:"),
        "{r:?}"
    );
    assert_ne!(r.pid, std::process::id());
    assert!(r.to_string().starts_with("item 13 panicked in process"));
}

#[test]
fn a_handler_that_panics_fails_the_job_and_stops_the_workers() {
    let dir = std::env::temp_dir().join(format!("spychro-handler-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let err = Job::new(stepper_recording, 0..200u32)
        .args(dir.clone())
        .processes(2)
        .on_message(|_, s: Step| {
            if s.item == 50 {
                panic!("handler refuses item 50");
            }
        })
        .run_multi_processed()
        .unwrap_err();
    match &err {
        Error::Handler { handler, message } => {
            assert_eq!(*handler, "on_message");
            assert_eq!(message, "handler refuses item 50");
        }
        other => panic!("not a handler error: {other}"),
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let pid: u32 = entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .parse()
            .unwrap();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "worker {pid} outlived the job"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[spychro::job]
fn stepper_recording(x: u32, dir: &Path, ctx: &Ctx<Step>) -> u32 {
    std::fs::write(dir.join(std::process::id().to_string()), b"").unwrap();
    ctx.send(Step { item: x, seq: 0 });
    x
}

#[test]
fn a_message_type_that_cannot_cross_fails_its_item() {
    #[derive(Debug)]
    struct Never;
    impl Serialize for Never {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("never serializes"))
        }
    }
    impl<'de> Deserialize<'de> for Never {
        fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            Ok(Never)
        }
    }
    #[spychro::job]
    fn send_never(x: u32, ctx: &Ctx<Never>) -> u32 {
        if x == 2 {
            ctx.send(Never);
        }
        x
    }
    for err in [
        Job::new(send_never, 0..5u32)
            .processes(2)
            .run_multi_processed()
            .unwrap_err(),
        Job::new(send_never, 0..5u32)
            .run_single_processed()
            .unwrap_err(),
    ] {
        let f = err.item().unwrap();
        assert_eq!(f.index(), 2);
        assert!(f.message().contains("never serializes"), "{f}");
    }
}
