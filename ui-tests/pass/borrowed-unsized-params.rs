// Borrowed unsized parameters travel as their owned form (`&str` as `String`, `&[T]` as
// `Vec<T>`, `&Path` as `PathBuf`) and are borrowed again for the call.
use std::path::{Path, PathBuf};

use spychro::Job;

#[spychro::job]
fn describe(name: &str, weights: &[u32], root: &Path) -> String {
    format!("{}:{}:{}", root.join(name).display(), name.len(), weights.iter().sum::<u32>())
}

fn main() {
    assert_eq!(describe("ab", &[1, 2], Path::new("/r")), "/r/ab:2:3");
    let names: Vec<String> = vec!["x".into(), "yz".into()];
    let args = (vec![5u32, 6], PathBuf::from("/data"));
    let multi = Job::new(describe, names.clone())
        .args(args.clone())
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert_eq!(multi, ["/data/x:1:11", "/data/yz:2:11"]);
    let single = Job::new(describe, names).args(args).run_single_processed().unwrap();
    assert_eq!(multi, single);
}
