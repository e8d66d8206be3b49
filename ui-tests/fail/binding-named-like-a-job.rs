// A job's name is a constant in its module (that is what keeps `count(3)` callable and lets
// `Job::new(count, ...)` check types), so a `let` in the same module cannot reuse the name:
// Rust reads it as a constant pattern. Keep jobs in their own module, or name the binding
// differently.
#[spychro::job]
fn count(x: u64) -> u64 {
    x + 1
}

fn main() {
    let count = 3;
    println!("{count}");
}
