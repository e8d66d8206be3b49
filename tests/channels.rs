//! Channels between real processes: a conversation over a pipe, queues in every shape with
//! exactly-once delivery, task_done/join (and a join whose consumers are gone), timeouts, a
//! reader that dies, a peer that dies, failed sends that hand the message back, addressed
//! mailboxes and their shutdown, and a 4x4 stress test of 100k messages.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use spychro::{
    JoinError, JoinTimeoutError, Mailbox, PipeEnd, Process, ProcessList, Receiver, RecvError,
    RecvTimeoutError, SendError, Sender, TaskDoneError, TryRecvError,
};

#[spychro::job]
fn doubler(end: PipeEnd<u64, u64>) -> u64 {
    let mut n = 0;
    while let Ok(x) = end.recv() {
        end.send(x * 2).unwrap();
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
        ours.send(x).unwrap();
        assert_eq!(ours.recv().unwrap(), 2 * x);
    }
    assert!(matches!(
        ours.recv_timeout(Duration::from_millis(50)),
        Err(RecvTimeoutError::Timeout)
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
    assert!(matches!(ours.recv(), Err(RecvError::Disconnected)));
    assert!(started.elapsed() < Duration::from_secs(10));
    let _ = child.join();
    assert_eq!(child.exit_code(), Some(-6));
    // Sending to a dead peer is an error too, not a hang or a SIGPIPE.
    assert!(matches!(ours.send(1), Err(SendError::Disconnected(1))));
}

/// Takes messages until the queue closes; returns (count, sum) and marks each done.
#[spychro::job]
fn consumer(rx: Receiver<u64>) -> (u64, u64) {
    let (mut n, mut sum) = (0, 0);
    while let Ok(x) = rx.recv() {
        n += 1;
        sum += x;
        rx.task_done().unwrap();
    }
    (n, sum)
}

#[spychro::job]
fn producer(tx: Sender<u64>, range: (u64, u64)) {
    for x in range.0..range.1 {
        tx.send(x).unwrap();
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
    tx.join().unwrap();
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
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    let started = Instant::now();
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(100)),
        Err(RecvTimeoutError::Timeout)
    ));
    assert!(started.elapsed() >= Duration::from_millis(100));
    tx.send("a".to_string()).unwrap();
    assert!(!rx.is_empty());
    assert_eq!(rx.try_recv().unwrap(), "a");
    assert!(rx.is_empty());
    tx.close();
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    assert!(matches!(
        tx.send("b".into()),
        Err(SendError::Disconnected(_))
    ));
    // One message is too big: a clear error, the queue goes on.
    let (tx, rx) = spychro::queue::<Vec<u8>>().unwrap();
    assert!(matches!(
        tx.send(vec![0; 1 << 20]),
        Err(SendError::TooLarge { .. })
    ));
    tx.send(vec![7; 10]).unwrap();
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
        tx.send(x).unwrap();
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
        tx.send(x).unwrap();
    }
    tx.join().unwrap();
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
        post.send_to(to, (to, seq)).unwrap();
    }
    assert!(matches!(
        post.send_to(44, (44, 0)),
        Err(SendError::UnknownRecipient {
            message: (44, 0),
            id: 44
        })
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

#[test]
fn join_fails_once_the_only_consumer_died_holding_a_message() {
    let (tx, rx) = spychro::queue::<u64>().unwrap();
    let mut victim = Process::new(take_one_and_die, rx); // the only receiver
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    victim.start().unwrap();
    let started = Instant::now();
    // The victim took one and died without task_done; the other died with its socket.
    let joined = tx.join();
    assert!(
        matches!(joined, Err(JoinError::Disconnected { unfinished: 2 })),
        "{joined:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let _ = victim.join();
    assert_eq!(victim.exit_code(), Some(-6));
    let text = joined.unwrap_err().to_string();
    assert!(text.contains("2 messages not marked done"), "{text}");
}

/// Takes one message, says which, and marks it done only when told to.
#[spychro::job]
fn hold_until_told(rx: Receiver<u64>, talk: &PipeEnd<u64, ()>) -> u64 {
    let x = rx.recv().unwrap();
    talk.send(x).unwrap();
    talk.recv().unwrap();
    rx.task_done().unwrap();
    x
}

#[test]
fn join_timeout_times_out_while_a_consumer_holds_a_message_and_succeeds_once_it_is_done() {
    let (tx, rx) = spychro::queue::<u64>().unwrap();
    let (ours, theirs) = spychro::pipe::<(), u64>().unwrap();
    let mut reader = Process::with_args(hold_until_told, rx, theirs);
    reader.start().unwrap();
    tx.send(5).unwrap();
    assert_eq!(ours.recv().unwrap(), 5, "the consumer holds the message");
    let started = Instant::now();
    let waited = tx.join_timeout(Duration::from_millis(200));
    assert!(
        matches!(waited, Err(JoinTimeoutError::Timeout { unfinished: 1 })),
        "{waited:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    ours.send(()).unwrap();
    tx.join_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(reader.join().unwrap(), 5);
}

/// Takes one message and marks it done twice: how each call went.
#[spychro::job]
fn task_done_twice(rx: Receiver<u64>) -> (bool, Option<String>) {
    rx.recv().unwrap();
    let first = rx.task_done().is_ok();
    let second = rx.task_done().err().map(|e| e.to_string());
    (first, second)
}

#[test]
fn an_extra_task_done_is_an_error() {
    let (tx, rx) = spychro::queue::<u64>().unwrap();
    let mut reader = Process::new(task_done_twice, rx.clone());
    reader.start().unwrap();
    tx.send(1).unwrap();
    let (first, second) = reader.join().unwrap();
    assert!(first);
    assert_eq!(second, Some(TaskDoneError.to_string()));
    assert_eq!(rx.task_done(), Err(TaskDoneError));
    tx.join().unwrap();
    // The extra calls did not count ahead: the next message is unfinished until marked done.
    tx.send(2).unwrap();
    let waited = tx.join_timeout(Duration::from_millis(50));
    assert!(
        matches!(waited, Err(JoinTimeoutError::Timeout { unfinished: 1 })),
        "{waited:?}"
    );
    assert_eq!(rx.recv().unwrap(), 2);
    rx.task_done().unwrap();
    tx.join().unwrap();
}

#[spychro::job]
fn produce_and_close(tx: Sender<u64>, n: u64) {
    for x in 0..n {
        tx.send(x).unwrap();
    }
    tx.close();
}

#[test]
fn try_recv_is_empty_on_an_open_queue_and_disconnected_once_closed_and_drained() {
    let (tx, rx) = spychro::queue::<u64>().unwrap();
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    let mut writer = Process::with_args(produce_and_close, tx.clone(), 3);
    writer.start().unwrap();
    writer.join().unwrap();
    for x in 0..3 {
        assert_eq!(rx.try_recv().unwrap(), x);
    }
    // Closed for every process, though this one still holds a sender.
    let drained = rx.try_recv();
    assert!(
        matches!(drained, Err(TryRecvError::Disconnected)),
        "{drained:?}"
    );
    assert!(matches!(tx.send(3), Err(SendError::Disconnected(3))));
}

#[spychro::job]
fn take_one(rx: Receiver<String>) -> String {
    rx.recv().unwrap()
}

#[test]
fn a_send_to_a_queue_whose_receivers_are_gone_hands_the_message_back() {
    let (tx, rx) = spychro::queue::<String>().unwrap();
    let mut reader = Process::new(take_one, rx); // the only receiver
    reader.start().unwrap();
    tx.send("first".to_string()).unwrap();
    assert_eq!(reader.join().unwrap(), "first");
    let err = tx.send("second".to_string()).unwrap_err();
    assert!(err.to_string().contains("disconnected"), "{err}");
    match err {
        SendError::Disconnected(message) => assert_eq!(message, "second"),
        other => panic!("{other:?}"),
    }
    let err = tx.send("third".to_string()).unwrap_err();
    assert_eq!(err.into_inner(), "third");
}

/// Takes messages until the queue closes, marking each done; returns their lengths.
#[spychro::job]
fn lengths(rx: Receiver<Vec<u8>>) -> Vec<usize> {
    let mut got = Vec::new();
    while let Ok(m) = rx.recv() {
        got.push(m.len());
        rx.task_done().unwrap();
    }
    got
}

#[test]
fn a_message_too_large_is_handed_back_with_its_size_and_the_limit() {
    let (tx, rx) = spychro::queue::<Vec<u8>>().unwrap();
    let mut reader = Process::new(lengths, rx);
    reader.start().unwrap();
    let err = tx.send(vec![7; 1 << 20]).unwrap_err();
    let text = err.to_string();
    match err {
        SendError::TooLarge {
            message,
            size,
            limit,
        } => {
            assert_eq!(message, vec![7; 1 << 20]);
            assert!(size > 1 << 20, "{size}");
            assert_eq!(limit, 200 * 1024);
            assert!(text.contains(&format!("{size} bytes")), "{text}");
            assert!(text.contains(&format!("limit of {limit} bytes")), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // The queue goes on, and the message that was not sent is not waited for.
    tx.send(vec![1; 10]).unwrap();
    tx.join_timeout(Duration::from_secs(10)).unwrap();
    tx.close();
    assert_eq!(reader.join().unwrap(), [10]);
}

/// Sends 1 and 2, then ends without reading what it was sent.
#[spychro::job]
fn say_and_leave(end: PipeEnd<u64, u64>) {
    end.send(1).unwrap();
    end.send(2).unwrap();
    // Wait until the parent's message is queued for us, and leave it unread.
    let deadline = Instant::now() + Duration::from_secs(10);
    while end.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn messages_sent_before_a_peer_left_are_received_even_if_it_left_ours_unread() {
    let (ours, theirs) = spychro::pipe::<u64, u64>().unwrap();
    let mut child = Process::new(say_and_leave, theirs);
    child.start().unwrap();
    ours.send(99).unwrap();
    child.join().unwrap();
    assert_eq!(ours.recv().unwrap(), 1);
    assert_eq!(ours.recv().unwrap(), 2);
    assert!(matches!(ours.recv(), Err(RecvError::Disconnected)));
}
