// Named lifetime parameters are rejected too; elided ones (`&u64`) are fine.
#[spychro::job]
fn first<'a>(x: &'a u64) -> u64 {
    *x
}

fn main() {}
