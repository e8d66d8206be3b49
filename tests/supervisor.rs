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
