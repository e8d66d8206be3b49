//! Helpers that `#[job]`'s expansion calls (through `__private`): the error text of a job's
//! `Err`, clones of by-value extra arguments, and a short `Debug` of an item when its type has
//! one (chosen by autoref specialisation, so items need not be `Debug`).

/// The error type of a job's `Result`: its `Display` becomes the item's failure message.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of a job's `Result` must implement `Display`",
    label = "not `Display`",
    note = "an `Err` returned by a job is reported as that item's failure with its \
            `Display` text (alternate form); implement `Display` or map the error"
)]
pub trait JobError {
    /// The failure message.
    fn message(&self) -> String;
}

impl<E: core::fmt::Display + ?Sized> JobError for E {
    fn message(&self) -> String {
        format!("{self:#}")
    }
}

/// An extra argument taken by value: cloned from the worker's copy for each item.
#[diagnostic::on_unimplemented(
    message = "extra argument `{Self}` is taken by value, so it is cloned for every item \
               and must implement `Clone`",
    label = "not `Clone`",
    note = "take it by reference (`&{Self}`) to borrow the worker's copy, or derive `Clone`"
)]
pub trait CloneArg {
    /// A clone for one call.
    fn clone_arg(&self) -> Self;
}

impl<T: Clone> CloneArg for T {
    fn clone_arg(&self) -> Self {
        self.clone()
    }
}

/// Holds an item for [`DescribeDebug`] / [`DescribeOpaque`] method resolution: items whose
/// type is `Debug` are described, others are not.
pub struct Describe<'a, T: ?Sized>(pub &'a T);

/// Chosen for `Debug` items.
pub trait DescribeDebug {
    /// A short `Debug` of the item.
    fn spychro_describe(&self) -> Option<String>;
}

impl<T: core::fmt::Debug + ?Sized> DescribeDebug for &Describe<'_, T> {
    fn spychro_describe(&self) -> Option<String> {
        Some(short_debug(self.0))
    }
}

/// Chosen for other items.
pub trait DescribeOpaque {
    /// Nothing.
    fn spychro_describe(&self) -> Option<String>;
}

impl<T: ?Sized> DescribeOpaque for Describe<'_, T> {
    fn spychro_describe(&self) -> Option<String> {
        None
    }
}

/// `Debug` of `value`, cut at 100 characters without formatting the rest.
fn short_debug<T: core::fmt::Debug + ?Sized>(value: &T) -> String {
    use core::fmt::Write;
    const LIMIT: usize = 100;
    struct Bounded(String);
    impl Write for Bounded {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for c in s.chars() {
                if self.0.len() >= LIMIT {
                    return Err(core::fmt::Error);
                }
                self.0.push(c);
            }
            Ok(())
        }
    }
    let mut out = Bounded(String::new());
    if write!(out, "{value:?}").is_err() {
        out.0.push('…');
    }
    out.0
}
