// Patterns in parameters (`mut x`, tuples, `_`), and a job that returns nothing.
use spychro::Job;

#[spychro::job]
fn sum((a, b): (u32, u32)) -> u32 {
    a + b
}

#[spychro::job]
fn countdown(mut x: u64, _: u8) -> u64 {
    let mut steps = 0;
    while x > 0 {
        x /= 2;
        steps += 1;
    }
    steps
}

#[spychro::job]
fn check(x: u64) {
    assert!(x < 100);
}

fn main() {
    let out = Job::new(sum, [(1, 2), (3, 4)]).run_multi_processed().unwrap();
    assert_eq!(out, [3, 7]);
    let out = Job::new(countdown, [0, 1, 8]).args(0).run_multi_processed().unwrap();
    assert_eq!(out, [0, 1, 4]);
    let out: Vec<()> = Job::new(check, 0..10u64).run_multi_processed().unwrap();
    assert_eq!(out.len(), 10);
    let err = Job::new(check, [1, 200]).run_single_processed().unwrap_err();
    assert_eq!(err.item().unwrap().index(), 1);
}
