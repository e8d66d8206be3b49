//! [`Insights`]: how a job's (or a pool's) workers spent their time — items done, time busy,
//! idle and starting, restarts — the figures that show a pool under-used, a worker starved, or
//! a few items dominating (mpire's insights). The engine keeps them per worker slot (a slot is
//! one of the pool's places: a replacement takes the place of the worker it replaces);
//! in-process runs keep them per thread.

use std::fmt;
use std::time::{Duration, Instant};

/// What one worker (one slot of the pool, through its restarts; one thread in a
/// multi-threaded run) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerInsights {
    /// The slot's place in the pool (the thread's index in a multi-threaded run).
    pub slot: usize,
    /// The process in the slot now (or last): after a restart, the replacement's pid.
    pub pid: u32,
    /// Items it ran (answered, successfully or not).
    pub items: u64,
    /// Time it spent on items: reading them, running the function, writing the outputs.
    pub busy: Duration,
    /// Time it was up and had nothing to run (waiting for items: the pool was under-used, or
    /// the caller was slow to take outputs).
    pub idle: Duration,
    /// Time its processes spent starting (from spawn to the hello of the handshake).
    pub starting: Duration,
    /// How many times its process was replaced (a crash, a timeout, recycling).
    pub restarts: u32,
}

/// How the workers of a job (or of a pool) spent their time.
///
/// Figures are measured by the workers themselves (time busy) and by the caller (time up and
/// starting), so a worker in the middle of a long item shows that item's time as idle until
/// it answers. A job's insights on a shared [`Pool`](crate::Pool) count its own items and
/// busy time, and the idle and starting time of the workers while the job ran.
///
/// ```
/// #[spychro::job]
/// fn square(x: u64) -> u64 { x * x }
///
/// let mut seen = None;
/// spychro::Job::new(square, 0..1000u64)
///     .processes(2)
///     .on_insights(|insights| seen = Some(insights.clone()))
///     .run_multi_processed()?;
/// let insights = seen.expect("the job ended");
/// assert_eq!(insights.workers.len(), 2);
/// assert_eq!(insights.items(), 1000);
/// println!("{insights}");
/// # Ok::<(), spychro::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Insights {
    /// Time since the job (or the pool) started.
    pub elapsed: Duration,
    /// One entry per worker slot (per thread in a multi-threaded run).
    pub workers: Vec<WorkerInsights>,
}

impl Insights {
    /// Items run, by every worker.
    pub fn items(&self) -> u64 {
        self.workers.iter().map(|w| w.items).sum()
    }

    /// Time busy, all workers together.
    pub fn busy(&self) -> Duration {
        self.workers.iter().map(|w| w.busy).sum()
    }

    /// Time idle, all workers together.
    pub fn idle(&self) -> Duration {
        self.workers.iter().map(|w| w.idle).sum()
    }

    /// Time starting, all workers together.
    pub fn starting(&self) -> Duration {
        self.workers.iter().map(|w| w.starting).sum()
    }

    /// Restarts, all workers together.
    pub fn restarts(&self) -> u32 {
        self.workers.iter().map(|w| w.restarts).sum()
    }

    /// The share of the workers' time (`elapsed` times the number of workers) spent busy,
    /// from 0 to 1: low when the pool is bigger than the work needs, or the work reaches it
    /// too slowly.
    pub fn utilization(&self) -> f64 {
        let capacity = self.elapsed.as_secs_f64() * self.workers.len() as f64;
        if capacity <= 0.0 {
            return 0.0;
        }
        (self.busy().as_secs_f64() / capacity).min(1.0)
    }

    /// The mean time busy per item, when any ran.
    pub fn per_item(&self) -> Option<Duration> {
        let items = self.items();
        (items > 0).then(|| self.busy() / items.min(u32::MAX as u64) as u32)
    }
}

/// One line: items, time, utilization, the spread of items between workers, time starting,
/// restarts; e.g. `1000 items in 0.41 s on 2 workers: 87% busy (0.18 ms/item), items per
/// worker 480-520, 12 ms starting, 0 restarts`.
impl fmt::Display for Insights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.workers.len();
        write!(
            f,
            "{} items in {:.2} s on {n} worker{}: {:.0}% busy",
            self.items(),
            self.elapsed.as_secs_f64(),
            if n == 1 { "" } else { "s" },
            self.utilization() * 100.0
        )?;
        if let Some(per) = self.per_item() {
            write!(f, " ({})", per_item(per))?;
        }
        let least = self.workers.iter().map(|w| w.items).min().unwrap_or(0);
        let most = self.workers.iter().map(|w| w.items).max().unwrap_or(0);
        if n > 1 {
            write!(f, ", items per worker {least}-{most}")?;
        }
        write!(
            f,
            ", {} ms starting, {} restart{}",
            self.starting().as_millis(),
            self.restarts(),
            if self.restarts() == 1 { "" } else { "s" }
        )
    }
}

/// A time per item, in the unit that reads best.
fn per_item(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns/item")
    } else if ns < 10_000_000 {
        format!("{:.1} us/item", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms/item", ns as f64 / 1e6)
    }
}

/// One worker process's life, as the caller saw it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Life {
    pub(crate) spawned: Instant,
    /// Its hello arrived.
    pub(crate) ready: Option<Instant>,
    /// It was killed, or its end was seen.
    pub(crate) ended: Option<Instant>,
}

impl Life {
    pub(crate) fn new() -> Life {
        Life {
            spawned: Instant::now(),
            ready: None,
            ended: None,
        }
    }

    /// Records its end (the first time).
    pub(crate) fn end(&mut self) {
        self.ended.get_or_insert_with(Instant::now);
    }

    /// Time from spawn to hello (or to its end, or to `now`, if there was none).
    pub(crate) fn starting(&self, now: Instant) -> Duration {
        let until = self.ready.or(self.ended).unwrap_or(now).min(now);
        until.saturating_duration_since(self.spawned)
    }

    /// Time from hello to its end (or to `now`).
    pub(crate) fn up(&self, now: Instant) -> Duration {
        match self.ready {
            Some(ready) => self
                .ended
                .unwrap_or(now)
                .min(now)
                .saturating_duration_since(ready),
            None => Duration::ZERO,
        }
    }
}

/// A slot's figures over every process it had (the ones gone, and the one there now),
/// cumulative since the pool started.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Totals {
    pub(crate) items: u64,
    pub(crate) busy_ns: u64,
    pub(crate) up: Duration,
    pub(crate) starting: Duration,
    pub(crate) restarts: u32,
}

impl Totals {
    /// Idle time: up and not busy.
    pub(crate) fn idle(&self) -> Duration {
        self.up.saturating_sub(Duration::from_nanos(self.busy_ns))
    }

    /// The figures as a user sees them, for slot `slot` whose process is `pid`.
    pub(crate) fn insights(&self, slot: usize, pid: u32) -> WorkerInsights {
        WorkerInsights {
            slot,
            pid,
            items: self.items,
            busy: Duration::from_nanos(self.busy_ns),
            idle: self.idle(),
            starting: self.starting,
            restarts: self.restarts,
        }
    }
}

/// What a job did in each slot, and the slots' totals when it started (to count the idle and
/// starting time, and the restarts, of its span only).
#[derive(Clone, Debug, Default)]
pub(crate) struct JobTally {
    /// Items and busy nanoseconds of this job, per slot.
    pub(crate) per_slot: Vec<(u64, u64)>,
    /// The slots' totals when the job started; `None` until the engine first serves it.
    pub(crate) base: Option<Vec<Totals>>,
}

impl JobTally {
    /// Counts `items` answered by slot `slot` in `busy_ns`.
    pub(crate) fn add(&mut self, slot: usize, items: u32, busy_ns: u64) {
        if self.per_slot.len() <= slot {
            self.per_slot.resize(slot + 1, (0, 0));
        }
        let s = &mut self.per_slot[slot];
        s.0 += u64::from(items);
        s.1 += busy_ns;
    }

    /// The job's insights, given the slots' totals and pids now.
    pub(crate) fn insights(&self, started: Instant, now_totals: &[(Totals, u32)]) -> Insights {
        let workers = now_totals
            .iter()
            .enumerate()
            .map(|(slot, (now, pid))| {
                let base = self
                    .base
                    .as_ref()
                    .and_then(|b| b.get(slot).copied())
                    .unwrap_or_default();
                let (items, busy_ns) = self.per_slot.get(slot).copied().unwrap_or((0, 0));
                let up = now.up.saturating_sub(base.up);
                let busy_all = now.busy_ns.saturating_sub(base.busy_ns);
                WorkerInsights {
                    slot,
                    pid: *pid,
                    items,
                    busy: Duration::from_nanos(busy_ns),
                    idle: up.saturating_sub(Duration::from_nanos(busy_all)),
                    starting: now.starting.saturating_sub(base.starting),
                    restarts: now.restarts.saturating_sub(base.restarts),
                }
            })
            .collect();
        Insights {
            elapsed: started.elapsed(),
            workers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(slot: usize, items: u64, busy_ms: u64) -> WorkerInsights {
        WorkerInsights {
            slot,
            pid: 100 + slot as u32,
            items,
            busy: Duration::from_millis(busy_ms),
            idle: Duration::from_millis(100 - busy_ms),
            starting: Duration::from_millis(3),
            restarts: slot as u32,
        }
    }

    #[test]
    fn sums_and_a_line_that_reads() {
        let i = Insights {
            elapsed: Duration::from_millis(100),
            workers: vec![worker(0, 480, 80), worker(1, 520, 90)],
        };
        assert_eq!(i.items(), 1000);
        assert_eq!(i.busy(), Duration::from_millis(170));
        assert!((i.utilization() - 0.85).abs() < 1e-9);
        assert_eq!(i.per_item(), Some(Duration::from_micros(170)));
        assert_eq!(
            i.to_string(),
            "1000 items in 0.10 s on 2 workers: 85% busy (170.0 us/item), items per worker \
             480-520, 6 ms starting, 1 restart"
        );
    }

    #[test]
    fn a_job_counts_its_own_items_and_the_span_of_the_rest() {
        let base = Totals {
            items: 10,
            busy_ns: 5_000_000,
            up: Duration::from_millis(50),
            starting: Duration::from_millis(4),
            restarts: 1,
        };
        let mut tally = JobTally {
            base: Some(vec![base]),
            ..JobTally::default()
        };
        tally.add(0, 7, 2_000_000);
        let now = Totals {
            items: 30,
            busy_ns: 9_000_000,
            up: Duration::from_millis(60),
            starting: Duration::from_millis(6),
            restarts: 2,
        };
        let i = tally.insights(Instant::now(), &[(now, 42)]);
        let w = &i.workers[0];
        assert_eq!((w.pid, w.items, w.busy), (42, 7, Duration::from_millis(2)));
        // 10 ms up in the job's span, 4 ms of it busy (with this job and others).
        assert_eq!(w.idle, Duration::from_millis(6));
        assert_eq!((w.starting, w.restarts), (Duration::from_millis(2), 1));
    }
}
