//! Channels between real processes: a conversation over a pipe, queues in every shape with
//! exactly-once delivery, task_done/join, timeouts, a reader that dies, a peer that dies,
//! addressed mailboxes and their shutdown, and a 4x4 stress test of 100k messages.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use spychro::{ChannelError, Mailbox, PipeEnd, Process, ProcessList, Receiver, Sender};

#[spychro::job]
fn doubler(end: PipeEnd<u64, u64>) -> u64 {
    let mut n = 0;
    while let Ok(x) = end.recv() {
        end.send(&(x * 2)).unwrap();
        n += 1;
    }
    n
}

#[test]
fn a_pipe_carries_a_conversation_and_ends_when_a_side_goes() {
    let (ours, theirs) = spychro::pipe::<u64, u64>().unwrap();
    let mut child = Process::new(doubler, theirs);
    child.start().unwrap();
    for x in 0..100 {
        ours.send(&x).unwrap();
        assert_eq!(ours.recv().unwrap(), 2 * x);
    }
    assert!(matches!(
        ours.recv_timeout(Duration::from_millis(50)),
        Err(ChannelError::Timeout(_))
    ));
    drop(ours);
    assert_eq!(child.join().unwrap(), 100);
}

#[spychro::job]
fn die_holding(end: PipeEnd<u64, u64>) {
    let _keep = end;
    std::process::abort();
}

#[test]
fn a_dead_peer_ends_a_waiting_receive_with_an_error() {
    let (ours, theirs) = spychro::pipe::<u64, u64>().unwrap();
    let mut child = Process::new(die_holding, theirs);
    child.start().unwrap();
    let started = Instant::now();
    assert!(matches!(ours.recv(), Err(ChannelError::Disconnected)));
    assert!(started.elapsed() < Duration::from_secs(10));
    let _ = child.join();
    assert_eq!(child.exit_code(), Some(-6));
    // Sending to a dead peer is an error too, not a hang or a SIGPIPE.
    assert!(matches!(ours.send(&1), Err(ChannelError::Disconnected)));
}

/// Takes messages until the queue closes; returns (count, sum) and marks each done.
#[spychro::job]
fn consumer(rx: Receiver<u64>) -> (u64, u64) {
    let (mut n, mut sum) = (0, 0);
    while let Ok(x) = rx.recv() {
        n += 1;
        sum += x;
        rx.task_done();
    }
    (n, sum)
}

#[spychro::job]
fn producer(tx: Sender<u64>, range: (u64, u64)) {
    for x in range.0..range.1 {
        tx.send(&x).unwrap();
    }
}

#[test]
fn four_producers_and_four_consumers_move_100k_messages_exactly_once() {
    let (tx, rx) = spychro::queue::<u64>().unwrap();
    let n = 100_000u64;
    let mut consumers: Vec<Process<consumer>> =
        (0..4).map(|_| Process::new(consumer, rx.clone())).collect();
    drop(rx);
    let mut producers = ProcessList::new();
    for p in 0..4 {
        let range = (p * n / 4, (p + 1) * n / 4);
        producers.add(Process::with_args(producer, tx.clone(), range));
    }
    for c in &mut consumers {
        c.start().unwrap();
    }
    producers.start().unwrap();
    assert_eq!(producers.join().unwrap(), [Some(0); 4]);
    tx.join();
    drop(tx); // the last sender: consumers take what is left, then stop
    let (mut count, mut sum) = (0, 0);
    for c in &mut consumers {
        let (k, s) = c.join().unwrap();
        assert!(k > 0, "a consumer took nothing");
        count += k;
        sum += s;
    }
    assert_eq!(count, n);
    assert_eq!(sum, n * (n - 1) / 2);
}

#[test]
fn try_recv_recv_timeout_and_is_empty() {
    let (tx, rx) = spychro::queue::<String>().unwrap();
    assert!(rx.is_empty());
    assert!(matches!(rx.try_recv(), Err(ChannelError::Timeout(_))));
    let started = Instant::now();
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(100)),
        Err(ChannelError::Timeout(_))
    ));
    assert!(started.elapsed() >= Duration::from_millis(100));
    tx.send(&"a".to_string()).unwrap();
    assert!(!rx.is_empty());
    assert_eq!(rx.try_recv().unwrap(), "a");
    assert!(rx.is_empty());
    tx.close();
    assert!(matches!(rx.recv(), Err(ChannelError::Disconnected)));
    assert!(matches!(
        tx.send(&"b".into()),
        Err(ChannelError::Disconnected)
    ));
    // One message is too big: a clear error, the queue goes on.
    let (tx, rx) = spychro::queue::<Vec<u8>>().unwrap();
    assert!(matches!(
        tx.send(&vec![0; 1 << 20]),
        Err(ChannelError::TooLarge { .. })
    ));
    tx.send(&vec![7; 10]).unwrap();
    assert_eq!(rx.recv().unwrap(), [7; 10]);
}

/// Takes one message, then dies without marking it done.
#[spychro::job]
fn take_one_and_die(rx: Receiver<u64>) {
    let _ = rx.recv();
    std::process::abort();
}

#[test]
fn a_receiver_that_dies_loses_only_what_it_took() {
    let (tx, rx) = spychro::queue::<u64>().unwrap();
    for x in 0..10 {
        tx.send(&x).unwrap();
    }
    let mut victim = Process::new(take_one_and_die, rx.clone());
    victim.start().unwrap();
    let _ = victim.join();
    assert_eq!(victim.exit_code(), Some(-6));
    tx.close();
    let mut rest = Vec::new();
    while let Ok(x) = rx.recv() {
        rest.push(x);
    }
    assert_eq!(rest, (1..10).collect::<Vec<_>>());
}

#[test]
fn join_waits_until_every_message_is_done() {
    let (tx, rx) = spychro::queue::<u64>().unwrap();
    let mut c = Process::new(consumer, rx.clone());
    drop(rx);
    c.start().unwrap();
    for x in 0..1000 {
        tx.send(&x).unwrap();
    }
    tx.join();
    // Everything sent was taken and marked done before join returned.
    tx.close();
    assert_eq!(c.join().unwrap(), (1000, 999 * 500));
}

#[spychro::job]
fn mailbox_reader(mailbox: Mailbox<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut got = Vec::new();
    while let Ok(m) = mailbox.recv() {
        assert_eq!(
            m.0,
            mailbox.id(),
            "a message for {} reached {}",
            m.0,
            mailbox.id()
        );
        got.push(m);
    }
    got
}

#[test]
fn addressed_messages_reach_only_their_recipient_and_close_reaches_all() {
    let ids = [11u64, 22, 33];
    let (post, boxes) = spychro::postbox::<(u64, u64)>(ids).unwrap();
    let mut readers: Vec<Process<mailbox_reader>> = boxes
        .into_iter()
        .map(|b| Process::new(mailbox_reader, b))
        .collect();
    for r in &mut readers {
        r.start().unwrap();
    }
    for seq in 0..300u64 {
        let to = ids[(seq % 3) as usize];
        post.send_to(to, &(to, seq)).unwrap();
    }
    assert!(matches!(
        post.send_to(44, &(44, 0)),
        Err(ChannelError::UnknownRecipient(44))
    ));
    post.close();
    let mut per: HashMap<u64, Vec<u64>> = HashMap::new();
    for r in &mut readers {
        for (id, seq) in r.join().unwrap() {
            per.entry(id).or_default().push(seq);
        }
    }
    for (k, id) in ids.iter().enumerate() {
        let expected: Vec<u64> = (0..300).filter(|s| s % 3 == k as u64).collect();
        assert_eq!(per[id], expected, "recipient {id}");
    }
}

#[test]
fn channel_ends_cannot_travel_to_pool_workers() {
    #[spychro::job]
    fn hold(rx: Receiver<u64>) -> u64 {
        rx.recv().unwrap_or(0)
    }
    let (_tx, rx) = spychro::queue::<u64>().unwrap();
    let err = spychro::Job::new(hold, [rx])
        .run_multi_processed()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("a channel end can only be given to a child through Process::new"),
        "{err}"
    );
}
