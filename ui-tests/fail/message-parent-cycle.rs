// Parent kinds may not form a cycle: here `A` is below `B` and `B` below `A`.
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, spychro::Message)]
enum Note {
    #[message(parent = B)]
    A,
    #[message(parent = A)]
    B,
    Tick,
}

fn main() {}
