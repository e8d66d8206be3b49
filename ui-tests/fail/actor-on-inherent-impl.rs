// `#[spychro::actor]` goes on the `impl Actor for T` block, not on an inherent impl.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Counter {
    sum: u64,
}

#[spychro::actor]
impl Counter {
    fn add(&mut self, n: u64) {
        self.sum += n;
    }
}

fn main() {
    let mut c = Counter { sum: 0 };
    c.add(1);
}
