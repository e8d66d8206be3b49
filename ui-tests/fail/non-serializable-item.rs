// The item travels to workers, so it must be Serialize + Deserialize.
struct Point {
    x: i32,
    y: i32,
}

#[spychro::job]
fn norm(p: Point) -> i32 {
    p.x.abs() + p.y.abs()
}

fn main() {}
