// A closure cannot be run by a Job: workers find jobs by their registered name.
fn main() {
    let _ = spychro::Job::new(|x: u64| x + 1, 0..10u64);
}
