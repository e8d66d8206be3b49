// A `pub` job in a nested module, used from main.
mod outer {
    pub mod inner {
        #[spychro::job]
        pub fn triple(x: u64) -> u64 {
            x * 3
        }
    }
}

use outer::inner::triple;

fn main() {
    assert_eq!(outer::inner::triple(2), 6);
    let out = spychro::Job::new(outer::inner::triple, 0..5u64)
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, [0, 3, 6, 9, 12]);
    let out = spychro::Job::new(triple, 0..5u64).run_single_processed().unwrap();
    assert_eq!(out, [0, 3, 6, 9, 12]);
}
