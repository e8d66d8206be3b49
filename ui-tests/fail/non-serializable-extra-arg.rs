// Extra arguments travel to workers, so they must be Serialize + Deserialize.
struct Table(Vec<u64>);

#[spychro::job]
fn lookup(x: usize, table: &Table) -> u64 {
    table.0[x]
}

fn main() {}
