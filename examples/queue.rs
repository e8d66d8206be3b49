//! Producers and consumers across processes, as pymulproc and `multiprocessing.JoinableQueue`
//! do it: several producers and consumers on one queue, every message taken exactly once,
//! `join` until all work is done, then a poison pill that cannot be lost (closing the queue
//! ends every consumer's `recv`); and a duplex pipe for a request/answer conversation.
//!
//! ```text
//! cargo run --release --example queue
//! ```

use spychro::{PipeEnd, Process, ProcessList, Receiver, Sender};

#[spychro::job]
fn producer(tx: Sender<u64>, range: (u64, u64)) {
    for x in range.0..range.1 {
        tx.send(x).expect("the queue is open");
    }
    println!(
        "{} produced {}..{}",
        spychro::current_process().name,
        range.0,
        range.1
    );
}

#[spychro::job]
fn consumer(rx: Receiver<u64>) -> (u64, u64) {
    let (mut count, mut sum) = (0, 0);
    // Ends with Err(Disconnected) once the queue is closed and drained: the poison pill.
    while let Ok(x) = rx.recv() {
        count += 1;
        sum += x * x;
        rx.task_done().expect("one task_done per message taken");
    }
    (count, sum)
}

/// Answers requests until the other end goes away.
#[spychro::job]
fn square_server(end: PipeEnd<u64, u64>) -> u64 {
    let mut served = 0;
    while let Ok(x) = end.recv() {
        end.send(x * x).expect("the caller listens");
        served += 1;
    }
    served
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = 20_000u64;
    let (tx, rx) = spychro::queue::<u64>()?;

    let mut consumers: Vec<Process<consumer>> = (0..3)
        .map(|i| Process::new(consumer, rx.clone()).name(format!("consumer-{i}")))
        .collect();
    drop(rx); // the consumers hold every receiver: if they all die, join says so
    for c in &mut consumers {
        c.start()?;
    }

    let mut producers = ProcessList::new();
    for i in 0..2 {
        let range = (i * n / 2, (i + 1) * n / 2);
        producers
            .add(Process::with_args(producer, tx.clone(), range).name(format!("producer-{i}")));
    }
    producers.start()?;
    producers.join()?;

    tx.join()?; // every message taken and marked done (an error if every consumer died)
    tx.close(); // the poison pill for every consumer at once
    let (mut count, mut sum) = (0, 0);
    for c in &mut consumers {
        let (k, s) = c.join()?;
        println!("{} took {k} messages", c.get_name());
        count += k;
        sum += s;
    }
    let expected: u64 = (0..n).map(|x| x * x).sum();
    println!("{count} messages, each exactly once: checksum {sum} (expected {expected})");
    assert_eq!((count, sum), (n, expected));

    let (ours, theirs) = spychro::pipe::<u64, u64>()?;
    let mut server = Process::new(square_server, theirs).name("square-server");
    server.start()?;
    for x in [3, 4, 12] {
        ours.send(x)?;
        println!("{x}^2 = {}", ours.recv()?);
    }
    drop(ours); // the server's recv ends
    println!("the server answered {} requests", server.join()?);
    Ok(())
}
