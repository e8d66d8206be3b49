// A job returning `Result<T, E>` reports `Err` as the item's failure, so `E` must be Display.
#[derive(Debug)]
struct Oops;

#[spychro::job]
fn check(x: u64) -> Result<u64, Oops> {
    if x > 3 { Err(Oops) } else { Ok(x) }
}

fn main() {}
