// A job has one context.
use spychro::Ctx;

#[spychro::job]
fn f(x: u64, a: &Ctx<String>, b: &Ctx<u64>) -> u64 {
    a.send(x.to_string());
    b.send(x);
    x
}

fn main() {}
