// `#[spychro::task]` registers an `impl Task` block; an `impl Actor` takes
// `#[spychro::actor]`.
use serde::{Deserialize, Serialize};
use spychro::{Actor, Fail, Link};

#[derive(Debug, Serialize, Deserialize, spychro::Message)]
enum Msg {
    Number(u64),
}

#[derive(Serialize, Deserialize)]
struct Square(u64);

#[spychro::task]
impl Actor for Square {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.send_object(&(self.0 * self.0))?;
        Ok(())
    }
}

fn main() {}
