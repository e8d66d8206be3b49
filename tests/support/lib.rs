//! Helpers shared by spychro's integration tests and examples: observing processes from the
//! outside (`/proc`), so tests assert on what really happened.

use std::path::Path;

/// Whether a process with this pid exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pids of this process's children that are still alive or not yet reaped.
pub fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let mut all: Vec<u32> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    // Children of other threads of this process are listed under their own task.
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let tid = t.file_name();
            if tid.to_string_lossy() == pid.to_string() {
                continue;
            }
            let p = t.path().join("children");
            all.extend(
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    all.sort_unstable();
    all.dedup();
    all
}

/// A field of `/proc/self/status` in KiB, such as `VmHWM` (peak resident memory).
pub fn status_kib(field: &str) -> Option<u64> {
    status_kib_of(Path::new("/proc/self/status"), field)
}

fn status_kib_of(path: &Path, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// The text of line `line` of item `item` that the probe's `chatty` job prints (without its
/// header): its length and letters depend on both, so that a cut or spliced line shows.
pub fn chatty_payload(item: u64, line: u64) -> String {
    let len = 200 + ((item * 7919 + line * 104_729) % 1800) as usize;
    let start = ((item * 31 + line) % 26) as u8;
    (0..len)
        .map(|i| (b'a' + (start + (i % 26) as u8) % 26) as char)
        .collect()
}

/// Jobs that cluster tests run: the caller (a test) and the hosts (`spychro-probe
/// cluster-host`) are two programs, and both link this library, so the jobs have the same
/// registered names and signatures in both.
pub mod cluster_jobs {
    /// `x * x`.
    #[spychro::job]
    pub fn square(x: u64) -> u64 {
        x * x
    }

    /// `x * x` after `ms` milliseconds of work; aborts the process on `x == abort_at`.
    #[spychro::job]
    pub fn slow_square(x: u64, ms: u64, abort_at: u64) -> u64 {
        if x == abort_at {
            std::process::abort();
        }
        std::thread::sleep(std::time::Duration::from_millis(ms));
        x * x
    }

    /// Sends `x` to the caller, reports the item done, and logs `item X` at info level;
    /// returns `x`.
    #[spychro::job]
    pub fn chatter(x: u64, ctx: &spychro::Ctx<u64>) -> u64 {
        ctx.send(x);
        ctx.progress(1.0);
        log::info!("item {x}");
        x
    }

    /// `x` after `ms` milliseconds, logging `item X` at info level first.
    #[spychro::job]
    pub fn slow_chatter(x: u64, ms: u64) -> u64 {
        log::info!("item {x}");
        std::thread::sleep(std::time::Duration::from_millis(ms));
        x
    }

    /// `x`, or a panic (`item X refused`) when `x` is a multiple of `every`.
    #[spychro::job]
    pub fn refuse_multiples(x: u64, every: u64) -> u64 {
        assert!(!x.is_multiple_of(every), "item {x} refused");
        x
    }

    /// Counts the items one worker ran with it; its exit value is the count.
    pub struct Tally(u64);

    impl spychro::WorkerState<()> for Tally {
        type Exit = u64;
        fn init(_: &()) -> Result<Self, String> {
            Ok(Tally(0))
        }
        fn exit(self) -> u64 {
            self.0
        }
    }

    /// `x`, counted in the worker's [`Tally`].
    #[spychro::job]
    pub fn tallied(x: u64, tally: &mut Tally) -> u64 {
        tally.0 += 1;
        x
    }
}
