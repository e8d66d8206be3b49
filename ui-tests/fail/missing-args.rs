#[spychro::job]
fn scale(x: u64, factor: u64) -> u64 {
    x * factor
}

fn main() {
    let _ = spychro::Job::new(scale, 0..10u64).run_single_processed();
}
