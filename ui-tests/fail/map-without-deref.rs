// A job's name is a constant that derefs to a function pointer: where a function value is
// needed, as in `Iterator::map`, write `*plus_one`.
#[spychro::job]
fn plus_one(x: u64) -> u64 {
    x + 1
}

fn main() {
    let out: Vec<u64> = (0..3u64).map(plus_one).collect();
    println!("{out:?}");
}
