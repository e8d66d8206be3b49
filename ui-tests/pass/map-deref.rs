// `*job` is a plain fn pointer, usable where a function value is needed.
#[spychro::job]
fn plus_one(x: u64) -> u64 {
    x + 1
}

#[spychro::job]
fn scale(x: u64, factor: &u64) -> u64 {
    x * factor
}

fn main() {
    let out: Vec<u64> = (0..5u64).map(*plus_one).collect();
    assert_eq!(out, [1, 2, 3, 4, 5]);
    let out: Vec<u64> = (0..5u64).map(|x| scale(x, &10)).collect();
    assert_eq!(out, [0, 10, 20, 30, 40]);
    let f: fn(u64, &u64) -> u64 = *scale;
    assert_eq!(f(2, &3), 6);
}
