// A `&mut` parameter after the item is the job's per-worker state: its type must say how a
// worker builds it.
#[spychro::job]
fn bump(x: u64, counter: &mut u64) -> u64 {
    *counter += 1;
    x
}

fn main() {
    let _ = spychro::Job::new(bump, [1u64]).run_single_processed();
}
