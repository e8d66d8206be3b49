// The first parameter is the item: the context comes after it.
use spychro::Ctx;

#[spychro::job]
fn f(ctx: &Ctx<String>, x: u64) -> u64 {
    ctx.send(x.to_string());
    x
}

fn main() {}
