// The handler's message type must be the job's.
use spychro::{Ctx, Job};

#[spychro::job]
fn f(x: u64, ctx: &Ctx<String>) -> u64 {
    ctx.send(x.to_string());
    x
}

fn main() {
    let _ = Job::new(f, 0..3u64)
        .on_message(|_pid, n: u64| println!("{n}"))
        .run_multi_processed();
}
