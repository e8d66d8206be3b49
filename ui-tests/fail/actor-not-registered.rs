// An actor must be registered with `#[spychro::actor]` on its `impl Actor` block, or child
// processes could not find it; implementing `Actor` alone is not enough.
use serde::{Deserialize, Serialize};
use spychro::{Actor, Fail, Link, Supervisor};

#[derive(Debug, Serialize, Deserialize, spychro::Message)]
enum Msg {
    Number(u64),
}

#[derive(Serialize, Deserialize)]
struct Square(u64);

impl Actor for Square {
    type Message = Msg;
    fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
        link.send_object(&(self.0 * self.0))?;
        Ok(())
    }
}

fn main() {
    let mut s = Supervisor::<Msg>::new();
    s.add(Square(3));
}
