// `#[spychro::job]` only goes on functions.
#[spychro::job]
struct Config {
    factor: u64,
}

fn main() {
    let _ = Config { factor: 2 };
}
