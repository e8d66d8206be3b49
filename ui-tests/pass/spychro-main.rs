// `#[spychro::main]` on main: the program works, and workers never run main.
#[spychro::job]
fn plus_one(x: u64) -> u64 {
    x + 1
}

#[spychro::main]
fn main() {
    let out = spychro::Job::new(plus_one, 0..100u64)
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out.len(), 100);
    assert_eq!(out[99], 100);
}
