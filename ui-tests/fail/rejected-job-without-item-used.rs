// A rejected `#[job]` without an item parameter: its item type is unknown, so any items are
// accepted by later uses, and the attribute's error is the only one.
#[spychro::job]
fn answer() -> u64 {
    42
}

fn main() {
    let out = spychro::Job::new(answer, 0..3).run_single_processed().unwrap();
    println!("{out:?} {}", answer());
}
