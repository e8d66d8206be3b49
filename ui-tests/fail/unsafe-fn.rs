#[spychro::job]
unsafe fn read(x: u64) -> u64 {
    x
}

fn main() {}
