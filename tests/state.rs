//! Per-worker state (`WorkerState`, a `&mut` parameter after the item) with real worker
//! processes: built once per worker from the job's extra arguments, kept across that worker's
//! items, ended with an exit value that reaches `on_worker_exit` on the caller's thread; one
//! per thread in multi-threaded runs; an `init` that fails ends the job with
//! `Error::WorkerState` in every mode; a recycled worker hands its state back before it goes;
//! a crashed one loses it; a pool's workers end a job's state when the job ends.

use std::collections::HashMap;

use spychro::{Error, Job, Pool, WorkerState};

/// Counts the items a worker ran and remembers where it was built.
struct Tally {
    pid: u32,
    items: u64,
    sum: u64,
}

/// What a `Tally` hands back: (pid that built it, items, sum of items, salt it was built with).
type TallyExit = (u32, u64, u64, u64);

/// The salt the state is built with; `u64::MAX` makes `init` fail, `u64::MAX - 1` panic.
struct Salted {
    tally: Tally,
    salt: u64,
}

impl WorkerState<u64> for Salted {
    type Exit = TallyExit;
    fn init(salt: &u64) -> Result<Self, String> {
        match *salt {
            u64::MAX => Err("no database at db.invalid".to_string()),
            s if s == u64::MAX - 1 => panic!("init exploded"),
            salt => Ok(Salted {
                tally: Tally {
                    pid: std::process::id(),
                    items: 0,
                    sum: 0,
                },
                salt,
            }),
        }
    }
    fn exit(self) -> TallyExit {
        (self.tally.pid, self.tally.items, self.tally.sum, self.salt)
    }
}

/// Returns (the item plus the salt, the pid that runs it, the pid that built the state, how
/// many items this state has seen so far).
#[spychro::job]
fn salted(x: u64, salt: &u64, state: &mut Salted) -> (u64, u32, u32, u64) {
    state.tally.items += 1;
    state.tally.sum += x;
    (
        x + *salt,
        std::process::id(),
        state.tally.pid,
        state.tally.items,
    )
}

impl WorkerState<()> for Tally {
    type Exit = (u32, u64, u64);
    fn init(_: &()) -> Result<Self, String> {
        Ok(Tally {
            pid: std::process::id(),
            items: 0,
            sum: 0,
        })
    }
    fn exit(self) -> (u32, u64, u64) {
        (self.pid, self.items, self.sum)
    }
}

#[spychro::job]
fn tallied(x: u64, tally: &mut Tally) -> u64 {
    tally.items += 1;
    tally.sum += x;
    x
}

/// Aborts on item 13: its worker's state is lost. The items after it take 20 ms each, so
/// that the crashed worker's replacement is up before the survivor could run them all.
#[spychro::job]
fn tallied_abort(x: u64, tally: &mut Tally) -> (u64, u32) {
    if x == 13 {
        std::process::abort();
    }
    if x > 13 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tally.items += 1;
    tally.sum += x;
    (x, std::process::id())
}

#[test]
fn each_worker_builds_its_state_once_keeps_it_and_hands_it_back() {
    let mut exits: Vec<(u32, TallyExit)> = Vec::new();
    let out = Job::new(salted, 0..400u64)
        .args(1000)
        .processes(2)
        .chunk_size(7)
        .on_worker_exit(|pid, exit| exits.push((pid, exit)))
        .run_multi_processed()
        .unwrap();
    assert_eq!(out.len(), 400);
    let me = std::process::id();
    let mut seen_per_pid: HashMap<u32, Vec<u64>> = HashMap::new();
    for (i, (value, pid, built_by, count)) in out.iter().copied().enumerate() {
        assert_eq!(
            value,
            i as u64 + 1000,
            "the state's init got the job's arguments"
        );
        assert_ne!(pid, me, "items ran in worker processes");
        assert_eq!(built_by, pid, "each worker built its own state");
        seen_per_pid.entry(pid).or_default().push(count);
    }
    // Within a worker the count only grows: one state, kept across batches.
    for counts in seen_per_pid.values_mut() {
        counts.sort_unstable();
        let expected: Vec<u64> = (1..=counts.len() as u64).collect();
        assert_eq!(*counts, expected, "one state per worker, never rebuilt");
    }
    // One exit per worker that ran items, from that worker, with what it counted.
    assert_eq!(exits.len(), seen_per_pid.len(), "{exits:?}");
    for (pid, (built_by, items, _, salt)) in &exits {
        assert_eq!(pid, built_by);
        assert_eq!(salt, &1000);
        assert_eq!(*items as usize, seen_per_pid[pid].len());
    }
    assert_eq!(
        exits.iter().map(|(_, e)| e.2).sum::<u64>(),
        (0..400).sum::<u64>()
    );
}

#[test]
fn threads_keep_one_state_per_thread_and_single_one_state() {
    let mut exits = Vec::new();
    let out = Job::new(salted, 0..300u64)
        .args(5)
        .processes(3)
        .on_worker_exit(|pid, exit| exits.push((pid, exit)))
        .run_multi_threaded()
        .unwrap();
    assert_eq!(
        out.iter().map(|o| o.0).collect::<Vec<_>>(),
        (5..305).collect::<Vec<_>>()
    );
    let me = std::process::id();
    assert!(out.iter().all(|o| o.1 == me && o.2 == me));
    assert!(!exits.is_empty() && exits.len() <= 3, "{exits:?}");
    assert_eq!(exits.iter().map(|(_, e)| e.1).sum::<u64>(), 300);
    assert_eq!(
        exits.iter().map(|(_, e)| e.2).sum::<u64>(),
        (0..300).sum::<u64>()
    );

    let mut exits = Vec::new();
    let out = Job::new(salted, 0..50u64)
        .args(0)
        .on_worker_exit(|pid, exit| exits.push((pid, exit)))
        .run_single_processed()
        .unwrap();
    assert_eq!(out.last().unwrap().3, 50, "one state saw every item");
    assert_eq!(exits, vec![(me, (me, 50, (0..50).sum(), 0))]);
}

#[test]
fn an_init_that_fails_ends_the_job_with_a_clear_error_in_every_mode() {
    for (mode, result) in [
        (
            "processes",
            Job::new(salted, 0..20u64)
                .args(u64::MAX)
                .processes(2)
                .run_multi_processed(),
        ),
        (
            "threads",
            Job::new(salted, 0..20u64)
                .args(u64::MAX)
                .processes(2)
                .run_multi_threaded(),
        ),
        (
            "single",
            Job::new(salted, 0..20u64)
                .args(u64::MAX)
                .run_single_processed(),
        ),
    ] {
        match result {
            Err(Error::WorkerState { job, message, .. }) => {
                assert!(job.ends_with("salted"), "{mode}: {job}");
                assert_eq!(message, "no database at db.invalid", "{mode}");
            }
            other => panic!("{mode}: expected Error::WorkerState, got {other:?}"),
        }
    }
    let err = Job::new(salted, 0..20u64)
        .args(u64::MAX - 1)
        .processes(2)
        .run_multi_processed()
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::WorkerState { .. }), "{err:?}");
    assert!(text.contains("init exploded"), "{text}");
}

#[test]
fn a_recycled_worker_hands_its_state_back_before_it_goes() {
    let mut exits: Vec<(u32, (u32, u64, u64))> = Vec::new();
    let out = Job::new(tallied, 0..100u64)
        .processes(2)
        .max_items_per_worker(10)
        .on_worker_exit(|pid, exit| exits.push((pid, exit)))
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, (0..100).collect::<Vec<_>>());
    assert!(
        exits.len() >= 10,
        "each worker of ten items hands back its state: {exits:?}"
    );
    assert!(exits.iter().all(|(_, e)| e.1 <= 10), "{exits:?}");
    assert_eq!(exits.iter().map(|(_, e)| e.1).sum::<u64>(), 100);
    let pids: std::collections::HashSet<u32> = exits.iter().map(|(p, _)| *p).collect();
    assert_eq!(pids.len(), exits.len(), "one exit per worker process");
}

#[test]
fn a_crashed_worker_loses_its_state_and_its_replacement_builds_a_new_one() {
    let mut exits: Vec<(u32, (u32, u64, u64))> = Vec::new();
    let out = Job::new(tallied_abort, 0..40u64)
        .processes(2)
        .chunk_size(1)
        .keep_going()
        .on_worker_exit(|pid, exit| exits.push((pid, exit)))
        .run_multi_processed()
        .unwrap();
    assert!(out[13].is_err());
    let ran: Vec<(u64, u32)> = out
        .iter()
        .filter_map(|o| o.as_ref().ok().copied())
        .collect();
    assert_eq!(ran.len(), 39);
    // Every exit comes from a distinct worker and counts exactly what that worker ran.
    let mut exit_pids: Vec<u32> = exits.iter().map(|(pid, _)| *pid).collect();
    exit_pids.sort_unstable();
    exit_pids.dedup();
    assert_eq!(exit_pids.len(), exits.len(), "{exits:?}");
    for (pid, (built_by, items, sum)) in &exits {
        assert_eq!(pid, built_by);
        let mine: Vec<u64> = ran.iter().filter(|r| r.1 == *pid).map(|r| r.0).collect();
        assert_eq!(*items, mine.len() as u64, "{pid}: {exits:?}");
        assert_eq!(*sum, mine.iter().sum::<u64>(), "{pid}: {exits:?}");
    }
    // The crashed worker handed nothing back: whatever it ran before item 13 is in no exit.
    let mut ran_pids: Vec<u32> = ran.iter().map(|r| r.1).collect();
    ran_pids.sort_unstable();
    ran_pids.dedup();
    let lost: Vec<u32> = ran_pids
        .iter()
        .copied()
        .filter(|p| !exit_pids.contains(p))
        .collect();
    assert!(lost.len() <= 1, "only one worker crashed: {lost:?}");
    // The replacement built a fresh state and ran some of the slow items after 13.
    assert_eq!(
        exits.len(),
        2,
        "survivor and replacement both hand back: {exits:?}"
    );
    assert!(
        ran.iter()
            .filter(|r| r.0 > 13)
            .map(|r| r.1)
            .any(|p| !lost.contains(&p)),
        "{ran:?}"
    );
}

#[test]
fn a_pool_ends_a_jobs_state_when_the_job_ends_and_builds_a_new_one_for_the_next() {
    let pool = Pool::builder().processes(2).start().unwrap();
    let pids = pool.pids();
    for round in 1..=3u64 {
        let mut exits: Vec<(u32, (u32, u64, u64))> = Vec::new();
        let out = Job::new(tallied, 0..200u64)
            .chunk_size(5)
            .on_worker_exit(|pid, exit| exits.push((pid, exit)))
            .on(&pool)
            .run()
            .unwrap();
        assert_eq!(out.len(), 200, "round {round}");
        assert!(!exits.is_empty(), "round {round}");
        assert!(
            exits.iter().all(|(p, e)| pids.contains(p) && e.0 == *p),
            "{exits:?}"
        );
        assert_eq!(
            exits.iter().map(|(_, e)| e.1).sum::<u64>(),
            200,
            "round {round}"
        );
        assert_eq!(pool.pids(), pids, "the workers stay");
    }
    // An init that fails in a pool ends that job, and the pool goes on.
    let err = Job::new(salted, 0..10u64)
        .args(u64::MAX)
        .on(&pool)
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::WorkerState { .. }), "{err:?}");
    assert_eq!(
        Job::new(salted, [1u64]).args(1).on(&pool).run().unwrap()[0].0,
        2
    );
}
