//! A cluster job seen from the caller, against a real `nats-server -js` and two real worker
//! hosts per test: `Cluster::stream` reads its input lazily (at most 32 batches out) and
//! hands outputs over in order (or as they finish); dropping a stream, or Ctrl-C in the
//! caller, withdraws the job from the broker (read back through the broker's monitor); the
//! job's handlers are carried back from the hosts (messages, progress, logs, panics,
//! failures, worker exits), and the options that belong to the hosts' pools are refused.
#![cfg(feature = "cluster")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use spychro::cluster::Cluster;
use spychro::{Error, ExitStatus, FailureKind, Job};
use suite::cluster_jobs::{chatter, refuse_multiples, slow_chatter, slow_square, square, tallied};

mod cluster_parts;
use cluster_parts::*;

/// A broker and two hosts of two workers each, and a client connected to it.
fn cluster(name: &str) -> (Broker, [Host; 2], Cluster) {
    let broker = Broker::start(name);
    let hosts = [Host::start(&broker.url(), 2), Host::start(&broker.url(), 2)];
    let cluster = Cluster::connect(&broker.url()).unwrap();
    (broker, hosts, cluster)
}

/// The stream's window: batches out at a time (spychro/src/cluster/caller.rs).
const WINDOW: u64 = 32;

#[test]
fn a_stream_reads_its_input_lazily_and_hands_outputs_over_in_order_or_as_they_finish() {
    let (_broker, _hosts, cluster) = cluster("lazy");
    const N: u64 = 200_000;
    const CHUNK: u64 = 100;
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = pulled.clone();
    let input = (0..N).inspect(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let t = Instant::now();
    let mut outputs = cluster
        .stream(Job::new(square, input).chunk_size(CHUNK as usize))
        .unwrap();
    assert_eq!(
        pulled.load(Ordering::Relaxed),
        0,
        "the input was read before the first output was asked for"
    );
    let first: Vec<u64> = outputs.by_ref().take(10).collect::<Result<_, _>>().unwrap();
    assert_eq!(first, (0..10u64).map(|x| x * x).collect::<Vec<_>>());
    let after_ten = pulled.load(Ordering::Relaxed);
    assert!(
        (CHUNK..=WINDOW * CHUNK + CHUNK).contains(&after_ten),
        "after 10 outputs the stream had read {after_ten} items (at most {} allowed)",
        WINDOW * CHUNK + CHUNK
    );
    let mut sum: u64 = first.iter().sum();
    let mut handed = 10u64;
    let mut most_ahead = 0u64;
    for out in outputs {
        let out = out.unwrap();
        assert_eq!(out, handed * handed, "output {handed} out of order");
        handed += 1;
        sum += out;
        let ahead = pulled.load(Ordering::Relaxed) - handed;
        most_ahead = most_ahead.max(ahead);
        assert!(
            ahead <= WINDOW * CHUNK + CHUNK,
            "{ahead} items read ahead of the {handed} handed over"
        );
    }
    assert_eq!(handed, N);
    assert_eq!(sum, (0..N).map(|x| x * x).sum::<u64>());
    assert_eq!(pulled.load(Ordering::Relaxed), N);
    eprintln!(
        "{N} items in batches of {CHUNK}: {:?}; read {after_ten} after 10 outputs, at most \
         {most_ahead} ahead",
        t.elapsed()
    );

    // As they finish: every index once, with its own output.
    const M: u64 = 20_000;
    let mut seen = vec![false; M as usize];
    let mut in_order = true;
    let mut last = None;
    for out in cluster
        .stream(Job::new(square, 0..M).chunk_size(50))
        .unwrap()
        .unordered()
    {
        let (i, out) = out.unwrap();
        assert_eq!(out, i * i, "item {i}");
        assert!(
            !std::mem::replace(&mut seen[i as usize], true),
            "item {i} twice"
        );
        in_order &= last.is_none_or(|l| l + 1 == i);
        last = Some(i);
    }
    let missing: Vec<usize> = (0..M as usize).filter(|&i| !seen[i]).collect();
    assert!(missing.is_empty(), "never handed over: {missing:?}");
    eprintln!("unordered: {M} outputs, in input order throughout: {in_order}");
}

#[test]
fn dropping_a_stream_withdraws_its_job_from_the_broker_and_the_hosts() {
    let (broker, _hosts, cluster) = cluster("drop");
    // 10 items of 200 ms a batch: the 32 batches out at a time are 16 s of work for the 4
    // workers, so a broker drained within 5 s is the withdrawal, not the hosts catching up.
    let mut outputs = cluster
        .stream(
            Job::new(slow_square, 0..2_000u64)
                .args((200, u64::MAX))
                .chunk_size(10),
        )
        .unwrap();
    for k in 0..3u64 {
        assert_eq!(outputs.next().unwrap().unwrap(), k * k);
    }
    let before = broker.items().expect("the items stream");
    assert!(
        before.messages > 0 && before.ack_pending > 0,
        "the job is not on the broker: {before:?}"
    );
    let t = Instant::now();
    drop(outputs);
    let dropped = t.elapsed();
    let drained = broker
        .wait_items_drained(Duration::from_secs(5))
        .unwrap_or_else(|last| {
            panic!("5 s after the drop the broker still holds the job's batches: {last:?}")
        });
    eprintln!("before the drop: {before:?}; drop took {dropped:?}, drained {drained:?} after");
    assert_reports_gone(&broker);
    // The hosts are free for the next job.
    let t = Instant::now();
    let out = cluster
        .run(Job::new(square, 0..1_000u64).chunk_size(100))
        .unwrap();
    assert_eq!(out, (0..1_000u64).map(|x| x * x).collect::<Vec<_>>());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the next job took {:?}",
        t.elapsed()
    );
}

/// The withdrawn job's reader of reports is gone from the broker, and its reports with it.
fn assert_reports_gone(broker: &Broker) {
    let gone = poll(Duration::from_secs(5), || {
        broker.consumers("SPYCHRO_REPORTS").is_empty()
            && broker.stream_messages("SPYCHRO_REPORTS") == Some(0)
    });
    assert!(
        gone,
        "the withdrawn job's reports stay: consumers {:?}, messages {:?}",
        broker.consumers("SPYCHRO_REPORTS"),
        broker.stream_messages("SPYCHRO_REPORTS")
    );
}

/// Whether `f` holds within `limit`, polling.
fn poll(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn messages_progress_and_logs_come_back_from_the_hosts() {
    let (_broker, _hosts, cluster) = cluster("events");
    const N: u64 = 300;
    let me = std::process::id();
    let mut messages: Vec<u64> = Vec::new();
    let mut message_pids = BTreeSet::new();
    let mut progress: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    let mut logs: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut unnumbered_logs = Vec::new();
    let mut hosts = BTreeSet::new();
    let out = cluster
        .run(
            Job::new(chatter, 0..N)
                .chunk_size(10)
                .on_message(|pid, x: u64| {
                    message_pids.insert(pid);
                    messages.push(x);
                })
                .on_progress(|_, item, fraction| progress.entry(item).or_default().push(fraction))
                .on_log(|r| {
                    assert_eq!(r.level, log::Level::Info, "{r:?}");
                    assert_eq!(r.target, "suite::cluster_jobs", "{r:?}");
                    assert_ne!(r.pid, me, "{r:?}");
                    hosts.insert(r.host.clone().expect("a cluster log names its host"));
                    match r.item {
                        Some(i) => logs.entry(i).or_default().push(r.message.clone()),
                        None => unnumbered_logs.push(r.message.clone()),
                    }
                }),
        )
        .unwrap();
    assert_eq!(out, (0..N).collect::<Vec<_>>());
    messages.sort_unstable();
    assert_eq!(messages, (0..N).collect::<Vec<_>>(), "each message once");
    assert!(!message_pids.contains(&me), "{message_pids:?}");
    assert_eq!(
        progress.keys().copied().collect::<Vec<_>>(),
        (0..N).collect::<Vec<_>>(),
        "progress for every item"
    );
    for (item, fractions) in &progress {
        assert_eq!(fractions.last(), Some(&1.0), "item {item}: {fractions:?}");
    }
    assert!(unnumbered_logs.is_empty(), "{unnumbered_logs:?}");
    assert_eq!(
        logs.keys().copied().collect::<Vec<_>>(),
        (0..N).collect::<Vec<_>>(),
        "a log record for every item"
    );
    for (item, lines) in &logs {
        assert_eq!(lines, &[format!("item {item}")], "item {item}");
    }
    eprintln!(
        "{N} items: {} progress reports, {} log records, from hosts {hosts:?}",
        progress.values().map(Vec::len).sum::<usize>(),
        logs.values().map(Vec::len).sum::<usize>()
    );
}

#[test]
fn panics_crashes_and_worker_exits_come_back_and_pool_options_are_refused() {
    let (_broker, _hosts, cluster) = cluster("failures");

    // Panics: one report per panicking item, naming its host.
    let mut panics = Vec::new();
    let mut failures = Vec::new();
    let out = cluster
        .run(
            Job::new(refuse_multiples, 0..100u64)
                .args(7)
                .chunk_size(5)
                .keep_going()
                .on_panic(|r| panics.push((r.index, r.message.clone())))
                .on_failure(|e| failures.push((e.index(), e.host().map(str::to_owned)))),
        )
        .unwrap();
    let bad: Vec<u64> = (0..100u64).filter(|x| x.is_multiple_of(7)).collect();
    panics.sort();
    assert_eq!(
        panics.iter().map(|p| p.0).collect::<Vec<_>>(),
        bad,
        "{panics:?}"
    );
    for (i, message) in &panics {
        assert!(message.contains(&format!("item {i} refused")), "{message}");
    }
    failures.sort();
    assert_eq!(
        failures.iter().map(|f| f.0).collect::<Vec<_>>(),
        bad,
        "{failures:?}"
    );
    assert!(failures.iter().all(|f| f.1.is_some()), "{failures:?}");
    assert_eq!(out.len(), 100);
    for (i, o) in out.iter().enumerate() {
        let i = i as u64;
        match o {
            Ok(x) => {
                assert!(!bad.contains(&i), "item {i} did not panic");
                assert_eq!(*x, i);
            }
            Err(e) => {
                assert!(bad.contains(&i), "item {i}: {e}");
                assert_eq!(e.index(), i);
                assert!(e.host().is_some_and(|h| !h.is_empty()), "{e:?}");
                match e.kind() {
                    FailureKind::Panicked { message, .. } => {
                        assert!(message.contains(&format!("item {i} refused")), "{message}")
                    }
                    other => panic!("item {i}: {other:?}"),
                }
            }
        }
    }

    // A crash: the worker's signal, through the host.
    let mut crashed = Vec::new();
    let out = cluster
        .run(
            Job::new(slow_square, 0..20u64)
                .args((0, 13))
                .chunk_size(5)
                .keep_going()
                .on_failure(|e| crashed.push((e.index(), e.kind().clone()))),
        )
        .unwrap();
    assert_eq!(crashed.len(), 1, "{crashed:?}");
    assert_eq!(crashed[0].0, 13);
    assert!(
        matches!(
            crashed[0].1,
            FailureKind::Crashed {
                status: ExitStatus::Signal(6),
                ..
            }
        ),
        "{:?}",
        crashed[0].1
    );
    for (i, o) in out.iter().enumerate() {
        let i = i as u64;
        if i == 13 {
            let e = o.as_ref().unwrap_err();
            assert!(e.host().is_some(), "{e:?}");
            assert!(
                matches!(
                    e.kind(),
                    FailureKind::Crashed {
                        status: ExitStatus::Signal(6),
                        ..
                    }
                ),
                "{e:?}"
            );
        } else {
            assert_eq!(o.as_ref().unwrap(), &(i * i));
        }
    }

    // Per-worker state: each host worker ends it at the end of each batch.
    let mut exits: Vec<(u32, u64)> = Vec::new();
    let out = cluster
        .run(
            Job::new(tallied, 0..500u64)
                .chunk_size(25)
                .on_worker_exit(|pid, n: u64| exits.push((pid, n))),
        )
        .unwrap();
    assert_eq!(out, (0..500u64).collect::<Vec<_>>());
    assert_eq!(
        exits.iter().map(|e| e.1).sum::<u64>(),
        500,
        "exit values: {exits:?}"
    );
    assert!(
        exits.len() >= 500 / 25,
        "fewer exits than batches: {exits:?}"
    );
    assert!(exits.iter().all(|e| e.0 != std::process::id()), "{exits:?}");

    // The options of the hosts' pools, and figures that stay on them, are refused.
    let refused = |r: Result<Vec<u64>, Error>| match r {
        Err(Error::InvalidOption { option, message }) => {
            assert!(message.contains("cluster"), "{option}: {message}");
            option
        }
        other => panic!("not refused: {other:?}"),
    };
    assert_eq!(
        refused(cluster.run(Job::new(square, [1u64]).processes(2))),
        "processes"
    );
    assert_eq!(
        refused(cluster.run(Job::new(square, [1u64]).daemon(false))),
        "daemon"
    );
    assert_eq!(
        refused(cluster.run(Job::new(square, [1u64]).on_insights(|_| {}))),
        "on_insights"
    );
    assert!(matches!(
        cluster.stream(Job::new(square, [1u64]).processes(2)),
        Err(Error::InvalidOption {
            option: "processes",
            ..
        })
    ));
}

/// A process started by the test, its whole group killed when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        kill_group(&mut self.0);
    }
}

#[test]
fn ctrl_c_in_the_caller_withdraws_its_job() {
    // The caller's job (`spychro-probe cluster-caller`): 10 items of 200 ms a batch, 32
    // batches out at a time, 16 s of work for the 4 workers.
    let (broker, _hosts, _cluster) = cluster("sigint");
    let mut caller = Group(
        Command::new(PROBE)
            .args(["cluster-caller", &broker.url()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start the caller"),
    );
    let stdout = caller.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the caller's first output");
    assert_eq!(line, "first");
    let before = broker.items().expect("the items stream");
    assert!(
        before.messages > 0,
        "the job is not on the broker: {before:?}"
    );
    // Ctrl-C is the stream's error only while the caller is inside `next` (README): outside
    // it, the signal's default action ends the caller. After printing `first` the caller goes
    // back into `next` and waits there (in epoll) for the hosts' reports; on two busy cores
    // it may not be back yet, so wait until it sleeps in epoll.
    // (Its main thread waits on a futex while spychro's own thread polls the connection.)
    let pid = caller.0.id();
    assert!(
        poll(Duration::from_secs(5), || std::fs::read_to_string(format!(
            "/proc/{pid}/wchan"
        ))
        .is_ok_and(|w| w.contains("poll") || w.contains("futex"))),
        "the caller never waited"
    );
    // SAFETY: kill(2) on the caller this test started.
    assert_eq!(unsafe { libc::kill(caller.0.id() as i32, libc::SIGINT) }, 0);
    let t = Instant::now();
    let status = loop {
        if let Some(status) = caller.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the caller still runs 5 s after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let exited = t.elapsed();
    let mut stderr = String::new();
    caller
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(3), "{status}; stderr: {stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "stderr: {stderr}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.is_empty(), "more output after SIGINT: {rest:?}");
    let drained = broker
        .wait_items_drained(Duration::from_secs(5))
        .unwrap_or_else(|last| {
            panic!("5 s after the caller's exit the broker still holds its batches: {last:?}")
        });
    assert_reports_gone(&broker);
    eprintln!(
        "before SIGINT: {before:?}; the caller exited {exited:?} after it, the broker was \
         drained {drained:?} after that"
    );
}

#[test]
fn a_caller_killed_outright_has_its_job_dropped_by_the_broker_and_the_hosts() {
    // The same caller, told that the broker may drop its jobs 2 s after it is gone, then
    // killed (SIGKILL: no withdrawal is possible).
    let (broker, _hosts, _cluster) = cluster("sigkill");
    let mut caller = Group(
        Command::new(PROBE)
            .args(["cluster-caller", &broker.url(), "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the caller"),
    );
    let mut lines = BufReader::new(caller.0.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("first"));
    let before = broker.items().expect("the items stream");
    assert!(
        before.messages > 0,
        "the job is not on the broker: {before:?}"
    );
    kill_group(&mut caller.0);
    // 16 s of work was out; the broker drops the caller's consumer 2 s after its last pull,
    // and the hosts (looking every ~3 s) drop the job's batches.
    let t = Instant::now();
    let drained = broker
        .wait_items_drained(Duration::from_secs(20))
        .unwrap_or_else(|last| {
            panic!("20 s after the caller was killed the broker still holds its batches: {last:?}")
        });
    assert_reports_gone(&broker);
    eprintln!(
        "before SIGKILL: {before:?}; the job was gone from the broker {:?} after it ({drained:?})",
        t.elapsed()
    );
}

#[test]
fn hosts_join_and_leave_while_a_job_runs() {
    // One host at first; a second joins after 20 outputs, and the first leaves (killed, with
    // its workers) after 60: every output once, in order, and both hosts ran items.
    let broker = Broker::start("join");
    let mut first = Some(Host::start(&broker.url(), 2));
    let mut second = None;
    let cluster = Cluster::connect(&broker.url()).unwrap();
    let mut ran_on: BTreeMap<String, u64> = BTreeMap::new();
    let mut outputs = Vec::new();
    for out in cluster
        .stream(
            Job::new(slow_chatter, 0..200u64)
                .args(20)
                .chunk_size(4)
                .on_log(|r| {
                    *ran_on
                        .entry(r.host.clone().unwrap_or_default())
                        .or_default() += 1
                }),
        )
        .unwrap()
    {
        outputs.push(out.unwrap());
        if outputs.len() == 20 {
            second = Some(Host::start(&broker.url(), 2));
        }
        if outputs.len() == 60 {
            drop(first.take());
        }
    }
    drop(second);
    assert_eq!(outputs, (0..200u64).collect::<Vec<_>>());
    assert_eq!(ran_on.len(), 2, "items ran on {ran_on:?}");
    assert!(ran_on.values().all(|&n| n >= 10), "items ran on {ran_on:?}");
}

/// A job that only this test program has: the hosts (`spychro-probe`) were built without it.
#[spychro::job]
fn only_in_this_test(x: u64) -> u64 {
    x
}

#[test]
fn a_host_without_the_job_refuses_it_with_an_error_naming_the_host() {
    let (_broker, _hosts, cluster) = cluster("refuse");
    let err = cluster
        .run(Job::new(only_in_this_test, 0..10u64))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refused job")
            && err.contains("has no job")
            && err.contains("only_in_this_test"),
        "{err}"
    );
    // The hosts go on serving jobs they have.
    assert_eq!(
        cluster.run(Job::new(square, 0..5u64)).unwrap(),
        [0, 1, 4, 9, 16]
    );
}
