#[spychro::job]
async fn fetch(x: u64) -> u64 {
    x
}

fn main() {}
