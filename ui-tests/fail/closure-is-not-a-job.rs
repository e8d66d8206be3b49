// A closure cannot be run by a Job: workers find jobs by their registered name. The later
// call adds no error.
fn main() {
    let _ = spychro::Job::new(|x: u64| x + 1, 0..10u64).run_single_processed();
}
