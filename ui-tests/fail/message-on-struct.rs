// `#[derive(spychro::Message)]` only goes on an enum: each variant is a message kind.
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, spychro::Message)]
struct Note {
    text: String,
}

fn main() {}
