struct Cache;
struct Counter;

#[spychro::job]
fn both(x: u64, cache: &mut Cache, counter: &mut Counter) -> u64 {
    let _ = (cache, counter);
    x
}

fn main() {}
