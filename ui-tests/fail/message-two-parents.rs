// A message kind has at most one parent: `Shout` names two.
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, spychro::Message)]
enum Note {
    Text(String),
    Loud(String),
    #[message(parent = Text, parent = Loud)]
    Shout(String),
}

fn main() {}
