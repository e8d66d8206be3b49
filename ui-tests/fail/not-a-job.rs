// A plain function without `#[spychro::job]` cannot be run by a Job; the later call adds no
// error.
fn plus_one(x: u64) -> u64 {
    x + 1
}

fn main() {
    let _ = spychro::Job::new(plus_one, 0..10u64).run_multi_processed();
}
