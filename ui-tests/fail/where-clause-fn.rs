// A where clause alone also makes a job generic in intent; the error must point at it.
#[spychro::job]
fn plus_one(x: u64) -> u64
where
    u64: Copy,
{
    x + 1
}

fn main() {}
