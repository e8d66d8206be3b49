// `.args(...)` on a job that takes no extra arguments.
#[spychro::job]
fn plus_one(x: u64) -> u64 {
    x + 1
}

fn main() {
    let _ = spychro::Job::new(plus_one, 0..10u64).args(5u64).run_single_processed();
}
