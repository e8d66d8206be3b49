// A supervisor's message enum cannot be generic: every process decodes one concrete type.
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, spychro::Message)]
enum Note<T> {
    Value(T),
    Tick,
}

fn main() {}
