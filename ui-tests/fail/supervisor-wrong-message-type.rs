// A supervisor runs actors of its own message enum only: `Square` speaks `MsgB`, the
// supervisor `MsgA`.
use serde::{Deserialize, Serialize};
use spychro::{Actor, Fail, Link, Supervisor};

#[derive(Debug, Serialize, Deserialize, spychro::Message)]
enum MsgA {
    Text(String),
}

#[derive(Debug, Serialize, Deserialize, spychro::Message)]
enum MsgB {
    Number(u64),
}

#[derive(Serialize, Deserialize)]
struct Square(u64);

#[spychro::actor]
impl Actor for Square {
    type Message = MsgB;
    fn run(&mut self, link: &mut Link<MsgB>) -> Result<(), Fail> {
        link.send_object(&(self.0 * self.0))?;
        Ok(())
    }
}

fn main() {
    let mut s = Supervisor::<MsgA>::new();
    s.add(Square(3));
}
