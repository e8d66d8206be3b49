#[spychro::job]
fn scale(x: u64, factor: u64, offset: &u64) -> u64 {
    x * factor + offset
}

fn main() {
    let _ = spychro::Job::new(scale, 0..10u64)
        .args(("ten", 5u64))
        .run_single_processed();
}
