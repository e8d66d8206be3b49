//! trybuild UI tests for `#[spychro::job]`, `#[spychro::main]` and the `Job` builder, and for
//! the supervisor's `#[derive(spychro::Message)]`, `#[spychro::actor]` and `Supervisor::add`.
//!
//! `ui-tests/pass/` holds programs that must compile and run successfully (some start worker
//! processes, which re-execute the test binary). `ui-tests/fail/` holds misuses that must be
//! rejected at compile time; their `.stderr` snapshots pin the diagnostics, which must point
//! at the user's code and say what is wrong.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui-tests/pass/*.rs");
    t.compile_fail("ui-tests/fail/*.rs");
}
