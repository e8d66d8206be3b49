//! A persistent `Pool` with real worker processes: jobs of different functions on the same
//! workers, a crash or a timeout replaced inside the pool, several jobs at once from several
//! threads, asynchronous jobs (wait, wait_timeout, cancel, iteration, unordered, a tokio
//! `.await`), single calls, close/join/terminate/drop leaving no process.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use spychro::{Error, FailureKind, Job, Pool};

#[spychro::job]
fn square(x: u64) -> u64 {
    x * x
}

#[spychro::job]
fn shout(s: String) -> String {
    s.to_uppercase()
}

#[spychro::job]
fn pid_of(_: u32) -> u32 {
    std::process::id()
}

#[spychro::job]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[spychro::job]
fn abort_at(x: u32, bad: &u32) -> u32 {
    if x == *bad {
        std::process::abort();
    }
    x
}

fn wait_gone(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&p| suite::alive(p)) {
        assert!(Instant::now() < deadline, "workers still running: {pids:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn one_pool_serves_many_jobs_of_different_functions_with_the_same_workers() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let pids = pool.pids();
    assert_eq!(pids.len(), 2);
    assert!(
        pids.iter()
            .all(|&p| suite::children(std::process::id()).contains(&p))
    );
    for round in 0..20u64 {
        let out = Job::new(square, 0..100u64).on(&pool).run().unwrap();
        assert_eq!(out[99], 9801);
        let words = Job::new(shout, vec![format!("r{round}")])
            .on(&pool)
            .run()
            .unwrap();
        assert_eq!(words, [format!("R{round}")]);
    }
    let served: HashSet<u32> = Job::new(pid_of, 0..200u32)
        .chunk_size(1)
        .on(&pool)
        .run()
        .unwrap()
        .into_iter()
        .collect();
    assert!(
        served.iter().all(|p| pids.contains(p)),
        "{served:?} vs {pids:?}"
    );
    assert_eq!(pool.pids(), pids, "no worker was started again");
    pool.close();
    pool.join();
    assert!(pool.pids().is_empty());
    wait_gone(&pids);
    assert!(matches!(
        Job::new(square, [1u64]).on(&pool).run(),
        Err(Error::Misuse(_))
    ));
}

#[test]
fn a_crash_in_a_pooled_job_is_replaced_and_the_next_job_runs() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let before = pool.pids();
    let outcomes = Job::new(abort_at, 0..20u32)
        .args(7)
        .keep_going()
        .on(&pool)
        .run()
        .unwrap();
    assert!(matches!(
        outcomes[7].as_ref().unwrap_err().kind(),
        FailureKind::Crashed { .. }
    ));
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 19);
    let err = Job::new(abort_at, 0..20u32)
        .args(3)
        .on(&pool)
        .run()
        .unwrap_err();
    assert_eq!(err.item().unwrap().index(), 3);
    // The pool is whole again and serves the next job.
    assert_eq!(Job::new(square, 0..10u64).on(&pool).run().unwrap()[3], 9);
    let after = pool.pids();
    assert_eq!(after.len(), 2);
    assert_ne!(after, before, "crashed workers were replaced");
}

#[test]
fn a_timed_out_item_fails_and_the_pool_goes_on() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let outcomes = Job::new(nap, [10u64, 60_000, 10])
        .timeout(Duration::from_millis(300))
        .keep_going()
        .on(&pool)
        .run()
        .unwrap();
    assert!(matches!(
        outcomes[1].as_ref().unwrap_err().kind(),
        FailureKind::TimedOut { .. }
    ));
    assert_eq!(outcomes[2].as_ref().ok(), Some(&10));
    assert_eq!(Job::new(square, [5u64]).on(&pool).run().unwrap(), [25]);
}

#[test]
fn jobs_from_several_threads_share_the_workers() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let pids: HashSet<u32> = pool.pids().into_iter().collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u32)
            .map(|t| {
                let pool = &pool;
                s.spawn(move || {
                    let served: Vec<u32> = Job::new(pid_of, 0..300u32)
                        .chunk_size(1)
                        .on(pool)
                        .run()
                        .unwrap();
                    let mine: HashSet<u32> = served.into_iter().collect();
                    (t, mine)
                })
            })
            .collect();
        for h in handles {
            let (t, mine) = h.join().unwrap();
            assert!(mine.is_subset(&pids), "thread {t}: {mine:?}");
        }
    });
    // Started together, two long jobs both make progress (round robin between jobs).
    let a = Job::new(nap, vec![20u64; 20])
        .chunk_size(1)
        .on(&pool)
        .spawn()
        .unwrap();
    let mut b = Job::new(nap, vec![20u64; 20])
        .chunk_size(1)
        .on(&pool)
        .spawn()
        .unwrap();
    let first_of_b = b.next().unwrap().unwrap();
    assert_eq!(first_of_b, 20);
    assert!(!a.is_finished(), "job b waited for job a to end");
    assert_eq!(a.wait().unwrap().len(), 20);
    assert_eq!(b.count(), 19);
}

#[test]
fn an_asynchronous_job_runs_while_the_caller_works() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let mut job = Job::new(nap, vec![100u64; 4]).on(&pool).spawn().unwrap();
    assert!(!job.is_finished());
    assert!(!job.wait_timeout(Duration::from_millis(10)));
    assert!(job.wait_timeout(Duration::from_secs(20)));
    assert!(job.is_finished());
    assert_eq!(job.wait().unwrap(), [100; 4]);

    // Outputs as they come, in input order.
    let stream = Job::new(square, 0..10_000u64).on(&pool).stream().unwrap();
    let mut expected = 0u64;
    for out in stream {
        assert_eq!(out.unwrap(), expected * expected);
        expected += 1;
    }
    assert_eq!(expected, 10_000);
}

#[test]
fn a_cancelled_job_leaves_the_pool_serving_the_next_with_the_same_workers() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let pids = pool.pids();
    let mut job = Job::new(nap, vec![20u64; 400])
        .chunk_size(1)
        .on(&pool)
        .spawn()
        .unwrap();
    // Half way (well, some way) through.
    for _ in 0..10 {
        job.next().unwrap().unwrap();
    }
    let cancelled_at = Instant::now();
    job.cancel();
    assert!(matches!(job.wait(), Err(Error::Cancelled)));
    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    assert_eq!(
        Job::new(square, 0..5u64).on(&pool).run().unwrap(),
        [0, 1, 4, 9, 16]
    );
    assert_eq!(pool.pids(), pids, "cancelling killed no worker");
}

#[test]
fn single_calls_return_their_output_or_their_failure() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let calls: Vec<_> = (0..50u64)
        .map(|x| pool.submit(square, x).unwrap())
        .collect();
    let outs: Vec<u64> = calls.into_iter().map(|c| c.wait().unwrap()).collect();
    assert_eq!(outs, (0..50u64).map(|x| x * x).collect::<Vec<_>>());
    let err = pool.submit(nap, 1).unwrap();
    assert_eq!(err.wait().unwrap(), 1);
}

#[test]
fn unordered_outputs_come_as_items_finish() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let mut naps = vec![600u64];
    naps.extend([10u64; 12]);
    let job = Job::new(nap, naps).chunk_size(1).on(&pool).spawn().unwrap();
    let got: Vec<(u64, u64)> = job.unordered().collect::<Result<_, _>>().unwrap();
    assert_eq!(got.len(), 13);
    let slow_at = got.iter().position(|&(i, _)| i == 0).unwrap();
    assert!(slow_at >= 4, "the slow item came too early: {got:?}");
    assert_eq!(got[slow_at], (0, 600));
    let mut indices: Vec<u64> = got.iter().map(|(i, _)| *i).collect();
    indices.sort();
    assert_eq!(indices, (0..13).collect::<Vec<_>>());
}

#[test]
fn a_pooled_job_can_be_awaited_in_an_async_runtime() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (squares, words, ticks) = runtime.block_on(async {
        let a = Job::new(square, 0..1000u64).on(&pool).spawn().unwrap();
        let b = Job::new(shout, vec!["x".to_string(); 10])
            .on(&pool)
            .spawn()
            .unwrap();
        // The runtime's one thread stays free while the jobs run.
        let ticker = async {
            let mut n = 0;
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                n += 1;
            }
            n
        };
        let (a, b, n) = tokio::join!(a, b, ticker);
        (a.unwrap(), b.unwrap(), n)
    });
    assert_eq!(squares[999], 998_001);
    assert_eq!(words, vec!["X".to_string(); 10]);
    assert_eq!(ticks, 5);
}

/// Says it started (a message to the caller), then works for `ms`.
#[spychro::job]
fn chatty(ms: u64, ctx: &spychro::Ctx<String>) -> u64 {
    ctx.send(format!("started {ms}"));
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn an_awaited_job_whose_events_come_before_its_outputs_still_wakes_its_task() {
    // Regression: a poll that found only events (here the items' messages) returned
    // `Pending` without leaving the task's waker, so the outputs that came later woke
    // nobody and the task slept for ever (found by the cluster host).
    let pool = Pool::builder().processes(2).start().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let pool = std::sync::Arc::new(pool);
    let awaited = std::sync::Arc::clone(&pool);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut seen = Vec::new();
        let out = runtime.block_on(async {
            Job::new(chatty, [150u64, 200])
                .chunk_size(1)
                .on_message(|_, m: String| seen.push(m))
                .on(&awaited)
                .spawn()
                .unwrap()
                .await
        });
        seen.sort();
        let _ = tx.send((out.map_err(|e| e.to_string()), seen));
    });
    let (out, seen) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the awaited job never woke its task");
    assert_eq!(out.unwrap(), [150, 200]);
    assert_eq!(seen, ["started 150", "started 200"]);
}

#[test]
fn dropping_or_terminating_a_pool_leaves_no_process() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let pids = pool.pids();
    let job = Job::new(nap, [60_000u64, 60_000])
        .on(&pool)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    drop(pool);
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_gone(&pids);
    assert!(job.wait().is_err());

    let pool = Pool::builder().processes(1).start().unwrap();
    let pids = pool.pids();
    pool.terminate();
    wait_gone(&pids);
}

#[test]
fn options_that_belong_to_the_pool_are_refused_on_a_job() {
    let pool = Pool::builder().processes(1).start().unwrap();
    match Job::new(square, [1u64]).processes(4).on(&pool).run() {
        Err(Error::InvalidOption { option, message }) => {
            assert_eq!(option, "processes");
            assert!(message.contains("Pool::builder"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
