//! Insights with real worker processes: per worker slot, items run, time busy, idle and
//! starting, restarts — from `Job::on_insights` at the end of a run, `Results::insights`
//! during a stream, `JobHandle::insights` and `Pool::insights` on a pool; and per thread in
//! single-processed and multi-threaded runs.

use std::collections::HashSet;
use std::time::Duration;

use spychro::{Insights, Job, Pool};

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

/// Runs `job` with an `on_insights` handler and returns the one `Insights` it got.
fn ended(run: impl FnOnce(&mut Vec<Insights>)) -> Insights {
    let mut got = Vec::new();
    run(&mut got);
    assert_eq!(got.len(), 1, "on_insights is called once: {got:?}");
    got.remove(0)
}

#[test]
fn a_multi_processed_run_reports_each_worker_once_it_ends() {
    let insights = ended(|got| {
        Job::new(nap, vec![10u64; 20])
            .processes(2)
            .chunk_size(1)
            .on_insights(|i| got.push(i.clone()))
            .run_multi_processed()
            .unwrap();
    });
    assert_eq!(insights.workers.len(), 2);
    assert_eq!(insights.items(), 20);
    let me = std::process::id();
    let pids: HashSet<u32> = insights.workers.iter().map(|w| w.pid).collect();
    assert_eq!(pids.len(), 2);
    assert!(!pids.contains(&me), "the workers are other processes");
    for w in &insights.workers {
        assert!(w.items > 0, "both workers ran items: {insights:?}");
        // Each item sleeps 10 ms in the worker: that is busy time, measured there.
        assert!(w.busy >= Duration::from_millis(10 * w.items), "{w:?}");
        assert!(w.starting > Duration::ZERO, "{w:?}");
        assert_eq!(w.restarts, 0);
    }
    assert!(insights.busy() >= Duration::from_millis(200));
    assert!(insights.busy() <= insights.elapsed * 2);
    assert!(insights.utilization() > 0.0 && insights.utilization() <= 1.0);
    let line = insights.to_string();
    assert!(line.starts_with("20 items in "), "{line}");
    assert!(line.contains("on 2 workers"), "{line}");
}

#[test]
fn an_under_used_pool_shows_an_idle_worker() {
    // One long item on two workers: one works, the other waits the whole time.
    let insights = ended(|got| {
        Job::new(nap, vec![300u64])
            .processes(2)
            .on_insights(|i| got.push(i.clone()))
            .run_multi_processed()
            .unwrap();
    });
    let mut workers = insights.workers.clone();
    workers.sort_by_key(|w| w.items);
    let (idle, busy) = (&workers[0], &workers[1]);
    assert_eq!((idle.items, busy.items), (0, 1), "{insights:?}");
    assert!(busy.busy >= Duration::from_millis(300), "{busy:?}");
    assert!(idle.idle >= Duration::from_millis(250), "{idle:?}");
    assert_eq!(idle.busy, Duration::ZERO);
    assert!(insights.utilization() < 0.6, "{}", insights.utilization());
}

#[test]
fn a_crash_counts_as_a_restart_of_its_slot() {
    let insights = ended(|got| {
        let outcomes = Job::new(abort_at, 0..40u32)
            .args(7)
            .processes(2)
            .chunk_size(1)
            .keep_going()
            .on_insights(|i| got.push(i.clone()))
            .run_multi_processed()
            .unwrap();
        assert!(outcomes[7].is_err());
    });
    assert_eq!(insights.restarts(), 1, "{insights:?}");
    assert_eq!(insights.items(), 39, "the crashed item was never answered");
    let restarted = insights.workers.iter().find(|w| w.restarts == 1).unwrap();
    assert!(restarted.starting > Duration::ZERO);
}

#[test]
fn threads_and_single_report_one_worker_per_thread_in_this_process() {
    let me = std::process::id();
    let threaded = ended(|got| {
        Job::new(nap, vec![5u64; 12])
            .processes(3)
            .on_insights(|i| got.push(i.clone()))
            .run_multi_threaded()
            .unwrap();
    });
    assert_eq!(threaded.workers.len(), 3);
    assert_eq!(threaded.items(), 12);
    assert!(
        threaded
            .workers
            .iter()
            .all(|w| w.pid == me && w.restarts == 0)
    );
    assert!(threaded.busy() >= Duration::from_millis(60));

    let single = ended(|got| {
        Job::new(nap, vec![5u64; 4])
            .on_insights(|i| got.push(i.clone()))
            .run_single_processed()
            .unwrap();
    });
    assert_eq!(single.workers.len(), 1);
    assert_eq!(single.workers[0].items, 4);
    assert_eq!(single.workers[0].pid, me);
    assert!(single.workers[0].busy >= Duration::from_millis(20));
}

#[test]
fn a_stream_shows_its_figures_while_it_runs_and_as_it_ended() {
    let mut results = Job::new(nap, vec![2u64; 60])
        .processes(2)
        .chunk_size(1)
        .stream_multi_processed()
        .unwrap();
    let first: Vec<u64> = results.by_ref().take(10).map(|o| o.unwrap()).collect();
    assert_eq!(first.len(), 10);
    let during = results.insights();
    assert!(during.items() >= 10 && during.items() <= 60, "{during:?}");
    assert_eq!(results.by_ref().count(), 50);
    let after = results.insights();
    assert_eq!(after.items(), 60);
    assert_eq!(results.insights(), after, "fixed once the job ended");
}

#[test]
fn a_pool_counts_since_it_started_and_each_job_counts_its_own_items() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let pids = pool.pids();
    for _ in 0..3 {
        Job::new(nap, vec![1u64; 10]).on(&pool).run().unwrap();
    }
    let so_far = pool.insights();
    assert_eq!(so_far.items(), 30);
    let mut slot_pids: Vec<u32> = so_far.workers.iter().map(|w| w.pid).collect();
    slot_pids.sort_unstable();
    let mut expected = pids.clone();
    expected.sort_unstable();
    assert_eq!(slot_pids, expected);

    // Two jobs at once: each counts only its own items; its handler gets its figures.
    let mut got = Vec::new();
    let a = Job::new(nap, vec![3u64; 40])
        .chunk_size(1)
        .on(&pool)
        .spawn()
        .unwrap();
    let b = Job::new(nap, vec![3u64; 20])
        .chunk_size(1)
        .on_insights(|i| got.push(i.clone()))
        .on(&pool)
        .spawn()
        .unwrap();
    let during = a.insights();
    assert!(during.items() <= 40, "{during:?}");
    let a_done = {
        let mut a = a;
        assert!(a.wait_timeout(Duration::from_secs(30)));
        let i = a.insights();
        a.wait().unwrap();
        i
    };
    assert_eq!(a_done.items(), 40);
    assert_eq!(b.wait().unwrap().len(), 20);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].items(), 20);
    assert!(got[0].busy() >= Duration::from_millis(60));
    assert_eq!(pool.insights().items(), 90);

    pool.close();
    pool.join();
    let last = pool.insights();
    assert_eq!(last.items(), 90, "the figures as the pool ended");
}
