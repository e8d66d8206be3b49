// A job stays an ordinary function, and all three modes give the same outputs.
use spychro::Job;

#[spychro::job]
fn plus_one(x: u64) -> u64 {
    x + 1
}

fn main() {
    assert_eq!(plus_one(3), 4);
    let f: fn(u64) -> u64 = *plus_one;
    assert_eq!(f(41), 42);

    let single = Job::new(plus_one, 0..1000u64).run_single_processed().unwrap();
    let multi = Job::new(plus_one, 0..1000u64)
        .processes(2)
        .run_multi_processed()
        .unwrap();
    let threaded = Job::new(plus_one, 0..1000u64)
        .processes(2)
        .run_multi_threaded()
        .unwrap();
    assert_eq!(single, (1..=1000u64).collect::<Vec<_>>());
    assert_eq!(multi, single);
    assert_eq!(threaded, single);
}
