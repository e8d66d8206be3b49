#[spychro::job]
fn bump(x: u64, counter: &mut u64) -> u64 {
    *counter += 1;
    x
}

fn main() {}
