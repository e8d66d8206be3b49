use spychro::{Job, WorkerState};

struct Counter(u64);

impl WorkerState<u64> for Counter {
    type Exit = u64;
    fn init(start: &u64) -> Result<Self, String> {
        Ok(Counter(*start))
    }
    fn exit(self) -> u64 {
        self.0
    }
}

// The state may come before the context or after it, and after the extra arguments.
#[spychro::job]
fn count(x: u64, start: u64, counter: &mut Counter, ctx: &spychro::Ctx<String>) -> u64 {
    let _ = (start, ctx);
    counter.0 += 1;
    x
}

/// A state for a job without extra arguments.
struct Tally(u64);

impl WorkerState<()> for Tally {
    type Exit = ();
    fn init(_: &()) -> Result<Self, String> {
        Ok(Tally(0))
    }
    fn exit(self) {}
}

#[spychro::job]
fn count_first(x: u64, tally: &mut Tally) -> u64 {
    tally.0 += x;
    x
}

fn main() {
    let _ = Job::new(count, [1u64]).args(3).run_single_processed();
    let _ = Job::new(count_first, [1u64]).run_single_processed();
}
