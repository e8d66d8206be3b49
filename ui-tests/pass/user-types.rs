// Items and outputs of user types with serde derives: a struct and an enum.
use serde::{Deserialize, Serialize};
use spychro::Job;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Dot(Point),
    Segment { from: Point, to: Point },
    Nothing,
}

#[spychro::job]
fn length(shape: Shape) -> Option<Point> {
    match shape {
        Shape::Dot(_) => Some(Point { x: 0, y: 0 }),
        Shape::Segment { from, to } => Some(Point {
            x: to.x - from.x,
            y: to.y - from.y,
        }),
        Shape::Nothing => None,
    }
}

#[spychro::job]
fn shift(p: Point, by: &Point) -> Shape {
    Shape::Dot(Point {
        x: p.x + by.x,
        y: p.y + by.y,
    })
}

fn main() {
    let shapes = vec![
        Shape::Dot(Point { x: 1, y: 2 }),
        Shape::Segment {
            from: Point { x: 1, y: 1 },
            to: Point { x: 4, y: 5 },
        },
        Shape::Nothing,
    ];
    let expected = vec![
        Some(Point { x: 0, y: 0 }),
        Some(Point { x: 3, y: 4 }),
        None,
    ];
    let multi = Job::new(length, shapes.clone())
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert_eq!(multi, expected);
    assert_eq!(Job::new(length, shapes).run_single_processed().unwrap(), expected);

    let points = (0..3).map(|i| Point { x: i, y: -i });
    let out = Job::new(shift, points)
        .args(Point { x: 10, y: 10 })
        .run_multi_processed()
        .unwrap();
    assert_eq!(out[2], Shape::Dot(Point { x: 12, y: 8 }));
}
