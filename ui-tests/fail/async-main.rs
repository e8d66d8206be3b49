#[spychro::main]
async fn main() {}
