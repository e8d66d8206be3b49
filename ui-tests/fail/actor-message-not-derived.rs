// An actor's `type Message` must implement `spychro::Message`: the enum lacks
// `#[derive(spychro::Message)]`.
use serde::{Deserialize, Serialize};
use spychro::{Actor, Fail, Link};

#[derive(Debug, Serialize, Deserialize)]
enum Msg {
    Text(String),
}

#[derive(Serialize, Deserialize)]
struct Greeter;

#[spychro::actor]
impl Actor for Greeter {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.prnt("hello")?;
        Ok(())
    }
}

fn main() {}
