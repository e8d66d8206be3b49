// A supervisor with a message enum whose `Shout` is a kind of `Text`: a resident listening
// to `Text` also hears shouts, a `Logger` hears only shouts, and a plain actor sends both.
use serde::{Deserialize, Serialize};
use spychro::{Actor, Fail, Flow, Letter, Link, Listen, Logger, Supervisor, To};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, spychro::Message)]
enum Msg {
    Text(String),
    #[message(parent = Text)]
    Shout(String),
    Number(u64),
}

/// Sends a text and a shout to whoever listens, then ends.
#[derive(Serialize, Deserialize)]
struct Speaker;

#[spychro::actor]
impl Actor for Speaker {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.send(To::Listeners, Msg::Text("hello".into()))?;
        link.send(To::Listeners, Msg::Shout("HEY".into()))?;
        Ok(())
    }
}

/// A resident hearing every `Text`, shouts included: reports each to the supervisor.
#[derive(Serialize, Deserialize)]
struct Collector;

#[spychro::actor]
impl Actor for Collector {
    type Message = Msg;
    const RESIDENT: bool = true;
    fn listens(&self) -> Listen<MsgKind> {
        Listen::To(vec![MsgKind::Text])
    }
    fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
        link.send_object(&letter.message)?;
        Ok(Flow::Continue)
    }
}

/// A logger hearing shouts only: prints each.
#[derive(Serialize, Deserialize)]
struct ShoutLog;

#[spychro::actor]
impl Logger for ShoutLog {
    type Message = Msg;
    fn listens(&self) -> Listen<MsgKind> {
        Listen::To(vec![MsgKind::Shout])
    }
    fn log(&mut self, letter: &Letter<Msg>, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.prnt(format!("logged {:?}", letter.message))?;
        Ok(())
    }
}

fn main() {
    use spychro::{Message, MessageKind};
    assert!(Msg::Shout("x".into()).is_a(MsgKind::Text));
    assert!(!Msg::Number(1).is_a(MsgKind::Text));
    assert_eq!(MsgKind::Shout.parent(), Some(MsgKind::Text));

    let mut heard: Vec<Msg> = Vec::new();
    let mut printed: Vec<(String, String)> = Vec::new();
    let mut s = Supervisor::<Msg>::new();
    s.add(Collector);
    s.add(ShoutLog);
    s.add(Speaker);
    s.on_object(|_, m: Msg| heard.push(m));
    s.on_print(|from, line| printed.push((from.name.clone(), line.to_owned())));
    let outcomes = s.supervise().unwrap();
    drop(s);
    assert_eq!(outcomes.len(), 3);
    assert_eq!(
        heard,
        [Msg::Text("hello".into()), Msg::Shout("HEY".into())]
    );
    assert_eq!(
        printed,
        [("ShoutLog".to_string(), "logged Shout(\"HEY\")".to_string())]
    );
}
