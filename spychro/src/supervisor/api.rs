//! [`Supervisor`]: the public face — add processes, set handlers and a restart policy,
//! start, join (the routing loop, `hub`), and a [`SupervisorHandle`] to plug processes in and
//! out while it runs.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::actor::ActorJob;
use super::input::Input;
use super::member::{Member, Phase, Spawner, spawner};
use super::message::{Listen, Message, To};
use crate::error::{Error, SupervisorError, Undelivered};

/// Who sent an object or a line to the supervisor.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// use spychro::{Actor, Fail, Link, Origin, Supervisor};
/// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// # enum Msg { Tick }
///
/// #[derive(Serialize, Deserialize)]
/// struct Hello;
///
/// #[spychro::actor]
/// impl Actor for Hello {
///     type Message = Msg;
///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
///         link.prnt(std::process::id())?;
///         Ok(())
///     }
/// }
///
/// let mut seen = Vec::new();
/// let mut s = Supervisor::<Msg>::new();
/// let id = s.add(Hello);
/// s.on_print(|from: &Origin, line| seen.push((from.clone(), line.to_owned())));
/// s.supervise()?;
/// drop(s);
/// let (from, line) = &seen[0];
/// assert_eq!((from.id, from.name.as_str()), (id, "Hello"));
/// assert_eq!(from.pid.map(|p| p.to_string()).as_ref(), Some(line)); // the sender's pid
/// # Ok::<(), spychro::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its pid.
    pub pid: Option<u32>,
}

/// When a process fails, whether the supervisor restarts it (Erlang/OTP's strategies) or
/// gives up, ending the others.
///
/// ```
/// use std::time::Duration;
/// use spychro::Restart;
///
/// let policy = Restart::OneForOne { max: 3, within: Duration::from_secs(5) };
/// assert_ne!(policy, Restart::Never);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// A failure ends every other process and `supervise` returns it (multitools' way): see
    /// [`SupervisorError`]'s example.
    #[default]
    Never,
    /// Restart the failed process alone (same id and name, a fresh copy of the value it was
    /// added with), at most `max` times within `within`; one more failure in that window
    /// ends everything with [`SupervisorError::RestartsExhausted`].
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use std::time::Duration;
    /// use spychro::{Actor, Error, Fail, Link, Restart, Supervisor, SupervisorError};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Broken;
    ///
    /// #[spychro::actor]
    /// impl Actor for Broken {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.send_object(&link.id())?;
    ///         Err("disk full".into())
    ///     }
    /// }
    ///
    /// let mut starts = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// let id = s.add(Broken);
    /// s.restart(Restart::OneForOne { max: 2, within: Duration::from_secs(60) });
    /// s.on_object(|_, id: u64| starts.push(id));
    /// let err = s.supervise().unwrap_err();
    /// drop(s);
    /// assert_eq!(starts, [id, id, id]); // the first start and 2 restarts, with the same id
    /// let Error::Supervisor(e) = err else { panic!("{err}") };
    /// let SupervisorError::RestartsExhausted { failures, max, .. } = *e else { panic!("{e}") };
    /// assert_eq!((failures, max), (3, 2));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    OneForOne {
        /// Most restarts within the window.
        max: u32,
        /// The window.
        within: Duration,
    },
    /// Kill every running process and restart them all (those whose run phase had already
    /// returned stay ended), with the same limit.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use std::time::Duration;
    /// use spychro::{Actor, Fail, Flow, Letter, Link, Restart, Supervisor};
    /// # #[derive(Debug, Clone, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Go }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Steady { go: bool }
    ///
    /// #[spychro::actor]
    /// impl Actor for Steady {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.serve_until(self, Duration::from_secs(10), |s| s.go)?; // until Flaky says so
    ///         Ok(())
    ///     }
    ///     fn handle(&mut self, _: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         self.go = true;
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// /// Fails on its first start (when it makes `marker`), succeeds on the next.
    /// #[derive(Serialize, Deserialize)]
    /// struct Flaky { marker: std::path::PathBuf }
    ///
    /// #[spychro::actor]
    /// impl Actor for Flaky {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         if std::fs::create_dir(&self.marker).is_ok() {
    ///             return Err("first start".into());
    ///         }
    ///         let steady = link.get_ids("Steady")?;
    ///         link.send_each(&steady, Msg::Go)?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # let marker = format!("spychro-doc-one-for-all-{}", std::process::id());
    /// # let marker = std::env::temp_dir().join(marker);
    /// # let _ = std::fs::remove_dir(&marker);
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Steady { go: false });
    /// s.add(Flaky { marker: marker.clone() });
    /// s.restart(Restart::OneForAll { max: 1, within: Duration::from_secs(60) });
    /// let outcomes = s.supervise()?;
    /// # std::fs::remove_dir(&marker).unwrap();
    /// // Flaky's failure restarted Steady too.
    /// assert!(outcomes.iter().all(|o| o.restarts == 1), "{outcomes:?}");
    /// # Ok::<(), spychro::Error>(())
    /// ```
    OneForAll {
        /// Most restarts within the window.
        max: u32,
        /// The window.
        within: Duration,
    },
}

/// How a supervised process ended, from [`Supervisor::join`]. A removed process is in
/// [`SupervisorHandle::remove`]'s example.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// use spychro::{Actor, Ended, Fail, Flow, Letter, Link, Supervisor, To};
/// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// # enum Msg { Stop }
///
/// #[derive(Serialize, Deserialize)]
/// struct Quick; // its run phase returns at once
///
/// #[spychro::actor]
/// impl Actor for Quick {
///     type Message = Msg;
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct Stoppable;
///
/// #[spychro::actor]
/// impl Actor for Stoppable {
///     type Message = Msg;
///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
///         link.serve_for(self, std::time::Duration::from_secs(10))?;
///         Ok(())
///     }
///     fn handle(&mut self, _: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
///         Ok(Flow::Stop)
///     }
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct Resident;
///
/// #[spychro::actor]
/// impl Actor for Resident {
///     type Message = Msg;
///     const RESIDENT: bool = true;
/// }
///
/// let mut s = Supervisor::<Msg>::new();
/// s.add(Quick);
/// let stoppable = s.add(Stoppable);
/// s.add(Resident);
/// s.handle().send(To::Id(stoppable), Msg::Stop)?;
/// let ended: Vec<Ended> = s.supervise()?.iter().map(|o| o.ended).collect();
/// assert_eq!(ended, [Ended::Finished, Ended::Stopped, Ended::Closed]);
/// # Ok::<(), spychro::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its run phase returned.
    Finished,
    /// A handler returned [`Flow::Stop`](crate::Flow::Stop).
    Stopped,
    /// A resident, closed once every non-resident had ended.
    Closed,
    /// Removed while the supervisor ran.
    Removed,
}

/// One process's outcome.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// # enum Msg { Tick }
/// use spychro::{Ended, Supervisor};
///
/// #[derive(Serialize, Deserialize)]
/// struct Quick; // its run phase returns at once
///
/// #[spychro::actor]
/// impl spychro::Actor for Quick {
///     type Message = Msg;
/// }
///
/// let mut s = Supervisor::<Msg>::new();
/// let id = s.add(Quick);
/// let outcomes = s.supervise()?;
/// let o = &outcomes[0];
/// assert_eq!((o.id, o.name.as_str(), o.ended), (id, "Quick", Ended::Finished));
/// assert_eq!((o.exit_code, o.restarts), (Some(0), 0));
/// assert!(o.pid.is_some());
/// # Ok::<(), spychro::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its last pid.
    pub pid: Option<u32>,
    /// Its exit code (Python's convention).
    pub exit_code: Option<i32>,
    /// How it ended.
    pub ended: Ended,
    /// How many times it was restarted.
    pub restarts: u32,
}

pub(super) type ObjectHandler<'h> =
    Box<dyn FnMut(&Origin, &str, &[u8]) -> Result<(), SupervisorError> + 'h>;

pub(super) type PrintHandler<'h> = Box<dyn FnMut(&Origin, &str) + 'h>;
pub(super) type UndeliverableHandler<'h> = Box<dyn FnMut(&Undelivered) + 'h>;

/// The caller's handlers.
#[derive(Default)]
pub(super) struct Handlers<'h> {
    pub(super) object: Option<ObjectHandler<'h>>,
    pub(super) print: Option<PrintHandler<'h>>,
    pub(super) undeliverable: Option<UndeliverableHandler<'h>>,
}

/// What a [`SupervisorHandle`] asks of the running supervisor.
pub(super) enum Command<M: Message> {
    Add {
        id: u64,
        name: String,
        listens: Listen<M::Kind>,
        resident: bool,
        spawn: Spawner,
    },
    Remove(u64),
    Send(To, M),
}

/// The running processes by id: name and whether messages reach it.
pub(super) type Directory = Arc<Mutex<HashMap<u64, (String, bool)>>>;

/// A supervisor (multitools' `ipc.host.Supervisor`): runs named processes ([`Actor`](crate::Actor)s),
/// keeps a connection to each, routes their typed messages — to an id, to a set of ids, to
/// the listeners of a kind, to everyone — and hands their objects, lines and input requests
/// to the caller's handlers. It is a process list: [`start`](Supervisor::start) and
/// [`join`](Supervisor::join), or [`supervise`](Supervisor::supervise) for both.
///
/// Routing, handlers and input run on the thread that joins. A process that fails ends the
/// others and `join` returns the error naming it (unless a [`Restart`] policy restarts it);
/// Ctrl-C or SIGTERM while it joins ends every process; dropping it kills what still runs.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spychro::{Actor, Fail, Flow, Letter, Link, Supervisor};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, spychro::Message)]
/// enum Msg { Text(String) }
///
/// #[derive(Serialize, Deserialize)]
/// struct Echo;
///
/// #[spychro::actor]
/// impl Actor for Echo {
///     type Message = Msg;
///     const RESIDENT: bool = true;
///     fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
///         let Msg::Text(t) = letter.message;
///         link.send_to(letter.from, Msg::Text(t.to_uppercase()))?;
///         Ok(Flow::Continue)
///     }
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct Asker;
///
/// #[spychro::actor]
/// impl Actor for Asker {
///     type Message = Msg;
///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
///         let echo = link.get_ids("Echo")?;
///         link.send_each(&echo, Msg::Text("hello".into()))?;
///         while !matches!(link.serve_for(self, std::time::Duration::from_millis(10))?, spychro::Served::Stopped) {}
///         Ok(())
///     }
///     fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
///         let Msg::Text(t) = letter.message;
///         link.send_object(&t)?;
///         Ok(Flow::Stop)
///     }
/// }
///
/// let mut got = Vec::new();
/// let mut s = Supervisor::<Msg>::new();
/// s.add(Echo);
/// s.add(Asker);
/// s.on_object(|_, t: String| got.push(t));
/// let outcomes = s.supervise()?;
/// drop(s);
/// assert_eq!(got, ["HELLO"]);
/// assert_eq!(outcomes.len(), 2);
/// # Ok::<(), spychro::Error>(())
/// ```
pub struct Supervisor<'h, M: Message> {
    pub(super) members: Vec<Member<M>>,
    pub(super) by_id: HashMap<u64, usize>,
    pub(super) next_id: Arc<AtomicU64>,
    pub(super) handlers: Handlers<'h>,
    pub(super) restart: Restart,
    pub(super) daemon: bool,
    pub(super) started: bool,
    pub(super) commands: mpsc::Receiver<Command<M>>,
    pub(super) command_tx: mpsc::Sender<Command<M>>,
    pub(super) wake_rx: UnixStream,
    pub(super) wake_tx: Arc<UnixStream>,
    pub(super) directory: Directory,
    pub(super) input: Input,
    /// Names asked for, and by whom (their answers are kept up to date).
    pub(super) watchers: HashMap<String, BTreeSet<u64>>,
    /// The members listening to each kind, by kind index.
    pub(super) hearers: Vec<Vec<usize>>,
    pub(super) failures: VecDeque<Instant>,
    pub(super) fatal: Option<Error>,
    pub(super) outcomes: HashMap<u64, Ended>,
    /// Set once `join` has returned: handles refuse commands then.
    pub(super) finished: Arc<std::sync::atomic::AtomicBool>,
    /// While `join` routes: SIGINT and SIGTERM kill the watched processes and wake the loop.
    pub(super) signals: Option<crate::sys::signals::Guard>,
}

impl<M: Message> Default for Supervisor<'_, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'h, M: Message> Supervisor<'h, M> {
    /// An empty supervisor.
    ///
    /// ```
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    /// let s = spychro::Supervisor::<Msg>::new();
    /// assert!(s.is_empty());
    /// ```
    pub fn new() -> Self {
        let (command_tx, commands) = mpsc::channel();
        let (wake_rx, wake_tx) = UnixStream::pair().expect("a socketpair for the supervisor");
        let _ = wake_rx.set_nonblocking(true);
        let _ = wake_tx.set_nonblocking(true);
        Supervisor {
            members: Vec::new(),
            by_id: HashMap::new(),
            next_id: Arc::new(AtomicU64::new(1)),
            handlers: Handlers::default(),
            restart: Restart::Never,
            daemon: true,
            started: false,
            commands,
            command_tx,
            wake_rx,
            wake_tx: Arc::new(wake_tx),
            directory: Arc::default(),
            input: Input::default(),
            watchers: HashMap::new(),
            hearers: Vec::new(),
            failures: VecDeque::new(),
            fatal: None,
            outcomes: HashMap::new(),
            finished: Arc::default(),
            signals: None,
        }
    }

    /// Adds a process and returns its id (multitools' `p_id`). Added to a running supervisor
    /// (between `start` and `join`), it starts at once; while `join` runs, add through a
    /// [`handle`](Supervisor::handle).
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Quick;
    /// # #[spychro::actor]
    /// # impl spychro::Actor for Quick { type Message = Msg; }
    /// let mut s = spychro::Supervisor::<Msg>::new();
    /// let first = s.add(Quick);
    /// s.start()?;
    /// let second = s.add(Quick); // starts at once
    /// assert_eq!((first, second), (1, 2)); // ids count from 1
    /// assert_eq!(s.join()?.len(), 2);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn add<A: ActorJob<Message = M> + Send>(&mut self, actor: A) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let name = actor.name();
        let listens = actor.listens();
        let member = Member::new(id, name, listens, A::RESIDENT, spawner(actor));
        self.insert(member);
        id
    }

    pub(super) fn insert(&mut self, member: Member<M>) {
        let id = member.id;
        self.by_id.insert(id, self.members.len());
        self.members.push(member);
        self.rebuild_hearers();
        if self.started
            && let Some(&i) = self.by_id.get(&id)
            && let Err(e) = self.start_member(i)
        {
            self.fatal.get_or_insert(e);
        }
    }

    /// Sets the object handler (multitools' `objHandler`): called on the joining thread with
    /// the sender and each value a process sent with [`Link::send_object`](crate::Link::send_object),
    /// decoded as `T`. Without one, an object ends the supervisor with
    /// [`SupervisorError::UnknownObject`]; an object that does not decode as `T` ends it with
    /// [`SupervisorError::ObjectType`].
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Square(u64);
    ///
    /// #[spychro::actor]
    /// impl Actor for Square {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.send_object(&(self.0, self.0 * self.0))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut squares = std::collections::BTreeMap::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// for n in 1..=3 {
    ///     s.add(Square(n));
    /// }
    /// s.on_object(|_, (n, square): (u64, u64)| {
    ///     squares.insert(n, square);
    /// });
    /// s.supervise()?;
    /// drop(s); // ends the handler's borrow of `squares`
    /// assert_eq!(squares.into_iter().collect::<Vec<_>>(), [(1, 1), (2, 4), (3, 9)]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn on_object<T: DeserializeOwned>(
        &mut self,
        mut handler: impl FnMut(&Origin, T) + 'h,
    ) -> &mut Self {
        self.handlers.object =
            Some(Box::new(
                move |origin, type_name, bytes| match crate::wire::decode_value::<T>(bytes) {
                    Ok(value) => {
                        handler(origin, value);
                        Ok(())
                    }
                    Err(message) => Err(SupervisorError::ObjectType {
                        name: origin.name.clone(),
                        id: origin.id,
                        type_name: type_name.to_owned(),
                        expected: std::any::type_name::<T>(),
                        message,
                    }),
                },
            ));
        self
    }

    /// Sets the print handler (multitools' `prntHandler`): each line a process printed with
    /// [`Link::prnt`](crate::Link::prnt). Without one, lines go to stdout, whole.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Count(u32);
    ///
    /// #[spychro::actor]
    /// impl Actor for Count {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         for i in 1..=self.0 {
    ///             link.prnt(format!("{i} of {}", self.0))?;
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut log = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Count(2));
    /// s.on_print(|from, line| log.push(format!("[{}] {line}", from.name)));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(log, ["[Count] 1 of 2", "[Count] 2 of 2"]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn on_print(&mut self, handler: impl FnMut(&Origin, &str) + 'h) -> &mut Self {
        self.handlers.print = Some(Box::new(handler));
        self
    }

    /// Sets what happens to a message that cannot be delivered (no such process, it ended,
    /// nobody listens, it has no handler). Without a handler, the first one ends the
    /// supervisor with [`SupervisorError::Undeliverable`].
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Lost;
    ///
    /// #[spychro::actor]
    /// impl Actor for Lost {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.send_to(99, Msg::Tick)?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut lost = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// let id = s.add(Lost);
    /// s.on_undeliverable(|u| lost.push(u.clone()));
    /// s.supervise()?; // goes on: the handler took it
    /// drop(s);
    /// assert_eq!((lost[0].from, lost[0].kind, lost[0].to.as_str()), (id, "Tick", "id 99"));
    /// assert_eq!(lost[0].reason, "no process has id 99 (it never existed)");
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn on_undeliverable(&mut self, handler: impl FnMut(&Undelivered) + 'h) -> &mut Self {
        self.handlers.undeliverable = Some(Box::new(handler));
        self
    }

    /// Where [`Link::inpt`](crate::Link::inpt) reads lines: the caller's stdin unless set.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Adder;
    ///
    /// #[spychro::actor]
    /// impl Actor for Adder {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         let a: i64 = link.inpt("a = ")?.parse()?;
    ///         let b: i64 = link.inpt("b = ")?.parse()?;
    ///         link.send_object(&(a + b))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut sum = 0;
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Adder);
    /// s.input_from(std::io::Cursor::new("40\r\n2\n")); // line endings are taken off
    /// s.on_object(|_, n: i64| sum = n);
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(sum, 42);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn input_from(&mut self, reader: impl std::io::BufRead + Send + 'static) -> &mut Self {
        self.input.set_source(Box::new(reader));
        self
    }

    /// The restart policy ([`Restart::Never`] unless set). Each [`Restart`] variant has an
    /// example; the common case, a process that fails once:
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use std::time::Duration;
    /// use spychro::{Actor, Ended, Fail, Link, Restart, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// /// Fails on its first start (when it makes `marker`), succeeds on the next.
    /// #[derive(Serialize, Deserialize)]
    /// struct Flaky { marker: std::path::PathBuf }
    ///
    /// #[spychro::actor]
    /// impl Actor for Flaky {
    ///     type Message = Msg;
    ///     fn run(&mut self, _: &mut Link<Msg>) -> Result<(), Fail> {
    ///         if std::fs::create_dir(&self.marker).is_ok() {
    ///             return Err("first start".into());
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # let marker = format!("spychro-doc-restart-{}", std::process::id());
    /// # let marker = std::env::temp_dir().join(marker);
    /// # let _ = std::fs::remove_dir(&marker);
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Flaky { marker: marker.clone() });
    /// s.restart(Restart::OneForOne { max: 3, within: Duration::from_secs(60) });
    /// let outcomes = s.supervise()?;
    /// # std::fs::remove_dir(&marker).unwrap();
    /// assert_eq!((outcomes[0].restarts, outcomes[0].ended), (1, Ended::Finished));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn restart(&mut self, policy: Restart) -> &mut Self {
        self.restart = policy;
        self
    }

    /// Whether processes are daemonic (the default: they may not start processes of their
    /// own); `false` lets them run pools and processes.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Process, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[spychro::job]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Parent;
    ///
    /// #[spychro::actor]
    /// impl Actor for Parent {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         let mut child = Process::new(square, 7);
    ///         child.start()?;
    ///         link.send_object(&child.join()?)?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut got = 0;
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Parent);
    /// s.daemon(false); // else `child.start()` fails: a daemonic process has no children
    /// s.on_object(|_, n: u64| got = n);
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(got, 49);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn daemon(&mut self, daemon: bool) -> &mut Self {
        self.daemon = daemon;
        self
    }

    /// A handle for other threads (or handlers) to add, remove and message processes and to
    /// look up ids while the supervisor runs. Here a handler answers a process:
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Flow, Letter, Link, Supervisor, To};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Answer(String) }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Asker { answer: Option<String> }
    ///
    /// #[spychro::actor]
    /// impl Actor for Asker {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.prnt("what time is it?")?;
    ///         link.serve_until(self, std::time::Duration::from_secs(10), |a| a.answer.is_some())?;
    ///         link.prnt(format!("told {:?}", self.answer))?;
    ///         Ok(())
    ///     }
    ///     fn handle(&mut self, letter: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         let Msg::Answer(a) = letter.message;
    ///         self.answer = Some(a);
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// let mut lines = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Asker { answer: None });
    /// let handle = s.handle();
    /// let seen = &mut lines;
    /// s.on_print(move |from, line| {
    ///     if line.ends_with('?') {
    ///         handle.send(To::Id(from.id), Msg::Answer("noon".into())).unwrap();
    ///     }
    ///     seen.push(line.to_owned());
    /// });
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(lines, ["what time is it?", r#"told Some("noon")"#]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn handle(&self) -> SupervisorHandle<M> {
        SupervisorHandle {
            finished: Arc::clone(&self.finished),
            tx: self.command_tx.clone(),
            wake: Arc::clone(&self.wake_tx),
            next_id: Arc::clone(&self.next_id),
            directory: Arc::clone(&self.directory),
        }
    }

    /// The ids of the running processes named `name` (empty when there are none): those
    /// started and not yet ended, so none before [`start`](Supervisor::start).
    ///
    /// ```
    /// # use std::collections::BTreeSet;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Worker;
    /// # #[spychro::actor]
    /// # impl spychro::Actor for Worker { type Message = Msg; }
    /// let mut s = spychro::Supervisor::<Msg>::new();
    /// let a = s.add(Worker);
    /// let b = s.add(Worker);
    /// assert!(s.get_ids("Worker").is_empty()); // added, not running
    /// s.start()?;
    /// assert_eq!(s.get_ids("Worker"), BTreeSet::from([a, b]));
    /// s.join()?;
    /// assert!(s.get_ids("Worker").is_empty()); // ended
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn get_ids(&self, name: &str) -> BTreeSet<u64> {
        self.members
            .iter()
            .filter(|m| m.receives() && m.name == name)
            .map(|m| m.id)
            .collect()
    }

    /// Starts every process added so far. A process that cannot start ends the others.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Quick;
    /// # #[spychro::actor]
    /// # impl spychro::Actor for Quick { type Message = Msg; }
    /// let mut s = spychro::Supervisor::<Msg>::new();
    /// s.add(Quick);
    /// s.start()?;
    /// assert!(s.pids()[0].1.is_some());
    /// assert!(s.start().is_err()); // once only: add more processes instead
    /// s.join()?;
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn start(&mut self) -> Result<(), Error> {
        if self.started {
            return Err(Error::Misuse(
                "the supervisor was already started: add processes to it instead".into(),
            ));
        }
        self.started = true;
        for i in 0..self.members.len() {
            if self.members[i].phase == Phase::Added
                && let Err(e) = self.start_member(i)
            {
                self.end_all();
                return Err(e);
            }
        }
        self.refresh_directory();
        Ok(())
    }

    /// Routes messages and runs the handlers until every non-resident process has ended (the
    /// residents are closed then), and returns each process's outcome, by id. A failure ends
    /// every other process and is returned.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Quick;
    /// # #[spychro::actor]
    /// # impl spychro::Actor for Quick { type Message = Msg; }
    /// let mut s = spychro::Supervisor::<Msg>::new();
    /// let a = s.add(Quick);
    /// let b = s.add(Quick);
    /// assert!(s.join().is_err()); // not started
    /// s.start()?;
    /// let ids: Vec<u64> = s.join()?.iter().map(|o| o.id).collect();
    /// assert_eq!(ids, [a, b]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn join(&mut self) -> Result<Vec<Outcome>, Error> {
        if !self.started {
            return Err(Error::Misuse(
                "the supervisor was not started: call start() (or supervise()) first".into(),
            ));
        }
        let routed = self.run_hub();
        self.finished.store(true, Ordering::Release);
        routed?;
        let mut outcomes: Vec<Outcome> = self
            .members
            .iter_mut()
            .filter(|m| m.phase == Phase::Ended)
            .map(|m| Outcome {
                id: m.id,
                name: m.name.clone(),
                pid: m.pid(),
                exit_code: m.process.as_ref().and_then(|p| p.exit_code()),
                ended: self.outcomes.get(&m.id).copied().unwrap_or(Ended::Finished),
                restarts: m.restarts,
            })
            .collect();
        outcomes.sort_by_key(|o| o.id);
        Ok(outcomes)
    }

    /// Starts every process and joins them (multitools' `supervise()`).
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Quick;
    /// # #[spychro::actor]
    /// # impl spychro::Actor for Quick { type Message = Msg; }
    /// let mut s = spychro::Supervisor::<Msg>::new();
    /// s.add(Quick);
    /// s.add(Quick);
    /// let outcomes = s.supervise()?;
    /// assert_eq!(outcomes.len(), 2);
    /// assert!(!s.is_alive());
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn supervise(&mut self) -> Result<Vec<Outcome>, Error> {
        self.start()?;
        self.join()
    }

    /// Whether any process runs.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Quick;
    /// # #[spychro::actor]
    /// # impl spychro::Actor for Quick { type Message = Msg; }
    /// let mut s = spychro::Supervisor::<Msg>::new();
    /// s.add(Quick);
    /// assert!(!s.is_alive()); // not started
    /// s.start()?;
    /// assert!(s.is_alive()); // until `join` sees it end
    /// s.join()?;
    /// assert!(!s.is_alive());
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        self.members.iter().any(|m| m.live())
    }

    /// The pids of the processes, by id: `None` before a process starts, its last pid once it
    /// has.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Quick;
    /// # #[spychro::actor]
    /// # impl spychro::Actor for Quick { type Message = Msg; }
    /// let mut s = spychro::Supervisor::<Msg>::new();
    /// let id = s.add(Quick);
    /// assert_eq!(s.pids(), [(id, None)]);
    /// s.start()?;
    /// let pid = s.pids()[0].1;
    /// assert!(pid.is_some());
    /// s.join()?;
    /// assert_eq!(s.pids(), [(id, pid)]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn pids(&self) -> Vec<(u64, Option<u32>)> {
        self.members.iter().map(|m| (m.id, m.pid())).collect()
    }

    /// How many processes were added (whether they run, ended or not started yet).
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Quick;
    /// # #[spychro::actor]
    /// # impl spychro::Actor for Quick { type Message = Msg; }
    /// let mut s = spychro::Supervisor::<Msg>::new();
    /// s.add(Quick);
    /// s.add(Quick);
    /// assert_eq!(s.len(), 2);
    /// s.supervise()?;
    /// assert_eq!(s.len(), 2); // ended processes still count
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no process was added.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Quick;
    /// # #[spychro::actor]
    /// # impl spychro::Actor for Quick { type Message = Msg; }
    /// let mut s = spychro::Supervisor::<Msg>::new();
    /// assert!(s.is_empty());
    /// s.add(Quick);
    /// assert!(!s.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Kills every process that still runs and waits for them.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use std::time::{Duration, Instant};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Slow;
    ///
    /// #[spychro::actor]
    /// impl Actor for Slow {
    ///     type Message = Msg;
    ///     fn run(&mut self, _: &mut Link<Msg>) -> Result<(), Fail> {
    ///         std::thread::sleep(Duration::from_secs(10));
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Slow);
    /// s.start()?;
    /// let t = Instant::now();
    /// s.terminate();
    /// assert!(!s.is_alive());
    /// assert!(t.elapsed() < Duration::from_secs(5)); // killed, not waited for
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn terminate(&mut self) {
        self.end_all();
    }

    pub(super) fn start_member(&mut self, i: usize) -> Result<(), Error> {
        let daemon = self.daemon;
        let m = &mut self.members[i];
        m.start(daemon).map_err(|e| {
            Error::Supervisor(Box::new(SupervisorError::Failed {
                name: m.name.clone(),
                id: m.id,
                pid: None,
                error: Box::new(e),
            }))
        })?;
        if let (Some(g), Some(pid)) = (self.signals.as_ref(), m.pid()) {
            g.watch(pid);
        }
        let name = m.name.clone();
        self.names_changed(&name);
        Ok(())
    }

    /// Calls the undeliverable handler, or makes it the supervisor's error.
    pub(super) fn undeliverable(&mut self, u: Undelivered) {
        match self.handlers.undeliverable.as_mut() {
            Some(h) => {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| h(&u))) {
                    self.fail_handler("undeliverable", p);
                }
            }
            None => {
                self.fatal.get_or_insert(Error::Supervisor(Box::new(
                    SupervisorError::Undeliverable(Box::new(u)),
                )));
            }
        }
    }

    pub(super) fn fail_handler(&mut self, handler: &'static str, p: Box<dyn std::any::Any + Send>) {
        let message = crate::call::panic::panic_message(&*p);
        self.fatal
            .get_or_insert(Error::Supervisor(Box::new(SupervisorError::Handler {
                handler,
                message,
            })));
    }

    pub(super) fn origin(&self, i: usize) -> Origin {
        let m = &self.members[i];
        Origin {
            id: m.id,
            name: m.name.clone(),
            pid: m.pid(),
        }
    }

    /// Prints a line whole, on stdout.
    pub(super) fn print_line(line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    pub(super) fn rebuild_hearers(&mut self) {
        let kinds = <M::Kind as super::message::MessageKind>::ALL;
        self.hearers = kinds
            .iter()
            .map(|k| {
                (0..self.members.len())
                    .filter(|&i| self.members[i].listens.hears(*k))
                    .collect()
            })
            .collect();
    }

    pub(super) fn refresh_directory(&self) {
        let mut d = self.directory.lock().unwrap_or_else(|e| e.into_inner());
        d.clear();
        for m in &self.members {
            if m.live() {
                d.insert(m.id, (m.name.clone(), m.receives()));
            }
        }
    }
}

impl<M: Message> Drop for Supervisor<'_, M> {
    fn drop(&mut self) {
        self.finished.store(true, Ordering::Release);
        self.end_all();
    }
}

/// Adds, removes and messages the processes of a running [`Supervisor`] from any thread.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # use spychro::{Actor, Fail, Link};
/// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// # enum Msg { Tick }
/// #[derive(Serialize, Deserialize)]
/// struct Napper;
///
/// #[spychro::actor]
/// impl Actor for Napper {
///     type Message = Msg;
///     fn run(&mut self, _: &mut Link<Msg>) -> Result<(), Fail> {
///         std::thread::sleep(std::time::Duration::from_millis(50));
///         Ok(())
///     }
/// }
///
/// let mut s = spychro::Supervisor::<Msg>::new();
/// s.add(Napper);
/// let handle = s.handle();
/// s.start()?;
/// let added = handle.add(Napper)?;
/// let outcomes = s.join()?;
/// assert!(outcomes.iter().any(|o| o.id == added));
/// # Ok::<(), spychro::Error>(())
/// ```
pub struct SupervisorHandle<M: Message> {
    finished: Arc<std::sync::atomic::AtomicBool>,
    tx: mpsc::Sender<Command<M>>,
    wake: Arc<UnixStream>,
    next_id: Arc<AtomicU64>,
    directory: Directory,
}

impl<M: Message> Clone for SupervisorHandle<M> {
    fn clone(&self) -> Self {
        SupervisorHandle {
            finished: Arc::clone(&self.finished),
            tx: self.tx.clone(),
            wake: Arc::clone(&self.wake),
            next_id: Arc::clone(&self.next_id),
            directory: Arc::clone(&self.directory),
        }
    }
}

impl<M: Message> SupervisorHandle<M> {
    fn command(&self, c: Command<M>) -> Result<(), Error> {
        if self.finished.load(Ordering::Acquire) {
            return Err(Error::Misuse(
                "the supervisor has finished (its join returned): nothing would carry this out"
                    .into(),
            ));
        }
        self.tx
            .send(c)
            .map_err(|_| Error::Misuse("the supervisor is gone".into()))?;
        let _ = (&*self.wake).write(&[1]);
        Ok(())
    }

    /// Plugs a process in: it starts as soon as the supervisor sees it, and its id is
    /// returned at once. Here a handler adds as many helpers as a process asks for:
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Boss;
    ///
    /// #[spychro::actor]
    /// impl Actor for Boss {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.send_object(&2u32)?; // "I need two helpers"
    ///         Ok(())
    ///     }
    /// }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Helper(u32);
    ///
    /// #[spychro::actor]
    /// impl Actor for Helper {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.prnt(format!("helper {} here", self.0))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let (mut added, mut lines) = (Vec::new(), Vec::new());
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Boss);
    /// let handle = s.handle();
    /// let ids = &mut added;
    /// s.on_object(move |_, n: u32| {
    ///     for i in 0..n {
    ///         ids.push(handle.add(Helper(i)).unwrap());
    ///     }
    /// });
    /// s.on_print(|_, line| lines.push(line.to_owned()));
    /// let outcomes = s.supervise()?;
    /// drop(s);
    /// lines.sort();
    /// assert_eq!(added, [2, 3]); // the ids after the Boss's
    /// assert_eq!(lines, ["helper 0 here", "helper 1 here"]);
    /// assert_eq!(outcomes.len(), 3);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn add<A: ActorJob<Message = M> + Send>(&self, actor: A) -> Result<u64, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.command(Command::Add {
            id,
            name: actor.name(),
            listens: actor.listens(),
            resident: A::RESIDENT,
            spawn: spawner(actor),
        })?;
        Ok(id)
    }

    /// Removes a process: it is killed, and messages sent to it afterwards are undeliverable.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Ended, Fail, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Stuck;
    ///
    /// #[spychro::actor]
    /// impl Actor for Stuck {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.prnt("stuck")?;
    ///         std::thread::sleep(std::time::Duration::from_secs(10));
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Stuck);
    /// let handle = s.handle();
    /// s.on_print(move |from, _| handle.remove(from.id).unwrap());
    /// let outcomes = s.supervise()?; // at once, not in 10 s
    /// assert_eq!((outcomes[0].ended, outcomes[0].exit_code), (Ended::Removed, Some(-9)));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn remove(&self, id: u64) -> Result<(), Error> {
        self.command(Command::Remove(id))
    }

    /// Sends a message from the supervisor itself (sender id 0). Sent before `join` runs, it
    /// is routed as soon as `join` starts.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Flow, Letter, Link, Supervisor, To};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Text(String) }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Waiter { got: Option<(u64, String)> }
    ///
    /// #[spychro::actor]
    /// impl Actor for Waiter {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.serve_until(self, std::time::Duration::from_secs(10), |w| w.got.is_some())?;
    ///         link.send_object(&self.got)?;
    ///         Ok(())
    ///     }
    ///     fn handle(&mut self, letter: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         let Msg::Text(text) = letter.message;
    ///         self.got = Some((letter.from, text));
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// let mut got = None;
    /// let mut s = Supervisor::<Msg>::new();
    /// let id = s.add(Waiter { got: None });
    /// let handle = s.handle();
    /// s.on_object(|_, g: Option<(u64, String)>| got = g);
    /// s.start()?;
    /// let sender = std::thread::spawn(move || handle.send(To::Id(id), Msg::Text("hi".into())));
    /// s.join()?;
    /// sender.join().unwrap()?;
    /// drop(s);
    /// assert_eq!(got, Some((0, "hi".to_string()))); // from the supervisor: id 0
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn send(&self, to: To, message: M) -> Result<(), Error> {
        self.command(Command::Send(to, message))
    }

    /// The ids of the running processes named `name`, as the supervisor last saw them.
    ///
    /// ```
    /// # use std::collections::BTreeSet;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Worker;
    /// # #[spychro::actor]
    /// # impl spychro::Actor for Worker { type Message = Msg; }
    /// let mut s = spychro::Supervisor::<Msg>::new();
    /// let id = s.add(Worker);
    /// let handle = s.handle();
    /// assert!(handle.get_ids("Worker").is_empty()); // not started
    /// s.start()?;
    /// let seen = std::thread::spawn(move || handle.get_ids("Worker")).join().unwrap();
    /// assert_eq!(seen, BTreeSet::from([id]));
    /// s.join()?;
    /// # Ok::<(), spychro::Error>(())
    /// ```
    pub fn get_ids(&self, name: &str) -> BTreeSet<u64> {
        let d = self.directory.lock().unwrap_or_else(|e| e.into_inner());
        d.iter()
            .filter(|(_, (n, receives))| *receives && n == name)
            .map(|(id, _)| *id)
            .collect()
    }
}
