//! [`Link`]: a supervised process's side of its connection to the supervisor — sending
//! messages, objects, lines and input requests, looking up ids, and serving its mailbox.
//!
//! Sends are written at once, except while handlers run on a burst of arrived messages: then
//! they are gathered and written together when the burst is handled (or past 256 KiB), so
//! that a process forwarding many messages costs one write per burst, not one per message.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Display;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::actor::{Actor, Fail, Flow, Letter};
use super::frames::{self, *};
use super::message::{Message, MessageKind, To};
use crate::wire::{self, FrameBuf};

/// Gathered sends are written once they pass this.
const FLUSH_AT: usize = 256 * 1024;
/// How long a process polls its socket before it sleeps on it, yielding its CPU between polls:
/// an answer routed through the supervisor usually comes within this, and waking a process
/// that sleeps costs tens of microseconds on its own (an idle vCPU halts). Measured with the
/// hop benchmark: a round trip took 82-88 µs (median) with 50 µs spins that did not yield,
/// 20-26 µs with these.
const SPIN: Duration = Duration::from_micros(100);

/// Why a [`Link`] operation failed.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// use spychro::{Actor, Fail, Link, LinkError, Supervisor};
/// # #[derive(Debug, Clone, Serialize, Deserialize, spychro::Message)]
/// # enum Msg { Tick }
///
/// #[derive(Serialize, Deserialize)]
/// struct Caller;
///
/// #[spychro::actor]
/// impl Actor for Caller {
///     type Message = Msg;
///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
///         let nobody = link.get_ids("Nobody")?;
///         match link.send_each(&nobody, Msg::Tick) {
///             Err(LinkError::NoTargets) => link.prnt("nobody to call")?,
///             other => return Err(format!("unexpected: {other:?}").into()),
///         }
///         Ok(())
///     }
/// }
///
/// let mut lines = Vec::new();
/// let mut s = Supervisor::<Msg>::new();
/// s.add(Caller);
/// s.on_print(|_, line| lines.push(line.to_owned()));
/// s.supervise()?;
/// drop(s);
/// assert_eq!(lines, ["nobody to call"]);
/// # Ok::<(), spychro::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The supervisor closed the connection (it ended, or ended this process).
    #[error("the supervisor is gone: it ended or closed this process's connection")]
    Gone,
    /// A message or object could not be encoded.
    #[error("could not encode the {what}: {message}")]
    Encode {
        /// What was being sent.
        what: &'static str,
        /// The serializer's error.
        message: String,
    },
    /// A message was sent to an empty set of ids (multitools raises `IndexError`).
    #[error(
        "a message was sent to an empty set of ids: nothing would receive it (get_ids found no \
         process of that name?)"
    )]
    NoTargets,
    /// The caller's standard input ended (or could not be read) before a line came.
    #[error("no input: {0}")]
    NoInput(String),
    /// Reading from or writing to the supervisor failed.
    #[error("the connection to the supervisor failed: {0}")]
    Io(#[from] std::io::Error),
    /// The supervisor sent something this process could not read.
    #[error("the supervisor sent something unreadable: {0}")]
    Wire(#[from] crate::error::WireError),
}

/// How [`Link::serve_for`] ended.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// use spychro::{Actor, Fail, Link, Supervisor};
/// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// # enum Msg { Tick }
///
/// #[derive(Serialize, Deserialize)]
/// struct Idle;
///
/// #[spychro::actor]
/// impl Actor for Idle {
///     type Message = Msg;
///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
///         let served = link.serve_for(self, std::time::Duration::from_millis(20))?;
///         link.send_object(&format!("{served:?}"))?;
///         Ok(())
///     }
/// }
///
/// let mut got = Vec::new();
/// let mut s = Supervisor::<Msg>::new();
/// s.add(Idle);
/// s.on_object(|_, served: String| got.push(served));
/// s.supervise()?;
/// drop(s);
/// assert_eq!(got, ["TimeUp"]); // nothing came: Served::TimeUp
/// # Ok::<(), spychro::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The time was up.
    TimeUp,
    /// The condition given to [`Link::serve_until`] holds.
    Done,
    /// A handler returned [`Flow::Stop`]: the run phase should return.
    Stopped,
    /// The supervisor closed this process's link: nothing more will be routed to it (a
    /// resident whose non-residents all ended, or a process whose run phase ended).
    Closed,
}

/// A process's end of its link, as its child inherits it.
#[doc(hidden)]
#[derive(Debug)]
pub struct LinkFd(pub(crate) OwnedFd);

impl Serialize for LinkFd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::channel::serialize_fd(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for LinkFd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::channel::deserialize_fd(d).map(LinkFd)
    }
}

/// A supervised process's connection to its supervisor (multitools' `self.send_message`,
/// `self.send_object`, `self.prnt`, `self.inpt`, `self.get_ids`), handed to
/// [`Actor::run`] and [`Actor::handle`].
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spychro::{Actor, Fail, Link, Supervisor};
///
/// #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// enum Msg { Hello(String) }
///
/// #[derive(Serialize, Deserialize)]
/// struct Greeter;
///
/// #[spychro::actor]
/// impl Actor for Greeter {
///     type Message = Msg;
///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
///         link.prnt(format!("I am {} (id {})", link.name(), link.id()))?;
///         Ok(())
///     }
/// }
///
/// let mut lines = Vec::new();
/// let mut s = Supervisor::<Msg>::new();
/// let id = s.add(Greeter);
/// s.on_print(|from, line| lines.push((from.id, line.to_string())));
/// s.supervise()?;
/// drop(s);
/// assert_eq!(lines, [(id, format!("I am Greeter (id {id})"))]);
/// # Ok::<(), spychro::Error>(())
/// ```
pub struct Link<M: Message> {
    id: u64,
    name: String,
    sock: UnixStream,
    rx: FrameBuf,
    tx: Vec<u8>,
    inbox: VecDeque<Letter<M>>,
    ids: HashMap<String, BTreeSet<u64>>,
    asked: HashSet<String>,
    input: Option<Result<String, String>>,
    closed: bool,
    gone: bool,
    pub(crate) stopped: bool,
    pub(crate) failed: Option<String>,
    gathering: bool,
}

impl<M: Message> Link<M> {
    pub(crate) fn connect(fd: LinkFd, id: u64, name: String) -> Result<Self, String> {
        let sock = UnixStream::from(fd.0);
        sock.set_nonblocking(true)
            .map_err(|e| format!("could not set up the link to the supervisor: {e}"))?;
        Ok(Link {
            id,
            name,
            sock,
            rx: FrameBuf::default(),
            tx: Vec::with_capacity(64 * 1024),
            inbox: VecDeque::new(),
            ids: HashMap::new(),
            asked: HashSet::new(),
            input: None,
            closed: false,
            gone: false,
            stopped: false,
            failed: None,
            gathering: false,
        })
    }

    /// This process's id (multitools' `p_id`): unique in its supervisor, kept across restarts.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct WhoAmI;
    ///
    /// #[spychro::actor]
    /// impl Actor for WhoAmI {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.send_object(&link.id())?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut seen = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// let a = s.add(WhoAmI);
    /// let b = s.add(WhoAmI);
    /// s.on_object(|from, id: u64| seen.push((from.id, id)));
    /// s.supervise()?;
    /// drop(s);
    /// seen.sort();
    /// assert_eq!(seen, [(a, a), (b, b)]); // the id that `add` returned
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

    /// This process's name (multitools' `M_NAME`): its [`Actor::name`].
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Shard(u32);
    ///
    /// #[spychro::actor]
    /// impl Actor for Shard {
    ///     type Message = Msg;
    ///     fn name(&self) -> String { format!("shard-{}", self.0) }
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.prnt(format!("{} ready", link.name()))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut lines = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Shard(3));
    /// s.on_print(|_, line| lines.push(line.to_owned()));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(lines, ["shard-3 ready"]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the supervisor asked this process to end: nothing more will be routed to it.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Worker;
    ///
    /// #[spychro::actor]
    /// impl Actor for Worker {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.send_object(&link.is_closed())?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut closed = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Worker);
    /// s.on_object(|_, c: bool| closed.push(c));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(closed, [false]); // open while its run phase works
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.closed || self.gone
    }

    /// Sends `message` to `to`: a process id, the listeners of its kind, or everyone. A message
    /// that cannot be delivered (no such process, it ended, nobody listens) is reported to the
    /// supervisor, never dropped silently. To the listeners: see [`Actor::listens`]; to
    /// everyone:
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Flow, Letter, Link, Supervisor, To};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Text(String) }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ear(String);
    ///
    /// #[spychro::actor]
    /// impl Actor for Ear {
    ///     type Message = Msg;
    ///     const RESIDENT: bool = true;
    ///     fn name(&self) -> String { self.0.clone() }
    ///     fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         let Msg::Text(text) = letter.message;
    ///         link.send_object(&(self.0.clone(), text))?;
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Announcer; // no handler: it would refuse its own broadcast, but does not get it
    ///
    /// #[spychro::actor]
    /// impl Actor for Announcer {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.send(To::Broadcast, Msg::Text("hello".into()))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut heard = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Ear("left".into()));
    /// s.add(Ear("right".into()));
    /// s.add(Announcer);
    /// s.on_object(|_, v: (String, String)| heard.push(v));
    /// s.supervise()?;
    /// drop(s);
    /// heard.sort();
    /// assert_eq!(heard, [("left".into(), "hello".into()), ("right".into(), "hello".into())]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn send(&mut self, to: To, message: M) -> Result<(), LinkError> {
        let kind = message.kind().index();
        frames::push_send(&mut self.tx, to, kind, &message).map_err(|message| {
            LinkError::Encode {
                what: "message",
                message,
            }
        })?;
        self.written()
    }

    /// Sends `message` to the process with id `id` (multitools' `send_object(Message(id, ..))`).
    ///
    /// An id is known as soon as the process is added, so it can be given to another process;
    /// a reply goes to [`Letter::from`](crate::Letter::from):
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Flow, Letter, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Ping(u64), Pong(u64) }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ponger;
    ///
    /// #[spychro::actor]
    /// impl Actor for Ponger {
    ///     type Message = Msg;
    ///     const RESIDENT: bool = true;
    ///     fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         if let Msg::Ping(n) = letter.message {
    ///             link.send_to(letter.from, Msg::Pong(n + 1))?;
    ///         }
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Pinger { ponger: u64, answer: Option<u64> }
    ///
    /// #[spychro::actor]
    /// impl Actor for Pinger {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.send_to(self.ponger, Msg::Ping(41))?;
    ///         link.serve_until(self, std::time::Duration::from_secs(10), |p| p.answer.is_some())?;
    ///         link.send_object(&self.answer)?;
    ///         Ok(())
    ///     }
    ///     fn handle(&mut self, letter: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         if let Msg::Pong(n) = letter.message {
    ///             self.answer = Some(n);
    ///         }
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// let mut answer = None;
    /// let mut s = Supervisor::<Msg>::new();
    /// let ponger = s.add(Ponger);
    /// s.add(Pinger { ponger, answer: None });
    /// s.on_object(|_, a: Option<u64>| answer = a);
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(answer, Some(42));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn send_to(&mut self, id: u64, message: M) -> Result<(), LinkError> {
        self.send(To::Id(id), message)
    }

    /// Sends a copy of `message` to each of `ids` (multitools' `send_message(ids, ...)`) and
    /// returns how many were sent; an empty set is an error ([`LinkError::NoTargets`], see
    /// its example).
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Flow, Letter, Link, Supervisor};
    /// # #[derive(Debug, Clone, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Job(u32) }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Worker;
    ///
    /// #[spychro::actor]
    /// impl Actor for Worker {
    ///     type Message = Msg;
    ///     const RESIDENT: bool = true;
    ///     fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         let Msg::Job(n) = letter.message;
    ///         link.send_object(&(link.id(), n))?;
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Boss;
    ///
    /// #[spychro::actor]
    /// impl Actor for Boss {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         let workers = link.get_ids("Worker")?;
    ///         let sent = link.send_each(&workers, Msg::Job(7))?;
    ///         link.prnt(format!("sent {sent}"))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let (mut jobs, mut lines) = (Vec::new(), Vec::new());
    /// let mut s = Supervisor::<Msg>::new();
    /// let a = s.add(Worker);
    /// let b = s.add(Worker);
    /// s.add(Boss);
    /// s.on_object(|_, job: (u64, u32)| jobs.push(job));
    /// s.on_print(|_, line| lines.push(line.to_owned()));
    /// s.supervise()?;
    /// drop(s);
    /// jobs.sort();
    /// assert_eq!(jobs, [(a, 7), (b, 7)]);
    /// assert_eq!(lines, ["sent 2"]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn send_each<'i>(
        &mut self,
        ids: impl IntoIterator<Item = &'i u64>,
        message: M,
    ) -> Result<usize, LinkError>
    where
        M: Clone,
    {
        let mut sent = 0;
        for id in ids {
            self.send(To::Id(*id), message.clone())?;
            sent += 1;
        }
        if sent == 0 {
            return Err(LinkError::NoTargets);
        }
        Ok(sent)
    }

    /// Sends any serializable value to the supervisor's object handler (multitools'
    /// `send_object`); without a handler, the supervisor reports it as an error naming this
    /// process and the value's type.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Debug, PartialEq, Serialize, Deserialize)]
    /// struct Stats { lines: u32, words: u32 }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Count(String);
    ///
    /// #[spychro::actor]
    /// impl Actor for Count {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         let lines = self.0.lines().count() as u32;
    ///         let words = self.0.split_whitespace().count() as u32;
    ///         link.send_object(&Stats { lines, words })?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut got = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Count("one two\nthree".into()));
    /// s.on_object(|_, stats: Stats| got.push(stats));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(got, [Stats { lines: 2, words: 3 }]);
    ///
    /// // Without an object handler, the object ends the supervisor.
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Count("x".into()));
    /// let err = s.supervise().unwrap_err();
    /// assert!(err.to_string().starts_with("unknown object sent to supervisor"), "{err}");
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn send_object<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), LinkError> {
        let bytes = wire::encode_value(value).map_err(|message| LinkError::Encode {
            what: "object",
            message,
        })?;
        let object = (std::any::type_name::<T>(), bytes);
        frames::push_value(&mut self.tx, UP_OBJECT, &object).map_err(|message| {
            LinkError::Encode {
                what: "object",
                message,
            }
        })?;
        self.written()
    }

    /// Has the supervisor print one whole line (never interleaved with another process's), or
    /// hand it to its print handler (multitools' `prnt`).
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Chatty;
    ///
    /// #[spychro::actor]
    /// impl Actor for Chatty {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.prnt("starting")?;
    ///         link.prnt(6 * 7)?; // anything Display
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut lines = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Chatty);
    /// s.on_print(|_, line| lines.push(line.to_owned()));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(lines, ["starting", "42"]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn prnt(&mut self, line: impl Display) -> Result<(), LinkError> {
        frames::push_value(&mut self.tx, UP_PRINT, &line.to_string()).map_err(|message| {
            LinkError::Encode {
                what: "line",
                message,
            }
        })?;
        self.written()
    }

    /// Asks the user: the supervisor prints `prompt` and reads one line of its standard input
    /// (prompts of several processes are asked one at a time), then this call returns it
    /// without its line ending (multitools' `inpt`). Other processes go on talking meanwhile;
    /// messages sent to this one wait in its mailbox. Once the input has ended, it fails with
    /// [`LinkError::NoInput`].
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ask;
    ///
    /// #[spychro::actor]
    /// impl Actor for Ask {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         let name = link.inpt("name? ")?;
    ///         let more = link.inpt("more? ").map_err(|e| e.to_string());
    ///         link.send_object(&(name, more))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut got = None;
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Ask);
    /// s.input_from(std::io::Cursor::new("Ada\n"));
    /// s.on_object(|_, answers: (String, Result<String, String>)| got = Some(answers));
    /// s.supervise()?;
    /// drop(s);
    /// let (name, more) = got.unwrap();
    /// assert_eq!(name, "Ada");
    /// assert_eq!(more.unwrap_err(), "no input: the supervisor's standard input ended");
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn inpt(&mut self, prompt: impl Display) -> Result<String, LinkError> {
        frames::push_value(&mut self.tx, UP_INPUT, &prompt.to_string()).map_err(|message| {
            LinkError::Encode {
                what: "prompt",
                message,
            }
        })?;
        self.input = None;
        while self.input.is_none() {
            self.wait(None)?;
        }
        match self.input.take() {
            Some(Ok(line)) => Ok(line),
            Some(Err(why)) => Err(LinkError::NoInput(why)),
            None => Err(LinkError::Gone),
        }
    }

    /// The ids of the running processes named `name` (an empty set when there are none),
    /// asking the supervisor unless an answer is known: the supervisor keeps an answer it gave
    /// up to date as processes of that name start and end.
    ///
    /// ```
    /// # use std::collections::BTreeSet;
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Worker;
    ///
    /// #[spychro::actor]
    /// impl Actor for Worker {
    ///     type Message = Msg;
    ///     const RESIDENT: bool = true; // running until the others end
    /// }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Boss;
    ///
    /// #[spychro::actor]
    /// impl Actor for Boss {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         let found = (link.get_ids("Worker")?, link.get_ids("Nobody")?);
    ///         link.send_object(&found)?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut got = None;
    /// let mut s = Supervisor::<Msg>::new();
    /// let a = s.add(Worker);
    /// let b = s.add(Worker);
    /// s.add(Boss);
    /// s.on_object(|_, found: (BTreeSet<u64>, BTreeSet<u64>)| got = Some(found));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(got, Some((BTreeSet::from([a, b]), BTreeSet::new())));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn get_ids(&mut self, name: &str) -> Result<BTreeSet<u64>, LinkError> {
        self.prefetch_ids(name)?;
        loop {
            if let Some(ids) = self.ids.get(name) {
                return Ok(ids.clone());
            }
            self.wait(None)?;
        }
    }

    /// Asks for the ids of `name` without waiting (multitools' `get_ids(name, block=False)`):
    /// a later [`get_ids`](Link::get_ids) returns the answer at once if it has come.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Store;
    ///
    /// #[spychro::actor]
    /// impl Actor for Store {
    ///     type Message = Msg;
    ///     const RESIDENT: bool = true;
    /// }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Loader;
    ///
    /// #[spychro::actor]
    /// impl Actor for Loader {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.prefetch_ids("Store")?; // ask now...
    ///         let sum: u64 = (1..=1000).sum(); // ...work while the answer comes...
    ///         let stores = link.get_ids("Store")?; // ...and take it (waiting only if it has not)
    ///         link.send_object(&(sum, stores.len()))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut got = None;
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Store);
    /// s.add(Loader);
    /// s.on_object(|_, v: (u64, usize)| got = Some(v));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(got, Some((500500, 1)));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn prefetch_ids(&mut self, name: &str) -> Result<(), LinkError> {
        if self.ids.contains_key(name) || self.asked.contains(name) {
            return Ok(());
        }
        frames::push_value(&mut self.tx, UP_IDS, &name).map_err(|message| LinkError::Encode {
            what: "name",
            message,
        })?;
        self.asked.insert(name.to_owned());
        self.written()
    }

    /// Handles the messages that arrive for up to `time` (the seed's `time.sleep` in `op`,
    /// during which messages are handled), returning early when a handler stops the process
    /// or the supervisor closes it. A handler's error is returned (and fails the process even
    /// if the run phase ignores it). When nothing stops it, it returns [`Served::TimeUp`] (see
    /// [`Served`]'s example); a stop returns at once:
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Flow, Letter, Link, Supervisor, To};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Stop }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Waiter;
    ///
    /// #[spychro::actor]
    /// impl Actor for Waiter {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         let served = link.serve_for(self, std::time::Duration::from_secs(10))?;
    ///         link.send_object(&format!("{served:?}"))?;
    ///         Ok(())
    ///     }
    ///     fn handle(&mut self, _: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         Ok(Flow::Stop)
    ///     }
    /// }
    ///
    /// let mut got = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// let id = s.add(Waiter);
    /// s.handle().send(To::Id(id), Msg::Stop)?;
    /// s.on_object(|_, served: String| got.push(served));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(got, ["Stopped"]); // well before the 10 s
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn serve_for<A: Actor<Message = M>>(
        &mut self,
        actor: &mut A,
        time: Duration,
    ) -> Result<Served, Fail> {
        let deadline = Instant::now().checked_add(time);
        self.serve(actor, deadline)
    }

    /// Handles the messages that arrive until `done(actor)` holds (checked after each
    /// message, and first of all), for up to `time`: [`Served::Done`] then. Returns early, as
    /// [`serve_for`](Link::serve_for) does, when a handler stops the process or the
    /// supervisor closes it.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Flow, Letter, Link, Supervisor, To};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Number(u64) }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Collect { got: Vec<u64> }
    ///
    /// #[spychro::actor]
    /// impl Actor for Collect {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         let time = std::time::Duration::from_secs(10);
    ///         let served = link.serve_until(self, time, |c| c.got.len() == 3)?;
    ///         link.send_object(&(format!("{served:?}"), self.got.clone()))?;
    ///         Ok(())
    ///     }
    ///     fn handle(&mut self, letter: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         let Msg::Number(n) = letter.message;
    ///         self.got.push(n);
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// let mut got = None;
    /// let mut s = Supervisor::<Msg>::new();
    /// let id = s.add(Collect { got: Vec::new() });
    /// for n in [10, 20, 30] {
    ///     s.handle().send(To::Id(id), Msg::Number(n))?;
    /// }
    /// s.on_object(|_, v: (String, Vec<u64>)| got = Some(v));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(got, Some(("Done".to_string(), vec![10, 20, 30])));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn serve_until<A: Actor<Message = M>>(
        &mut self,
        actor: &mut A,
        time: Duration,
        mut done: impl FnMut(&A) -> bool,
    ) -> Result<Served, Fail> {
        let deadline = Instant::now().checked_add(time);
        self.serve_inner(actor, deadline, &mut done)
    }

    /// Handles the messages that arrived so far, without waiting.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Flow, Letter, Link, Supervisor, To};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Busy { ticks: u32 }
    ///
    /// #[spychro::actor]
    /// impl Actor for Busy {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         // A round trip to the supervisor: the ticks routed before its answer came with it.
    ///         link.get_ids("Busy")?;
    ///         let served = link.serve_pending(self)?;
    ///         link.send_object(&(format!("{served:?}"), self.ticks))?;
    ///         Ok(())
    ///     }
    ///     fn handle(&mut self, _: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         self.ticks += 1;
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// let mut got = None;
    /// let mut s = Supervisor::<Msg>::new();
    /// let id = s.add(Busy { ticks: 0 });
    /// s.handle().send(To::Id(id), Msg::Tick)?;
    /// s.handle().send(To::Id(id), Msg::Tick)?;
    /// s.on_object(|_, v: (String, u32)| got = Some(v));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(got, Some(("TimeUp".to_string(), 2)));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn serve_pending<A: Actor<Message = M>>(&mut self, actor: &mut A) -> Result<Served, Fail> {
        self.serve(actor, Some(Instant::now()))
    }

    /// Reports `letter` to the supervisor as not handled, with the reason.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Flow, Letter, Link, Supervisor, To};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Number(u64) }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct EvenOnly;
    ///
    /// #[spychro::actor]
    /// impl Actor for EvenOnly {
    ///     type Message = Msg;
    ///     const RESIDENT: bool = true;
    ///     fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         let Msg::Number(n) = letter.message;
    ///         if n % 2 == 1 {
    ///             link.refuse(&letter, "it takes even numbers only");
    ///         }
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// let mut refused = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// let id = s.add(EvenOnly);
    /// s.handle().send(To::Id(id), Msg::Number(2))?;
    /// s.handle().send(To::Id(id), Msg::Number(3))?;
    /// s.on_undeliverable(|u| refused.push(u.to_string()));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(
    ///     refused,
    ///     [format!("a Number message from the supervisor (id 0) to process EvenOnly (id {id}) \
    ///               could not be delivered: it takes even numbers only")]
    /// );
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn refuse(&mut self, letter: &Letter<M>, reason: &str) {
        frames::push_refused(&mut self.tx, letter.from, letter.kind().index(), reason);
        let _ = self.written();
    }

    /// Serves until `deadline` (`None`: until closed).
    pub(crate) fn serve<A: Actor<Message = M>>(
        &mut self,
        actor: &mut A,
        deadline: Option<Instant>,
    ) -> Result<Served, Fail> {
        self.serve_inner(actor, deadline, &mut |_| false)
    }

    fn serve_inner<A: Actor<Message = M>>(
        &mut self,
        actor: &mut A,
        deadline: Option<Instant>,
        done: &mut dyn FnMut(&A) -> bool,
    ) -> Result<Served, Fail> {
        loop {
            if done(actor) {
                self.flush()?;
                return Ok(Served::Done);
            }
            while let Some(letter) = self.inbox.pop_front() {
                if self.stopped {
                    self.refuse(&letter, "it stopped (a handler returned Flow::Stop)");
                    continue;
                }
                self.gathering = true;
                let flow = actor.handle(letter, self);
                self.gathering = false;
                match flow {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Stop) => {
                        self.stopped = true;
                        frames::push_empty(&mut self.tx, UP_STOPPED);
                        self.flush()?;
                        return Ok(Served::Stopped);
                    }
                    Err(e) => {
                        self.failed = Some(e.to_string());
                        return Err(e);
                    }
                }
                if self.tx.len() >= FLUSH_AT {
                    self.flush()?;
                }
                if done(actor) {
                    self.flush()?;
                    return Ok(Served::Done);
                }
            }
            if self.stopped {
                return Ok(Served::Stopped);
            }
            if self.is_closed() {
                self.flush()?;
                return Ok(Served::Closed);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // What already waits on the socket is served too, even with no time left.
                if self.read()? && !self.inbox.is_empty() {
                    continue;
                }
                self.flush()?;
                return Ok(Served::TimeUp);
            }
            self.wait(deadline)?;
        }
    }

    /// Serves what is sent until the supervisor closes the link; refuses it after a stop.
    pub(crate) fn serve_to_end<A: Actor<Message = M>>(
        &mut self,
        actor: &mut A,
    ) -> Result<(), Fail> {
        loop {
            match self.serve(actor, None)? {
                Served::Closed => return Ok(()),
                Served::Stopped if self.is_closed() && self.inbox.is_empty() => return Ok(()),
                Served::Stopped => {
                    if let Err(LinkError::Gone) = self.wait(None) {
                        return Ok(());
                    }
                }
                Served::TimeUp | Served::Done => {}
            }
        }
    }

    /// Tells the supervisor the run phase ended (or that it stopped).
    pub(crate) fn finish(&mut self) -> Result<(), LinkError> {
        if !self.stopped {
            frames::push_empty(&mut self.tx, UP_FINISHED);
        }
        self.flush()
    }

    /// After a frame was added: writes it unless sends are being gathered.
    fn written(&mut self) -> Result<(), LinkError> {
        if !self.gathering || self.tx.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes everything gathered, waiting for room when the socket is full.
    pub(crate) fn flush(&mut self) -> Result<(), LinkError> {
        let mut done = 0;
        while done < self.tx.len() {
            match (&self.sock).write(&self.tx[done..]) {
                Ok(0) => return Err(LinkError::Gone),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // Read while waiting for room, so that neither side waits on the other.
                    self.take_frames()?;
                    let mut fds = [PollFd::new(
                        self.sock.as_fd(),
                        PollFlags::POLLOUT | PollFlags::POLLIN,
                    )];
                    let _ = poll(&mut fds, PollTimeout::from(100u8));
                    let readable = fds[0]
                        .revents()
                        .is_some_and(|r| r.contains(PollFlags::POLLIN));
                    if readable {
                        self.read()?;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    self.gone = true;
                    return Err(LinkError::Gone);
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.tx.clear();
        Ok(())
    }

    /// Flushes, then waits until something arrives (or `deadline`), and takes it in.
    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), LinkError> {
        self.flush()?;
        if self.gone {
            return Err(LinkError::Gone);
        }
        let spin_until = Instant::now() + SPIN;
        loop {
            if self.read()? {
                return Ok(());
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(());
            }
            if now < spin_until {
                // Let a process that has work run on this CPU meanwhile.
                std::thread::yield_now();
                continue;
            }
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let ms = d
                        .saturating_duration_since(now)
                        .as_millis()
                        .clamp(1, 60_000);
                    PollTimeout::from(ms as u16)
                }
            };
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(std::io::Error::from(e).into()),
            }
            if self.read()? || deadline.is_some() {
                return Ok(());
            }
        }
    }

    /// Reads what the socket holds and takes its frames; `Ok(true)` if anything came.
    fn read(&mut self) -> Result<bool, LinkError> {
        let mut any = false;
        loop {
            let before = self.inbox.len();
            let open = self.rx.fill(&mut &self.sock)?;
            let took = self.take_frames()?;
            any |= took || self.inbox.len() > before;
            if !open {
                self.gone = true;
                return if any { Ok(true) } else { Err(LinkError::Gone) };
            }
            if !took {
                return Ok(any);
            }
        }
    }

    /// Takes the whole frames received; `Ok(true)` if there were any.
    fn take_frames(&mut self) -> Result<bool, LinkError> {
        let mut any = false;
        while let Some((tag, body)) = self.rx.next_frame()? {
            any = true;
            match tag {
                DOWN_DELIVER => {
                    let (from, to, kind, bytes) = frames::parse_deliver(body)?;
                    match wire::decode_value::<M>(bytes) {
                        Ok(message) => self.inbox.push_back(Letter { from, to, message }),
                        Err(e) => {
                            let name = M::Kind::from_index(kind).map_or("?", |k| k.name());
                            let reason = format!("it could not decode the {name} message: {e}");
                            frames::push_refused(&mut self.tx, from, kind, &reason);
                        }
                    }
                }
                DOWN_INPUT => {
                    self.input = Some(wire::decode::<Result<String, String>>(body, "input")?);
                }
                DOWN_IDS => {
                    let (name, ids): (String, BTreeSet<u64>) = wire::decode(body, "ids")?;
                    self.asked.remove(&name);
                    self.ids.insert(name, ids);
                }
                DOWN_CLOSE => self.closed = true,
                other => {
                    return Err(LinkError::Wire(crate::error::WireError::Decode {
                        what: "supervisor frame",
                        message: format!("unknown tag {other}"),
                    }));
                }
            }
        }
        Ok(any)
    }
}
