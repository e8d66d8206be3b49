#[spychro::job]
fn answer() -> u64 {
    42
}

fn main() {}
