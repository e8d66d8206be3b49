//! A supervised process as the supervisor holds it: its identity, what it listens to, how
//! to start it (again), its running process and its end of the link.

use std::os::unix::net::UnixStream;

use super::actor::{ActorJob, ActorRunner, Start};
use super::link::LinkFd;
use super::message::{Listen, Message};
use crate::error::Error;
use crate::process::{Process, ProcessControl};
use crate::wire::{self, FrameBuf};

/// Starts a member's process with its end of the link: the first time with the value that
/// was added, after that (a restart) with a copy decoded from the value as it was added.
pub(crate) type Spawner =
    Box<dyn FnMut(LinkFd, u64, String, bool) -> Result<Box<dyn ProcessControl>, Error> + Send>;

/// Makes the spawner of `actor`.
pub(crate) fn spawner<A: ActorJob + Send>(actor: A) -> Spawner {
    // An actor holding channel ends cannot be encoded here (they travel only as it starts):
    // it starts once and cannot be restarted.
    let kept = wire::encode_value(&actor);
    let mut first = Some(actor);
    Box::new(move |link, id, name, daemon| {
        let actor = match first.take() {
            Some(a) => a,
            None => match &kept {
                Ok(bytes) => wire::decode_value::<A>(bytes).map_err(|e| {
                    Error::Misuse(format!(
                        "process {name} cannot be restarted: its value did not decode: {e}"
                    ))
                })?,
                Err(e) => {
                    return Err(Error::Misuse(format!(
                        "process {name} cannot be restarted: its value could not be kept \
                         ({e}); an actor holding channel ends starts only once"
                    )));
                }
            },
        };
        let start = Start {
            actor,
            link,
            id,
            name: name.clone(),
        };
        let mut p = Process::with_args(ActorRunner::<A>::new(), start, ())
            .name(name)
            .daemon(daemon);
        p.start()?;
        Ok(Box::new(p) as Box<dyn ProcessControl>)
    })
}

/// Where a member is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Added, not started.
    Added,
    /// Started; messages are routed to it.
    Running,
    /// Its run phase returned or it stopped: `CLOSE` was sent, nothing more is routed to it.
    Closing,
    /// Its process ended.
    Ended,
}

/// A member of a supervisor.
pub(crate) struct Member<M: Message> {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) listens: Listen<M::Kind>,
    pub(crate) resident: bool,
    pub(crate) spawn: Spawner,
    pub(crate) process: Option<Box<dyn ProcessControl>>,
    pub(crate) sock: Option<UnixStream>,
    pub(crate) rx: FrameBuf,
    pub(crate) tx: Vec<u8>,
    pub(crate) phase: Phase,
    /// It said it stopped (a handler returned `Flow::Stop`).
    pub(crate) stopped: bool,
    /// It was removed (through a handle) or ended by the supervisor.
    pub(crate) removed: bool,
    pub(crate) restarts: u32,
}

impl<M: Message> Member<M> {
    pub(crate) fn new(
        id: u64,
        name: String,
        listens: Listen<M::Kind>,
        resident: bool,
        spawn: Spawner,
    ) -> Self {
        Member {
            id,
            name,
            listens,
            resident,
            spawn,
            process: None,
            sock: None,
            rx: FrameBuf::default(),
            tx: Vec::new(),
            phase: Phase::Added,
            stopped: false,
            removed: false,
            restarts: 0,
        }
    }

    /// Starts its process, connected to a fresh link.
    pub(crate) fn start(&mut self, daemon: bool) -> Result<(), Error> {
        let (ours, theirs) = UnixStream::pair()
            .map_err(|e| Error::io("could not make a supervised process's link", e))?;
        ours.set_nonblocking(true)
            .map_err(|e| Error::io("could not set up a supervised process's link", e))?;
        let process = (self.spawn)(LinkFd(theirs.into()), self.id, self.name.clone(), daemon)?;
        self.process = Some(process);
        self.sock = Some(ours);
        self.rx = FrameBuf::default();
        self.tx.clear();
        self.phase = Phase::Running;
        self.stopped = false;
        Ok(())
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(|p| p.pid())
    }

    /// Whether messages are routed to it.
    pub(crate) fn receives(&self) -> bool {
        self.phase == Phase::Running
    }

    /// Whether it still counts as alive for the supervisor (started, not ended).
    pub(crate) fn live(&self) -> bool {
        matches!(self.phase, Phase::Running | Phase::Closing)
    }

    /// Kills its process (when it runs).
    pub(crate) fn kill(&mut self) {
        if let Some(p) = self.process.as_mut()
            && self.phase != Phase::Ended
        {
            p.kill();
        }
    }
}
