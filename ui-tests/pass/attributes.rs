//! Doc comments, `#[cfg(...)]` and other attributes on a job are kept, and the generated
//! items need no docs of their own.
#![deny(missing_docs)]

/// Jobs with attributes.
pub mod jobs {
    /// Adds one to the item.
    ///
    /// A second paragraph.
    #[spychro::job]
    #[cfg(all())]
    #[inline]
    pub fn plus_one(x: u64) -> u64 {
        x + 1
    }

    /// Never compiled: `cfg(any())` is false, so the job and its registration vanish. Its
    /// body would not even type-check.
    #[spychro::job]
    #[cfg(any())]
    pub fn gone(x: u64) -> u64 {
        x + "not a number"
    }

    /// The old way to measure a string.
    #[spychro::job]
    #[deprecated = "use `str::len`"]
    #[allow(clippy::needless_pass_by_value)]
    pub fn old_len(s: String) -> usize {
        s.len()
    }
}

#[cfg(all())]
#[spychro::job]
fn cfg_before_job(x: u8) -> u8 {
    x
}

#[allow(deprecated)]
fn main() {
    assert_eq!(jobs::plus_one(1), 2);
    let out = spychro::Job::new(jobs::plus_one, 0..3u64)
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, [1, 2, 3]);
    let out = spychro::Job::new(jobs::old_len, vec!["ab".to_string()])
        .run_multi_processed()
        .unwrap();
    assert_eq!(out, [2]);
    assert_eq!(
        spychro::Job::new(cfg_before_job, [7]).run_single_processed().unwrap(),
        [7]
    );
}
