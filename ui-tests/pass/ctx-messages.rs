// A context anywhere after the item, with or without a message type; messages reach the
// handler in every mode; a job with a context is still callable with a detached context.
use serde::{Deserialize, Serialize};
use spychro::{Ctx, Job};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Note {
    Start(u64),
    Done { item: u64, value: u64 },
}

#[spychro::job]
fn square(x: u64, ctx: &Ctx<Note>, offset: u64) -> u64 {
    ctx.send(Note::Start(x));
    let sq = x * x + offset;
    ctx.send(Note::Done { item: ctx.index(), value: sq });
    ctx.progress(1.0);
    sq
}

#[spychro::job]
fn quiet(x: u64, ctx: &Ctx) -> u64 {
    ctx.progress(0.5);
    x
}

fn main() {
    assert_eq!(square(3, &Ctx::detached(), 1), 10);
    assert_eq!(quiet(4, &Ctx::detached()), 4);
    for mode in 0..3 {
        let mut notes = Vec::new();
        let job = Job::new(square, 0..4u64)
            .args(1)
            .on_message(|_pid, n: Note| notes.push(n));
        let out = match mode {
            0 => job.run_single_processed(),
            1 => job.run_multi_threaded(),
            _ => job.run_multi_processed(),
        }
        .unwrap();
        assert_eq!(out, [1, 2, 5, 10]);
        assert_eq!(notes.len(), 8);
        assert!(notes.contains(&Note::Done { item: 3, value: 10 }));
    }
    let mut halves = 0;
    Job::new(quiet, 0..3u64)
        .on_progress(|_, _, f| if f == 0.5 { halves += 1 })
        .run_multi_processed()
        .unwrap();
    assert_eq!(halves, 3);
}
