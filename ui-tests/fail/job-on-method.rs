// A method (a fn with a receiver) cannot be a job.
struct S;

impl S {
    #[spychro::job]
    fn f(&self, x: u8) -> u8 {
        x
    }
}

fn main() {
    let _ = S.f(1);
}
