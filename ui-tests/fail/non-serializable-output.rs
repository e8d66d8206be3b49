// The output travels back from workers, so it must be Serialize + Deserialize.
struct Point {
    x: i32,
    y: i32,
}

#[spychro::job]
fn point(x: i32) -> Point {
    Point { x, y: 0 }
}

fn main() {}
