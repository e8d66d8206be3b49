// Independent misuses of one fn are all reported at once.
#[spychro::job]
async unsafe fn f<T>(x: T, y: &mut u64, z: impl Copy) -> u64 {
    *y
}

fn main() {}
