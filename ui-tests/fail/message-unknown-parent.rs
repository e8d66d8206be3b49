// `#[message(parent = ...)]` must name another variant of the same enum.
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, spychro::Message)]
enum Note {
    Text(String),
    #[message(parent = Nope)]
    Shout(String),
}

fn main() {}
