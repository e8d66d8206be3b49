//! Turns panics inside job code into [`FailureKind::Panicked`] values with message, location
//! and backtrace, without printing them (the caller reports them).
//!
//! A panic hook is installed once; it records panics on threads that are running a job item
//! and hands every other panic to the hook that was installed before it.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use super::ctx::Ctx;
use super::job_fn::JobFn;
use crate::error::FailureKind;

/// What the hook saw of the last panic on this thread.
struct Captured {
    message: String,
    location: Option<String>,
    backtrace: Option<String>,
}

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static CAPTURED: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !CAPTURING.with(Cell::get) {
                return previous(info);
            }
            let message = info.payload_as_str().unwrap_or("Box<dyn Any>").to_owned();
            let location = info.location().map(|l| l.to_string());
            let bt = Backtrace::capture();
            let backtrace = (bt.status() == BacktraceStatus::Captured).then(|| bt.to_string());
            let captured = Captured {
                message,
                location,
                backtrace,
            };
            CAPTURED.with(|c| *c.borrow_mut() = Some(captured));
        }));
    });
}

/// While one lives, panics on this thread are recorded for [`run_captured`] instead of being
/// printed. A loop over many items holds one for all of them (the thread-local switch and
/// the hook check are then paid once, not per item); dropping it (also while unwinding)
/// restores what was there before.
pub(crate) struct Capturing {
    was: bool,
}

impl Capturing {
    pub(crate) fn start() -> Capturing {
        install_hook();
        Capturing {
            was: CAPTURING.with(|c| c.replace(true)),
        }
    }
}

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURING.with(|c| c.set(self.was));
    }
}

/// Runs `f`, turning a panic into a `Panicked` failure (recorded by the hook while a
/// [`Capturing`] lives).
#[inline(always)]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, FailureKind> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(panicked)
}

/// The failure for a panic whose payload was caught.
#[cold]
fn panicked(payload: Box<dyn std::any::Any + Send>) -> FailureKind {
    let captured = CAPTURED.with(|c| c.borrow_mut().take());
    // Without our hook's record (another hook replaced it), the payload is all we have.
    let Captured {
        message,
        location,
        backtrace,
    } = captured.unwrap_or_else(|| Captured {
        message: payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_owned()),
        location: None,
        backtrace: None,
    });
    // Dropping a payload can itself panic; keep that out of the caller.
    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
    FailureKind::Panicked {
        message,
        location,
        backtrace,
    }
}

/// Runs one item of job `F` the same way in every mode, while `capturing` records panics.
#[inline(always)]
pub(crate) fn run_captured<F: JobFn>(
    item: F::Item,
    args: &F::Args,
    state: &mut F::State,
    ctx: &Ctx<'_, F::Message>,
    _capturing: &Capturing,
) -> Result<F::Output, FailureKind> {
    match catch(|| F::call(item, args, state, ctx)) {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(message)) => Err(FailureKind::Returned { message }),
        Err(panicked) => Err(panicked),
    }
}

/// The text of a panic payload (a `&str` or a `String`; anything else is named as such).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned())
}
