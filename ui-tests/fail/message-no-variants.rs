// A message enum needs at least one variant: an empty enum has no message kinds.
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, spychro::Message)]
enum Nothing {}

fn main() {}
