// `#[message(...)]` knows only `parent = Variant`; `father` is a typo.
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, spychro::Message)]
enum Note {
    A,
    #[message(father = A)]
    B,
}

fn main() {}
