// Items of another type than the job's first parameter: one error, at the items, that names
// the job and both types; the later calls add none.
#[spychro::job]
fn plus_one(x: u64) -> u64 {
    x + 1
}

fn main() {
    let _ = spychro::Job::new(plus_one, vec!["a".to_string()])
        .processes(2)
        .run_multi_processed();
}
