#[spychro::job]
fn plus_one(x: u64) -> u64 {
    x + 1
}

fn main() {
    let _ = spychro::Job::new(plus_one, vec!["a"]);
}
