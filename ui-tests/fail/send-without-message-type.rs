// A bare `&Ctx` carries `()` messages; sending something else is a type error at the call.
use spychro::Ctx;

#[spychro::job]
fn f(x: u64, ctx: &Ctx) -> u64 {
    ctx.send(x);
    x
}

fn main() {}
