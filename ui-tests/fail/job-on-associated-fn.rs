// An associated fn without a receiver, inside an impl block, cannot be a job either.
struct S;

impl S {
    #[spychro::job]
    fn f(x: u8) -> u8 {
        x
    }
}

fn main() {
    let _ = S::f(1);
}
