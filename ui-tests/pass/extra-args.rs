// Extra arguments by value (cloned per item) and by reference (borrowed from the worker's
// copy); the item itself may also be taken by reference.
use spychro::Job;

#[spychro::job]
fn f(x: u64, factor: u64, table: &Vec<u64>) -> u64 {
    x * factor + table[x as usize]
}

#[spychro::job]
fn offset(x: u64, by: u64) -> u64 {
    x + by
}

#[spychro::job]
fn length(s: &String, extra: &usize) -> usize {
    s.len() + *extra
}

fn main() {
    let table: Vec<u64> = (0..10).map(|i| i * 100).collect();
    assert_eq!(f(2, 3, &table), 206);

    let expected: Vec<u64> = (0..10).map(|x| x * 3 + x * 100).collect();
    let single = Job::new(f, 0..10u64)
        .args((3, table.clone()))
        .run_single_processed()
        .unwrap();
    let multi = Job::new(f, 0..10u64)
        .args((3, table.clone()))
        .processes(2)
        .run_multi_processed()
        .unwrap();
    let threaded = Job::new(f, 0..10u64)
        .args((3, table))
        .run_multi_threaded()
        .unwrap();
    assert_eq!(single, expected);
    assert_eq!(multi, expected);
    assert_eq!(threaded, expected);

    // One extra parameter takes the value itself, not a 1-tuple.
    let out = Job::new(offset, [1, 2, 3]).args(10).run_multi_processed().unwrap();
    assert_eq!(out, [11, 12, 13]);

    let words = vec!["a".to_string(), "bcd".to_string()];
    let out = Job::new(length, words).args(1).run_multi_processed().unwrap();
    assert_eq!(out, [2, 4]);
}
