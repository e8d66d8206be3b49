#[spychro::job]
fn show(x: u64) -> impl std::fmt::Display {
    x
}

fn main() {}
