//! Plain types: values that are exactly their bytes (integers, floats, arrays of them). A job
//! whose item and output types are both plain skips serialization in worker processes: its
//! items and outputs travel through memory the caller shares with each worker (see
//! `engine/README.md`, "Plain jobs"), not through the socket.
//!
//! Whether a type is plain is chosen for each job by `#[job]`'s expansion, by autoref
//! specialisation (as `describe.rs` does for `Debug`), so every other type keeps working
//! through serde unchanged.

use std::marker::PhantomData;

/// A type whose values are their bytes: no padding, no pointers, no `Drop`, and every bit
/// pattern of its size a valid value. A job whose item and output types both implement it
/// moves them between processes by copying memory the caller shares with its workers,
/// without serializing them (a few times less CPU per item for small items).
///
/// It is implemented for the integer and float types, `()`, and arrays of plain types. You may
/// implement it for a `#[repr(C)]` or `#[repr(transparent)]` type of your own that meets the
/// rules above; such a type must still implement `Serialize` and `Deserialize` (other paths,
/// such as the threaded and cluster runs, use them).
///
/// # Safety
///
/// The type must have no padding bytes, hold no pointers or references, have no `Drop`, and
/// be valid for every bit pattern of its size: a worker reads it from shared memory as raw
/// bytes. (`bool`, `char` and enums are therefore not plain.)
///
/// ```
/// use spychro::{Job, Plain};
///
/// #[derive(Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// #[repr(C)]
/// struct Point { x: f64, y: f64 }
/// // SAFETY: two f64s, no padding, any bits are a valid value.
/// unsafe impl Plain for Point {}
///
/// #[spychro::job]
/// fn norm(p: Point) -> f64 { (p.x * p.x + p.y * p.y).sqrt() }
///
/// let points = vec![Point { x: 3.0, y: 4.0 }, Point { x: 6.0, y: 8.0 }];
/// assert_eq!(Job::new(norm, points).run_single_processed().unwrap(), vec![5.0, 10.0]);
/// ```
pub unsafe trait Plain: Copy + Send + Sync + 'static {}

macro_rules! plain {
    ($($t:ty),*) => { $(
        // SAFETY: primitive numbers: no padding, every bit pattern valid.
        unsafe impl Plain for $t {}
    )* };
}
plain!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    ()
);

// SAFETY: an array of plain values has no padding between them and no other bytes.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// The sizes of a plain job's item and output, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlainSizes {
    pub(crate) item: u32,
    pub(crate) output: u32,
}

impl PlainSizes {
    /// Both sizes, when both types are plain (and not absurdly large).
    pub(crate) fn of(item: Option<usize>, output: Option<usize>) -> Option<PlainSizes> {
        Some(PlainSizes {
            item: u32::try_from(item?).ok().filter(|&n| n <= MAX_PLAIN)?,
            output: u32::try_from(output?).ok().filter(|&n| n <= MAX_PLAIN)?,
        })
    }
}

/// Larger plain values go through serde: a batch of them would not fit shared memory well.
const MAX_PLAIN: u32 = 64 * 1024;

/// Holds a type for [`PlainYes`] / [`PlainNo`] method resolution (`#[job]` calls
/// `(&&Probe::<T>::NEW).spychro_plain_size()`).
pub struct Probe<T>(PhantomData<T>);

impl<T> Probe<T> {
    /// The probe.
    pub const NEW: Probe<T> = Probe(PhantomData);
}

/// Chosen for plain types.
pub trait PlainYes {
    /// The type's size.
    fn spychro_plain_size(&self) -> Option<usize>;
}

impl<T: Plain> PlainYes for &Probe<T> {
    fn spychro_plain_size(&self) -> Option<usize> {
        Some(std::mem::size_of::<T>())
    }
}

/// Chosen for every other type.
pub trait PlainNo {
    /// Nothing: the type is not plain.
    fn spychro_plain_size(&self) -> Option<usize>;
}

impl<T> PlainNo for Probe<T> {
    fn spychro_plain_size(&self) -> Option<usize> {
        None
    }
}

/// Reads plain value number `n` from `bytes` (values of `size` bytes back to back).
///
/// # Safety
/// `T` must be [`Plain`] and `size` its size (as `JobFn::plain` says for the job), and
/// `bytes` must hold at least `(n + 1) * size` bytes.
#[inline(always)]
pub(crate) unsafe fn read<T>(bytes: *const u8, n: usize, size: usize) -> T {
    // SAFETY: as the caller promises; unaligned, since values are packed.
    unsafe { bytes.add(n * size).cast::<T>().read_unaligned() }
}

/// Writes plain value `value` as number `n` into `bytes`.
///
/// # Safety
/// As [`read`], with `bytes` writable.
#[inline(always)]
pub(crate) unsafe fn write<T>(bytes: *mut u8, n: usize, size: usize, value: T) {
    // SAFETY: as the caller promises.
    unsafe { bytes.add(n * size).cast::<T>().write_unaligned(value) }
}
