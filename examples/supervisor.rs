//! The multitools tour (seed 001), step by step, in spychro: a `ProcessList`, then a
//! `Supervisor` whose processes send objects to the caller, print whole lines, ask for input,
//! find each other by name, send each other messages, end themselves from a handler, listen to
//! message kinds, send to `LISTENERS` and `BROADCAST`, and a resident and loggers that live as
//! long as the others.
//!
//! ```text
//! cargo run --release --example supervisor
//! RUST_LOG=info cargo run --release --example supervisor    # also shows the DebugLogger
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use spychro::{
    Actor, DebugLogger, Fail, Flow, Letter, Link, Listen, Logger, Process, ProcessList, Supervisor,
    To,
};

// --- 1. ProcessList: processes started and joined together ----------------------------------

#[spychro::job]
fn op_square(arg: i64) -> i64 {
    arg * arg
}

#[spychro::job]
fn op_double(arg: i64) -> i64 {
    arg + arg
}

fn process_list() -> Result<(), spychro::Error> {
    println!("== 1. ProcessList: op_square and op_double, started and joined together");
    let mut pl = ProcessList::new();
    pl.add(Process::new(op_square, 1234));
    pl.add(Process::new(op_double, 5678));
    pl.start()?;
    let mut results = pl.join_all().into_iter();
    let one: i64 = results.next().expect("two processes").value()?;
    let two: i64 = results.next().expect("two processes").value()?;
    println!("Result one {one}");
    println!("Result two {two}");
    Ok(())
}

// --- The supervisor's messages: one enum, its variants the kinds -----------------------------

/// multitools' message hierarchy: `Shout` is a kind of `Text`, so whoever listens to `Text`
/// hears shouts too.
#[derive(Debug, Clone, Serialize, Deserialize, spychro::Message)]
enum Msg {
    Text(String),
    #[message(parent = Text)]
    Shout(String),
    Progress(u32),
    Stop,
}

// --- 2. send_object, and the object handler --------------------------------------------------

/// multitools' `MyProcess(1234, 5678)` with `send_object`.
#[derive(Serialize, Deserialize)]
struct Multiply {
    arg_one: i64,
    arg_two: i64,
}

#[spychro::actor]
impl Actor for Multiply {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.send_object(&(self.arg_one * self.arg_two))?;
        Ok(())
    }
}

fn objects() -> Result<(), spychro::Error> {
    println!("== 2. send_object: a value from a process to the caller's handler");
    let mut s = Supervisor::<Msg>::new();
    s.add(Multiply {
        arg_one: 1234,
        arg_two: 5678,
    });
    s.on_object(|from, m: i64| println!("Result: {m} (from {} {})", from.name, from.id));
    s.supervise()?;
    // Without a handler, an object is an error naming the sender and the value's type.
    let mut s = Supervisor::<Msg>::new();
    s.add(Multiply {
        arg_one: 1,
        arg_two: 2,
    });
    let err = s.supervise().expect_err("no object handler");
    println!("without a handler: {err}");
    Ok(())
}

// --- 3. prnt and inpt -------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct Printer {
    arg_one: i64,
    arg_two: i64,
}

#[spychro::actor]
impl Actor for Printer {
    type Message = Msg;
    fn name(&self) -> String {
        "My process".into()
    }
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.prnt(format!("Result: {}", self.arg_one * self.arg_two))?;
        let name = link.inpt("Enter your name: ")?;
        link.prnt(format!("Hello, {name}"))?;
        Ok(())
    }
}

fn print_and_input() -> Result<(), spychro::Error> {
    println!("== 3. prnt (whole lines through the supervisor) and inpt (one prompt at a time)");
    let mut s = Supervisor::<Msg>::new();
    s.add(Printer {
        arg_one: 1234,
        arg_two: 5678,
    });
    // The caller's stdin unless told otherwise; a fixed answer keeps this demo unattended.
    s.input_from(std::io::Cursor::new(b"Ada\n".to_vec()));
    s.supervise()?;
    println!();
    // A print handler catches the lines instead (multitools' prntHandler).
    let mut s = Supervisor::<Msg>::new();
    s.add(Printer {
        arg_one: 1234,
        arg_two: 5678,
    });
    s.input_from(std::io::Cursor::new(b"Grace\n".to_vec()));
    s.on_print(|_, line| println!("CAUGHT {line}"));
    s.supervise()?;
    println!();
    Ok(())
}

// --- 4 and 5. get_ids, send_to, handle_message and ending a process from it -------------------

/// multitools' "My Process One": serves messages for a while.
#[derive(Serialize, Deserialize)]
struct ProcessOne;

#[spychro::actor]
impl Actor for ProcessOne {
    type Message = Msg;
    fn name(&self) -> String {
        "My Process One".into()
    }
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        // The seed's `time.sleep(1)` in `op`: messages are handled meanwhile.
        link.serve_for(self, Duration::from_secs(5))?;
        Ok(())
    }
    fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
        match letter.message {
            Msg::Text(t) => link.prnt(format!("Hi from MyProcessOne: {t}"))?,
            // multitools' "return False": this process ends, the others go on.
            Msg::Stop => return Ok(Flow::Stop),
            other => link.prnt(format!("MyProcessOne ignores {other:?}"))?,
        }
        Ok(Flow::Continue)
    }
}

/// multitools' "My Process Two": finds One by name and talks to it.
#[derive(Serialize, Deserialize)]
struct ProcessTwo {
    arg: String,
}

#[spychro::actor]
impl Actor for ProcessTwo {
    type Message = Msg;
    fn name(&self) -> String {
        "My Process Two".into()
    }
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        let targets = link.get_ids("My Process One")?;
        link.prnt(format!("My Process One has ids {targets:?}"))?;
        link.send_each(&targets, Msg::Text(self.arg.clone()))?;
        link.send_each(&targets, Msg::Stop)?;
        let none = link.get_ids("nobody")?;
        link.prnt(format!("get_ids of an unknown name: {none:?} (no error)"))?;
        Ok(())
    }
}

fn names_and_messages() -> Result<(), spychro::Error> {
    println!("== 4. get_ids and send_to; 5. handle_message, ended by its return value");
    let mut s = Supervisor::<Msg>::new();
    s.add(ProcessOne);
    s.add(ProcessTwo {
        arg: "Test message".into(),
    });
    let outcomes = s.supervise()?;
    for o in outcomes {
        println!("{} (id {}) ended: {:?}", o.name, o.id, o.ended);
    }
    println!();
    Ok(())
}

// --- 6, 7, 8. listeners, LISTENERS and BROADCAST -----------------------------------------------

/// Hears every `Text` (and `Shout`), whoever it was sent to.
#[derive(Serialize, Deserialize)]
struct TextListener;

#[spychro::actor]
impl Actor for TextListener {
    type Message = Msg;
    const RESIDENT: bool = true;
    fn listens(&self) -> Listen<MsgKind> {
        Listen::To(vec![MsgKind::Text])
    }
    fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
        link.prnt(format!(
            "TextListener heard {:?} (sent to {})",
            letter.message, letter.to
        ))?;
        Ok(Flow::Continue)
    }
}

/// Sends to one id, to the listeners of a kind, and to everyone.
#[derive(Serialize, Deserialize)]
struct Announcer;

#[spychro::actor]
impl Actor for Announcer {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        let one = link.get_ids("My Process One")?;
        link.send_each(&one, Msg::Text("for One only".into()))?;
        link.send(To::Listeners, Msg::Shout("for whoever listens".into()))?;
        link.send(To::Broadcast, Msg::Progress(100))?;
        link.send_each(&one, Msg::Stop)?;
        Ok(())
    }
}

// --- 9 and 10. a resident and loggers ----------------------------------------------------------

/// A logger of progress: a resident listener that records what it hears.
#[derive(Serialize, Deserialize)]
struct ProgressLog;

#[spychro::actor]
impl Logger for ProgressLog {
    type Message = Msg;
    fn listens(&self) -> Listen<MsgKind> {
        Listen::To(vec![MsgKind::Progress])
    }
    fn log(&mut self, letter: &Letter<Msg>, link: &mut Link<Msg>) -> Result<(), Fail> {
        if let Msg::Progress(p) = letter.message {
            link.prnt(format!("ProgressLog: {p}%"))?;
        }
        Ok(())
    }
}

fn listeners_and_residents() -> Result<(), spychro::Error> {
    println!("== 6-10. listeners, LISTENERS, BROADCAST, residents and loggers");
    let mut s = Supervisor::<Msg>::new();
    s.add(ProcessOne);
    s.add(TextListener);
    s.add(ProgressLog);
    // Logs every message through the `log` crate (RUST_LOG=info to see them).
    s.add(DebugLogger::<Msg>::new());
    s.add(Announcer);
    let outcomes = s.supervise()?;
    for o in outcomes {
        println!("{} (id {}) ended: {:?}", o.name, o.id, o.ended);
    }
    // Nobody listening to a kind sent to LISTENERS is an error.
    let mut s = Supervisor::<Msg>::new();
    s.add(Announcer);
    s.add(ProcessOne);
    s.on_undeliverable(|u| println!("undeliverable: {u}"));
    s.supervise()?;
    Ok(())
}

fn main() -> Result<(), spychro::Error> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    process_list()?;
    println!();
    objects()?;
    println!();
    print_and_input()?;
    names_and_messages()?;
    listeners_and_residents()?;
    Ok(())
}
