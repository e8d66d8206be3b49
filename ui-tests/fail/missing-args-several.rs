// Forgetting `.args(...)` and then setting an option: the error must still say what's missing.
#[spychro::job]
fn scale(x: u64, factor: u64, offset: &u64) -> u64 {
    x * factor + offset
}

fn main() {
    let _ = spychro::Job::new(scale, 0..10u64).processes(2).run_multi_processed();
}
