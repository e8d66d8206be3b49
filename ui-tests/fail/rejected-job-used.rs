// A rejected `#[job]` (here: an async fn) still defines its name, with the types it declares,
// so later uses of it type-check: the attribute's error is the only one.
use spychro::Job;

#[spychro::job]
async fn fetch(x: u64) -> u64 {
    x + 1
}

fn main() {
    let out: Vec<u64> = Job::new(fetch, vec![1, 2, 3])
        .processes(2)
        .run_multi_processed()
        .unwrap();
    let one: u64 = fetch(3);
    println!("{out:?} {one}");
}
