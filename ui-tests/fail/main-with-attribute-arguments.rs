#[spychro::main(foo)]
fn main() {}
