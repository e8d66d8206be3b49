// Iterating a borrowed collection gives references; a job takes owned items.
#[spychro::job]
fn plus_one(x: u64) -> u64 {
    x + 1
}

fn main() {
    let xs = vec![1u64, 2, 3];
    let _ = spychro::Job::new(plus_one, &xs).run_single_processed();
}
