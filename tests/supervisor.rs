//! The supervisor with real processes, point by point as multitools' guide (seed 001) tours
//! it: a process list, objects, prints, input, names and ids, addressed messages, handlers
//! that end their process, listeners, LISTENERS and BROADCAST, residents and loggers,
//! processes plugged in and out, failures and restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spychro::{
    Actor, Ended, Error, Fail, Flow, Letter, Link, Listen, Restart, Served, Supervisor,
    SupervisorError, To,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, spychro::Message)]
enum Msg {
    Text(String),
    #[message(parent = Text)]
    Shout(String),
    Number(u64),
    Ping(u64),
    Pong(u64),
    Quit,
}

/// multitools' op_square: sends its result to the supervisor.
#[derive(Serialize, Deserialize)]
struct Square(u64);

#[spychro::actor]
impl Actor for Square {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.send_object(&("square", self.0 * self.0, std::process::id()))?;
        Ok(())
    }
}

/// multitools' op_double.
#[derive(Serialize, Deserialize)]
struct Double(u64);

#[spychro::actor]
impl Actor for Double {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.send_object(&("double", self.0 + self.0, std::process::id()))?;
        Ok(())
    }
}

#[test]
fn a_supervisor_is_a_process_list_each_process_reporting_to_the_caller() {
    let mut got: Vec<(String, u64, u32, u64, String)> = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    let a = s.add(Square(1234));
    let b = s.add(Double(5678));
    assert_ne!(a, b);
    s.on_object(|from, (what, value, pid): (String, u64, u32)| {
        got.push((what, value, pid, from.id, from.name.clone()));
        assert_eq!(from.pid, Some(pid));
    });
    s.start().unwrap();
    let pids: Vec<u32> = s.pids().iter().filter_map(|(_, p)| *p).collect();
    assert_eq!(pids.len(), 2);
    let outcomes = s.join().unwrap();
    assert!(!s.is_alive());
    drop(s);
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "double");
    assert_eq!(got[0].1, 11356);
    assert_eq!(got[0].3, b);
    assert_eq!(got[0].4, "Double");
    assert_eq!(got[1].1, 1234 * 1234);
    assert_eq!(got[1].3, a);
    assert!(pids.contains(&got[0].2) && pids.contains(&got[1].2));
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        assert_eq!(o.ended, Ended::Finished, "{o:?}");
        assert_eq!(o.exit_code, Some(0), "{o:?}");
        assert_eq!(o.restarts, 0);
    }
    wait_gone(&pids);
}

#[test]
fn an_object_without_a_handler_is_an_error_naming_the_sender_and_the_type() {
    let mut s = Supervisor::<Msg>::new();
    let id = s.add(Square(3));
    let err = s.supervise().unwrap_err();
    let Error::Supervisor(e) = &err else {
        panic!("{err:?}")
    };
    match &**e {
        SupervisorError::UnknownObject {
            name,
            id: from,
            type_name,
        } => {
            assert_eq!(name, "Square");
            assert_eq!(*from, id);
            assert!(type_name.contains("u64"), "{type_name}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .contains("unknown object sent to supervisor"),
        "{err}"
    );
    // An object the handler's type cannot hold names both types.
    let mut s = Supervisor::<Msg>::new();
    s.add(Square(3));
    s.on_object(|_, _: Vec<String>| {});
    let err = s.supervise().unwrap_err().to_string();
    assert!(
        err.contains("Vec<alloc::string::String>") && err.contains("u64"),
        "{err}"
    );
}

/// Prints `lines` numbered lines, each long enough that interleaving would show.
#[derive(Serialize, Deserialize)]
struct Printer {
    tag: char,
    lines: usize,
}

#[spychro::actor]
impl Actor for Printer {
    type Message = Msg;
    fn name(&self) -> String {
        format!("printer-{}", self.tag)
    }
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        for i in 0..self.lines {
            let body: String = std::iter::repeat_n(self.tag, 300).collect();
            link.prnt(format!("{} {i} {body}", self.tag))?;
        }
        Ok(())
    }
}

#[test]
fn printed_lines_arrive_whole_with_their_sender() {
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    for tag in ['a', 'b', 'c'] {
        s.add(Printer { tag, lines: 200 });
    }
    s.on_print(|from, line| lines.push((from.name.clone(), line.to_owned())));
    s.supervise().unwrap();
    drop(s);
    assert_eq!(lines.len(), 600);
    let mut next: BTreeMap<char, usize> = BTreeMap::new();
    for (name, line) in &lines {
        let tag = line.chars().next().unwrap();
        assert_eq!(name, &format!("printer-{tag}"));
        let n = next.entry(tag).or_default();
        let body: String = std::iter::repeat_n(tag, 300).collect();
        assert_eq!(
            line,
            &format!("{tag} {n} {body}"),
            "a line was cut or mixed"
        );
        *n += 1;
    }
}

/// Asks for its name twice, and reports the answers.
#[derive(Serialize, Deserialize)]
struct Asker(u32);

#[spychro::actor]
impl Actor for Asker {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        let first = link.inpt(format!("[{}] name? ", self.0))?;
        let second = link.inpt(format!("[{}] again? ", self.0))?;
        link.send_object(&(self.0, first, second))?;
        Ok(())
    }
}

/// Talks while others wait for input.
#[derive(Serialize, Deserialize)]
struct Chatter;

#[spychro::actor]
impl Actor for Chatter {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        for i in 0..20u32 {
            link.send_object(&(100 + i, String::new(), String::new()))?;
        }
        Ok(())
    }
}

#[test]
fn input_is_asked_one_prompt_at_a_time_while_others_keep_talking() {
    let input = b"ann\nbob\ncid\ndee\n".to_vec();
    let mut got: Vec<(u32, String, String)> = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    s.add(Asker(1));
    s.add(Asker(2));
    s.add(Chatter);
    s.input_from(std::io::Cursor::new(input));
    s.on_object(|_, v: (u32, String, String)| got.push(v));
    s.supervise().unwrap();
    drop(s);
    let chatter = got.iter().filter(|v| v.0 >= 100).count();
    assert_eq!(chatter, 20);
    let mut answers: Vec<String> = got
        .iter()
        .filter(|v| v.0 < 100)
        .flat_map(|v| [v.1.clone(), v.2.clone()])
        .collect();
    answers.sort();
    // Each line went to exactly one prompt.
    assert_eq!(answers, ["ann", "bob", "cid", "dee"]);
    // Input that runs out is an error in the process that asked.
    let mut s = Supervisor::<Msg>::new();
    s.add(Asker(1));
    s.input_from(std::io::Cursor::new(b"only\n".to_vec()));
    let err = s.supervise().unwrap_err().to_string();
    assert!(err.contains("standard input ended"), "{err}");
}

/// multitools' "My Process One": sleeps (serving) and says what it got.
#[derive(Serialize, Deserialize)]
struct One {
    serve_ms: u64,
}

#[spychro::actor]
impl Actor for One {
    type Message = Msg;
    fn name(&self) -> String {
        "My Process One".into()
    }
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.serve_for(self, Duration::from_millis(self.serve_ms))?;
        Ok(())
    }
    fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
        link.send_object(&format!(
            "Hi from MyProcessOne: {:?} from {}",
            letter.message, letter.from
        ))?;
        Ok(Flow::Continue)
    }
}

/// multitools' "My Process Two": finds One by name and sends it a message.
#[derive(Serialize, Deserialize)]
struct Two {
    target: String,
    text: String,
}

#[spychro::actor]
impl Actor for Two {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        let targets = link.get_ids(&self.target)?;
        link.send_object(&format!("ids {}", targets.len()))?;
        if !targets.is_empty() {
            link.send_each(&targets, Msg::Text(self.text.clone()))?;
        }
        Ok(())
    }
}

#[test]
fn get_ids_finds_processes_by_name_and_send_to_reaches_them() {
    let mut got = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    let one = s.add(One { serve_ms: 1500 });
    let one_b = s.add(One { serve_ms: 1500 });
    let two = s.add(Two {
        target: "My Process One".into(),
        text: "Test message".into(),
    });
    s.on_object(|_, t: String| got.push(t));
    s.supervise().unwrap();
    assert_eq!(s.get_ids("My Process One"), BTreeSet::new(), "they ended");
    drop(s);
    got.sort();
    assert_eq!(
        got,
        [
            format!("Hi from MyProcessOne: Text(\"Test message\") from {two}"),
            format!("Hi from MyProcessOne: Text(\"Test message\") from {two}"),
            "ids 2".to_string(),
        ]
    );
    let _ = (one, one_b);
    // No process of that name: an empty set, not an error.
    let mut got = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    s.add(Two {
        target: "nobody".into(),
        text: String::new(),
    });
    s.on_object(|_, t: String| got.push(t));
    s.supervise().unwrap();
    drop(s);
    assert_eq!(got, ["ids 0"]);
}

/// Sends to a fixed id.
#[derive(Serialize, Deserialize)]
struct SendTo {
    to: u64,
    wait_ms: u64,
}

#[spychro::actor]
impl Actor for SendTo {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        std::thread::sleep(Duration::from_millis(self.wait_ms));
        link.send_to(self.to, Msg::Text("Test message".into()))?;
        Ok(())
    }
}

/// Runs briefly and has no handler.
#[derive(Serialize, Deserialize)]
struct Deaf {
    serve_ms: u64,
}

#[spychro::actor]
impl Actor for Deaf {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.serve_for(self, Duration::from_millis(self.serve_ms))?;
        Ok(())
    }
}

#[test]
fn a_message_to_a_process_without_a_handler_or_that_ended_is_a_clear_error() {
    // No handler (multitools' NotImplementedError).
    let mut s = Supervisor::<Msg>::new();
    let deaf = s.add(Deaf { serve_ms: 2000 });
    let sender = s.add(SendTo {
        to: deaf,
        wait_ms: 0,
    });
    let err = s.supervise().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "a Text message from SendTo (id {sender}) to process Deaf (id {deaf})"
        )) && text.contains("no message handler"),
        "{text}"
    );
    // Ended (multitools' "All processes with id ... have terminated").
    let mut s = Supervisor::<Msg>::new();
    let gone = s.add(Deaf { serve_ms: 0 });
    s.add(SendTo {
        to: gone,
        wait_ms: 500,
    });
    let text = s.supervise().unwrap_err().to_string();
    assert!(text.contains(&format!("(id {gone}) has ended")), "{text}");
    // Never existed.
    let mut s = Supervisor::<Msg>::new();
    s.add(SendTo {
        to: 999,
        wait_ms: 0,
    });
    let text = s.supervise().unwrap_err().to_string();
    assert!(text.contains("no process has id 999"), "{text}");
    // With a handler for undeliverable messages, the supervisor goes on.
    let mut undelivered = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    s.add(SendTo {
        to: 999,
        wait_ms: 0,
    });
    s.on_undeliverable(|u| undelivered.push(u.clone()));
    let outcomes = s.supervise().unwrap();
    drop(s);
    assert_eq!(outcomes.len(), 1);
    assert_eq!(undelivered.len(), 1);
    assert_eq!(undelivered[0].kind, "Text");
    assert_eq!(undelivered[0].from_name, "SendTo");
}

/// Counts Numbers and stops at Quit (multitools' "return False").
#[derive(Serialize, Deserialize)]
struct Counter {
    name: String,
    sum: u64,
}

#[spychro::actor]
impl Actor for Counter {
    type Message = Msg;
    fn name(&self) -> String {
        self.name.clone()
    }
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        // Serves until a handler stops it; a Quit ends the process, not the others.
        if link.serve_for(self, Duration::from_secs(30))? == Served::TimeUp {
            return Err("no Quit within 30 s".into());
        }
        link.send_object(&(self.name.clone(), self.sum))?;
        Ok(())
    }
    fn handle(&mut self, letter: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
        match letter.message {
            Msg::Number(n) => {
                self.sum += n;
                Ok(Flow::Continue)
            }
            Msg::Quit => Ok(Flow::Stop),
            other => Err(format!("unexpected {other:?}").into()),
        }
    }
}

/// Sends numbers 1..=n to the counters named, then Quit to one of them, and later to the
/// other.
#[derive(Serialize, Deserialize)]
struct Feeder {
    n: u64,
}

#[spychro::actor]
impl Actor for Feeder {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        let a = link.get_ids("a")?;
        let b = link.get_ids("b")?;
        for i in 1..=self.n {
            link.send_each(a.iter().chain(&b), Msg::Number(i))?;
        }
        link.send_each(&a, Msg::Quit)?;
        // b keeps running after a stopped: it still counts.
        link.send_each(&b, Msg::Number(1000))?;
        link.send_each(&b, Msg::Quit)?;
        Ok(())
    }
}

#[test]
fn a_handler_can_send_and_its_return_value_ends_only_its_process() {
    let mut sums = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    s.add(Counter {
        name: "a".into(),
        sum: 0,
    });
    s.add(Counter {
        name: "b".into(),
        sum: 0,
    });
    s.add(Feeder { n: 500 });
    s.on_object(|_, v: (String, u64)| sums.push(v));
    let outcomes = s.supervise().unwrap();
    drop(s);
    sums.sort();
    assert_eq!(
        sums,
        [("a".to_string(), 125_250), ("b".to_string(), 126_250)]
    );
    let ended: BTreeMap<String, Ended> =
        outcomes.iter().map(|o| (o.name.clone(), o.ended)).collect();
    assert_eq!(ended["a"], Ended::Stopped);
    assert_eq!(ended["b"], Ended::Stopped);
    assert_eq!(ended["Feeder"], Ended::Finished);
}

/// Ping-pong through the supervisor, counting round trips: messages that arrive while the
/// run phase works wait, and are handled when it serves.
#[derive(Serialize, Deserialize)]
struct Pinger {
    rounds: u64,
    got: u64,
}

#[spychro::actor]
impl Actor for Pinger {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        let ponger = link.get_ids("Ponger")?;
        let to = *ponger.first().ok_or("no Ponger")?;
        // Busy while the replies come in: they wait in the mailbox.
        for i in 0..self.rounds {
            link.send_to(to, Msg::Ping(i))?;
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(self.got, 0, "nothing is handled while run works");
        while self.got < self.rounds {
            if link.serve_for(self, Duration::from_secs(20))? != Served::TimeUp {
                break;
            }
        }
        link.send_object(&self.got)?;
        Ok(())
    }
    fn handle(&mut self, letter: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
        match letter.message {
            Msg::Pong(i) if i == self.got => {
                self.got += 1;
                Ok(if self.got == self.rounds {
                    Flow::Stop
                } else {
                    Flow::Continue
                })
            }
            other => Err(format!("out of order: {other:?} after {}", self.got).into()),
        }
    }
}

/// Answers each Ping with a Pong to its sender.
#[derive(Serialize, Deserialize)]
struct Ponger;

#[spychro::actor]
impl Actor for Ponger {
    type Message = Msg;
    const RESIDENT: bool = true;
    fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
        match letter.message {
            Msg::Ping(i) => link.send_to(letter.from, Msg::Pong(i))?,
            other => return Err(format!("unexpected {other:?}").into()),
        }
        Ok(Flow::Continue)
    }
}

#[test]
fn messages_sent_during_the_run_phase_wait_and_are_handled_in_order() {
    let mut got = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    let ponger = s.add(Ponger);
    s.add(Pinger {
        rounds: 2000,
        got: 0,
    });
    s.on_object(|_, n: u64| got.push(n));
    let outcomes = s.supervise().unwrap();
    drop(s);
    assert_eq!(got, [2000]);
    let resident = outcomes.iter().find(|o| o.id == ponger).unwrap();
    assert_eq!(
        resident.ended,
        Ended::Closed,
        "the resident ended by itself"
    );
    assert_eq!(resident.exit_code, Some(0));
}

/// Hears Text (and so Shout, a kind of Text); reports what it heard.
#[derive(Serialize, Deserialize)]
struct TextListener {
    heard: Vec<String>,
}

#[spychro::actor]
impl Actor for TextListener {
    type Message = Msg;
    const RESIDENT: bool = true;
    fn listens(&self) -> Listen<MsgKind> {
        Listen::To(vec![MsgKind::Text])
    }
    fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
        let line = format!(
            "listener {} heard {:?} to {}",
            link.id(),
            letter.message,
            letter.to
        );
        link.send_object(&line)?;
        Ok(Flow::Continue)
    }
}

/// Hears Numbers only.
#[derive(Serialize, Deserialize)]
struct NumberListener;

#[spychro::actor]
impl Actor for NumberListener {
    type Message = Msg;
    const RESIDENT: bool = true;
    fn listens(&self) -> Listen<MsgKind> {
        Listen::To(vec![MsgKind::Number])
    }
    fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
        link.send_object(&format!(
            "numbers heard {:?} to {}",
            letter.message, letter.to
        ))?;
        Ok(Flow::Continue)
    }
}

/// Sends what it is told, where it is told, then ends.
#[derive(Serialize, Deserialize)]
struct Sender {
    sends: Vec<(Option<String>, Msg)>,
}

#[spychro::actor]
impl Actor for Sender {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        for (to, m) in self.sends.clone() {
            let to = match to.as_deref() {
                Some("LISTENERS") => To::Listeners,
                Some("BROADCAST") => To::Broadcast,
                Some(name) => To::Id(*link.get_ids(name)?.first().ok_or("no such process")?),
                None => To::Listeners,
            };
            link.send(to, m)?;
        }
        Ok(())
    }
}

#[test]
fn listeners_hear_their_kinds_and_kinds_below_them_whoever_a_message_was_sent_to() {
    let mut heard = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    let text = s.add(TextListener { heard: Vec::new() });
    let numbers = s.add(NumberListener);
    let one = s.add(One { serve_ms: 800 });
    s.add(Sender {
        sends: vec![
            (Some("My Process One".into()), Msg::Text("direct".into())),
            (Some("LISTENERS".into()), Msg::Shout("to listeners".into())),
            (Some("LISTENERS".into()), Msg::Number(7)),
            (Some("BROADCAST".into()), Msg::Ping(1)),
        ],
    });
    s.on_object(|_, line: String| heard.push(line));
    // The broadcast Ping reaches One (whose handler reports it) and both listeners.
    s.supervise().unwrap();
    drop(s);
    heard.sort();
    let mut want = vec![
        format!("listener {text} heard Text(\"direct\") to process {one}"),
        format!("listener {text} heard Shout(\"to listeners\") to the listeners of its kind"),
        "numbers heard Number(7) to the listeners of its kind".to_string(),
        format!("Hi from MyProcessOne: Text(\"direct\") from 4"),
        "Hi from MyProcessOne: Ping(1) from 4".to_string(),
        format!("listener {text} heard Ping(1) to every process"),
        "numbers heard Ping(1) to every process".to_string(),
    ];
    want.sort();
    assert_eq!(heard, want);
    let _ = numbers;
    // LISTENERS with nobody listening is an error (multitools raises one).
    let mut s = Supervisor::<Msg>::new();
    s.add(Sender {
        sends: vec![(Some("LISTENERS".into()), Msg::Pong(1))],
    });
    let err = s.supervise().unwrap_err().to_string();
    assert!(
        err.contains("no running process listens to Pong messages"),
        "{err}"
    );
}

/// Sleeps (serving) for `ms`, announcing its pid.
#[derive(Serialize, Deserialize)]
struct Sleeper {
    ms: u64,
}

#[spychro::actor]
impl Actor for Sleeper {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.send_object(&(link.id(), std::process::id()))?;
        link.serve_for(self, Duration::from_millis(self.ms))?;
        Ok(())
    }
    fn handle(&mut self, _: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
        Ok(Flow::Continue)
    }
}

/// Panics after `ms` (or returns an error with `error`), unless a file says it ran before.
#[derive(Serialize, Deserialize)]
struct Faulty {
    ms: u64,
    error: bool,
    /// Fails only while this file holds fewer than `fails` lines (one per start).
    record: String,
    fails: usize,
}

#[spychro::actor]
impl Actor for Faulty {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        use std::io::Write;
        let starts = std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .count();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.record)?;
        writeln!(f, "{}", std::process::id())?;
        link.send_object(&(link.id(), std::process::id()))?;
        std::thread::sleep(Duration::from_millis(self.ms));
        if starts < self.fails {
            if self.error {
                return Err(format!("disk full (start {starts})").into());
            }
            panic!("boom at start {starts}");
        }
        Ok(())
    }
}

fn record(name: &str) -> String {
    let path =
        std::env::temp_dir().join(format!("spychro-supervisor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

#[test]
fn a_failing_process_ends_the_others_and_the_error_names_it() {
    for error in [false, true] {
        let mut started: Vec<(u64, u32)> = Vec::new();
        let mut s = Supervisor::<Msg>::new();
        s.add(Sleeper { ms: 30_000 });
        s.add(Sleeper { ms: 30_000 });
        let faulty = s.add(Faulty {
            ms: 300,
            error,
            record: record(&format!("fail-{error}")),
            fails: 1,
        });
        s.on_object(|_, v: (u64, u32)| started.push(v));
        let t = std::time::Instant::now();
        let err = s.supervise().unwrap_err();
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the sleepers were ended at once"
        );
        drop(s);
        let faulty_pid = started.iter().find(|(id, _)| *id == faulty).unwrap().1;
        let Error::Supervisor(e) = &err else {
            panic!("{err:?}")
        };
        let SupervisorError::Failed {
            name,
            id,
            pid,
            error: cause,
        } = &**e
        else {
            panic!("{e:?}")
        };
        assert_eq!(
            (name.as_str(), *id, *pid),
            ("Faulty", faulty, Some(faulty_pid))
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "process Faulty (id {faulty}, pid {faulty_pid}) failed"
            )),
            "{text}"
        );
        if error {
            assert!(text.contains("disk full (start 0)"), "{text}");
        } else {
            let item = cause.item().expect("a panic is the process's failure");
            assert_eq!(item.message(), "boom at start 0");
            assert!(
                text.contains("tests/supervisor.rs"),
                "the panic's location: {text}"
            );
        }
        let pids: Vec<u32> = started.iter().map(|(_, p)| *p).collect();
        assert_eq!(pids.len(), 3);
        wait_gone(&pids);
    }
}

#[test]
fn one_for_one_restarts_the_failed_process_alone_with_the_same_id() {
    let mut started: Vec<(u64, u32)> = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    let sleeper = s.add(Sleeper { ms: 1500 });
    let faulty = s.add(Faulty {
        ms: 50,
        error: false,
        record: record("one-for-one"),
        fails: 2,
    });
    s.restart(Restart::OneForOne {
        max: 3,
        within: Duration::from_secs(60),
    });
    s.on_object(|_, v: (u64, u32)| started.push(v));
    let outcomes = s.supervise().unwrap();
    drop(s);
    let runs = |id| started.iter().filter(|(i, _)| *i == id).count();
    assert_eq!(runs(faulty), 3, "two failures, two restarts: {started:?}");
    assert_eq!(runs(sleeper), 1, "the other process was left alone");
    let f = outcomes.iter().find(|o| o.id == faulty).unwrap();
    assert_eq!(
        (f.ended, f.restarts, f.exit_code),
        (Ended::Finished, 2, Some(0))
    );
    let pids: BTreeSet<u32> = started.iter().map(|(_, p)| *p).collect();
    assert_eq!(pids.len(), 4, "each start is a new process");
    wait_gone(&pids.into_iter().collect::<Vec<_>>());
}

#[test]
fn one_for_all_restarts_everyone_and_too_many_failures_give_up() {
    let mut started: Vec<(u64, u32)> = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    let sleeper = s.add(Sleeper { ms: 800 });
    let faulty = s.add(Faulty {
        ms: 100,
        error: true,
        record: record("one-for-all"),
        fails: 1,
    });
    s.restart(Restart::OneForAll {
        max: 2,
        within: Duration::from_secs(60),
    });
    s.on_object(|_, v: (u64, u32)| started.push(v));
    let outcomes = s.supervise().unwrap();
    drop(s);
    let runs = |id| started.iter().filter(|(i, _)| *i == id).count();
    assert_eq!(runs(faulty), 2, "{started:?}");
    assert_eq!(
        runs(sleeper),
        2,
        "the sleeper was restarted with it: {started:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| o.restarts == 1 && o.ended == Ended::Finished),
        "{outcomes:?}"
    );

    // Three failures within the window, two restarts allowed: the third ends it all.
    let mut s = Supervisor::<Msg>::new();
    let faulty = s.add(Faulty {
        ms: 10,
        error: true,
        record: record("exhausted"),
        fails: 10,
    });
    s.add(Sleeper { ms: 30_000 });
    s.restart(Restart::OneForOne {
        max: 2,
        within: Duration::from_secs(60),
    });
    s.on_object(|_, _: (u64, u32)| {});
    let err = s.supervise().unwrap_err();
    let Error::Supervisor(e) = &err else {
        panic!("{err:?}")
    };
    match &**e {
        SupervisorError::RestartsExhausted {
            id, failures, max, ..
        } => {
            assert_eq!((*id, *failures, *max), (faulty, 3, 2));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("disk full (start 2)"), "{err}");
}

#[test]
fn processes_can_be_plugged_in_and_removed_while_it_runs_and_get_ids_sees_it() {
    let mut started: Vec<(u64, u32)> = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    s.add(Sleeper { ms: 400 });
    let handle = s.handle();
    s.on_object(|_, v: (u64, u32)| started.push(v));
    s.start().unwrap();
    assert_eq!(handle.get_ids("Sleeper").len(), 1);
    let added = handle.add(Sleeper { ms: 60_000 }).unwrap();
    let watcher = std::thread::spawn({
        let handle = handle.clone();
        move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while handle.get_ids("Sleeper").len() < 2 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the added process never showed"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            let seen = handle.get_ids("Sleeper");
            handle.remove(added).unwrap();
            while handle.get_ids("Sleeper").contains(&added) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the removed process stayed"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            seen
        }
    });
    let t = std::time::Instant::now();
    let outcomes = s.join().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "the removed process did not hold the join"
    );
    drop(s);
    let seen = watcher.join().unwrap();
    assert!(seen.contains(&added), "{seen:?}");
    let removed = outcomes.iter().find(|o| o.id == added).unwrap();
    assert_eq!(removed.ended, Ended::Removed);
    assert_eq!(removed.exit_code, Some(-9));
    assert_eq!(started.len(), 2);
    wait_gone(&started.iter().map(|(_, p)| *p).collect::<Vec<_>>());
}

/// A user-written logger: reports what it hears.
#[derive(Serialize, Deserialize)]
struct NumberLog;

#[spychro::actor]
impl spychro::Logger for NumberLog {
    type Message = Msg;
    fn listens(&self) -> Listen<MsgKind> {
        Listen::To(vec![MsgKind::Number])
    }
    fn log(&mut self, letter: &Letter<Msg>, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.prnt(format!("logged {:?}", letter.message))?;
        Ok(())
    }
}

struct Capture(std::sync::Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        if r.target() == "spychro::debug" {
            // Re-emitted in the caller as "[worker PID] message".
            let line = r.args().to_string();
            let message = line.split_once("] ").map_or(line.as_str(), |(_, m)| m);
            self.0.lock().unwrap().push(message.to_owned());
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(std::sync::Mutex::new(Vec::new()));

#[test]
fn loggers_are_residents_that_hear_their_kinds_and_the_debug_logger_logs_everything() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let mut lines = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    s.add(NumberLog);
    s.add(spychro::DebugLogger::<Msg>::new());
    let counter = s.add(Counter {
        name: "a".into(),
        sum: 0,
    });
    s.add(Counter {
        name: "b".into(),
        sum: 0,
    });
    s.add(Feeder { n: 3 });
    s.on_object(|_, _: (String, u64)| {});
    s.on_print(|from, line| lines.push((from.name.clone(), line.to_owned())));
    let outcomes = s.supervise().unwrap();
    drop(s);
    lines.sort();
    let mut want: Vec<(String, String)> = [1, 1, 2, 2, 3, 3, 1000]
        .iter()
        .map(|n| ("NumberLog".to_string(), format!("logged Number({n})")))
        .collect();
    want.sort();
    assert_eq!(lines, want);
    let logged = CAPTURE.0.lock().unwrap().clone();
    // 7 numbers and 2 quits, each seen once by the debug logger.
    assert_eq!(logged.len(), 9, "{logged:?}");
    assert!(
        logged.contains(&format!("Quit from 5 to process {counter}")),
        "{logged:?}"
    );
    for o in outcomes
        .iter()
        .filter(|o| o.name.ends_with("Logger") || o.name == "NumberLog")
    {
        assert_eq!(o.ended, Ended::Closed, "{o:?}");
    }
}

/// Asks early for the ids of "Late", waits until one shows up (its cached answer is kept up to
/// date by the supervisor), and tries a send to the empty set it had first.
#[derive(Serialize, Deserialize)]
struct Watcher;

#[spychro::actor]
impl Actor for Watcher {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.prefetch_ids("Late")?;
        let first = link.get_ids("Late")?;
        let refused = link
            .send_each(&first, Msg::Quit)
            .map_err(|e| e.to_string())
            .unwrap_err();
        link.send_object(&format!("first {first:?}; {refused}"))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ids = link.get_ids("Late")?;
            if !ids.is_empty() {
                link.send_object(&format!("later {ids:?}"))?;
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err("Late never showed".into());
            }
            link.serve_for(self, Duration::from_millis(5))?;
        }
    }
}

/// A named sleeper.
#[derive(Serialize, Deserialize)]
struct Late;

#[spychro::actor]
impl Actor for Late {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.serve_for(self, Duration::from_millis(300))?;
        Ok(())
    }
}

#[test]
fn an_early_look_up_is_kept_up_to_date_and_an_empty_set_of_ids_is_an_error() {
    let got = std::cell::RefCell::new(Vec::new());
    let mut s = Supervisor::<Msg>::new();
    s.add(Watcher);
    let handle = s.handle();
    let seen = &got;
    s.on_object(move |_, t: String| {
        // Once the watcher has its first (empty) answer, plug Late in.
        if t.starts_with("first") {
            handle.add(Late).unwrap();
        }
        seen.borrow_mut().push(t);
    });
    s.supervise().unwrap();
    drop(s);
    let got = got.into_inner();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("first {}; a message was sent to an empty set of ids"),
        "{got:?}"
    );
    assert_eq!(got[1], "later {2}");
}

fn wait_gone(pids: &[u32]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for &pid in pids {
        while std::path::Path::new(&format!("/proc/{pid}")).exists()
            && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false)
        {
            assert!(std::time::Instant::now() < deadline, "pid {pid} still runs");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[allow(dead_code)]
fn unused(_: Listen<MsgKind>, _: Restart, _: Served, _: To) {}
