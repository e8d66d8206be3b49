#[spychro::job]
extern "C" fn plus_one(x: u64) -> u64 {
    x + 1
}

fn main() {}
