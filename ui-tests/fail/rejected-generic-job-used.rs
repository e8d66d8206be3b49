// A rejected generic `#[job]`: its types cannot be written outside the function, so its name
// accepts any use. The attribute's error is the only one.
use spychro::Job;

#[spychro::job]
fn double<T: std::ops::Add<Output = T> + Copy>(x: T, times: &T) -> T {
    x + x + *times
}

fn main() {
    let out: Vec<u64> = Job::new(double, 0..3u64).args(1).run_multi_processed().unwrap();
    let two: u64 = double(3u64, &1);
    println!("{out:?} {two}");
}
