// An extra argument taken by value is cloned for each item, so it must be Clone; taking it
// by reference (`table: &Table`) needs no Clone.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Table(Vec<u64>);

#[spychro::job]
fn lookup(x: usize, table: Table) -> u64 {
    table.0[x]
}

fn main() {}
