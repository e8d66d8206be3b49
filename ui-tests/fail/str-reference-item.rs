// `&str` as the item: the owned type would be `str`, which is not sized; the item must be
// an owned type such as `String`.
#[spychro::job]
fn len(s: &str) -> usize {
    s.len()
}

fn main() {}
