// `#[spychro::actor]` registers an `impl Actor` (or `impl Logger`) block; a `Task` takes
// `#[spychro::task]`.
use serde::{Deserialize, Serialize};
use spychro::Task;

#[derive(Serialize, Deserialize)]
struct Square(u64);

#[spychro::actor]
impl Task for Square {
    type Output = u64;
    fn run(self) -> u64 {
        self.0 * self.0
    }
}

fn main() {}
